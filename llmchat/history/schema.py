"""The history database's schema, one forward migration per version.

`PRAGMA user_version` holds the version. Every migration runs inside the caller's write
transaction (BEGIN IMMEDIATE), so two processes opening an old file at once upgrade it once, and
a crash half-way leaves the old version intact. A migration is a list of statements (not a
script: `executescript` would commit the transaction it runs in). Never edit a released step;
add the next one, and its schema snapshot in tests/history/schemas/ (test_migrations.py checks
each snapshot against the steps and upgrades a file from every earlier version).
"""

from __future__ import annotations

import sqlite3
from typing import Callable, List

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

# MIGRATIONS[n] takes a file from version n to n + 1.
MIGRATIONS: List[Callable[[sqlite3.Connection], List[str]]] = [
    lambda db: _V1,
    _v2,
    lambda db: _V3,
    lambda db: _V4,
]
VERSION = len(MIGRATIONS)


def upgrade(db: sqlite3.Connection, current: int, target: int = VERSION) -> None:
    """Apply the migrations from `current` to `target`, inside the caller's transaction."""
    for version in range(current, target):
        for statement in MIGRATIONS[version](db):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {int(target)}")
