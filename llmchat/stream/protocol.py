"""The contract between the streaming client and the providers.

A provider knows one wire format: it builds the HTTP request and decodes one stream's framed
items (SSE events or NDJSON values) into StreamEvents. The client knows HTTP, framing, timeouts
and retries, and nothing about any API. Both sides import this module; the client never
imports a provider, so the flow stays one way: providers -> stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Sequence

from llmchat import sanitize
from llmchat.conversation import ChatRequest
from llmchat.redact import Redactor
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

    def whole(self, body: Any) -> Sequence[StreamEvent]:
        """The events of a whole, non-streamed response (a server that ignored `stream: true`
        and answered with one JSON object). Ends in a Finish or a StreamError; raises
        ProtocolError when `body` is not an answer of this API."""
        raise ProtocolError("the server answered with one JSON object that is not an answer")

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


def error_message(obj: Any, _depth: int = 0) -> str:
    """The server's own words from an error object in any of the shapes servers use.

    OpenAI and compatibles `{"error": {"message", "type", "code"}}` (LiteLLM's code is a
    string such as "400"), OpenRouter's with `metadata.raw` (the upstream provider's own words),
    vLLM's flat `{"object": "error", "message", "type", "code"}`, Anthropic's
    `{"type": "error", "error": {...}}`, Ollama's `{"error": "..."}`, FastAPI's `detail` (a
    string or a list of `{"msg"}`), and lists of any of these. Never raises; may be "".
    """
    if _depth > 6:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, list):
        for part in obj[:5]:
            said = error_message(part, _depth + 1)
            if said:
                return said
        return ""
    if not isinstance(obj, dict):
        return "" if obj is None or isinstance(obj, bool) else str(obj)
    inner = obj.get("error")
    if isinstance(inner, (dict, list)) and inner:
        said = error_message(inner, _depth + 1)
        if said:
            return said
    elif isinstance(inner, str) and inner.strip():
        return inner
    message = ""
    for key in ("message", "detail", "msg", "error_message", "title"):
        if obj.get(key):
            message = error_message(obj[key], _depth + 1)
            if message:
                break
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and metadata.get("raw"):  # OpenRouter: the upstream's words
        raw = metadata["raw"]
        if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "["):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError):
                pass
        upstream = error_message(raw, _depth + 1)
        if upstream and upstream not in message:
            provider = metadata.get("provider_name")
            source = f" ({provider})" if isinstance(provider, str) and provider else ""
            message = f"{message}{source}: {upstream}" if message else upstream
    label = obj.get("code") or obj.get("type")
    if isinstance(label, bool) or not isinstance(label, (str, int)) or label == "error":
        label = None  # "error" is the envelope's type, not the error's
    if message and label is not None and str(label) not in message:
        return f"{message} ({label})"
    if message:
        return message
    if label is not None:
        return str(label)
    try:
        return json.dumps(obj, ensure_ascii=False)[:200]
    except (TypeError, ValueError, RecursionError):
        return ""


def one_line(text: str, limit: int = 300) -> str:
    """A server's message fit for one line of a terminal (llmchat.sanitize.one_line), cut to
    `limit` characters with an ellipsis."""
    if len(text) > limit * 4:  # a 5 MB message: clean only what can be shown
        text = text[: limit * 4]
    return sanitize.one_line(text, limit)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***."""
    return Redactor(secrets).redact(text)


def cut_off() -> StreamError:
    return StreamError(
        "the stream ended before the server said the answer was complete (cut off)",
        kind="cutoff",
    )
