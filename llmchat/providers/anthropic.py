"""Anthropic Messages streaming: SSE with typed events.

Text comes in `content_block_delta` / `text_delta`, thinking in `thinking_delta`. The stop
reason arrives in `message_delta`, the end in `message_stop`; a body that ends after a stop
reason but before `message_stop` still finished. `ping`, signatures, tool input and unknown
events are skipped.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from llmchat.conversation import ChatRequest
from llmchat.providers.base import endpoint, json_or_text, load_json, names_in
from llmchat.stream.protocol import (
    NOTHING,
    HttpRequest,
    Provider,
    StreamDecoder,
    error_message,
)
from llmchat.stream.events import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    TOOL_CALLS,
    Finish,
    ReasoningDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    Usage,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens

_REASONS = {
    "end_turn": STOP,
    "stop_sequence": STOP,
    "max_tokens": LENGTH,
    "model_context_window_exceeded": LENGTH,
    "tool_use": TOOL_CALLS,
    "refusal": CONTENT_FILTER,
}


class _MessagesDecoder(StreamDecoder):
    _input_tokens: Optional[int] = None

    def feed(self, item: Any) -> Sequence[StreamEvent]:
        if item.data == "[DONE]":  # not part of this API; a stray one is ignored
            return NOTHING
        if item.type == "error" and not item.data.startswith("{"):
            self.done = True
            return (StreamError(error_message(json_or_text(item.data)), kind="api"),)
        payload = load_json(item.data)
        if not isinstance(payload, dict):
            return NOTHING
        kind = payload.get("type") or item.type
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                return (TextDelta(text),) if text else NOTHING
            if dtype == "thinking_delta":
                thinking = delta.get("thinking")
                return (ReasoningDelta(thinking),) if thinking else NOTHING
            return NOTHING
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self._input_tokens = usage.get("input_tokens")
            return NOTHING
        if kind == "message_delta":
            events = []
            usage = payload.get("usage")
            if usage:
                events.append(
                    Usage(usage.get("input_tokens") or self._input_tokens, usage.get("output_tokens"))
                )
            raw = (payload.get("delta") or {}).get("stop_reason")
            if raw:
                self.pending_finish = Finish(_REASONS.get(raw, raw), raw)
            return events
        if kind == "message_stop":
            self.done = True
            return (self.pending_finish or Finish(STOP, None),)
        if kind == "error":
            self.done = True
            return (StreamError(error_message(payload), kind="api"),)
        return NOTHING


class Anthropic(Provider):
    name = "anthropic"
    framing = "sse"
    default_base_url = "https://api.anthropic.com"
    base_url_env = "ANTHROPIC_BASE_URL"
    api_key_env = "ANTHROPIC_API_KEY"
    default_model = "claude-sonnet-4-5"
    decoder = _MessagesDecoder

    def build_request(self, request: ChatRequest) -> HttpRequest:
        body: dict = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        headers = {"Accept": "text/event-stream", "anthropic-version": API_VERSION}
        if request.api_key:
            headers["x-api-key"] = request.api_key
        return HttpRequest(endpoint(request.base_url, "/v1/messages"), body, headers)


    def models_request(self, base_url: str, api_key: Optional[str]) -> HttpRequest:
        headers = {"Accept": "application/json", "anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        # 1000 is the API's largest page: one request lists every model there is today.
        return HttpRequest(base_url.rstrip("/") + "/v1/models?limit=1000", {}, headers)

    def parse_models(self, data: Any) -> List[str]:
        return names_in(data, "data", "id", "an Anthropic model list")
