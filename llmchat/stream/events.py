"""The typed stream events every provider produces and every face consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer, exactly as the model sent it."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning/thinking; never part of the answer on stdout."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the server; a field it did not report is None."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The API's terminal signal arrived: the answer is complete.

    `reason` is normalised ("stop", "length", "content_filter", "tool_calls", ...);
    `raw_reason` is the API's own word for it.
    """

    reason: str
    raw_reason: Optional[str] = None

    @property
    def truncated(self) -> bool:
        """True when the model stopped because it ran out of output tokens."""
        return self.reason == "length"


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream failed. Text already delivered stays delivered; nothing follows this event.

    `kind` is one of "http", "api", "cutoff", "network", "timeout", "protocol", "output".
    `status` is the HTTP status when there was one.
    """

    message: str
    kind: str = "api"
    status: Optional[int] = None

    def __str__(self) -> str:
        return self.message


StreamEvent = Union[TextDelta, ReasoningDelta, Usage, Finish, StreamError]

# Normalised stop reasons, shared by the providers.
STOP = "stop"
LENGTH = "length"
CONTENT_FILTER = "content_filter"
TOOL_CALLS = "tool_calls"
