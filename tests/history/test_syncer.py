"""The store's syncer: one long-lived thread per store runs what is handed to it, in order; the
periodic saves of a growing answer go there and never wait for a store another connection holds
locked; `close` runs what is left, waits a bounded time, and says in one line what it could not
write."""

from __future__ import annotations

import _thread
import sqlite3
import threading
import time
from pathlib import Path
from typing import List

import pytest
from history_helpers import WAIT, saved_text

from llmchat.history import COMPLETE, HistoryError, HistoryStore
from llmchat.history.store import FLUSH_INTERVAL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


class Locker:
    """Another connection (as another process would) holding the write lock."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.db is not None:
            self.db.execute("COMMIT")
            self.db.close()
            self.db = None


def test_jobs_run_in_order_on_one_long_lived_thread(path: Path) -> None:
    with HistoryStore.open(path) as store:
        threads_before = _thread._count()
        seen: List[tuple] = []
        futures = [store.submit(lambda n: seen.append((n, _thread.get_ident())) or n * 2, n) for n in range(50)]
        assert [f.result(WAIT) for f in futures] == [n * 2 for n in range(50)]
        assert [n for n, _ in seen] == list(range(50))
        (ident,) = {ident for _, ident in seen}
        assert ident != _thread.get_ident()
        failing = store.submit(store.rename, 10**6, "x")  # an error reaches the caller through its future
        with pytest.raises(HistoryError, match="no conversation"):
            failing.result(WAIT)
        # A hundred periodic saves later: still that one thread, not one per save.
        answer = store.begin_turn(None, "q")
        for n in range(100):
            answer.append(f"{n} ")
            answer.flush_soon()
        assert store.wait_idle(WAIT)
        assert _thread._count() == threads_before + 1
        assert saved_text(path, answer.message_id) == "".join(f"{n} " for n in range(100))
        assert store.submit(_thread.get_ident).result(WAIT) == ident
    with pytest.raises(HistoryError, match="closed"):
        store.submit(print)


def test_periodic_saves_never_wait_for_a_locked_store_and_nothing_is_lost(path: Path, clock: FakeClock) -> None:
    with HistoryStore.open(path, clock=clock) as store:
        answer = store.begin_turn(None, "q")
        locker = Locker(path)
        try:
            slowest = 0.0
            for n in range(20):  # 10 s of an answer at the flush interval
                answer.append(f"part {n}. ")
                clock.now += FLUSH_INTERVAL
                started = time.perf_counter()
                answer.flush_if_due()
                slowest = max(slowest, time.perf_counter() - started)
            assert slowest < 0.02, slowest  # a flush waiting for the lock took 50 ms and more
            assert store.wait_idle(WAIT)
            assert saved_text(path, answer.message_id) == ""  # all of it held, nothing dropped
        finally:
            locker.release()
        answer.append("end.")
        answer.finish(COMPLETE)  # waits for the syncer: the rest is stored with it
        assert saved_text(path, answer.message_id) == "".join(f"part {n}. " for n in range(20)) + "end."


def test_a_turn_begun_and_finished_through_submit_does_not_wait_on_itself(path: Path) -> None:
    """A face's event loop hands the whole turn to the syncer; `finish` there runs at once."""
    with HistoryStore.open(path) as store:
        answer = store.submit(store.begin_turn, None, "q").result(WAIT)
        answer.pending.append("the answer")
        store.submit(answer.flush_if_due).result(WAIT)
        store.submit(answer.finish, COMPLETE).result(WAIT)
        assert answer.finished and saved_text(path, answer.message_id) == "the answer"
        assert store.submit(store.load, answer.conversation_id).result(WAIT).messages[-1].status == COMPLETE


def test_close_runs_what_was_handed_to_the_syncer(path: Path) -> None:
    store = HistoryStore.open(path)
    cid = store.start_conversation(title="old")
    ran: List[int] = []
    store.submit(time.sleep, 0.2)
    for n in range(5):
        store.submit(ran.append, n)
    store.submit(store.rename, cid, "new")
    store.close()
    assert ran == [0, 1, 2, 3, 4]
    with HistoryStore.open(path) as again:
        assert again.get(cid).title == "new"


def test_close_waits_a_bounded_time_for_a_locked_store_and_says_what_it_left(path: Path, clock: FakeClock) -> None:
    warnings: List[str] = []
    store = HistoryStore.open(path, clock=clock, warn=warnings.append)
    cid = store.start_conversation(title="old")
    answer = store.begin_turn(None, "q")
    answer.append("saved. ")
    assert answer.flush() is True
    locker = Locker(path)
    try:
        answer.append("x" * 1000)
        done = store.submit(answer.finish, COMPLETE)  # waits for the lock on the syncer
        store.submit(store.rename, cid, "new")
        started = time.monotonic()
        store.close(timeout=0.5)
        assert time.monotonic() - started < 2.0
    finally:
        locker.release()
    with pytest.raises(HistoryError, match="not written"):  # not even once the lock is gone
        done.result(WAIT)
    assert len(warnings) == 1, warnings
    assert "was still busy when llmchat quit (locked by another process?); not saved:" in warnings[0]
    assert "the last 1,000 characters of an answer" in warnings[0] and "1 other change" in warnings[0]
    assert saved_text(path, answer.message_id) == "saved. "  # what was saved stays; marked interrupted later
    with HistoryStore.open(path) as again:
        assert again.get(cid).title == "old"


def test_a_write_from_another_thread_does_not_wait_behind_the_syncer_longer_than_it_would_for_sqlite(path: Path) -> None:
    """The syncer waits for another process's lock holding the store's own lock: a write that
    waits only briefly for SQLite (a deferred turn start) waits only briefly for that too."""
    with HistoryStore.open(path) as store:
        cid = store.start_conversation()
        locker = Locker(path)
        try:
            renaming = store.submit(store.rename, cid, "slow")
            deadline = time.monotonic() + WAIT
            while store._current is None and time.monotonic() < deadline:  # the rename is waiting
                time.sleep(0.005)
            started = time.monotonic()
            answer = store.begin_turn(cid, "q", defer_if_busy=True)
            assert time.monotonic() - started < 1.0
            assert not answer.begun
        finally:
            locker.release()
        renaming.result(WAIT)
        answer.append("late")
        answer.finish(COMPLETE)
        assert answer.begun and saved_text(path, answer.message_id) == "late"


def test_the_syncer_is_a_daemon_the_process_can_end_without(tmp_path: Path) -> None:
    """A store never closed (a crash path) does not keep the interpreter from exiting."""
    import subprocess
    import sys

    code = (
        "import pathlib, sys\n"
        "from llmchat.history import HistoryStore\n"
        f"s = HistoryStore.open(pathlib.Path({str(tmp_path / 'h.db')!r}))\n"
        "s.submit(print, 'ran', flush=True).result()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr


def test_threads_share_the_store(path: Path) -> None:
    """Reads and writes from several threads and the syncer at once: every row, no error."""
    with HistoryStore.open(path) as store:
        errors: List[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(10):
                    answer = store.begin_turn(None, f"t{n}-{i}")
                    answer.append("a")
                    answer.flush_soon()
                    store.list_conversations()
                    answer.finish(COMPLETE)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not errors
        assert len(store.list_conversations()) == 40
