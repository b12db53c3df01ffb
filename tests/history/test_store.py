"""The history store on a real SQLite file: what is stored, when it reaches the disk, the order
of conversations, the context sent back, interrupted answers, and the failures it reports."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from history_helpers import WAIT, query, saved_text

from llmchat.conversation import Message
from llmchat.history import (
    CANCELLED,
    COMPLETE,
    ERROR,
    INTERRUPTED,
    STREAMING,
    HistoryError,
    HistoryStore,
    UnknownConversation,
    make_title,
    schema,
)
from llmchat.history.store import FLUSH_INTERVAL, process_token
from llmchat.stream.events import Finish, StreamError, TextDelta, Usage
from llmchat.stream.metrics import Metrics


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(path: Path, clock: FakeClock):
    with HistoryStore.open(path, clock=clock) as s:
        yield s


def stored_text(path: Path, message_id: int) -> str:
    return saved_text(path, message_id)


# --- the file ------------------------------------------------------------------------------


def test_writing_does_not_load_the_reading_records() -> None:
    """A one-shot run only writes: the record dataclasses (~3 ms to define) stay unloaded."""
    import subprocess

    code = (
        "import sys, llmchat.history as h, tempfile, pathlib\n"
        "s = h.HistoryStore.open(pathlib.Path(tempfile.mkdtemp()) / 'h.db')\n"
        "s.mark_interrupted_on_start()\n"
        "a = s.begin_turn(None, 'q', model='m')\n"
        "a.append('x'); a.finish('complete')\n"
        "print('llmchat.history.records' in sys.modules, 'llmchat.history.markdown' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_file_is_private_and_in_wal_mode(path: Path) -> None:
    with HistoryStore.open(path) as store:
        store.add_user_message(store.start_conversation(), "hi")
        for name in ("history.db", "history.db-wal", "history.db-shm"):
            assert (path.parent / name).stat().st_mode & 0o777 == 0o600, name
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert query(path, "PRAGMA journal_mode") == [("wal",)]
        assert store.schema_version() == schema.VERSION


def test_a_file_readable_by_others_is_made_private(path: Path) -> None:
    HistoryStore.open(path).close()
    os.chmod(path, 0o644)
    HistoryStore.open(path).close()
    assert path.stat().st_mode & 0o777 == 0o600


# --- conversations and messages -------------------------------------------------------------


def test_a_whole_turn_round_trips_with_its_figures(store: HistoryStore, path: Path, clock: FakeClock) -> None:
    cid = store.start_conversation(profile="work", model="m1", api="openai-chat", base_url="http://127.0.0.1:9/v1")
    user_id = store.add_user_message(cid, "  What is\tup?  \nsecond line")
    metrics = Metrics(clock=clock)
    answer = store.begin_answer(cid, model="m1", api="openai-chat")
    metrics.start()
    clock.now += 0.25
    for piece in ("Not ", "much", "."):
        metrics.observe(TextDelta(piece))
        answer.append(piece)
        clock.now += 0.125
    metrics.observe(Usage(input_tokens=7, output_tokens=12))  # 8 tokens or more: a tok/s figure
    metrics.observe(Finish("stop"))
    answer.finish(COMPLETE, metrics)

    transcript = store.load(cid)
    info = transcript.info
    assert (info.id, info.title, info.profile, info.model, info.api) == (cid, "What is up?", "work", "m1", "openai-chat")
    assert info.base_url == "http://127.0.0.1:9/v1" and info.message_count == 2
    user, reply = transcript.messages
    assert (user.id, user.role, user.content, user.status) == (user_id, "user", "  What is\tup?  \nsecond line", COMPLETE)
    assert (reply.role, reply.content, reply.status, reply.model, reply.api) == ("assistant", "Not much.", COMPLETE, "m1", "openai-chat")
    assert reply.ttft == 0.25
    assert reply.tokens_per_second == 12 / 0.25
    assert (reply.input_tokens, reply.output_tokens, reply.tokens_exact) == (7, 12, True)
    assert reply.elapsed == 0.625
    assert (reply.stop_reason, reply.error) == ("stop", None)
    assert reply.finished_at is not None and reply.created_at <= reply.finished_at
    assert query(path, "SELECT writer_pid, writer_token FROM messages WHERE id = ?", (reply.id,)) == [(None, None)]


def test_begin_turn_stores_everything_before_a_request_at_once(store: HistoryStore, path: Path) -> None:
    answer = store.begin_turn(None, "first prompt", profile="p", model="m1", api="openai-chat", base_url="http://h/v1")
    cid = answer.conversation_id
    info = store.get(cid)
    assert (info.title, info.profile, info.model, info.api, info.base_url) == ("first prompt", "p", "m1", "openai-chat", "http://h/v1")
    rows = query(path, "SELECT id, role, status, model FROM messages ORDER BY id")
    assert rows == [(answer.prompt_id, "user", COMPLETE, None), (answer.message_id, "assistant", STREAMING, "m1")]
    answer.append("one")
    answer.finish(COMPLETE)
    second = store.begin_turn(cid, "second prompt", model="m2", api="anthropic")
    assert second.conversation_id == cid
    info = store.get(cid)
    assert (info.title, info.profile, info.model, info.api, info.base_url, info.message_count) == ("first prompt", None, "m2", "anthropic", None, 4)
    second.finish(CANCELLED)
    with pytest.raises(UnknownConversation):
        store.begin_turn(cid + 1, "nowhere")
    assert query(path, "SELECT count(*) FROM messages") == [(4,)]  # nothing half-stored


def test_an_error_keeps_the_partial_text_and_the_error(store: HistoryStore, clock: FakeClock) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q")
    metrics = Metrics(clock=clock)
    metrics.start()
    answer = store.begin_answer(cid)
    metrics.observe(TextDelta("half an ans"))
    answer.append("half an ans")
    metrics.observe(StreamError("server said no", kind="api"))
    answer.finish(ERROR, metrics)
    reply = store.load(cid).messages[-1]
    assert (reply.status, reply.content, reply.error) == (ERROR, "half an ans", "server said no")
    assert reply.tokens_exact is False and reply.output_tokens == 3  # estimated: 11 chars / 4


def test_titles_come_from_the_first_line_of_the_first_prompt(store: HistoryStore) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "\n\n   \x1b[31mRed\x1b[0m   alert  \nmore")
    store.add_user_message(cid, "a later prompt does not rename it")
    assert store.get(cid).title == "[31mRed[0m alert"  # control characters are dropped
    assert make_title("x" * 200) == "x" * 79 + "…"
    assert make_title("  \n\t\n") == "untitled"
    named = store.start_conversation(title="Given")
    store.add_user_message(named, "prompt")
    assert store.get(named).title == "Given"
    store.rename(cid, "  New\nname ")
    assert store.get(cid).title == "New"
    with pytest.raises(HistoryError, match="empty"):
        store.rename(cid, "   ")


def test_the_most_recent_conversation_is_the_one_last_prompted(path: Path) -> None:
    """Not the newest created, and not decided by a clock that can tie or run backwards."""
    frozen = lambda: 1_700_000_000.0  # noqa: E731 - every timestamp the same
    with HistoryStore.open(path, now=frozen) as store:
        first = store.start_conversation()
        store.add_user_message(first, "one")
        second = store.start_conversation()
        store.add_user_message(second, "two")
        assert store.most_recent().id == second
        store.add_user_message(first, "one again")
        assert store.most_recent().id == first
        assert [c.id for c in store.list_conversations()] == [first, second]
        assert [c.message_count for c in store.list_conversations()] == [2, 1]
        third = store.start_conversation()  # created, nothing sent yet: it is the newest use
        assert [c.id for c in store.list_conversations(limit=2)] == [third, first]


def test_the_context_holds_every_turn_whose_answer_has_text(store: HistoryStore) -> None:
    cid = store.start_conversation()

    def turn(prompt: str, answer: str, status: str) -> None:
        store.add_user_message(cid, prompt)
        writer = store.begin_answer(cid)
        writer.append(answer)
        writer.finish(status)

    turn("q1", "a1", COMPLETE)
    turn("q2", "", ERROR)  # an HTTP error before any text: never accepted
    turn("q3", "partial a3", CANCELLED)  # the user saw it: the model sees it too
    store.add_user_message(cid, "q4")  # the process died before its answer began
    turn("q5", "a5", COMPLETE)
    assert store.context(cid) == [
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("user", "q3"),
        Message("assistant", "partial a3"),
        Message("user", "q5"),
        Message("assistant", "a5"),
    ]


def test_a_superseded_turn_stays_stored_but_is_not_sent_again(store: HistoryStore) -> None:
    """The TUI's retry asks a prompt again: the first try is kept on a branch of its own (the
    retry's sibling), off the current path and so not sent."""
    from llmchat.history import Recorder
    from llmchat.history.markdown import status_note, to_markdown

    first = store.begin_turn(None, "q1", model="m")
    cid = first.conversation_id
    first.append("a1")
    first.finish(COMPLETE)
    tried = store.begin_turn(cid, "q2", model="m")
    tried.append("half an answer")
    tried.finish(ERROR, error="boom")
    warnings: list = []
    Recorder(store, warnings.append, cid).supersede([tried.prompt_id, tried.message_id])
    again = store.begin_turn(cid, "q2", model="m")
    again.append("a2")
    again.finish(COMPLETE)
    assert warnings == []
    assert store.context(cid) == [
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("user", "q2"),
        Message("assistant", "a2"),
    ]
    assert [m.content for m in store.load(cid).messages] == ["q1", "a1", "q2", "a2"]
    messages = store.load(cid, branches=True).messages
    assert [m.superseded for m in messages] == [False, False, True, True, False, False]
    assert [(m.parent_id, m.sibling_index, m.sibling_count) for m in messages] == [
        (None, 1, 1),
        (messages[0].id, 1, 1),
        (messages[1].id, 1, 2),
        (messages[2].id, 1, 1),
        (messages[1].id, 2, 2),
        (messages[4].id, 1, 1),
    ]
    assert status_note(messages[3]) == "error: boom · superseded: asked again below, and not sent as context"
    assert "superseded" in to_markdown(store.load(cid, branches=True)) and status_note(messages[5]) is None


