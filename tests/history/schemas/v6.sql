-- llmchat history schema, version 6: what its migrations leave in sqlite_master (less
-- SQLite's own tables). Frozen once released: test_migrations.py checks it against the steps.

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
    , current_leaf_id INTEGER);

CREATE INDEX conversations_by_use ON conversations (used_seq);

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
    , superseded INTEGER NOT NULL DEFAULT 0, reasoning TEXT NOT NULL DEFAULT '', parent_id INTEGER REFERENCES messages (id), chosen_child_id INTEGER);

CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

CREATE INDEX messages_streaming ON messages (id) WHERE status = 'streaming';

CREATE VIRTUAL TABLE messages_fts USING fts5 (
            content, content = 'messages', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2'
        );

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;

CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages
        WHEN old.status = 'streaming' AND new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;

CREATE TRIGGER messages_fts_edit AFTER UPDATE OF content ON messages
        WHEN old.status != 'streaming' AND new.status != 'streaming' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
        WHEN old.status != 'streaming' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;

CREATE INDEX messages_by_parent ON messages (parent_id);

CREATE TABLE "message_parts" (
        id INTEGER PRIMARY KEY,                -- the order the pieces were saved in
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind != ''), -- 'text', 'reasoning'; later attachments, tool calls
        content TEXT NOT NULL,
        meta TEXT                              -- JSON describing a piece of another kind
    );

CREATE INDEX message_parts_by_message ON message_parts (message_id, id);

CREATE INDEX message_parts_attachments ON message_parts (content) WHERE kind = 'attachment';
