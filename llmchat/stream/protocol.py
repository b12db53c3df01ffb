"""The contract between the streaming client and the providers.

A provider knows one wire format: it builds the HTTP request and decodes one stream's framed
items (SSE events or NDJSON values) into StreamEvents. The client knows HTTP, framing, timeouts
and retries, and nothing about any API. Both sides import this module; the client never
imports a provider, so the flow stays one way: providers -> stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence

from llmchat.conversation import ChatRequest
from llmchat.stream.events import Finish, StreamError, StreamEvent

NOTHING: Sequence[StreamEvent] = ()


@dataclass(slots=True)
class HttpRequest:
    url: str
    json: Dict[str, Any]
    headers: Dict[str, str] = field(default_factory=dict, repr=False)  # may carry a key


class StreamDecoder:
    """Turns one stream's framed items (SSE events or NDJSON values) into StreamEvents.

    `done` becomes True when the API's terminal signal has arrived: the client stops reading.
    `end()` is called when the body ends; a stream that ends before its terminal signal was cut
    off, and `end()` says so.
    """

    done: bool = False
    # An API whose finish reason can come before its last event (usage, [DONE], message_stop)
    # keeps it here: a body that ends after it, cleanly or not, still finished.
    pending_finish: Optional[Finish] = None

    def feed(self, item: Any) -> Sequence[StreamEvent]:
        raise NotImplementedError

    def end(self) -> Sequence[StreamEvent]:
        if self.done:
            return NOTHING
        self.done = True
        if self.pending_finish is not None:
            return (self.pending_finish,)
        return (cut_off(),)


class Provider:
    """One wire format. Subclasses set the class attributes and implement the two methods."""

    name: ClassVar[str]
    framing: ClassVar[str]  # "sse" or "ndjson"
    decoder: ClassVar[type]  # the StreamDecoder subclass for one stream
    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str]
    api_key_env: ClassVar[Optional[str]]
    default_model: ClassVar[str]

    def build_request(self, request: ChatRequest) -> HttpRequest:
        raise NotImplementedError

    def new_decoder(self) -> StreamDecoder:
        return self.decoder()

    def models_request(self, base_url: str, api_key: Optional[str]) -> HttpRequest:
        """The GET that lists the server's models (`json` is unused)."""
        raise NotImplementedError

    def parse_models(self, data: Any) -> List[str]:
        """The model names in the list's JSON, as the server spells them; ProtocolError if
        the JSON has another shape."""
        raise NotImplementedError


class ProtocolError(Exception):
    """The server broke the wire format; the client turns this into a StreamError."""


def error_message(obj: Any) -> str:
    """The server's own words from an error object in any of the shapes the APIs use."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        inner = obj.get("error", obj)
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or inner.get("msg")
            label = inner.get("code") or inner.get("type")
            if label == "error":  # the envelope's type, not the error's
                label = None
            if message and label and str(label) not in str(message):
                return f"{message} ({label})"
            if message:
                return str(message)
            if label:
                return str(label)
        if "message" in obj:
            return str(obj["message"])
    return json.dumps(obj)[:200]


def cut_off() -> StreamError:
    return StreamError(
        "the stream ended before the server said the answer was complete (cut off)",
        kind="cutoff",
    )
