"""Conversation history: a SQLite store every face shares (see store.py for the rules).

Imported only when history is on for a run, so `--no-history` never pays for sqlite3.

    store = HistoryStore.open()                 # history.db in the data directory
    store.mark_interrupted_on_start()
    answer = store.begin_turn(None, prompt, model=..., api=...)   # a new conversation; one
                                                # commit, before the request is sent
    answer.append(text)                         # per token: buffered, flushed every 0.5 s
    answer.add_part("tool_call", arguments, {"id": ..., "name": ..., "server": ...})
    answer.add_part("tool_result", result, {"call_id": ..., "name": ..., "is_error": ...,
                    "status": ..., "duration": ...})   # in order with the text before them
    answer.finish("complete", metrics)          # or cancelled / error, with the partial text
    store.begin_turn(answer.conversation_id, next_prompt, ...)    # the next turn

    store.list_conversations() / get(id) / load(id) / context(id) / search(text) / rename / delete

Conversations are trees (see store.py): `begin_turn(..., parent_id=answer)` branches after an
answer, `begin_edit(prompt_id, text)` sends an edited prompt as a sibling, `regenerate(answer)`
begins a sibling answer; `load`/`context` follow the current path, `siblings(id)`,
`select_branch(id)`, `fork(cid, id)`, `turn_context(id)` (what a turn sent, to send it again).

An answer's tool calls and results are message parts: `StoredMessage.segments` gives the answer
in order (text, and each call with its result: tool_parts.ToolItem), `context` sends them again
as each step's assistant message with its `tool_calls` and a "tool" message with the results.

`Recorder` wraps the writing for a face: it never raises, and warns once when storing fails.
The reading records (ConversationInfo, StoredMessage, Transcript, SearchHit) load on first use.
"""

from typing import Any

from llmchat.history.recorder import Recorder, answer_status, open_for_chat
from llmchat.history.store import (
    CANCELLED,
    COMPLETE,
    ERROR,
    FINAL_STATUSES,
    FLUSH_INTERVAL,
    INTERRUPTED,
    ROOT,
    STREAMING,
    AnswerWriter,
    HistoryError,
    HistoryStore,
    UnknownConversation,
    UnknownMessage,
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
    "ROOT",
    "Recorder",
    "STREAMING",
    "StoredMessage",
    "Transcript",
    "UnknownConversation",
    "UnknownMessage",
    "answer_status",
    "default_path",
    "make_title",
    "open_for_chat",
]


def __getattr__(name: str) -> Any:
    if name in ("ConversationInfo", "SearchHit", "StoredMessage", "Transcript"):
        from llmchat.history import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
