"""Schema versions: every snapshot in schemas/ is what its migrations build, and a file of every
earlier version, with data in it, opens as the current version with nothing lost -- also when
two processes open it for the first time at once."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from history_helpers import WAIT, query

from llmchat.history import COMPLETE, INTERRUPTED, HistoryStore, schema

SNAPSHOTS = Path(__file__).parent / "schemas"
FTS_SHADOW = re.compile(r"messages_fts_(data|idx|content|docsize|config)$")


def schema_statements(db: sqlite3.Connection) -> List[str]:
    """The CREATE statements in sqlite_master, less SQLite's own tables and FTS5's shadow tables
    (both made for us), in creation order."""
    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    return [sql.strip() for kind, name, sql in rows if not name.startswith("sqlite_") and not (kind == "table" and FTS_SHADOW.match(name))]


def snapshot(version: int) -> List[str]:
    text = (SNAPSHOTS / f"v{version}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("-- "))
    return [part.strip() for part in body.split(";\n\n") if part.strip()]


def normalised(statements: List[str]) -> List[str]:
    return [" ".join(s.rstrip(";").split()) for s in statements]


def fts5() -> bool:
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        return True
    except sqlite3.Error:
        return False


def build(path: Path, version: int) -> None:
    """A file as llmchat `version` left it, from its frozen snapshot, with one conversation:
    a finished turn and an answer left streaming by a process that is gone."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN")
    for statement in snapshot(version) if version else []:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    db.execute("COMMIT")
    if version >= 1:
        db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, used_seq, model, api) VALUES ('Old tides', 1, 2, 1, 'm', 'openai-chat')"
        )
        db.execute("INSERT INTO messages (conversation_id, role, content, status, created_at) VALUES (1, 'user', 'why tides', 'complete', 1)")
        db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, model, created_at, ttft, output_tokens, tokens_exact, stop_reason)"
            " VALUES (1, 'assistant', 'the moon pulls', 'complete', 'm', 1.5, 0.2, 3, 1, 'stop')"
        )
        db.execute("INSERT INTO messages (conversation_id, role, content, status, created_at) VALUES (1, 'user', 'and the sun', 'complete', 2)")
        db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, model, created_at, writer_pid, writer_token)"
            " VALUES (1, 'assistant', 'the sun does too, less', 'streaming', 'm', 2.5, 2147480000, 'gone')"
        )
    if version >= 5:  # a tree: the four messages are one chain, as version 5 stores them
        db.executemany("UPDATE messages SET parent_id = ?, chosen_child_id = ? WHERE id = ?", [(None, 2, 1), (1, 3, 2), (2, 4, 3), (3, None, 4)])
        db.execute("UPDATE conversations SET current_leaf_id = 4 WHERE id = 1")
    db.close()


@pytest.mark.parametrize("version", range(1, schema.VERSION + 1))
def test_each_snapshot_is_what_its_migrations_build(version: int) -> None:
    """A released step edited, or a new version without its snapshot, fails here."""
    if version >= 2 and not fts5():
        pytest.skip("this SQLite has no FTS5: version 2 adds no index")
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("BEGIN")
    schema.upgrade(db, 0, version)
    db.execute("COMMIT")
    assert normalised(schema_statements(db)) == normalised(snapshot(version))
    assert not (SNAPSHOTS / f"v{schema.VERSION + 1}.sql").exists()


@pytest.mark.parametrize("version", range(0, schema.VERSION))
def test_a_file_of_every_earlier_version_upgrades_with_its_data(tmp_path: Path, version: int) -> None:
    path = tmp_path / "history.db"
    build(path, version)
    with HistoryStore.open(path) as store:
        assert store.schema_version() == schema.VERSION
        if version == 0:
            assert store.list_conversations() == []
            cid = store.begin_turn(None, "fresh tides", model="m").conversation_id
            assert [hit.conversation_id for hit in store.search("tides")] == [cid]
            return
        assert store.mark_interrupted_on_start() == 1
        (info,) = store.list_conversations()
        assert (info.id, info.title, info.message_count) == (1, "Old tides", 4)
        messages = store.load(1).messages
        assert [(m.content, m.status) for m in messages] == [
            ("why tides", COMPLETE),
            ("the moon pulls", COMPLETE),
            ("and the sun", COMPLETE),
            ("the sun does too, less", INTERRUPTED),
        ]
        assert (messages[1].ttft, messages[1].output_tokens, messages[1].tokens_exact, messages[1].stop_reason) == (0.2, 3, True, "stop")
        assert not any(m.superseded for m in messages)  # version 3: nothing was asked again before
        assert [m.parent_id for m in messages] == [None, 1, 2, 3] and store.get(1).current_leaf_id == 4  # version 5: a chain
        assert all(m.reasoning == "" for m in messages)  # version 4: no reasoning was kept before
        # Search finds what was there before the index existed, and the answer marked since.
        assert {hit.message_id for hit in store.search("sun")} == {3, 4}
        assert {hit.message_id for hit in store.search("moon")} == {2}
        # And the file takes new turns.
        writer = store.begin_turn(1, "and the wind?", model="m")
        writer.reasoning.append("wind is air moving")
        writer.append("a little")
        writer.flush()  # saved as a piece (version 4), then joined when it finishes
        writer.finish(COMPLETE)
        assert store.load(1).info.message_count == 6
        assert (store.load(1).messages[-1].content, store.load(1).messages[-1].reasoning) == ("a little", "wind is air moving")
        assert {hit.message_id for hit in store.search("little")} == {writer.message_id}
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    if fts5():
        # The index agrees with the messages (every message has ended by now).
        assert query(path, "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)") == []