def test_unknown_ids_are_reported_and_deleted_ids_never_come_back(store: HistoryStore) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q")
    newest = store.start_conversation()
    store.delete(newest)
    for call in (
        lambda: store.get(newest),
        lambda: store.load(newest),
        lambda: store.context(newest),
        lambda: store.add_user_message(newest, "x"),
        lambda: store.begin_answer(newest),
        lambda: store.rename(newest, "x"),
        lambda: store.set_settings(newest, model="m"),
        lambda: store.delete(newest),
    ):
        with pytest.raises(UnknownConversation) as caught:
            call()
        assert caught.value.conversation_id == newest
        assert str(caught.value) == f"no conversation {newest}"
    assert store.start_conversation() == newest + 1  # AUTOINCREMENT: the deleted ID stays unused
    store.delete(cid)
    assert query(store.path, "SELECT count(*) FROM messages") == [(0,)]


def test_a_base_url_that_may_hold_a_credential_is_not_stored(store: HistoryStore) -> None:
    for url in ("http://user:pw@host/v1", "https://host/v1?key=abc", "https://host/v1#t"):
        assert store.get(store.start_conversation(base_url=url)).base_url is None
    assert store.get(store.start_conversation(base_url="https://host:8443/v1")).base_url == "https://host:8443/v1"


