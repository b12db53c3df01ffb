"""OpenAI Responses API streaming: SSE whose JSON payloads carry their own `type`.

Terminal signals: `response.completed` (stop; "tool_calls" when the response made function
calls, since the API has no stop reason of its own for them), `response.incomplete` (length or
content filter, a success), `response.failed` and `error` (errors). A finished `function_call`
output item is a ToolCall (its arguments from the `response.function_call_arguments.delta`s
when the item comes without them). Everything else not listed is skipped.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from llmchat.conversation import ChatRequest, Message
from llmchat.providers.base import (
    as_arguments,
    as_count,
    as_text,
    as_word,
    bearer_headers,
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

_TEXT = frozenset({"response.output_text.delta", "response.refusal.delta"})
_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_INCOMPLETE = {"max_output_tokens": LENGTH, "content_filter": CONTENT_FILTER}


class _ResponsesDecoder(StreamDecoder):
    _calls = 0  # function calls seen: a completed response with calls stopped for them
    _arguments: Optional[Dict[Any, List[str]]] = None  # item id -> argument deltas (for an item.done without them)

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
        if kind.__class__ is not str:
            kind = item.type
        if kind in _TEXT:
            delta = payload.get("delta")
            if delta.__class__ is not str:
                delta = as_text(delta)
            return (TextDelta(delta),) if delta else NOTHING
        if kind in _REASONING:
            delta = as_text(payload.get("delta"))
            return (ReasoningDelta(delta),) if delta else NOTHING
        if kind == "response.function_call_arguments.delta":
            delta = payload.get("delta")
            if isinstance(delta, str) and delta:
                if self._arguments is None:
                    self._arguments = {}
                self._arguments.setdefault(_item_id(payload.get("item_id")), []).append(delta)
            return NOTHING
        if kind == "response.output_item.done":
            found = payload.get("item")
            if isinstance(found, dict) and found.get("arguments") is None and self._arguments:
                found = {**found, "arguments": "".join(self._arguments.pop(_item_id(found.get("id")), ()))}
            call = _tool_call(found)
            if call is None:
                return NOTHING
            self._calls += 1
            return (call,)
        if kind == "response.completed":
            self.done = True
            return _with_usage(payload.get("response"), Finish(TOOL_CALLS if self._calls else STOP, "completed"))
        if kind == "response.incomplete":
            self.done = True
            response = payload.get("response")
            return _with_usage(response, _incomplete(response))
        if kind == "response.failed":
            self.done = True
            response = payload.get("response")
            error = (response.get("error") if isinstance(response, dict) else None) or "the response failed"
            return (StreamError(error_message(error), kind="api"),)
        if kind == "error" or (kind == item.type and payload.get("error")):  # a proxy's untyped error
            self.done = True
            return (StreamError(error_message(payload.get("error") or payload), kind="api"),)
        return NOTHING

    def whole(self, body: Any) -> Sequence[StreamEvent]:
        self.done = True
        if not isinstance(body, dict):
            raise ProtocolError("the server answered with JSON that is not a response")
        if body.get("error") and body.get("status") in (None, "failed"):
            return (StreamError(error_message(body.get("error")), kind="api"),)
        output = body.get("output")
        if not isinstance(output, list):
            raise ProtocolError("the server answered with JSON that is not a response")
        events: list = []
        for item in output:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "message":
                for part in item.get("content") or ():
                    if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                        text = as_text(part.get("text") or part.get("refusal"))
                        if text:
                            events.append(TextDelta(text))
            elif kind == "reasoning":
                text = as_text(item.get("summary")) or as_text(item.get("content"))
                if text:
                    events.append(ReasoningDelta(text))
            else:
                call = _tool_call(item)
                if call is not None:
                    events.append(call)
                    self._calls += 1
        status = body.get("status")
        if status == "incomplete":
            finish = _incomplete(body)
        else:
            raw = as_word(status)
            finish = Finish((TOOL_CALLS if self._calls else STOP) if raw == "completed" else (raw or UNKNOWN), raw)
        events.extend(_with_usage(body, finish))
        return events


def _tool_call(item: Any) -> Optional[ToolCall]:
    """A finished `function_call` output item as a ToolCall; None for any other item."""
    if not isinstance(item, dict) or item.get("type") != "function_call":
        return None
    # call_id is what a tool result refers to; id is the item's own.
    call_id = as_word(item.get("call_id")) or as_word(item.get("id")) or ""
    return ToolCall(call_id, as_word(item.get("name")) or "", as_arguments(item.get("arguments")))


def _item_id(value: Any) -> Any:
    return value if isinstance(value, (str, int)) else None


def _incomplete(response: Any) -> Finish:
    details = response.get("incomplete_details") if isinstance(response, dict) else None
    raw = as_word(details.get("reason")) if isinstance(details, dict) else None
    raw = raw or "incomplete"
    return Finish(_INCOMPLETE.get(raw, raw), raw)


def _with_usage(response: Any, finish: Finish) -> Sequence[StreamEvent]:
    usage = response.get("usage") if isinstance(response, dict) else None
    if isinstance(usage, dict):
        details = usage.get("input_tokens_details")
        cached = as_count(details.get("cached_tokens")) if isinstance(details, dict) else None
        return (Usage(as_count(usage.get("input_tokens")), as_count(usage.get("output_tokens")), cached), finish)
    return (finish,)


def _user_message(message: Message) -> dict:
    """A user message with attachments: `input_image` parts (a data URL in `image_url`),
    `input_file` parts (`file_data` a data URL, with its `filename`), then `input_text` with any
    text files inlined (https://platform.openai.com/docs/guides/images-vision,
    https://platform.openai.com/docs/guides/pdf-files). Text files alone keep the plain string."""
    parts: list = []
    for item in media(message):
        if item.kind == "image":
            parts.append({"type": "input_image", "image_url": item.data_url(), "detail": "auto"})
        elif item.kind == "pdf":
            parts.append({"type": "input_file", "filename": item.filename(), "file_data": item.data_url()})
        else:
            raise unsupported(OpenAIResponses.name, item)
    text = user_text(message)
    if not parts:
        return {"role": message.role, "content": text}
    if text:
        parts.append({"type": "input_text", "text": text})
    return {"role": message.role, "content": parts}


def _input(messages: List[Message]) -> list:
    """The conversation as input items. An assistant message's tool calls follow its text as
    `function_call` items (`call_id`, `name`, `arguments` as JSON text; no item `id`, which
    would ask for the reasoning item that came with it); one step's results are
    `function_call_output` items with the call's `call_id`
    (https://platform.openai.com/docs/guides/function-calling). A failed call's result text starts
    "Error: ": the API has no error flag."""
    items: list = []
    for m in messages:
        if m.tool_calls or m.tool_results or m.role == "tool":
            if m.role == "tool":
                items.extend({"type": "function_call_output", "call_id": r.call_id, "output": result_text(r)} for r in m.tool_results)
                continue
            if m.content:
                items.append({"role": m.role, "content": m.content})
            items.extend({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments or "{}"} for c in m.tool_calls)
        elif m.attachments and m.role == "user":
            items.append(_user_message(m))
        else:
            items.append({"role": m.role, "content": m.content})
    return items


def _tools(request: ChatRequest, body: dict) -> None:
    """`tools` as `{type: function, name, description, parameters, strict: false}` (strict
    schemas are the API's default there, and a tool's own schema is seldom one) and
    `tool_choice` ("auto", "none", "required", or `{type: function, name}`)."""
    if request.tools:
        body["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.schema(), "strict": False} for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = choice if choice in ("auto", "none", "required") else {"type": "function", "name": choice}


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
            "input": _input(request.messages),
            "stream": True,
        }
        if request.tools or request.tool_choice is not None:
            _tools(request, body)
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