def test_opening_the_current_version_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    HistoryStore.open(path).close()
    before = query(path, "SELECT type, name, sql FROM sqlite_master ORDER BY rowid")
    HistoryStore.open(path).close()
    assert query(path, "SELECT type, name, sql FROM sqlite_master ORDER BY rowid") == before


_OPEN = """
import sys
from pathlib import Path
from llmchat.history import HistoryStore
sys.stdin.readline()  # all start together
with HistoryStore.open(Path(sys.argv[1])) as store:
    print(store.schema_version(), len(store.search("sun")), flush=True)
"""


def test_two_processes_upgrading_at_once_upgrade_once(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    build(path, 1)
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=WAIT) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0 and err == "", err
        assert out.split()[0] == str(schema.VERSION)
    if fts5():
        # Indexed once, not once per process; the streaming answer is not indexed until it ends.
        assert query(path, "SELECT count(*) FROM messages_fts_docsize") == [(3,)]


def add_retried(path: Path, version: int) -> None:
    """Conversations as the TUI's retry left them (version 3 on): a turn asked again is marked
    superseded, its retry follows it. Conversation 2 was retried twice, then went on; in
    conversation 3 the only turn was retried but the retry never stored."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("BEGIN")
    for cid in (2, 3):
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, used_seq) VALUES (?, 't', 1, 2, ?)", (cid, cid))
    rows = [
        (2, "user", "q1", 0),
        (2, "assistant", "a1", 0),
        (2, "user", "q2", 1),
        (2, "assistant", "a2 failed", 1),
        (2, "user", "q2", 1),
        (2, "assistant", "a2 cut", 1),
        (2, "user", "q2", 0),
        (2, "assistant", "a2", 0),
        (2, "user", "q3", 0),
        (2, "assistant", "a3", 0),
        (3, "user", "only", 1),
        (3, "assistant", "only answer", 1),
    ]
    for cid, role, content, superseded in rows:
        db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at, superseded) VALUES (?, ?, ?, 'complete', 1, ?)",
            (cid, role, content, superseded),
        )
    if version >= 4:  # an answer kept in pieces, as a long one is
        (last,) = db.execute("SELECT max(id) FROM messages WHERE conversation_id = 2").fetchone()
        db.execute("INSERT INTO message_parts (message_id, kind, content) VALUES (?, 'text', ', and more')", (last,))
    db.execute("COMMIT")
    db.close()


@pytest.mark.parametrize("version", range(3, 5))
def test_superseded_retries_become_sibling_branches(tmp_path: Path, version: int) -> None:
    path = tmp_path / "history.db"
    build(path, version)
    add_retried(path, version)
    before = query(path, "SELECT id, content FROM messages ORDER BY id")
    with HistoryStore.open(path) as store:
        assert query(path, "SELECT id, content FROM messages ORDER BY id") == before  # nothing deleted
        tail = ", and more" if version >= 4 else ""
        assert [m.content for m in store.load(2).messages] == ["q1", "a1", "q2", "a2", "q3", "a3" + tail]
        assert [m.content for m in store.context(2)][-2:] == ["q3", "a3" + tail]
        tries = store.siblings(store.load(2).messages[2].id)
        assert [(m.content, m.sibling_index, m.sibling_count) for m in tries] == [("q2", 1, 3), ("q2", 2, 3), ("q2", 3, 3)]
        assert [[c.content for c in store.children(m.id)] for m in tries] == [["a2 failed"], ["a2 cut"], ["a2"]]
        # Stepping to an old try and back.
        assert store.path_to(leaf_id=store.select_branch(tries[0].id))[-1].content == "a2 failed"
        assert store.path_to(leaf_id=store.select_branch(tries[2].id))[-1].content == "a3" + tail
        # A retry that was never stored: the superseded turn is what there is.
        assert [m.content for m in store.load(3).messages] == ["only", "only answer"]
        # Conversation 1 (nothing superseded) is one chain.
        assert [m.parent_id for m in store.load(1).messages] == [None, 1, 2, 3]
    assert query(path, "PRAGMA foreign_key_check") == []
