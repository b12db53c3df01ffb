"""Ollama's native chat stream: NDJSON objects, the last with `done: true`.

A line may carry thinking, content and tool calls together. The final line's `eval_count` and
`eval_duration` give the server's own output rate. A server that ignores `stream: true` sends
one such final object: the same decoder reads it.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from llmchat.conversation import ChatRequest, Message
from llmchat.providers.base import (
    arguments_object,
    as_arguments,
    as_count,
    as_rate,
    as_text,
    as_word,
    bearer_headers,
    chat_messages,
    endpoint,
    media,
    names_in,
    result_text,
    unsupported,
    user_text,
)
from llmchat.stream.events import (
    LENGTH,
    STOP,
    TOOL_CALLS,
    UNKNOWN,
    Finish,
    ReasoningDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)
from llmchat.stream.protocol import (
    NOTHING,
    HttpRequest,
    Provider,
    StreamDecoder,
    error_message,
)

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
    _calls = False  # a tool call came: the answer stopped for it

    def feed(self, item: Any) -> Sequence[StreamEvent]:
        if not isinstance(item, dict):
            return NOTHING
        message = item.get("message")
        if not item.get("done"):
            if message.__class__ is dict:
                content = message.get("content")
                if content.__class__ is str and content and len(message) <= 2 and "thinking" not in message:
                    return (TextDelta(content),)  # the hot path: {"role", "content"} only
                return self._message_events(message)
            if "error" in item:
                self.done = True
                return (StreamError(error_message(item), kind="api"),)
            return NOTHING
        self.done = True
        events: list = self._message_events(message) if message.__class__ is dict else []
        if "eval_count" in item or "prompt_eval_count" in item:
            output = as_count(item.get("eval_count"))
            duration = as_count(item.get("eval_duration"))  # nanoseconds
            rate = as_rate(output / (duration / 1e9)) if output and duration else None
            events.append(Usage(as_count(item.get("prompt_eval_count")), output, None, rate))
        raw = as_word(item.get("done_reason"))
        reason = _REASONS.get(raw, raw) if raw else UNKNOWN
        if self._calls and reason in (STOP, UNKNOWN):  # Ollama says "stop" after tool calls too
            reason = TOOL_CALLS
        events.append(Finish(reason, raw))
        return events

    def _message_events(self, message: dict) -> list:
        events = _message_events(message, [])
        if not self._calls and any(type(event) is ToolCall for event in events):
            self._calls = True
        return events


def _message_events(message: dict, events: list) -> list:
    """Thinking, text and tool calls of one message, in that order (one line may carry all)."""
    thinking = as_text(message.get("thinking"))
    if thinking:
        events.append(ReasoningDelta(thinking))
    content = as_text(message.get("content"))
    if content:
        events.append(TextDelta(content))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                call_id = as_word(call.get("id")) or ""
                events.append(ToolCall(call_id, as_word(function.get("name")) or "", as_arguments(function.get("arguments"))))
    return events


def _user_message(message: Message) -> dict:
    """A user message with attachments: its text (text files inlined) and `images`, a list of
    base64 strings (https://github.com/ollama/ollama/blob/main/docs/api.md, "Chat request (with
    images)"). Ollama's API has no PDFs: one is refused, naming the APIs that take them."""
    images = []
    for item in media(message):
        if item.kind != "image":
            raise unsupported(Ollama.name, item)
        images.append(item.base64())
    out: dict = {"role": message.role, "content": user_text(message)}
    if images:
        out["images"] = images
    return out


def _tool_messages(message: Message) -> List[dict]:
    """An assistant message's `tool_calls` (`{type: function, function: {index, name,
    arguments}}`, the arguments an object) or one step's results, one `tool` message each
    with the tool's `tool_name` (https://docs.ollama.com/capabilities/tool-calling). A call's
    id, when the server gave one, goes with it (`id`, and `tool_call_id` on its result): Ollama
    matches results by name, and newer servers read the id too. A failed call's result text
    starts "Error: ": the API has no error flag."""
    if message.role == "tool":
        results = []
        for r in message.tool_results:
            result = {"role": "tool", "tool_name": r.name, "content": result_text(r)}
            if r.call_id:
                result["tool_call_id"] = r.call_id
            results.append(result)
        return results
    calls = []
    for index, c in enumerate(message.tool_calls):
        call: dict = {"type": "function", "function": {"index": index, "name": c.name, "arguments": arguments_object(c.arguments)}}
        if c.id:
            call["id"] = c.id
        calls.append(call)
    return [{"role": message.role, "content": message.content, "tool_calls": calls}]


def _tools(request: ChatRequest) -> list:
    """`tools` in the OpenAI shape: `{type: function, function: {name, description, parameters}}`."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema()}} for t in request.tools]


class Ollama(Provider):
    name = "ollama"
    framing = "ndjson"
    default_base_url = "http://localhost:11434"
    base_url_env = "OLLAMA_HOST"
    api_key_env = None
    default_model = "llama3.2"
    decoder = _OllamaDecoder

    def build_request(self, request: ChatRequest) -> HttpRequest:
        body: dict = {"model": request.model, "messages": chat_messages(request, _user_message, _tool_messages), "stream": True}
        if request.tools:  # Ollama has no tool_choice
            body["tools"] = _tools(request)
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
