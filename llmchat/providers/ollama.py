"""Ollama's native chat stream: NDJSON objects, the last with `done: true`."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from llmchat.conversation import ChatRequest
from llmchat.providers.base import bearer_headers, chat_messages, endpoint, names_in
from llmchat.stream.protocol import (
    NOTHING,
    HttpRequest,
    Provider,
    StreamDecoder,
    error_message,
)
from llmchat.stream.events import LENGTH, STOP, Finish, ReasoningDelta, StreamError, StreamEvent, TextDelta, Usage

_REASONS = {"stop": STOP, "length": LENGTH}


def normalise_host(value: str) -> str:
    """OLLAMA_HOST as Ollama's own client reads it.

    No scheme: http and port 11434; an explicit scheme without a port: its default port (80 or
    443); an empty host or 0.0.0.0 (the server's "listen everywhere"): 127.0.0.1.
    """
    value = value.strip().rstrip("/")
    scheme, explicit = "http", False
    if "://" in value:
        scheme, value = value.split("://", 1)
        explicit = True
    host, sep, rest = value.partition("/")
    if host.startswith("["):
        name, _, port = host.partition("]")
        name += "]"
        port = port[1:] if port.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    if not port:
        port = ("443" if scheme == "https" else "80") if explicit else "11434"
    if name in ("", "0.0.0.0"):
        name = "127.0.0.1"
    return f"{scheme}://{name}:{port}{sep}{rest}"


class _OllamaDecoder(StreamDecoder):
    def feed(self, item: Any) -> Sequence[StreamEvent]:
        if not isinstance(item, dict):
            return NOTHING
        message = item.get("message")
        if not item.get("done"):
            if message:
                content = message.get("content")
                if content:
                    return (TextDelta(content),)
                thinking = message.get("thinking")
                if thinking:
                    return (ReasoningDelta(thinking),)
                return NOTHING
            if "error" in item:
                self.done = True
                return (StreamError(error_message(item), kind="api"),)
            return NOTHING
        self.done = True
        events: list = []
        if message and message.get("content"):
            events.append(TextDelta(message["content"]))
        if "eval_count" in item or "prompt_eval_count" in item:
            events.append(Usage(item.get("prompt_eval_count"), item.get("eval_count")))
        raw = item.get("done_reason") or "stop"
        events.append(Finish(_REASONS.get(raw, raw), raw))
        return events


class Ollama(Provider):
    name = "ollama"
    framing = "ndjson"
    default_base_url = "http://localhost:11434"
    base_url_env = "OLLAMA_HOST"
    api_key_env = None
    default_model = "llama3.2"
    decoder = _OllamaDecoder

    def build_request(self, request: ChatRequest) -> HttpRequest:
        body: dict = {"model": request.model, "messages": chat_messages(request), "stream": True}
        options = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if options:
            body["options"] = options
        headers = bearer_headers("application/x-ndjson", request.api_key)  # a key: Ollama behind a proxy
        return HttpRequest(endpoint(request.base_url, "/api/chat"), body, headers)


    def models_request(self, base_url: str, api_key: Optional[str]) -> HttpRequest:
        return HttpRequest(endpoint(base_url, "/api/tags"), {}, bearer_headers("application/json", api_key))

    def parse_models(self, data: Any) -> List[str]:
        return names_in(data, "models", "name", "an Ollama model list")
