"""OpenAI Responses API streaming: SSE whose JSON payloads carry their own `type`.

Terminal signals: `response.completed` (stop), `response.incomplete` (length or content filter,
a success), `response.failed` and `error` (errors). Everything else not listed is skipped.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from llmchat.conversation import ChatRequest
from llmchat.providers.base import bearer_headers, endpoint, json_or_text, load_json, names_in
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
    Finish,
    ReasoningDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    Usage,
)

_TEXT = frozenset({"response.output_text.delta", "response.refusal.delta"})
_REASONING = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)
_INCOMPLETE = {"max_output_tokens": LENGTH, "content_filter": CONTENT_FILTER}


class _ResponsesDecoder(StreamDecoder):
    def feed(self, item: Any) -> Sequence[StreamEvent]:
        data = item.data
        if data == "[DONE]":  # not part of this API; a stray one is ignored
            return NOTHING
        if item.type == "error" and not data.startswith("{"):
            self.done = True
            return (StreamError(error_message(json_or_text(data)), kind="api"),)
        payload = load_json(data)
        if not isinstance(payload, dict):
            return NOTHING
        kind = payload.get("type") or item.type
        if kind in _TEXT:
            delta = payload.get("delta")
            return (TextDelta(delta),) if delta else NOTHING
        if kind in _REASONING:
            delta = payload.get("delta")
            return (ReasoningDelta(delta),) if delta else NOTHING
        if kind == "response.completed":
            self.done = True
            return _with_usage(payload, Finish(STOP, "completed"))
        if kind == "response.incomplete":
            self.done = True
            response = payload.get("response") or {}
            raw = (response.get("incomplete_details") or {}).get("reason") or "incomplete"
            return _with_usage(payload, Finish(_INCOMPLETE.get(raw, raw), raw))
        if kind == "response.failed":
            self.done = True
            response = payload.get("response") or {}
            error = response.get("error") or "the response failed"
            return (StreamError(error_message(error), kind="api"),)
        if kind == "error":
            self.done = True
            return (StreamError(error_message(payload.get("error") or payload), kind="api"),)
        return NOTHING


def _with_usage(payload: dict, finish: Finish) -> Sequence[StreamEvent]:
    usage = (payload.get("response") or {}).get("usage")
    if usage:
        return (Usage(usage.get("input_tokens"), usage.get("output_tokens")), finish)
    return (finish,)


class OpenAIResponses(Provider):
    name = "openai-responses"
    framing = "sse"
    default_base_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    api_key_env = "OPENAI_API_KEY"
    default_model = "gpt-4o-mini"
    decoder = _ResponsesDecoder

    def build_request(self, request: ChatRequest) -> HttpRequest:
        body: dict = {
            "model": request.model,
            "input": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        if request.system:
            body["instructions"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        headers = bearer_headers("text/event-stream", request.api_key)
        return HttpRequest(endpoint(request.base_url, "/responses"), body, headers)


    def models_request(self, base_url: str, api_key: Optional[str]) -> HttpRequest:
        return HttpRequest(endpoint(base_url, "/models"), {}, bearer_headers("application/json", api_key))

    def parse_models(self, data: Any) -> List[str]:
        return names_in(data, "data", "id", "an OpenAI model list")
