"""The TUI's link to the history store: records each turn as the one-shot face does, and turns a
stored conversation back into session turns to show and continue.

Recording follows the history engineer's contract (history/recorder.py): the prompt and an
empty `streaming` answer are committed before the request goes out; the answer's text is saved
as it grows by a timer (`flush`), never from the token loop -- the worker already keeps every
fragment in `Turn.parts`, so the timer hands what arrived since its last call to the writer;
the end stores the status (complete / cancelled / error, with the partial text) and figures.
A store that fails is a notification, then the chat goes on without storing (Recorder's rule).

Plain Python, no Textual: the app calls it from its handlers and timers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from llmchat.config import Settings
from llmchat.stream.metrics import Metrics
from llmchat.tui.session import CANCELLED, DONE, ERROR, Turn


@dataclass(eq=False)
class TurnRecord:
    """Where a turn lives in the store: its writer while it streams, its rows' IDs."""

    writer: Any = None  # history AnswerWriter, None once loaded or when not storing
    saved: int = 0  # how many of the turn's parts the writer has been handed
    prompt_id: Optional[int] = None
    answer_id: Optional[int] = None
    reasoned: int = 0  # how many of the turn's reasoning fragments it has been handed


# A stored answer's status, as a turn state (how the transcript colours it).
_STATES = {"complete": DONE, "error": ERROR}


class ChatHistory:
    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self.store: Any = None
        self.recorder: Any = None

    # --- opening and closing -----------------------------------------------------------

    def open(self, settings: Settings) -> None:
        """Open the store when `settings.history` is on (a failure is one warning, then off)."""
        if not settings.history:
            return
        from llmchat.history import Recorder, open_for_chat

        self.store = open_for_chat(self._warn)
        if self.store is not None:
            self.recorder = Recorder(self.store, self._warn, settings.conversation_id)

    @property
    def on(self) -> bool:
        """Storing and reading: the store opened and has not failed since."""
        return self.recorder is not None and self.recorder.store is not None

    @property
    def conversation_id(self) -> Optional[int]:
        return self.recorder.conversation_id if self.recorder is not None else None

    def use(self, conversation_id: Optional[int]) -> None:
        """The next turn goes to `conversation_id` (None: a new conversation, created with it)."""
        if self.recorder is not None:
            self.recorder.conversation_id = conversation_id

    def close(self, active: Optional[Turn] = None) -> None:
        """On quit: an answer still streaming is stored cancelled, then the file closes."""
        if active is not None:
            active.metrics.stop()
            self.finish(active, None)
        if self.store is not None:
            store, self.store = self.store, None
            try:
                store.close()
            except Exception:  # closing must never stop the app from quitting
                pass

    # --- recording -----------------------------------------------------------------------

    def begin(self, turn: Turn, settings: Settings) -> None:
        """Commit the prompt and an empty answer (before the request is sent)."""
        if not self.on:
            return
        writer = self.recorder.begin_turn(turn.prompt, settings)
        if writer is not None:
            turn.record = TurnRecord(writer, 0, writer.prompt_id, writer.message_id)

    def flush(self, turn: Optional[Turn]) -> None:
        """Hand the writer what arrived since the last call; it saves once its interval passed.
        Called by a timer every half interval while an answer streams."""
        record = turn.record if turn is not None else None
        if record is None or record.writer is None:
            return
        self._hand_over(turn, record)
        record.writer.flush_if_due()

    def finish(self, turn: Turn, outcome: object) -> None:
        """Store the rest of the answer and how it ended: the `Finish`, the `StreamError`, or
        None when it was cancelled (idempotent)."""
        record = turn.record
        if record is None or record.writer is None or self.recorder is None:
            return
        self._hand_over(turn, record)
        self._soon(self.recorder.finish_answer, record.writer, outcome, turn.metrics)  # never waits for the store

    @staticmethod
    def _hand_over(turn: Turn, record: TurnRecord) -> None:
        parts = turn.parts
        if len(parts) > record.saved:
            record.writer.pending.extend(parts[record.saved :])
            record.saved = len(parts)
        reasoning = turn.reasoning  # stored with the answer (history show, exports)
        if len(reasoning) > record.reasoned:
            record.writer.reasoning.extend(reasoning[record.reasoned :])
            record.reasoned = len(reasoning)

    def supersede(self, turn: Optional[Turn]) -> None:
        """`turn` was asked again: keep it stored, but no longer as context."""
        record = turn.record if turn is not None else None
        if record is None or self.recorder is None:
            return
        self._soon(self.recorder.supersede, [record.prompt_id, record.answer_id])

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a Recorder call (it never raises: it warns) on the store's syncer thread, after
        the saves handed to it, without waiting: a store another process holds locked never
        freezes the event loop. `close` runs what is left before the file closes."""
        from llmchat.history import HistoryError

        try:
            self.store.submit(fn, *args)
        except HistoryError:  # closed already: as when the store is off
            pass

    # --- reading ---------------------------------------------------------------------------

    def load(self, conversation_id: int, clock: Callable[[], float]) -> Tuple[Any, List[Tuple[Turn, Any, Any]]]:
        """The conversation's info and its turns, oldest first, each as (turn, the stored
        prompt, the stored answer or None). Raises HistoryError."""
        transcript = self.store.load(conversation_id)
        out: List[Tuple[Turn, Any, Any]] = []
        for message in transcript.messages:
            if message.role == "user":
                turn = Turn(message.content, Metrics(clock=clock), state=ERROR)  # no answer (yet)
                turn.superseded = message.superseded
                turn.record = TurnRecord(prompt_id=message.id)
                out.append((turn, message, None))
                continue
            if not out or out[-1][2] is not None:
                continue  # an answer without its prompt: nothing the store writes
            turn, prompt, _ = out[-1]
            if message.content:
                turn.parts.append(message.content)
            if message.reasoning:
                turn.reasoning.append(message.reasoning)
            turn.state = _STATES.get(message.status, CANCELLED)
            turn.superseded = turn.superseded or message.superseded
            turn.record.answer_id = message.id
            out[-1] = (turn, prompt, message)
        return transcript.info, out