def test_lone_surrogates_are_stored_as_replacement_characters(store: HistoryStore) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q \ud800")
    answer = store.begin_answer(cid)
    answer.append("pair split: \ud83d")
    answer.append("\ude42 lone: \udfff")
    answer.flush()
    answer.finish(COMPLETE)
    assert [m.content for m in store.load(cid).messages] == ["q \ufffd", "pair split: \U0001f642 lone: \ufffd"]
    answer = store.begin_answer(cid)
    answer.append("flushed between the halves: \ud83d")
    assert answer.flush() is True
    answer.append("\ude42")
    answer.finish(COMPLETE)
    assert store.load(cid).messages[-1].content == "flushed between the halves: \U0001f642"


# --- saving as the answer grows -------------------------------------------------------------


def test_appends_are_buffered_and_flushed_once_per_interval(store: HistoryStore, path: Path, clock: FakeClock) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q")
    answer = store.begin_answer(cid)
    assert stored_text(path, answer.message_id) == ""
    answer.append("a")
    answer.append("b")
    clock.now += FLUSH_INTERVAL - 0.001
    answer.append("c")
    assert stored_text(path, answer.message_id) == ""  # not per token
    clock.now += 0.001
    answer.append("d")  # due: the save is handed to the store's syncer thread
    store.wait_idle()
    assert stored_text(path, answer.message_id) == "abcd"
    answer.append("e")  # the stream stalls after this token: the timer saves it
    answer.flush_if_due()
    store.wait_idle()
    assert stored_text(path, answer.message_id) == "abcd"
    clock.now += FLUSH_INTERVAL
    answer.flush_if_due()
    store.wait_idle()
    assert stored_text(path, answer.message_id) == "abcde"
    assert store.load(cid).messages[-1].status == STREAMING
    answer.finish(CANCELLED)
    assert stored_text(path, answer.message_id) == "abcde"


