"""The typed stream events every provider produces and every face consumes.

Small immutable value objects, written out by hand rather than as frozen dataclasses: creating
five frozen slotted dataclasses cost ~4 ms of every start (a fortieth of the time to a local
model's first token), and this form is also quicker to build, once per token.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

_set = object.__setattr__


class _Event:
    """Equality, hash and repr from `__slots__`; attributes cannot be changed or removed."""

    __slots__: Tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: stream events are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: stream events are immutable")


class TextDelta(_Event):
    """A piece of the answer, exactly as the model sent it."""

    __slots__ = ("text",)
    text: str

    def __init__(self, text: str) -> None:
        _set(self, "text", text)


class ReasoningDelta(_Event):
    """A piece of the model's reasoning/thinking; never part of the answer on stdout."""

    __slots__ = ("text",)
    text: str

    def __init__(self, text: str) -> None:
        _set(self, "text", text)


class Usage(_Event):
    """Token counts reported by the server; a field it did not report is None.

    `input_tokens` counts every prompt token, cached ones included; `cached_input_tokens` is the
    part served from the server's prompt cache. `server_rate` is the output rate in tokens per
    second as the server itself measured it (llama.cpp `timings`, Ollama `eval_duration`).
    """

    __slots__ = ("input_tokens", "output_tokens", "cached_input_tokens", "server_rate")
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    cached_input_tokens: Optional[int]
    server_rate: Optional[float]

    def __init__(
        self,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cached_input_tokens: Optional[int] = None,
        server_rate: Optional[float] = None,
    ) -> None:
        _set(self, "input_tokens", input_tokens)
        _set(self, "output_tokens", output_tokens)
        _set(self, "cached_input_tokens", cached_input_tokens)
        _set(self, "server_rate", server_rate)


class ToolCall(_Event):
    """The model asked to call a tool. llmchat runs no tools: the faces say so.

    `id` is the API's call id (what a tool result must refer to; "" when the API gives none),
    `name` the tool's name and `arguments` the complete arguments as JSON text, exactly as the
    model wrote them (fragments already joined).
    """

    __slots__ = ("id", "name", "arguments")
    id: str
    name: str
    arguments: str

    def __init__(self, id: str, name: str, arguments: str) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "arguments", arguments)

    def describe(self, limit: int = 200) -> str:
        """`name(arguments)` on one clean line (no control characters), the arguments cut to
        `limit` characters."""
        from llmchat.sanitize import one_line  # only when a tool call is shown (not protocol's: it imports this module)

        return f"{one_line(self.name[:240], 60) or '(unnamed)'}({one_line(self.arguments[: limit * 4], limit)})"


def describe_tool_calls(calls: "Sequence[ToolCall]") -> str:
    """One line for the faces: which tools the model asked for, and that none ran."""
    shown = ", ".join(call.describe() for call in calls)
    what = "a tool" if len(calls) == 1 else f"{len(calls)} tools"
    return f"the model asked to call {what}, and llmchat runs no tools, so none ran: {shown}"


class Notice(_Event):
    """Something about the stream the user should know that is neither answer nor error
    (e.g. the server sent several choices and only the first is shown). One clean line."""

    __slots__ = ("message",)
    message: str

    def __init__(self, message: str) -> None:
        _set(self, "message", message)


class Finish(_Event):
    """The API's terminal signal arrived: the answer is complete.

    `reason` is normalised ("stop", "length", "content_filter", "tool_calls", ...), and
    "unknown" when the server sent none; `raw_reason` is the API's own word for it (None when
    it sent none).
    """

    __slots__ = ("reason", "raw_reason")
    reason: str
    raw_reason: Optional[str]

    def __init__(self, reason: str, raw_reason: Optional[str] = None) -> None:
        _set(self, "reason", reason)
        _set(self, "raw_reason", raw_reason)

    @property
    def truncated(self) -> bool:
        """True when the model stopped because it ran out of output tokens."""
        return self.reason == "length"


class StreamError(_Event):
    """The stream failed. Text already delivered stays delivered; nothing follows this event.

    `kind` is one of "http", "api", "cutoff", "network", "timeout", "protocol", "output".
    `status` is the HTTP status when there was one.
    """

    __slots__ = ("message", "kind", "status")
    message: str
    kind: str
    status: Optional[int]

    def __init__(self, message: str, kind: str = "api", status: Optional[int] = None) -> None:
        _set(self, "message", message)
        _set(self, "kind", kind)
        _set(self, "status", status)

    def __str__(self) -> str:
        return self.message


StreamEvent = Union[TextDelta, ReasoningDelta, Usage, ToolCall, Notice, Finish, StreamError]

# Normalised stop reasons, shared by the providers.
STOP = "stop"
LENGTH = "length"
CONTENT_FILTER = "content_filter"
TOOL_CALLS = "tool_calls"
UNKNOWN = "unknown"  # the server ended the answer without saying why
