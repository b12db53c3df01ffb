"""The face-neutral engine: a turn from settings to stored outcome (core.py), and the plain data
it fills (turns.py). Imports no UI library and nothing of a face; every face runs its turns here,
and so does llmchat's Python API (`llmchat.ask`, api.py)."""

from llmchat.engine.core import Engine, Observer
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
    Step,
    ToolActivity,
    Turn,
    TurnRecord,
    build_request,
    context,
    meaningful_rate,
)

__all__ = [
    "AnswerFigures",
    "CANCELLED",
    "Conversation",
    "DONE",
    "ERROR",
    "Engine",
    "FINAL_STATES",
    "Observer",
    "STREAMING",
    "Step",
    "THINKING",
    "ToolActivity",
    "Turn",
    "TurnRecord",
    "WAITING",
    "build_request",
    "context",
    "meaningful_rate",
]
