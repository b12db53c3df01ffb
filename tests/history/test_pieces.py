"""Answers of any size: saved in pieces as they stream (each save costs the new text only),
kept whole beyond SQLite's largest string, read back joined; the reasoning stored with its
answer; secrets masked before anything is stored."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from history_helpers import query, saved_text

from llmchat.history import CANCELLED, COMPLETE, ERROR, HistoryStore
from llmchat.history.store import FLUSH_INTERVAL, JOIN_CHARS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with HistoryStore.open(tmp_path / "history.db", clock=clock) as s:
        yield s


def stream(answer, clock: FakeClock, pieces) -> None:
    for piece in pieces:
        answer.append(piece)
        clock.now += FLUSH_INTERVAL
        answer.flush_if_due()
    answer.flush()  # the saves above were handed to the store's syncer: this one waits for them


LIMIT = 64 * 1024  # bytes: SQLite's largest string, lowered the way its own setlimit() allows


@pytest.mark.parametrize("status", [COMPLETE, CANCELLED, ERROR])
@pytest.mark.parametrize("shape", ["many small saves", "one save larger than the limit"])
def test_an_answer_longer_than_sqlites_largest_string_is_kept_whole(tmp_path: Path, clock: FakeClock, status: str, shape: str) -> None:
    db = tmp_path / "history.db"
    with HistoryStore.open(db, clock=clock) as store:
        store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, LIMIT)
        store._piece_chars = LIMIT // 4 - 64  # what open() derives from the limit
        text = "".join(f"line {i} ✓ é\n" for i in range(40_000))  # ~560 KB, 8x the limit
        answer = store.begin_turn(None, "long")
        if shape == "many small saves":
            stream(answer, clock, [text[i : i + 5000] for i in range(0, len(text), 5000)])
        else:
            answer.pending.append(text)
        answer.finish(status, error="cut" if status == ERROR else None)
        (message,) = [m for m in store.load(answer.conversation_id).messages if m.role == "assistant"]
        assert message.content == text and message.status == status
        assert store.context(answer.conversation_id)[-1].content == text
    assert saved_text(db, answer.message_id) == text
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def test_an_ordinary_answer_is_joined_into_its_row_and_found_by_search(store: HistoryStore, clock: FakeClock, tmp_path: Path) -> None:
    answer = store.begin_turn(None, "q")
    stream(answer, clock, ["the tides ", "follow ", "the moon"])
    assert query(tmp_path / "history.db", "SELECT count(*) FROM message_parts") == [(3,)]  # saved as it came
    answer.finish(COMPLETE)
    assert query(tmp_path / "history.db", "SELECT content FROM messages WHERE id = ?", (answer.message_id,)) == [("the tides follow the moon",)]
    assert query(tmp_path / "history.db", "SELECT count(*) FROM message_parts") == [(0,)]
    assert [hit.message_id for hit in store.search("moon")] == [answer.message_id]
    assert JOIN_CHARS >= 1024 * 1024  # answers of every ordinary size are searchable


def test_saving_costs_the_new_text_not_all_that_came_before(store: HistoryStore, clock: FakeClock) -> None:
    """The old save rewrote the whole answer each time (content = content || ?): its cost grew
    with the answer, quadratic in all. Now the last saves of a long answer cost what the first did."""
    answer = store.begin_turn(None, "long")
    chunk = "x" * (256 * 1024)
    costs = []
    for _ in range(80):  # 20 MB in all
        answer.append(chunk)
        clock.now += FLUSH_INTERVAL
        started = time.process_time()
        answer.flush_if_due()
        store.wait_idle()  # the save runs on the syncer thread (process_time counts every thread)
        costs.append(time.process_time() - started)
    first, last = sum(costs[:20]), sum(costs[-20:])
    assert last < 3 * first + 0.05, (first, last)  # the rewrite: ~7x here, and growing
    answer.finish(COMPLETE)


def test_reasoning_is_stored_with_its_answer_in_order(store: HistoryStore, clock: FakeClock) -> None:
    answer = store.begin_turn(None, "why")
    answer.reasoning.append("First, ")
    clock.now += FLUSH_INTERVAL
    answer.flush_if_due()
    answer.reasoning.append("consider gravity.")
    answer.pending.append("The moon.")
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert (message.reasoning, message.content) == ("First, consider gravity.", "The moon.")
    assert store.context(answer.conversation_id)[-1].content == "The moon."  # reasoning is not context


def test_a_streaming_answer_reads_back_with_what_was_saved(store: HistoryStore, clock: FakeClock) -> None:
    answer = store.begin_turn(None, "q")
    answer.reasoning.append("hmm ")
    stream(answer, clock, ["one ", "two"])
    message = store.load(answer.conversation_id).messages[-1]
    assert (message.status, message.content, message.reasoning) == ("streaming", "one two", "hmm ")


KEY = "sk-secret-key-0123456789"


@pytest.mark.parametrize("where", ["prompt", "answer", "answer split across saves", "reasoning", "error"])
def test_secrets_are_masked_before_anything_is_stored(tmp_path: Path, clock: FakeClock, where: str) -> None:
    db = tmp_path / "history.db"
    with HistoryStore.open(db, clock=clock) as store:
        answer = store.begin_turn(None, f"my key is {KEY}" if where == "prompt" else "q", secrets=[KEY, "short"])
        if where == "answer":
            answer.pending.append(f"you sent {KEY}.")
        elif where == "answer split across saves":
            stream(answer, clock, ["you sent ", KEY[:7], KEY[7:15], KEY[15:] + "."])
        elif where == "reasoning":
            answer.reasoning.append(f"the key {KEY} is")
        answer.finish(ERROR if where == "error" else COMPLETE, error=f"401: bad key {KEY}" if where == "error" else None)
        transcript = store.load(answer.conversation_id)
        texts = [transcript.info.title] + [m.content + m.reasoning + (m.error or "") for m in transcript.messages]
        assert any("***" in t for t in texts)
    for path in (p for p in tmp_path.iterdir() if p.is_file()):
        assert KEY.encode() not in path.read_bytes(), path
        assert KEY[7:15].encode() not in path.read_bytes(), path
