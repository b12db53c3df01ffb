"""The history database's schema, one forward migration per version.

`PRAGMA user_version` holds the version. Every migration runs inside the caller's write
transaction (BEGIN IMMEDIATE), so two processes opening an old file at once upgrade it once, and
a crash half-way leaves the old version intact. A migration is a list of statements (not a
script: `executescript` would commit the transaction it runs in), and functions where data must
be computed. Never edit a released step;
add the next one, and its schema snapshot in tests/history/schemas/ (test_migrations.py checks
each snapshot against the steps and upgrades a file from every earlier version).
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Dict, List, Optional, Sequence, Union

Step = Union[str, Callable[[sqlite3.Connection], None]]

# Version 1: conversations and their messages.
_V1 = [
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a deleted ID is never reused
        title TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,              -- Unix time
        updated_at REAL NOT NULL,              -- Unix time of the last prompt: "last used"
        used_seq INTEGER NOT NULL,             -- the same as an order that cannot tie or run back
        profile TEXT,
        model TEXT,
        api TEXT,
        base_url TEXT                          -- only when it holds no credentials (see store.py)
    )
    """,
    "CREATE INDEX conversations_by_use ON conversations (used_seq)",
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL
            CHECK (status IN ('streaming', 'complete', 'cancelled', 'error', 'interrupted')),
        model TEXT,
        api TEXT,
        created_at REAL NOT NULL,
        finished_at REAL,
        ttft REAL,                             -- seconds
        tokens_per_second REAL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        tokens_exact INTEGER,                  -- 1: output_tokens came from the server
        elapsed REAL,                          -- seconds from the request to the end
        stop_reason TEXT,
        error TEXT,
        writer_pid INTEGER,                    -- the process streaming it (status 'streaming')
        writer_token TEXT                      -- that process's identity, against PID reuse
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    "CREATE INDEX messages_streaming ON messages (id) WHERE status = 'streaming'",
]


def _fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        db.execute("DROP TABLE temp.fts5_probe")
        return True
    except sqlite3.Error:
        return False


