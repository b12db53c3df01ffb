"""Conversation history: a SQLite store every face shares (see store.py for the rules).

Imported only when history is on for a run, so `--no-history` never pays for sqlite3.

    store = HistoryStore.open()                 # history.db in the data directory
    store.mark_interrupted_on_start()
    cid = store.start_conversation(model=..., api=...)
    store.add_user_message(cid, prompt)         # committed before the request is sent
    answer = store.begin_answer(cid, model=...)
    answer.append(text)                         # per token: buffered, flushed every 0.5 s
    answer.finish("complete", metrics)          # or cancelled / error, with the partial text

`Recorder` wraps those calls for a face: it never raises, and warns once when storing fails.
"""

from llmchat.history.recorder import Recorder, answer_status, open_for_chat
from llmchat.history.store import (
    CANCELLED,
    COMPLETE,
    ERROR,
    FINAL_STATUSES,
    FLUSH_INTERVAL,
    INTERRUPTED,
    STREAMING,
    AnswerWriter,
    ConversationInfo,
    HistoryError,
    HistoryStore,
    StoredMessage,
    Transcript,
    UnknownConversation,
    default_path,
    make_title,
)

__all__ = [
    "AnswerWriter",
    "CANCELLED",
    "COMPLETE",
    "ConversationInfo",
    "ERROR",
    "FINAL_STATUSES",
    "FLUSH_INTERVAL",
    "HistoryError",
    "HistoryStore",
    "INTERRUPTED",
    "Recorder",
    "STREAMING",
    "StoredMessage",
    "Transcript",
    "UnknownConversation",
    "answer_status",
    "default_path",
    "make_title",
    "open_for_chat",
]
