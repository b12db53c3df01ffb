"""The conversation the TUI holds: the engine's turns (llmchat/engine/turns.py), each with the
widgets that show it. Plain data, no I/O: what goes back to the model as context, and how a
turn ends, are the engine's."""

from __future__ import annotations

from typing import Any

from llmchat.engine.turns import (
    CANCELLED,
    DONE,
    ERROR,
    FINAL_STATES,
    STREAMING,
    THINKING,
    WAITING,
    AnswerFigures,
    Conversation,
    meaningful_rate,
)
from llmchat.engine.turns import Turn as EngineTurn


class Turn(EngineTurn):
    """An engine turn and the widgets the app shows it in."""

    view: Any = None  # the widget showing the answer (owned by the app)
    thinking: Any = None  # the widget showing the reasoning, once there is some (owned by the app)
    shown: Any = None  # the app's observer of it while it runs (its tool calls' blocks and question)
    reshow = False  # a new branch (an edit, a regeneration): the transcript re-reads the path once it ends


class ChatSession(Conversation):
    """The TUI's turns so far."""

    def __init__(self) -> None:
        super().__init__(Turn)


__all__ = [
    "AnswerFigures",
    "CANCELLED",
    "ChatSession",
    "DONE",
    "ERROR",
    "FINAL_STATES",
    "STREAMING",
    "THINKING",
    "Turn",
    "WAITING",
    "meaningful_rate",
]
