"""The TUI while another connection holds the history file locked (another llmchat writing, a
`sqlite3` shell in a transaction): the event loop never waits for SQLite. The answer ends, the
conversation list opens, searches and renames, keys show at once; once the lock is gone,
everything is stored."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import List

from cpu_wait import waited_for_a_cpu  # tests/cpu_wait.py

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import ConversationList

SIZE = (100, 30)
LOCK = 60.0  # seconds the store stays locked, unless released earlier (`Locker.stop`): the bound of a test
LATE = 0.5  # the most the loop may fall behind, but for the time it waited for a CPU (it fell 3 s behind: the whole lock)


class Locker(threading.Thread):
    """Another connection holding the write lock (`BEGIN IMMEDIATE`) for `seconds`, or until
    `stop` is set."""

    def __init__(self, seconds: float) -> None:
        super().__init__(daemon=True)
        self.seconds = seconds
        self.held = threading.Event()
        self.stop = threading.Event()  # release it early
        self.released = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(str(default_path()), isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            self.held.set()
            self.stop.wait(self.seconds)  # the other process's long transaction
            db.execute("COMMIT")
        finally:
            db.close()
            self.released.set()


class LoopWatch:
    """How late a 20 ms timer on the event loop fires, at worst, not counting the time the loop's
    thread waited for a CPU (other processes' work on a loaded machine): what is left is time
    the loop spent on something else, or blocked (waiting for SQLite, say)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            started, queued = time.perf_counter(), waited_for_a_cpu()
            await asyncio.sleep(0.02)
            late = time.perf_counter() - started - 0.02 - (waited_for_a_cpu() - queued)
            self.worst = max(self.worst, late)

    def stop(self) -> float:
        self._task.cancel()
        return self.worst


async def test_the_loop_watch_sees_a_loop_that_blocks_however_busy_the_machine() -> None:
    """The watch leaves out only the time spent waiting for a CPU: a blocked loop (here a
    blocking sleep, as a wait for SQLite's lock would be) still counts."""
    watch = LoopWatch()
    await asyncio.sleep(0.05)
    time.sleep(2 * LATE)  # the loop blocked
    await asyncio.sleep(0.05)
    assert watch.stop() >= LATE


def seed(base_url: str) -> List[int]:
    ids = []
    with HistoryStore.open() as store:
        for title in ("Why is the sky blue", "Tides and the moon"):
            writer = store.begin_turn(None, title, model="m", api="openai-chat", base_url=base_url)
            writer.append(f"About {title.lower()}.")
            writer.finish(COMPLETE, stop_reason="stop")
            ids.append(writer.conversation_id)
    return ids


async def test_a_locked_store_never_freezes_the_tui_and_nothing_is_lost(settings_for, srv, submit, tap, until):
    sky, tides = seed(srv.base_url("openai-chat"))
    app = ChatApp(settings_for(tokens=160, tps=40))  # 4 s: still streaming when the lock is taken
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "while locked")
        await until(pilot, lambda: app._active is not None and app._active.parts, what="the answer streaming")
        await tap(pilot, "ctrl+o")  # the list, read while the store is free
        await until(pilot, lambda: isinstance(app.screen, ConversationList) and app.screen.shown, what="the rows")
        screen = app.screen
        locker = Locker(LOCK)
        locker.start()
        assert await asyncio.to_thread(locker.held.wait, 5.0)
        assert app._active is not None, "the answer ended before the lock: nothing was tested"
        watch = LoopWatch()
        try:
            # Every step below happens while the store stays locked (it is released only at
            # the end): the answer ends (its end waits on the store's syncer, not on the loop),
            # the list searches and renames, keys show; the store takes the changes later.
            await until(pilot, lambda: app._active is None, timeout=LOCK, what="the answer's end")
            await tap(pilot, "slash")
            for key in "moon":
                await tap(pilot, key)
            await until(pilot, lambda: screen.search_box.value == "moon", timeout=LOCK, what="the search typed")
            await tap(pilot, "down")
            await tap(pilot, "down")  # the second row: the conversation used before ours
            await tap(pilot, "r")
            await until(pilot, lambda: screen.rename_box.has_focus, timeout=LOCK, what="the rename box")
            renamed = screen._renaming
            screen.rename_box.value = ""
            for key in "Renamed":
                await tap(pilot, key)
            await tap(pilot, "enter", "\r")
            await tap(pilot, "escape")  # the list closes
            await until(pilot, lambda: not isinstance(app.screen, ConversationList), timeout=LOCK, what="the list closed")
            for key in "abc":
                await tap(pilot, key, key)
            await until(pilot, lambda: app.prompt.text == "abc", timeout=LOCK, what="the keys in the prompt")
            assert watch.worst < LATE, f"the event loop fell {watch.worst:.2f} s behind while the store was locked"
            assert not locker.released.is_set(), "the store was unlocked too soon: nothing was tested"
        finally:
            locker.stop.set()
            await asyncio.to_thread(locker.released.wait, 15.0)
        worst = watch.stop()
        assert worst < LATE, f"the event loop fell {worst:.2f} s behind while the store was locked"
        assert await asyncio.to_thread(app.chat_history.store.wait_idle, 15.0)
        ours = app.chat_history.conversation_id
    with HistoryStore.open() as store:
        conversations = {info.id: info for info in store.list_conversations()}
        assert set(conversations) == {sky, tides, ours}
        assert renamed == tides and conversations[tides].title == "Renamed"
        answer = store.load(ours).messages[-1]
        assert answer.status == COMPLETE and answer.content == "".join(answer_tokens("while locked", 160))


