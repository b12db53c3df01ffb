"""OpenAI Chat Completions streaming (and every OpenAI-compatible server): SSE of chunk objects.

The stream ends at the first `data: [DONE]`. A `finish_reason` is also a terminal signal: servers
that close right after it (no [DONE]) finished cleanly. Usage arrives in a chunk with empty
`choices` when `stream_options.include_usage` is set, after the finish chunk, so `Finish` is
emitted last, at [DONE] or at the end of the body.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence
from urllib.parse import urlsplit

from llmchat.conversation import ChatRequest
from llmchat.providers.base import bearer_headers, chat_messages, endpoint, json_or_text, load_json, names_in
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

_REASONS = {
    "stop": STOP,
    "length": LENGTH,
    "content_filter": CONTENT_FILTER,
    "tool_calls": TOOL_CALLS,
    "function_call": TOOL_CALLS,
}


class _ChatDecoder(StreamDecoder):
    def feed(self, item: Any) -> Sequence[StreamEvent]:
        data = item.data
        if data == "[DONE]":
            self.done = True
            return (self.pending_finish or Finish(STOP, None),)
        if item.type == "error":
            self.done = True
            return (StreamError(error_message(json_or_text(data)), kind="api"),)
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            return NOTHING
        if chunk.get("error"):
            self.done = True
            return (StreamError(error_message(chunk), kind="api"),)
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if not choices:
            return (_usage(usage),) if usage else NOTHING
        choice = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content")
        reason = choice.get("finish_reason")
        if reason is None and not usage:  # the hot path: one delta and nothing else
            return (TextDelta(content),) if content else _other_delta(delta)
        events = [TextDelta(content)] if content else list(_other_delta(delta))
        if reason is not None and self.pending_finish is None:
            self.pending_finish = Finish(_REASONS.get(reason, reason), reason)
        if usage:
            events.append(_usage(usage))
        return events



def _other_delta(delta: dict) -> Sequence[StreamEvent]:
    # reasoning_content: DeepSeek, vLLM, llama.cpp; reasoning: OpenRouter, Ollama, Groq.
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning and isinstance(reasoning, str):
        return (ReasoningDelta(reasoning),)
    refusal = delta.get("refusal")
    if refusal:
        return (TextDelta(refusal),)
    return NOTHING  # role-only, tool-call and empty deltas


def _usage(usage: dict) -> Usage:
    return Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))


class OpenAIChat(Provider):
    name = "openai-chat"
    framing = "sse"
    default_base_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    api_key_env = "OPENAI_API_KEY"
    default_model = "gpt-4o-mini"
    decoder = _ChatDecoder

    def build_request(self, request: ChatRequest) -> HttpRequest:
        body: dict = {
            "model": request.model,
            "messages": chat_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            # OpenAI itself deprecated max_tokens (reasoning models reject it); compatible
            # servers mostly know only max_tokens.
            official = urlsplit(request.base_url).hostname == "api.openai.com"
            body["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
        headers = bearer_headers("text/event-stream", request.api_key)
        return HttpRequest(endpoint(request.base_url, "/chat/completions"), body, headers)


    def models_request(self, base_url: str, api_key: Optional[str]) -> HttpRequest:
        return HttpRequest(endpoint(base_url, "/models"), {}, bearer_headers("application/json", api_key))

    def parse_models(self, data: Any) -> List[str]:
        return names_in(data, "data", "id", "an OpenAI model list")