def _v2(db: sqlite3.Connection) -> List[str]:
    """Version 2: a full-text index of finished messages, where SQLite has FTS5 (search falls
    back to LIKE otherwise). A streaming message is indexed once it ends, so the flushes of a
    growing answer never re-tokenise it."""
    if not _fts5_available(db):
        return []
    return [
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            content, content = 'messages', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2'
        )
        """,
        """
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END
        """,
        """
        CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages
        WHEN old.status = 'streaming' AND new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END
        """,
        """
        CREATE TRIGGER messages_fts_edit AFTER UPDATE OF content ON messages
        WHEN old.status != 'streaming' AND new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END
        """,
        """
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
        WHEN old.status != 'streaming' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END
        """,
        "INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages WHERE status != 'streaming'",
    ]


# Version 3: a turn asked again (the TUI's retry) is kept but marked superseded, on both its
# prompt and its answer, and is no longer sent as context. 0 for every earlier message.
_V3 = [
    "ALTER TABLE messages ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0",
]

# Version 4: an answer's text is saved as it streams in pieces (one row per save), so a save
# costs the new text only, not a rewrite of all that came before, and an answer longer than
# SQLite's largest string is kept whole. A message's text is its `content` followed by its
# `text` pieces in order; a finished answer of ordinary size is joined back into `content`
# (and indexed for search). The model's reasoning is stored with its answer, the same way.
_V4 = [
    "ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''",
    """
    CREATE TABLE message_parts (
        id INTEGER PRIMARY KEY,                -- the order the pieces were saved in
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'reasoning')),
        content TEXT NOT NULL
    )
    """,
    "CREATE INDEX message_parts_by_message ON message_parts (message_id, id)",
]

# Version 5: conversations are trees. Every message has a parent (NULL: a first prompt; a
# conversation may have several, when its first prompt was edited and sent again); a prompt's
# children are its answers (a regenerated answer is a sibling), an answer's are the prompts that
# follow it (an edited prompt is a sibling). `chosen_child_id` is the child last chosen (or
# added) below a message, so stepping between siblings returns to the branch left below them;
# the conversation's `current_leaf_id` ends the path that is shown, continued and sent as
# context. `superseded` (version 3) is no longer read: a retried turn and its retry are siblings.
# Pieces take any kind (attachments, tool calls), with `meta` for what describes one (JSON).
_V5_DDL = [
    "ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages (id)",
    "ALTER TABLE messages ADD COLUMN chosen_child_id INTEGER",
    "ALTER TABLE conversations ADD COLUMN current_leaf_id INTEGER",
    "CREATE INDEX messages_by_parent ON messages (parent_id)",
    """
    CREATE TABLE message_parts_v5 (
        id INTEGER PRIMARY KEY,                -- the order the pieces were saved in
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind != ''), -- 'text', 'reasoning'; later attachments, tool calls
        content TEXT NOT NULL,
        meta TEXT                              -- JSON describing a piece of another kind
    )
    """,
    "INSERT INTO message_parts_v5 (id, message_id, kind, content) SELECT id, message_id, kind, content FROM message_parts",
    "DROP TABLE message_parts",
    "ALTER TABLE message_parts_v5 RENAME TO message_parts",
    "CREATE INDEX message_parts_by_message ON message_parts (message_id, id)",
]


def _v5(db: sqlite3.Connection) -> List[Step]:
    return [*_V5_DDL, _v5_tree]


def _v5_tree(db: sqlite3.Connection) -> None:
    """Link each conversation's messages, a straight line until now, into a tree. A superseded
    turn (a retry asked again in its place) becomes a branch beside its retry, from the same
    point; the line of messages not superseded is the current path. Nothing is deleted."""
    rows = db.execute("SELECT id, conversation_id, role, superseded FROM messages ORDER BY conversation_id, id").fetchall()
    parents: List[tuple] = []
    leaves: Dict[int, Optional[int]] = {}
    children: Dict[int, List[int]] = {}
    main: Optional[int] = None  # the tip of the line not superseded
    side: Optional[int] = None  # the tip of the superseded branch being followed
    current: Optional[int] = None
    for message_id, conversation_id, role, superseded in rows:
        if conversation_id != current:
            current, main, side = conversation_id, None, None
        if superseded:
            parent = main if role == "user" or side is None else side
            side = message_id
        else:
            parent, main, side = main, message_id, None
        leaves[conversation_id] = main if main is not None else message_id  # all superseded: the last
        if parent is not None:
            parents.append((parent, message_id))
            children.setdefault(parent, []).append(message_id)
    db.executemany("UPDATE messages SET parent_id = ? WHERE id = ?", parents)
    # The chosen child: the one on the current path, else the newest.
    chosen = {parent: kids[-1] for parent, kids in children.items()}
    parent_of = {child: parent for parent, child in parents}
    for leaf in leaves.values():
        node = leaf
        while node is not None and node in parent_of:
            chosen[parent_of[node]] = node
            node = parent_of[node]
    db.executemany("UPDATE messages SET chosen_child_id = ? WHERE id = ?", [(child, parent) for parent, child in chosen.items()])
    db.executemany("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", [(leaf, cid) for cid, leaf in leaves.items()])


# Version 6: "does any other message refer to these bytes?" -- asked for each attachment of a
# deleted conversation -- read every piece of every message (a full scan: ~200 ms for 200,000
# pieces); a partial index of the attachment pieces alone answers it from the index, and costs
# nothing when a text piece is saved.
_V6 = [
    "CREATE INDEX message_parts_attachments ON message_parts (content) WHERE kind = 'attachment'",
]


# MIGRATIONS[n] takes a file from version n to n + 1: a list of steps, each an SQL statement or
# a function that changes the data (run in order, in the caller's transaction).
MIGRATIONS: List[Callable[[sqlite3.Connection], Sequence[Step]]] = [
    lambda db: _V1,
    _v2,
    lambda db: _V3,
    lambda db: _V4,
    _v5,
    lambda db: _V6,
]
VERSION = len(MIGRATIONS)


def upgrade(db: sqlite3.Connection, current: int, target: int = VERSION) -> None:
    """Apply the migrations from `current` to `target`, inside the caller's transaction."""
    for version in range(current, target):
        for step in MIGRATIONS[version](db):
            if isinstance(step, str):
                db.execute(step)
            else:
                step(db)
    db.execute(f"PRAGMA user_version = {int(target)}")