async def test_quitting_with_the_store_locked_is_bounded_and_says_what_was_not_saved(settings_for, srv, submit, until, monkeypatch):
    import llmchat.history.store as store_module

    monkeypatch.setattr(store_module, "CLOSE_WAIT", 0.5)
    app = ChatApp(settings_for(tokens=400, tps=40))
    locker = Locker(LOCK)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "quit while locked")
        await until(pilot, lambda: app._active is not None and len(app._active.parts) > 5, what="the answer streaming")
        locker.start()
        assert await asyncio.to_thread(locker.held.wait, 5.0)
        started = time.monotonic()
        await app.action_quit()
    took = time.monotonic() - started
    released_before = locker.released.is_set()
    locker.stop.set()
    assert not released_before, "the store was unlocked before the app quit: nothing was tested"
    assert took < 5.0, took  # CLOSE_WAIT, not the lock's (or the writes' 15 s deadline)
    assert len(app.exit_warnings) == 1, app.exit_warnings
    assert "was still busy when llmchat quit (locked by another process?); not saved: the last" in app.exit_warnings[0]
    assert await asyncio.to_thread(locker.released.wait, 5.0)


async def test_a_turn_sent_while_the_store_is_locked_is_stored_once_it_is_free(settings_for, srv, submit, until):
    """Locked before the prompt, for longer than a one-shot run waits at its end (3 s): the
    TUI's turn is written when the store frees, as nobody waits for it."""
    app = ChatApp(settings_for(tokens=5, tps=50))
    locker = Locker(LOCK)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat_history.store is not None, what="the store")
        locker.start()
        assert await asyncio.to_thread(locker.held.wait, 5.0)
        await submit(pilot, "sent while locked")
        await until(pilot, lambda: app._active is None, timeout=LOCK, what="the answer's end")
        assert not locker.released.is_set(), "the store was unlocked too soon: nothing was tested"
        locker.stop.set()
        assert await asyncio.to_thread(locker.released.wait, 15.0)
        assert await asyncio.to_thread(app.chat_history.store.wait_idle, 15.0)
    with HistoryStore.open() as store:
        (info,) = store.list_conversations()
        prompt, answer = store.load(info.id).messages
    assert (prompt.content, answer.status, answer.content) == ("sent while locked", COMPLETE, "".join(answer_tokens("sent while locked", 5)))


async def test_an_answer_is_final_on_screen_when_it_ends_not_when_it_is_stored(settings_for, srv, submit, until):
    """The end of the text is the end of the answer on screen: the Markdown is finished (its
    last block drawn as final) while the engine still waits for the store to take the turn's
    end (here locked by another process; on a free store a write in its thread, which held a
    short answer's last frame back by ~0.1 s)."""
    app = ChatApp(settings_for(tokens=40, tps=40))
    locker = Locker(LOCK)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "final while locked")
        await until(pilot, lambda: app._active is not None and app._active.parts, what="the answer streaming")
        locker.start()
        try:
            assert await asyncio.to_thread(locker.held.wait, 5.0)
            view = app.session.last.view
            await until(pilot, lambda: app._active is None, timeout=LOCK, what="the answer's end")
            await until(pilot, lambda: view.markdown.finished, what="the answer final on screen")
            assert view.markdown.source == "".join(answer_tokens("final while locked", 40))
            assert not app.worker.is_finished, "the turn was stored already: nothing was tested"
            assert not locker.released.is_set(), "the store was unlocked too soon: nothing was tested"
        finally:
            locker.stop.set()
            await asyncio.to_thread(locker.released.wait, 15.0)
        await until(pilot, lambda: app.worker.is_finished, timeout=15, what="the turn stored")
        assert view.markdown.finished and view.markdown.source == "".join(answer_tokens("final while locked", 40))
