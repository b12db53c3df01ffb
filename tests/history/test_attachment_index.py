"""Schema version 6: the partial index of attachment pieces. A version 5 file with attachments
upgrades to it, and the two questions history asks about attachments are answered from indexes
(EXPLAIN QUERY PLAN), not by reading every piece of every message."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import List

from history_helpers import query
from test_migrations import build

from llmchat.history import HistoryStore, schema
from llmchat.history.store import PROMPT_ATTACHMENTS, REFERENCED


def plan(path: Path, sql: str, *args: object) -> List[str]:
    return [row[3] for row in query(path, "EXPLAIN QUERY PLAN " + sql, args)]


def add_attachment(path: Path, message_id: int, data: bytes) -> str:
    """A version 5 prompt's reference to an attachment, and its bytes where the store keeps them."""
    digest = hashlib.sha256(data).hexdigest()
    db = sqlite3.connect(str(path), isolation_level=None)
    meta = {"name": "a.txt", "kind": "text", "mime": "text/plain", "size": len(data), "sha256": digest}
    db.execute("INSERT INTO message_parts (message_id, kind, content, meta) VALUES (?, 'attachment', ?, ?)", (message_id, digest, json.dumps(meta)))
    db.execute("INSERT INTO message_parts (message_id, kind, content) VALUES (?, 'text', 'a piece of an answer')", (message_id + 1,))
    db.close()
    blob = path.parent / "attachments" / digest[:2] / digest[2:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return digest


def test_a_version_5_file_with_attachments_upgrades_to_the_index(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    build(path, 5)
    digest = add_attachment(path, 1, b"notes\n")
    assert plan(path, REFERENCED, digest) == ["SCAN message_parts"]  # before: every piece read
    with HistoryStore.open(path) as store:
        assert store.schema_version() == schema.VERSION == 6
        (again,) = store.prompt_attachments(2)  # the answer's prompt's
        assert again.data == b"notes\n"
    assert plan(path, REFERENCED, digest) == ["SEARCH message_parts USING INDEX message_parts_attachments (content=?)"]
    assert plan(path, PROMPT_ATTACHMENTS, 1) == ["SEARCH message_parts USING INDEX message_parts_by_message (message_id=?)"]
    assert query(path, "PRAGMA integrity_check") == [("ok",)]


def test_deleting_keeps_bytes_another_conversation_refers_to_and_removes_the_rest(tmp_path: Path) -> None:
    from llmchat.attachments import from_bytes

    path = tmp_path / "history.db"
    shared, own = from_bytes("shared.md", b"# shared\n"), from_bytes("own.md", b"# own\n")
    with HistoryStore.open(path) as store:
        first = store.begin_turn(None, "one", model="m", attachments=(shared, own)).conversation_id
        second = store.begin_turn(None, "two", model="m", attachments=(shared,)).conversation_id
        store.delete(first)
        assert store.attachment_path(shared.sha256).exists() and not store.attachment_path(own.sha256).exists()
        store.delete(second)
        assert not store.attachment_path(shared.sha256).exists()
