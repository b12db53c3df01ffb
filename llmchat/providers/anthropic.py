"""Anthropic Messages streaming: SSE with typed events.

Text comes in `content_block_delta` / `text_delta`, thinking in `thinking_delta`. The stop
reason arrives in `message_delta`, the end in `message_stop`; a body that ends after a stop
reason but before `message_stop` still finished. A `tool_use` block (its input streamed as
`input_json_delta` fragments) is a ToolCall at its `content_block_stop`. Input usage counts
cache reads and writes too. `ping`, signatures and unknown events are skipped.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from llmchat.conversation import ChatRequest, Message, ToolResult
from llmchat.providers.base import (
    arguments_object,
    as_arguments,
    as_count,
    as_text,
    as_word,
    endpoint,
    json_or_text,
    load_json,
    media,
    names_in,
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
    _input: Optional[Tuple[Optional[int], Optional[int]]] = None  # (all input, cached) at message_start
    _tools: Optional[Dict[Any, list]] = None  # block index -> [id, name, input, partial JSON]

    def feed(self, item: Any) -> Sequence[StreamEvent]:
        data = item.data
        if data == "[DONE]" or not data:  # [DONE] is not part of this API; empty data: keep-alive
            return NOTHING
        if item.type == "error" and not data.startswith("{"):
            self.done = True
            return (StreamError(error_message(json_or_text(data)), kind="api"),)
        payload = load_json(data)
        if not isinstance(payload, dict):
            return NOTHING
        kind = payload.get("type") or item.type
        if kind == "content_block_delta":
            delta = payload.get("delta") or _EMPTY
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                if text.__class__ is not str:
                    text = as_text(text)
                return (TextDelta(text),) if text else NOTHING
            if dtype == "thinking_delta":
                thinking = as_text(delta.get("thinking"))
                return (ReasoningDelta(thinking),) if thinking else NOTHING
            if dtype == "input_json_delta" and self._tools:
                slot = self._tools.get(_index(payload))
                if slot is not None:
                    slot[3].append(as_text(delta.get("partial_json")))
            return NOTHING
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict) and block.get("type") in ("tool_use", "server_tool_use"):
                tools = self._tools if self._tools is not None else {}
                self._tools = tools
                tools[_index(payload)] = [as_word(block.get("id")) or "", as_word(block.get("name")) or "", block.get("input"), []]
            return NOTHING
        if kind == "content_block_stop":
            slot = self._tools.pop(_index(payload), None) if self._tools else None
            return (_tool_call(slot),) if slot is not None else NOTHING
        if kind == "message_start":
            message = payload.get("message")
            self._input = _input_counts(message.get("usage") if isinstance(message, dict) else None)
            return NOTHING
        if kind == "message_delta":
            events = []
            usage = payload.get("usage")
            if isinstance(usage, dict) and usage:
                total, cached = _input_counts(usage)
                if total is None and self._input is not None:
                    total, cached = self._input
                events.append(Usage(total, as_count(usage.get("output_tokens")), cached))
            delta = payload.get("delta")
            raw = as_word(delta.get("stop_reason")) if isinstance(delta, dict) else None
            if raw:
                self.pending_finish = Finish(_REASONS.get(raw, raw), raw)
            return events
        if kind == "message_stop":
            self.done = True
            return (self.pending_finish or Finish(UNKNOWN, None),)
        if kind == "error" or payload.get("error"):  # the latter: a proxy's OpenAI-style error event
            self.done = True
            return (StreamError(error_message(payload), kind="api"),)
        return NOTHING

    def whole(self, body: Any) -> Sequence[StreamEvent]:
        self.done = True
        if not isinstance(body, dict):
            raise ProtocolError("the server answered with JSON that is not a message")
        if body.get("type") == "error" or body.get("error"):
            return (StreamError(error_message(body), kind="api"),)
        content = body.get("content")
        if not isinstance(content, list):
            raise ProtocolError("the server answered with JSON that is not a message")
        events: list = []
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = as_text(block.get("text"))
                if text:
                    events.append(TextDelta(text))
            elif btype == "thinking":
                thinking = as_text(block.get("thinking"))
                if thinking:
                    events.append(ReasoningDelta(thinking))
            elif btype in ("tool_use", "server_tool_use"):
                events.append(_tool_call([as_word(block.get("id")) or "", as_word(block.get("name")) or "", block.get("input"), []]))
        usage = body.get("usage")
        if isinstance(usage, dict):
            total, cached = _input_counts(usage)
            events.append(Usage(total, as_count(usage.get("output_tokens")), cached))
        raw = as_word(body.get("stop_reason"))
        events.append(Finish(_REASONS.get(raw, raw) if raw else UNKNOWN, raw))
        return events


_EMPTY: dict = {}


def _index(payload: dict) -> Any:
    index = payload.get("index")
    return index if isinstance(index, (int, str)) else None


def _tool_call(slot: list) -> ToolCall:
    call_id, name, start_input, fragments = slot
    arguments = "".join(fragments)
    if not arguments and start_input:  # no input_json_delta: the input came whole
        arguments = as_arguments(start_input)
    return ToolCall(call_id, name, arguments or "{}")


def _input_counts(usage: Any) -> Tuple[Optional[int], Optional[int]]:
    """(all input tokens, cached ones): `input_tokens` counts only what came after the last
    cache breakpoint; cache reads and writes are counted apart."""
    if not isinstance(usage, dict):
        return None, None
    fresh = as_count(usage.get("input_tokens"))
    read = as_count(usage.get("cache_read_input_tokens"))
    written = as_count(usage.get("cache_creation_input_tokens"))
    if fresh is None:
        return None, None
    return fresh + (read or 0) + (written or 0), read


def _user_message(message: Message) -> dict:
    """A user message with attachments: `image` blocks and `document` blocks (PDFs, titled with
    the file name), each with a base64 source, then a `text` block with any text files inlined
    (https://platform.claude.com/docs/en/build-with-claude/vision,
    https://platform.claude.com/docs/en/build-with-claude/pdf-support). Images and documents go
    first: Claude works best with them before the question. Text files alone keep the string."""
    blocks: list = []
    for item in media(message):
        source = {"type": "base64", "media_type": item.mime, "data": item.base64()}
        if item.kind == "image":
            blocks.append({"type": "image", "source": source})
        elif item.kind == "pdf":
            blocks.append({"type": "document", "source": source, "title": item.filename()})
        else:
            raise unsupported(Anthropic.name, item)
    text = user_text(message)
    if not blocks:
        return {"role": message.role, "content": text}
    if text:  # the API refuses an empty text block
        blocks.append({"type": "text", "text": text})
    return {"role": message.role, "content": blocks}


def _messages(messages: List[Message]) -> list:
    """The conversation as messages. An assistant message's tool calls are `tool_use` blocks
    after its text (`input` an object); one step's results are `tool_result` blocks (the call's
    `tool_use_id`, `content`, `is_error` when it failed) in one user message, put first in the
    user message that follows them when there is one: the API wants every result right after
    the calls, before any text (https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use)."""
    out: list = []
    for m in messages:
        if m.role == "tool":
            blocks = [_result_block(r) for r in m.tool_results]
            if blocks:
                out.append({"role": "user", "content": blocks})
            continue
        encoded = _user_message(m) if m.attachments and m.role == "user" else {"role": m.role, "content": m.content}
        if m.tool_calls:
            text = [{"type": "text", "text": m.content}] if m.content else []  # the API refuses an empty text block
            tool_uses = [{"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c.arguments)} for c in m.tool_calls]
            encoded = {"role": m.role, "content": text + tool_uses}
        previous = out[-1] if out else None
        if previous is not None and m.role == "user" and previous["role"] == "user" and _only_results(previous):
            content = encoded["content"]
            previous["content"] = previous["content"] + (
                content if isinstance(content, list) else [{"type": "text", "text": content}] if content else []
            )
            continue
        out.append(encoded)
    return out


def _result_block(result: ToolResult) -> dict:
    block: dict = {"type": "tool_result", "tool_use_id": result.call_id}
    if result.content:  # optional; an empty text is left out rather than risk the API's "must be non-empty"
        block["content"] = result.content
    if result.is_error:
        block["is_error"] = True
    return block


def _only_results(message: dict) -> bool:
    content = message["content"]
    return isinstance(content, list) and bool(content) and all(block.get("type") == "tool_result" for block in content)


def _tools(request: ChatRequest, body: dict) -> None:
    """`tools` as `{name, description, input_schema}` and `tool_choice` (`{type: auto}`,
    `{type: none}`, `{type: any}` for "required", `{type: tool, name}`)."""
    if request.tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.schema()} for t in request.tools]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = (
            {"type": "any"} if choice == "required" else {"type": choice} if choice in ("auto", "none") else {"type": "tool", "name": choice}
        )


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
            "messages": _messages(request.messages),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if request.tools or request.tool_choice is not None:
            _tools(request, body)
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
