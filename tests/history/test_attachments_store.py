"""Attachments in the store: bytes kept once by sha256 beside the database (0600 in 0700 folders),
prompts referring to them, `context` and `prompt_attachments` rebuilding them from the stored
bytes, forks sharing them, a delete removing only what nothing else refers to, a turn begun
while the store was locked storing them later, and the engine's turns carrying them."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Optional

import pytest
from attachment_samples import pdf, png

from llmchat.attachments import from_bytes
from llmchat.conversation import Message
from llmchat.engine.turns import Conversation, Turn, context
from llmchat.history import COMPLETE, HistoryError, HistoryStore
from llmchat.history.store import AnswerWriter
from llmchat.stream.metrics import Metrics

SHOT = from_bytes("shot.png", png(8, 6))
PAPER = from_bytes("paper.pdf", pdf(2))
NOTES = from_bytes("notes.md", b"# Notes\n")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def store(path: Path):
    with HistoryStore.open(path) as s:
        yield s


def turn(store: HistoryStore, cid: Optional[int], prompt: str, answer: str, **kw) -> AnswerWriter:
    writer = store.begin_turn(cid, prompt, model="m", **kw)
    writer.append(answer)
    writer.finish(COMPLETE)
    return writer


def blobs(path: Path) -> list:
    root = path.parent / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_bytes_are_stored_once_by_hash_private_and_the_prompt_lists_them(store: HistoryStore, path: Path) -> None:
    first = turn(store, None, "look", "ok", attachments=(SHOT, PAPER, SHOT))
    turn(store, first.conversation_id, "again", "ok", attachments=(SHOT,))
    stored = blobs(path)
    assert sorted(p.parent.name + p.name for p in stored) == sorted([SHOT.sha256, PAPER.sha256])
    assert store.attachment_path(SHOT.sha256).read_bytes() == png(8, 6)
    for blob in stored:
        assert stat.S_IMODE(blob.stat().st_mode) == 0o600
        assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.joinpath("attachments").rglob(".*")]  # no temporary left
    messages = store.load(first.conversation_id).messages  # type: ignore[arg-type]
    assert [a["name"] for a in messages[0].attachments] == ["shot.png", "paper.pdf", "shot.png"]
    assert messages[0].attachments[1] == {
        "name": "paper.pdf",
        "kind": "pdf",
        "mime": "application/pdf",
        "size": len(pdf(2)),
        "sha256": hashlib.sha256(pdf(2)).hexdigest(),
        "width": None,
        "height": None,
        "pages": 2,
    }
    assert messages[1].attachments == [] and messages[2].attachments[0]["name"] == "shot.png"


def test_context_sends_the_stored_bytes_again(store: HistoryStore, path: Path, tmp_path: Path) -> None:
    cid = turn(store, None, "look", "a picture", attachments=(SHOT, NOTES)).conversation_id
    assert cid is not None
    turn(store, cid, "thanks", "welcome")
    sent = store.context(cid)
    assert [(m.role, m.content) for m in sent] == [("user", "look"), ("assistant", "a picture"), ("user", "thanks"), ("assistant", "welcome")]
    assert sent[0].attachments == (SHOT, NOTES)  # equal by value: name, kind, bytes, hash, size
    assert sent[2].attachments == ()
    # A blob that has gone is said so in one line (not a traceback, not a silent drop).
    store.attachment_path(NOTES.sha256).unlink()
    with pytest.raises(HistoryError, match="attachment notes.md .* cannot be read"):
        store.context(cid)


def test_prompt_attachments_for_a_regenerated_answer(store: HistoryStore) -> None:
    writer = turn(store, None, "look", "one", attachments=(PAPER,))
    assert store.prompt_attachments(writer.message_id) == (PAPER,)  # type: ignore[arg-type]
    assert store.prompt_attachments(writer.prompt_id) == (PAPER,)  # type: ignore[arg-type]
    again = store.regenerate(writer.message_id)  # type: ignore[arg-type]
    again.append("two")
    again.finish(COMPLETE)
    assert store.context(writer.conversation_id)[0].attachments == (PAPER,)  # type: ignore[arg-type]


def test_an_edited_prompt_carries_its_own_attachments(store: HistoryStore) -> None:
    writer = turn(store, None, "look", "one", attachments=(PAPER,))
    edited = store.begin_edit(writer.prompt_id, "look at this instead", attachments=(SHOT,))  # type: ignore[arg-type]
    edited.append("two")
    edited.finish(COMPLETE)
    assert store.context(writer.conversation_id)[0].attachments == (SHOT,)  # type: ignore[arg-type]


def test_a_delete_removes_only_what_nothing_else_refers_to_and_a_fork_shares(store: HistoryStore, path: Path) -> None:
    one = turn(store, None, "look", "ok", attachments=(SHOT, PAPER))
    two = turn(store, None, "look too", "ok", attachments=(SHOT,))
    fork = store.fork(one.conversation_id, one.message_id)  # type: ignore[arg-type]
    assert store.context(fork)[0].attachments == (SHOT, PAPER)
    store.delete(one.conversation_id)  # type: ignore[arg-type]
    assert len(blobs(path)) == 2  # the fork still refers to both
    store.delete(fork)
    assert [p.read_bytes() for p in blobs(path)] == [png(8, 6)]  # conversation two's
    store.delete(two.conversation_id)  # type: ignore[arg-type]
    assert blobs(path) == []


def test_a_turn_begun_while_the_store_was_locked_stores_its_attachments_when_written(store: HistoryStore, path: Path) -> None:
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        writer = store.begin_turn(None, "look", model="m", attachments=(SHOT,), defer_if_busy=True)
        assert not writer.begun
        assert len(blobs(path)) == 1  # the bytes are written before the lock is asked for
    finally:
        other.execute("COMMIT")
        other.close()
    writer.append("ok")
    writer.finish(COMPLETE)
    assert store.context(writer.conversation_id)[0].attachments == (SHOT,)  # type: ignore[arg-type]


def test_threads_storing_the_same_bytes_and_deleting_never_lose_a_referenced_blob(store: HistoryStore, path: Path) -> None:
    errors: list = []
    kept: list = []

    def work(index: int) -> None:
        try:
            for round_ in range(5):
                writer = turn(store, None, f"t{index}.{round_}", "ok", attachments=(SHOT,))
                if round_ % 2:
                    store.delete(writer.conversation_id)  # type: ignore[arg-type]
                else:
                    kept.append(writer.conversation_id)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for cid in kept:
        assert store.context(cid)[0].attachments == (SHOT,)


def test_a_turn_carries_its_attachments_into_the_context_and_a_retry() -> None:
    conversation = Conversation()
    first = conversation.begin("look", Metrics())
    first.attachments = (SHOT,)
    first.parts.append("a picture")
    assert conversation.messages() == [Message("user", "look", (SHOT,))]
    conversation.begin("more", Metrics())
    assert context(conversation.turns) == [Message("user", "look", (SHOT,)), Message("assistant", "a picture")]
    first.state = "done"
    conversation.turns.pop()
    retry = conversation.retry(Metrics())
    assert retry is not None and retry.attachments == (SHOT,)
    assert Turn("x", Metrics()).attachments == ()
