"""A face's link to the history store for one conversation.

Storing must never cost the user an answer: every call here catches `HistoryError`, says so in
one `warning:` line through `warn` (stderr in the one-shot face), and from then on the run goes
on without storing. The TUI can use it as the one-shot face does (see oneshot.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from llmchat.history.store import CANCELLED, COMPLETE, ERROR, AnswerWriter, HistoryError, HistoryStore
from llmchat.stream.events import Finish, StreamError


def open_for_chat(warn: Callable[[str], None], path: Optional[Path] = None) -> Optional[HistoryStore]:
    """The store for a chat run, answers left streaming by dead processes marked interrupted
    (unless another process holds the store locked: then at a later start); None (after one
    warning) when it cannot be opened. A data directory others may write in is warned about."""
    try:
        store = HistoryStore.open(path, warn=warn)
    except HistoryError as exc:
        warn(f"warning: not saving this conversation: {exc}")
        return None
    try:
        store.mark_interrupted_on_start(wait=False)
    except HistoryError as exc:
        store.close()
        warn(f"warning: not saving this conversation: {exc}")
        return None
    return store


def answer_status(outcome: object) -> Tuple[str, Optional[str], Optional[str]]:
    """(status, stop reason, error text) for how a stream ended: its `Finish`, its
    `StreamError`, or anything else (None) for a stream stopped by the user or a signal."""
    if isinstance(outcome, Finish):
        return COMPLETE, outcome.reason, None
    if isinstance(outcome, StreamError):
        return ERROR, None, outcome.message
    return CANCELLED, None, None


class Recorder:
    """Records one conversation: a new one (`conversation_id` None: created with the first
    prompt) or a continued one."""

    def __init__(
        self,
        store: Optional[HistoryStore],
        warn: Callable[[str], None],
        conversation_id: Optional[int] = None,
    ) -> None:
        self.store = store
        self._conversation_id = conversation_id
        self._warn = warn
        self._late: Optional[AnswerWriter] = None  # a turn begun while the store was locked

    @property
    def conversation_id(self) -> Optional[int]:
        """The conversation the next turn goes to (a new one when None)."""
        late = self._late
        if late is not None and late.begun:  # written since, maybe as a new conversation
            self._conversation_id, self._late = late.conversation_id, None
        return self._conversation_id

    @conversation_id.setter
    def conversation_id(self, value: Optional[int]) -> None:
        self._conversation_id, self._late = value, None

    def begin_turn(
        self,
        prompt: str,
        settings: Any,
        *,
        parent_id: Optional[int] = None,
        edits: Optional[int] = None,
        regenerates: Optional[int] = None,
        current: bool = True,
        attachments: Sequence[Any] = (),
    ) -> Optional[AnswerWriter]:
        """Commit the prompt and start the answer (call it before the request is sent); the
        handle to stream the answer into, or None when not storing. `settings` (a config
        `Settings`) are remembered as the conversation's, for the next `--continue`.

        Where it goes in the conversation's tree (at most one of these; none: after the
        current leaf): `parent_id`, a new branch after that answer (or `ROOT`); `edits`, a new
        prompt beside that prompt; `regenerates`, no new prompt: a new answer beside that answer
        (or one more answer to that prompt), kept off the current branch when not `current`.
        `attachments` are stored with a new prompt (a regenerated answer's prompt has its own)."""
        store = self.store
        if store is None:
            return None
        options: Dict[str, Any] = dict(
            profile=settings.profile,
            model=settings.model,
            api=settings.api,
            base_url=None if settings.demo else settings.base_url,
            on_error=self._flush_failed,
            secrets=getattr(settings, "secrets", ()),
            defer_if_busy=True,
        )
        try:
            if regenerates is not None:
                answer = store.regenerate(regenerates, current=current, **options)
            elif edits is not None:
                answer = store.begin_edit(edits, prompt, attachments=attachments, **options)
            else:
                answer = store.begin_turn(self.conversation_id, prompt, parent_id=parent_id, attachments=attachments, **options)
        except HistoryError as exc:
            self._off(exc)
            return None
        if not answer.begun:  # the answer must never wait for the history
            self._warn(f"llmchat: {store.path} is locked by another process: asking now, saving when it is free")
            self._late = answer
        else:
            self.conversation_id = answer.conversation_id
        return answer

    def finish_answer(self, answer: Optional[AnswerWriter], outcome: object, metrics: Any) -> None:
        """Store the answer with the status its outcome gives (see `answer_status`)."""
        if answer is None or answer.finished:
            return
        status, stop_reason, error = answer_status(outcome)
        try:
            answer.finish(status, metrics, stop_reason=stop_reason, error=error)
        except HistoryError as exc:
            self._warn(f"warning: the answer was not saved to history: {exc}")

    def supersede(self, message_ids: Any) -> None:
        """Mark a turn (the IDs of its prompt and answer) asked again in its place."""
        store = self.store
        ids = [i for i in message_ids if i is not None]
        if store is None or not ids:
            return
        try:
            store.supersede(ids)
        except HistoryError as exc:
            self._warn(f"warning: the retried turn could not be marked in history: {exc}")

    def _off(self, exc: HistoryError) -> None:
        self._warn(f"warning: not saving this conversation: {exc}")
        self.store = None

    def _flush_failed(self, exc: HistoryError) -> None:
        self._warn(f"warning: saving the answer to history failed ({exc}); trying again at the end")


__all__ = ["Recorder", "answer_status", "open_for_chat"]