def test_a_bound_pending_append_stays_valid_across_flushes(store: HistoryStore, path: Path, clock: FakeClock) -> None:
    """The one-shot face appends with `writer.pending.append` and flushes from a timer."""
    answer = store.begin_turn(None, "q")
    save = answer.pending.append
    save("one ")
    clock.now += FLUSH_INTERVAL
    answer.flush_if_due()
    save("two ")
    save("three")
    answer.flush_if_due()  # not due yet
    store.wait_idle()
    assert stored_text(path, answer.message_id) == "one "
    clock.now += FLUSH_INTERVAL
    answer.flush_if_due()
    store.wait_idle()
    assert stored_text(path, answer.message_id) == "one two three"
    save(" four")
    answer.finish(COMPLETE)
    assert stored_text(path, answer.message_id) == "one two three four" and answer.pending == []


def test_hot_path_commits_reach_the_disk_from_a_background_sync(store: HistoryStore, path: Path, clock: FakeClock, monkeypatch) -> None:
    """begin_turn and the flushes commit without waiting for the disk; an fsync of the WAL
    follows at once in another thread (so a power cut loses milliseconds, not the turn)."""
    import threading

    synced = []
    real_fsync = os.fsync
    changed = threading.Condition()

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with changed:
            synced.append((os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").exists() else "?", threading.get_ident()))
            changed.notify_all()

    monkeypatch.setattr(os, "fsync", fsync)

    def wait_for(count: int) -> None:
        with changed:
            assert changed.wait_for(lambda: len(synced) >= count, timeout=WAIT), synced

    answer = store.begin_turn(None, "q")
    wait_for(1)
    answer.append("text")
    clock.now += FLUSH_INTERVAL
    answer.flush_if_due()
    wait_for(2)
    assert all(ident != threading.get_ident() for _, ident in synced)
    if synced[0][0] != "?":
        assert {name for name, _ in synced} == {str(path) + "-wal"}


def test_a_flush_never_waits_long_for_a_busy_database(store: HistoryStore, path: Path, clock: FakeClock) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q")
    answer = store.begin_answer(cid)
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        answer.append("kept ")
        clock.now += FLUSH_INTERVAL
        started = time.monotonic()
        assert answer.flush() is False
        assert time.monotonic() - started < 1.0
    finally:
        other.execute("COMMIT")
        other.close()
    answer.append("in memory")
    assert answer.flush() is True
    assert stored_text(path, answer.message_id) == "kept in memory"
    assert answer.failure is None


def test_a_failed_flush_is_reported_once_and_finish_raises(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "h.db"
    errors = []
    with HistoryStore.open(path, clock=clock) as store:
        cid = store.start_conversation()
        store.add_user_message(cid, "q")
        answer = store.begin_answer(cid, on_error=errors.append)
        db = sqlite3.connect(str(path))
        db.execute("CREATE TRIGGER no_room BEFORE UPDATE ON messages BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
        db.execute("CREATE TRIGGER no_room_for_parts BEFORE INSERT ON message_parts BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
        db.commit()
        for _ in range(3):
            answer.append("x")
            clock.now += FLUSH_INTERVAL
            assert answer.flush() is False
        assert len(errors) == 1 and "disk is full" in str(errors[0])
        with pytest.raises(HistoryError, match="disk is full"):
            answer.finish(COMPLETE)
        db.execute("DROP TRIGGER no_room")
        db.execute("DROP TRIGGER no_room_for_parts")
        db.commit()
        db.close()
        answer.finish(COMPLETE)  # the disk has room again
        assert stored_text(path, answer.message_id) == "xxx"


# --- interrupted answers -----------------------------------------------------------------------

_WRITER = """
import sys
from pathlib import Path
from llmchat.history import HistoryStore
store = HistoryStore.open(Path(sys.argv[1]))
cid = store.start_conversation()
store.add_user_message(cid, "q")
answer = store.begin_answer(cid)
answer.append("saved part")
answer.flush()
answer.append(" never saved")
print(answer.message_id, flush=True)
sys.stdin.readline()  # streaming until the test closes stdin
"""


def test_an_answer_is_marked_interrupted_only_when_its_writer_is_gone(path: Path) -> None:
    HistoryStore.open(path).close()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        message_id = int(writer.stdout.readline())
        with HistoryStore.open(path) as store:
            assert store.mark_interrupted_on_start() == 0  # a live process is still writing it
            assert query(path, "SELECT status FROM messages WHERE id = ?", (message_id,)) == [(STREAMING,)]
            writer.kill()
            writer.wait(WAIT)
            assert store.mark_interrupted_on_start() == 1
            assert store.mark_interrupted_on_start() == 0
            reply = store.load(1).messages[-1]
            assert (reply.id, reply.status, reply.content) == (message_id, INTERRUPTED, "saved part")
    finally:
        writer.kill()
        writer.wait()
        writer.stdin.close()
        writer.stdout.close()


def test_this_processs_own_live_answer_is_not_marked(store: HistoryStore, path: Path) -> None:
    cid = store.start_conversation()
    store.add_user_message(cid, "q")
    answer = store.begin_answer(cid)
    with HistoryStore.open(path) as other:  # e.g. the TUI opening its list while an answer streams
        assert other.mark_interrupted_on_start() == 0
    answer.finish(COMPLETE)
    # A row left by an earlier process that had this same PID is not ours.
    db = sqlite3.connect(str(path))
    db.execute(
        "INSERT INTO messages (conversation_id, role, status, created_at, writer_pid, writer_token)"
        " VALUES (?, 'assistant', 'streaming', 0, ?, 'an earlier boot')",
        (cid, os.getpid()),
    )
    db.commit()
    db.close()
    assert store.mark_interrupted_on_start() == 1


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_reused_pid_does_not_keep_a_dead_answer_streaming(store: HistoryStore, path: Path) -> None:
    """The PID is alive, but it is a process that started after the writer: not the writer."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        token = process_token(sleeper.pid)
        assert token
        cid = store.start_conversation()
        db = sqlite3.connect(str(path))
        for writer_token in (token, token + "0"):
            db.execute(
                "INSERT INTO messages (conversation_id, role, status, created_at, writer_pid, writer_token)"
                " VALUES (?, 'assistant', 'streaming', 0, ?, ?)",
                (cid, sleeper.pid, writer_token),
            )
        db.commit()
        db.close()
        assert store.mark_interrupted_on_start() == 1
        assert [m.status for m in store.load(cid, branches=True).messages] == [STREAMING, INTERRUPTED]
    finally:
        sleeper.kill()
        sleeper.wait()
        sleeper.stdin.close()


# --- failures are HistoryErrors with one line ----------------------------------------------------


def test_a_file_from_a_newer_llmchat_is_refused(path: Path) -> None:
    HistoryStore.open(path).close()
    db = sqlite3.connect(str(path))
    db.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    db.close()
    with pytest.raises(HistoryError, match="newer llmchat"):
        HistoryStore.open(path)


def test_a_corrupt_file_is_refused_and_left_alone(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(HistoryError, match="not a database") as caught:
        HistoryStore.open(path)
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == garbage


def test_a_directory_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the directory should be")
    with pytest.raises(HistoryError, match="cannot create"):
        HistoryStore.open(tmp_path / "data" / "history.db")


# --- size ---------------------------------------------------------------------------------------


def test_a_10000_message_conversation_opens_in_well_under_a_second(path: Path) -> None:
    with HistoryStore.open(path) as store:
        cid = store.start_conversation(model="m")
        store.add_user_message(cid, "first")
    rows = []
    for i in range(1, 10_000):
        role = "assistant" if i % 2 else "user"
        rows.append(
            (cid, role, f"message {i} " + "lorem ipsum dolor sit amet " * 20, "complete", "m", 1.0 + i, 0.2, 80.0, 12, 300, 1, 3.5, "stop", i)
        )
    db = sqlite3.connect(str(path))
    db.executemany(
        "INSERT INTO messages (conversation_id, role, content, status, model, created_at, ttft, tokens_per_second,"
        " input_tokens, output_tokens, tokens_exact, elapsed, stop_reason, parent_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    db.execute("UPDATE conversations SET current_leaf_id = (SELECT max(id) FROM messages)")
    db.commit()
    db.close()

    # CPU time, not wall time: what the code costs, which other processes on a busy machine do
    # not stretch (wall time there reached 0.66 s for ~0.3 s of work).
    started = time.process_time()
    with HistoryStore.open(path) as store:
        store.mark_interrupted_on_start()
        transcript = store.load(cid)
        loaded = time.process_time() - started
        context = store.context(cid)
        listed = store.list_conversations()
    assert len(transcript.messages) == 10_000 and listed[0].message_count == 10_000
    assert transcript.messages[-1].tokens_per_second == 80.0
    assert len(context) == 10_000
    print(f"open + load of 10,000 messages: {loaded * 1000:.0f} ms of CPU")
    assert loaded < 0.5


# --- search ---------------------------------------------------------------------------------------


def _turn(store: HistoryStore, prompt: str, answer: str, conversation_id=None, status: str = COMPLETE) -> tuple:
    writer = store.begin_turn(conversation_id, prompt, model="m")
    writer.append(answer)
    if status == STREAMING:
        writer.flush()
        _turn.writer = writer  # type: ignore[attr-defined]
    else:
        writer.finish(status)
    return writer.conversation_id, writer.prompt_id, writer.message_id


def test_search_finds_words_and_their_beginnings_newest_first(store: HistoryStore) -> None:
    sea, sea_q, sea_a = _turn(store, "Why is the sea salty?", "Rivers carry minerals; the Café is closed.")
    tide, tide_q, tide_a = _turn(store, "Tides?", "The Moon's gravity, mostly.")
    _, again_q, again_a = _turn(store, "Gravity again", "Still the moon.", tide)
    assert [h.message_id for h in store.search("salt")] == [sea_q]  # the beginning of a word
    assert [h.message_id for h in store.search("cafe")] == [sea_a]  # case and accents ignored
    assert [h.message_id for h in store.search("moon gravity")] == [tide_a]  # every word, one message
    assert [h.message_id for h in store.search("gravity")] == [again_q, tide_a]  # newest first
    assert store.search("moon salty") == []
    assert len(store.search('"gravity" -(*')) == 2  # the user's text is words, not FTS syntax
    hit = store.search("minerals")[0]
    assert (hit.conversation_id, hit.title, hit.role, hit.model) == (sea, "Why is the sea salty?", "assistant", "m")
    assert hit.snippet == "Rivers carry minerals; the Café is closed."
    assert store.search("  ") == []


def test_search_finds_titles_symbols_and_only_finished_answers(store: HistoryStore) -> None:
    cid, _, _ = _turn(store, "Discounts", "It is 100% off_road")
    assert [h.message_id is not None for h in store.search("100%")] == [True]
    assert store.search("%%") == [] and store.search("_") != []  # symbols are matched literally
    store.rename(cid, "Ocean notes")
    (hit,) = store.search("ocean")
    assert (hit.conversation_id, hit.message_id, hit.role, hit.snippet) == (cid, None, None, "Ocean notes")
    streaming, _, answer_id = _turn(store, "Live one", "still arriving zebra", status=STREAMING)
    assert store.search("zebra") == []
    store.mark_interrupted_on_start()  # (this process's own answer: left alone)
    assert store.search("zebra") == []
    _turn.writer.finish(CANCELLED)  # type: ignore[attr-defined]
    assert [h.message_id for h in store.search("zebra")] == [answer_id]
    store.delete(streaming)
    assert store.search("zebra") == [] and store.search("live") == []


def test_search_without_fts5_matches_substrings(store: HistoryStore, path: Path) -> None:
    _, _, answer = _turn(store, "Rocks", "Rivers carry minerals")
    db = sqlite3.connect(str(path))
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE IF EXISTS messages_fts")
    db.commit()
    db.close()
    assert [h.message_id for h in store.search("inerals RIVER")] == [answer]
    _, _, later = _turn(store, "More", "no index, still found: minerals")
    assert [h.message_id for h in store.search("minerals")] == [later, answer]
