"""The TUI's link to the history store: the store it opened (the conversation list reads it),
the conversation the engine records into, and a stored conversation turned back into session
turns to show and continue.

Recording is the engine's (llmchat/engine/core.py): the prompt committed before the request, the
answer saved as it grows by a timer, the end stored with its status. A store that fails is a
notification, then the chat goes on without storing (Recorder's rule).

Plain Python, no Textual: the app calls it from its handlers.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from llmchat.config import Settings
from llmchat.engine.turns import TurnRecord
from llmchat.stream.metrics import Metrics
from llmchat.tui.session import CANCELLED, DONE, ERROR, Turn

# A stored answer's status, as a turn state (how the transcript colours it).
_STATES = {"complete": DONE, "error": ERROR}


class ChatHistory:
    """The store the app opened (None: history off or failed), and the engine's recorder."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self.store: Any = None
        self.recorder: Any = None

    # --- opening and closing -----------------------------------------------------------

    def open(self, settings: Settings) -> None:
        """Open the store when `settings.history` is on (a failure is one warning, then off)."""
        if not settings.history:
            return
        from llmchat.history import open_for_chat

        self.store = open_for_chat(self._warn)

    def attach(self, engine: Any) -> None:
        """The engine recording this app's turns (into `store`)."""
        self.recorder = engine.recorder

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

    def close(self) -> None:
        """On quit, once the engine has stored any answer still streaming: the file closes."""
        if self.store is not None:
            store, self.store = self.store, None
            try:
                store.close()
            except Exception:  # closing must never stop the app from quitting
                pass

    # --- reading ---------------------------------------------------------------------------

    def load(self, conversation_id: int, clock: Callable[[], float]) -> Tuple[Any, List[Tuple[Turn, Any, Any]]]:
        """The conversation's info and its turns, oldest first, each as (turn, the stored
        prompt, the stored answer or None). Raises HistoryError."""
        transcript = self.store.load(conversation_id)  # the current path: what is shown and sent
        out: List[Tuple[Turn, Any, Any]] = []
        for message in transcript.messages:
            if message.role == "user":
                turn = Turn(message.content, Metrics(clock=clock), state=ERROR)  # no answer (yet)
                turn.superseded = message.superseded
                turn.record = TurnRecord(prompt_id=message.id)
                if message.attachments:
                    turn.attachments = self._stored_attachments(message)
                out.append((turn, message, None))
                continue
            if not out or out[-1][2] is not None:
                continue  # an answer without its prompt: nothing the store writes
            turn, prompt, _ = out[-1]
            if getattr(message, "tool_parts", None):
                _replay_steps(turn, message, clock)  # sent again as it was: each step's calls and results
            elif message.content:
                turn.parts.append(message.content)
            if message.reasoning:
                turn.reasoning.append(message.reasoning)
            turn.state = _STATES.get(message.status, CANCELLED)
            turn.superseded = turn.superseded or message.superseded
            if turn.record is not None:
                turn.record.answer_id = message.id
            out[-1] = (turn, prompt, message)
        return transcript.info, out

    def _stored_attachments(self, prompt: Any) -> Tuple[Any, ...]:
        """A stored prompt's attachments as sent (they go again with the conversation); one
        that cannot be read is a warning, and the prompt goes without it."""
        from llmchat.history import HistoryError

        try:
            return tuple(self.store.prompt_attachments(prompt.id))
        except HistoryError as exc:
            self._warn(f"the attachments of message {prompt.id} are not sent again: {exc}")
            return ()


def _replay_steps(turn: Turn, message: Any, clock: Callable[[], float]) -> None:
    """A stored answer that called tools as the engine's steps: each step's text in `parts`, its
    calls as ended activities with their stored results, so the turn goes back to the model (the
    engine's `context`) as the store's `context` would send it."""
    from llmchat.engine.turns import Step, ToolActivity
    from llmchat.history.tool_parts import NO_RESULT, read
    from llmchat.stream.events import ToolCall
    from llmchat.tools import ToolResult

    for index, (text, calls) in enumerate(read(message.content, message.tool_parts)[1]):
        if index:
            turn.steps.append(Step(index, len(turn.parts), Metrics(clock=clock)))
        if text:
            turn.parts.append(text)
        for item in calls:
            activity = ToolActivity(ToolCall(item.call_id or f"call_llmchat_{item.row_id}", item.name, item.arguments))
            activity.status = (
                item.status if item.status in ("done", "error", "denied") else ("error" if item.is_error or item.result is None else "done")
            )
            activity.result = ToolResult(item.result if item.result is not None else NO_RESULT, is_error=item.is_error or item.result is None)
            activity.duration = item.duration
            turn.steps[-1].activities.append(activity)
