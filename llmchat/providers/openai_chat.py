"""OpenAI Chat Completions streaming (and every OpenAI-compatible server): SSE of chunk objects.

The stream ends at the first `data: [DONE]`. A `finish_reason` is also a terminal signal: servers
that close right after it (no [DONE]) finished cleanly. Usage arrives in a chunk with empty
`choices` when `stream_options.include_usage` is set, after the finish chunk, so `Finish` is
emitted last, at [DONE] or at the end of the body.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from llmchat.conversation import ChatRequest, Message
from llmchat.providers.base import (
    as_arguments,
    as_count,
    as_rate,
    as_text,
    as_word,
    bearer_headers,
    chat_messages,
    endpoint,
    json_or_text,
    load_json,
    media,
    names_in,
    result_text,
    unsupported,
    user_text,
)
from llmchat.stream.events import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    TOOL_CALLS,
    UNKNOWN,
    Finish,
    Notice,
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
    ProtocolError,
    Provider,
    StreamDecoder,
    error_message,
)

_REASONS = {
    "stop": STOP,
    "length": LENGTH,
    "content_filter": CONTENT_FILTER,
    "tool_calls": TOOL_CALLS,
    "function_call": TOOL_CALLS,
}


_SEVERAL = "the server sent several answers (n > 1); only the first is shown"


class _ChatDecoder(StreamDecoder):
    def __init__(self) -> None:
        self._tools: Optional[Dict[Any, list]] = None  # index -> [id, name, argument fragments]
        self._finished: List[list] = []  # calls an index was taken over from, in order
        self._several = False  # a choice other than the first was seen (and said so)

    def feed(self, item: Any) -> Sequence[StreamEvent]:
        data = item.data
        if data == "[DONE]":
            self.done = True
            return self._ending(self.pending_finish or Finish(UNKNOWN, None))
        if not data:  # an event with empty data: a keep-alive
            return NOTHING
        if item.type == "error":
            self.done = True
            return (StreamError(error_message(json_or_text(data)), kind="api"),)
        chunk = load_json(data)
        if chunk.__class__ is not dict:
            return NOTHING
        if chunk.get("error"):
            self.done = True
            return (StreamError(error_message(chunk), kind="api"),)
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if not choices:
            return (_usage(usage, chunk),) if usage else NOTHING
        choice = choices[0]
        if choice.get("index", 0) != 0 or len(choices) > 1:  # n > 1: only choice 0 is the answer
            return self._other_choices(choices, chunk)
        delta = choice.get("delta") or _EMPTY
        content = delta.get("content")
        reason = choice.get("finish_reason")
        if reason is None and not usage and content.__class__ is str:
            # the hot path: one text delta and nothing else
            return (TextDelta(content),) if content else self._other_delta(delta)
        events: list = []
        self._add_delta(delta, content, events)
        if reason is not None and self.pending_finish is None:
            raw = as_word(reason)
            self.pending_finish = Finish(_REASONS.get(raw, raw) if raw else UNKNOWN, raw)
            events.extend(self._tool_calls())
        if usage or "timings" in chunk:
            events.append(_usage(usage, chunk))
        return events

    def end(self) -> Sequence[StreamEvent]:
        if self.done or self.pending_finish is None:
            return super().end()
        self.done = True
        return self._ending(self.pending_finish)

    def whole(self, body: Any) -> Sequence[StreamEvent]:
        self.done = True
        if not isinstance(body, dict):
            raise ProtocolError("the server answered with JSON that is not a chat completion")
        if body.get("error"):
            return (StreamError(error_message(body), kind="api"),)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ProtocolError("the server answered with JSON that is not a chat completion")
        events: list = []
        first = _first_choice(choices)
        if len(choices) > 1:
            events.append(Notice(_SEVERAL))
        if not isinstance(first, dict):
            raise ProtocolError("the server answered with JSON that is not a chat completion")
        message = first.get("message") or first.get("delta") or _EMPTY
        if not isinstance(message, dict):
            message = {"content": message}
        self._add_delta(message, message.get("content"), events)
        events.extend(self._tool_calls())
        usage = body.get("usage")
        if usage or "timings" in body:
            events.append(_usage(usage, body))
        raw = as_word(first.get("finish_reason"))
        events.append(Finish(_REASONS.get(raw, raw) if raw else UNKNOWN, raw))
        return events

    # --- the rarer deltas ------------------------------------------------------------------

    def _other_delta(self, delta: dict) -> Sequence[StreamEvent]:
        events: list = []
        self._add_delta(delta, None, events)
        return events

    def _add_delta(self, delta: Any, content: Any, events: list) -> None:
        """Reasoning, text (any shape), refusal and tool-call fragments of one delta."""
        if not isinstance(delta, dict):
            return
        # reasoning_content: DeepSeek, vLLM, llama.cpp; reasoning: OpenRouter, Ollama, Groq.
        reasoning = as_text(delta.get("reasoning_content") or delta.get("reasoning"))
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        text = as_text(content)
        if text:
            events.append(TextDelta(text))
        refusal = as_text(delta.get("refusal"))
        if refusal:
            events.append(TextDelta(refusal))
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            self._add_tool_fragments(calls)

    def _add_tool_fragments(self, calls: list) -> None:
        tools = self._tools if self._tools is not None else {}
        self._tools = tools
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            index = call.get("index", position)
            if not isinstance(index, (int, str)):
                index = position
            call_id = as_word(call.get("id"))
            slot = tools.get(index)
            if slot is not None and call_id and slot[0] and call_id != slot[0]:
                # Another call at the same index: servers that send each call whole and leave
                # out `index` (Gemini's OpenAI endpoint) put every call at position 0.
                self._finished.append(slot)
                slot = None
            if slot is None:
                slot = tools[index] = ["", "", []]
            if call_id:
                slot[0] = call_id
            function = call.get("function")
            if isinstance(function, dict):
                name = as_word(function.get("name"))
                if name:
                    slot[1] = name  # sent once, in the first fragment
                arguments = function.get("arguments")
                if arguments:
                    slot[2].append(as_arguments(arguments))

    def _tool_calls(self) -> List[StreamEvent]:
        """The tool calls gathered so far, complete (their finish has come), once."""
        tools, self._tools = self._tools, None
        if not tools:
            return []
        slots = self._finished + [slot for _, slot in sorted(tools.items(), key=_by_index)]
        self._finished = []
        return [ToolCall(tid, name, "".join(parts)) for tid, name, parts in slots]

    def _ending(self, finish: Finish) -> Sequence[StreamEvent]:
        return (*self._tool_calls(), finish) if self._tools else (finish,)

    def _other_choices(self, choices: list, chunk: dict) -> Sequence[StreamEvent]:
        events: list = []
        if not self._several:
            self._several = True
            events.append(Notice(_SEVERAL))
        usage = chunk.get("usage")
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                delta = choice.get("delta") or _EMPTY
                self._add_delta(delta, delta.get("content") if isinstance(delta, dict) else None, events)
                reason = choice.get("finish_reason")
                if reason is not None and self.pending_finish is None:
                    raw = as_word(reason)
                    self.pending_finish = Finish(_REASONS.get(raw, raw) if raw else UNKNOWN, raw)
                    events.extend(self._tool_calls())
        if usage:
            events.append(_usage(usage, chunk))
        return events


_EMPTY: dict = {}


def _by_index(entry: Tuple[Any, list]) -> Tuple[int, str]:
    index = entry[0]
    return (index, "") if isinstance(index, int) else (1 << 30, str(index))


def _first_choice(choices: list) -> Any:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return choices[0]


def _usage(usage: Any, chunk: dict) -> Usage:
    """Usage from `usage` (and llama.cpp's own `timings` of the chunk, when it sent them)."""
    timings = chunk.get("timings")
    rate = as_rate(timings.get("predicted_per_second")) if isinstance(timings, dict) else None
    if not isinstance(usage, dict):
        return Usage(server_rate=rate)
    details = usage.get("prompt_tokens_details")
    cached = as_count(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(as_count(usage.get("prompt_tokens")), as_count(usage.get("completion_tokens")), cached, rate)


def _user_message(message: Message) -> dict:
    """A user message with attachments: images as `image_url` parts holding data URLs, PDFs as
    `file` parts (`file_data` a data URL, with its `filename`), then the text with any text files
    inlined (https://platform.openai.com/docs/guides/images-vision,
    https://platform.openai.com/docs/guides/pdf-files). Text files alone keep the plain string."""
    parts: list = []
    for item in media(message):
        if item.kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": item.data_url()}})
        elif item.kind == "pdf":
            parts.append({"type": "file", "file": {"filename": item.filename(), "file_data": item.data_url()}})
        else:
            raise unsupported(OpenAIChat.name, item)
    text = user_text(message)
    if not parts:
        return {"role": message.role, "content": text}
    if text:
        parts.append({"type": "text", "text": text})
    return {"role": message.role, "content": parts}


def _tool_messages(message: Message) -> List[dict]:
    """An assistant message's tool calls (`tool_calls`, arguments as JSON text; `content` null
    when it wrote no text) or one step's results, one `tool` message each with the call's
    `tool_call_id` (https://platform.openai.com/docs/guides/function-calling). A failed call's
    result text starts "Error: ": the API has no error flag."""
    if message.role == "tool":
        return [{"role": "tool", "tool_call_id": r.call_id, "content": result_text(r)} for r in message.tool_results]
    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}} for c in message.tool_calls]
    return [{"role": message.role, "content": message.content or None, "tool_calls": calls}]


def _tools(request: ChatRequest, body: dict) -> None:
    """`tools` as `{type: function, function: {name, description, parameters}}` and
    `tool_choice` ("auto", "none", "required", or `{type: function, function: {name}}`)."""
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema()}} for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = choice if choice in ("auto", "none", "required") else {"type": "function", "function": {"name": choice}}


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
            "messages": chat_messages(request, _user_message, _tool_messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools or request.tool_choice is not None:
            _tools(request, body)
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
