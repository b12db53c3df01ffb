"""A fake LLM server on loopback that speaks all four streaming APIs.

It serves the demo model and every test and benchmark. It can be told, for the whole server
or per request, how long the answer is, how fast it streams, how long before the first token,
to stall, to drop the connection, to end without the terminal signal, or to answer with an
HTTP error.

Per-request behaviour rides in the URL, so any client with a configurable base URL can use it:
    http://127.0.0.1:PORT/o/tokens=500&tps=200&drop_after=40/v1
The `/o/<options>` prefix is stripped; the rest is routed by its ending:
`/chat/completions`, `/responses`, `/v1/messages`, `/api/chat`.

Plain asyncio streams, HTTP/1.1, one request per connection, chunked responses: a dropped
connection is a real truncated body, as a client would meet it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import unquote

from llmchat.demo.answer import DEMO_MODEL, answer_tokens

__all__ = ["Behaviour", "FakeLLMServer", "ServerThread", "RecordedRequest"]


@dataclass(frozen=True)
class Behaviour:
    tokens: Optional[int] = None  # answer length; None: the natural demo answer
    text: Optional[str] = None  # answer exactly this text (tokenised) instead
    tps: float = 0.0  # tokens per second; 0: as fast as possible
    ttft: float = 0.0  # seconds before the first token
    reasoning: int = 0  # reasoning tokens before the answer
    stall_after: Optional[int] = None  # stop sending after K tokens, keep the connection open
    drop_after: Optional[int] = None  # cut the connection (truncated body) after K tokens
    error_after: Optional[int] = None  # send the API's mid-stream error event after K tokens
    no_end: bool = False  # close cleanly without the API's terminal signal
    finish: str = "stop"  # "stop" or "length"
    status: Optional[int] = None  # answer with this HTTP status instead of a stream
    error_body: str = "json"  # "json", "html" or "text" body for `status`
    retry_after: Optional[str] = None  # Retry-After header with `status`
    fail_first: int = 0  # the first N requests with these options fail with `status` (503)
    content_type: Optional[str] = None  # 200 with this content type and a non-stream body
    empty: bool = False  # 200 with the right content type and an empty body
    usage: bool = True  # report token usage
    chunk_tokens: int = 0  # tokens per network write when tps is 0 (0: batches of 256)
    gzip: bool = False  # Content-Encoding: gzip, flushed with every write
    models: Optional[str] = None  # the model list (GET /v1/models, /api/tags): names, comma-separated

    @classmethod
    def parse(cls, options: str, base: "Behaviour" | None = None) -> "Behaviour":
        """`key=value&key=value` (values URL-decoded) over `base`."""
        base = base or cls()
        types = {f.name: f.type for f in fields(cls)}
        changes: Dict[str, Any] = {}
        for pair in options.split("&"):
            if not pair:
                continue
            key, _, value = pair.partition("=")
            key = unquote(key)
            if key not in types:
                raise ValueError(f"unknown option {key!r}")
            value = unquote(value)
            kind = types[key]
            if "bool" in kind:
                changes[key] = value.lower() in ("1", "true", "yes", "")
            elif "int" in kind:
                changes[key] = int(value)
            elif "float" in kind:
                changes[key] = float(value)
            else:
                changes[key] = value
        return replace(base, **changes)


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /o/ prefix
    target: str  # as sent: absolute-form ("http://host/...") when it came through as a proxy
    options: str
    headers: Dict[str, str]
    body: Any
    api: Optional[str] = None
    tokens_sent: int = 0
    outcome: str = "open"  # open | complete | disconnected | dropped | stalled | error | cut
    connection: int = 0  # which connection it came on: 1 for the first the server accepted


class FakeLLMServer:
    def __init__(
        self,
        behaviour: Behaviour = Behaviour(),
        host: str = "127.0.0.1",
        port: int = 0,
        on_change: Optional[Callable[[], None]] = None,
    ) -> None:
        self.behaviour = behaviour
        self.host = host
        self.port = port
        self.requests: List[RecordedRequest] = []
        self._fail_counts: Dict[str, int] = {}
        self._server: Optional[asyncio.base_events.Server] = None
        self._on_change = on_change or (lambda: None)
        self._handlers: set = set()
        self.connections = 0  # connections accepted so far (warm-up tests count them)
        self._connection_numbers: Dict[Any, int] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    # --- HTTP ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        self.connections += 1
        self._connection_numbers[task] = self.connections
        self._on_change()
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # The server is closing under an open stream (the client process is exiting):
            # end quietly; asyncio would log a cancelled connection handler as an error.
            if self.requests and self.requests[-1].outcome == "open":
                self.requests[-1].outcome = "disconnected"
        finally:
            self._handlers.discard(task)
            self._connection_numbers.pop(task, None)
            writer.close()
            self._on_change()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        raw_body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        if "://" in path:  # absolute-form: the client took us for its HTTP proxy; serve it anyway
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        options = ""
        if path.startswith("/o/"):
            options, _, rest = path[3:].partition("/")
            path = "/" + rest
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        record = RecordedRequest(method, path, target, options, headers, body)
        record.connection = self._connection_numbers.get(asyncio.current_task(), 0)
        self.requests.append(record)
        self._on_change()
        try:
            behaviour = Behaviour.parse(options, self.behaviour)
        except ValueError as exc:
            await _respond(writer, 400, "application/json", json.dumps({"error": {"message": str(exc)}}))
            record.outcome = "error"
            return
        api = _route(method, path)
        record.api = api
        if method == "GET" and path in ("/", "/health"):
            await _respond(writer, 200, "text/plain", "llmchat demo server\n")
            record.outcome = "complete"
            return
        if method == "GET" and (path.endswith("/models") or path.endswith("/api/tags")):
            await _model_list(writer, path, headers, behaviour)
            record.api = "models"
            record.outcome = "error" if behaviour.status or behaviour.content_type else "complete"
            return
        if api is None:
            await _respond(writer, 404, "application/json", json.dumps({"error": {"message": f"no route for {method} {path}"}}))
            record.outcome = "error"
            return
        if not isinstance(body, dict):
            await _respond(writer, 400, "application/json", json.dumps({"error": {"message": "request body must be a JSON object"}}))
            record.outcome = "error"
            return
        if behaviour.fail_first:
            seen = self._fail_counts.get(options, 0)
            self._fail_counts[options] = seen + 1
            if seen < behaviour.fail_first:
                behaviour = replace(behaviour, status=behaviour.status or 503)
            else:
                behaviour = replace(behaviour, status=None)
        if behaviour.status is not None:
            await _error_response(writer, api, behaviour)
            record.outcome = "error"
            return
        if behaviour.content_type is not None:
            await _respond(writer, 200, behaviour.content_type, _NON_STREAM_BODIES.get(behaviour.content_type, "<html><head><title>Welcome to nginx!</title></head></html>"))
            record.outcome = "error"
            return
        try:
            await self._stream(reader, writer, api, body, behaviour, record)
        except ConnectionError:
            if record.outcome == "open":  # not once the whole answer was written
                record.outcome = "disconnected"
            raise

    async def _stream(self, reader, writer, api, body, behaviour: Behaviour, record: RecordedRequest) -> None:
        ctype = "application/x-ndjson" if api == "ollama" else "text/event-stream; charset=utf-8"
        encoding = "Content-Encoding: gzip\r\n" if behaviour.gzip else ""
        writer.write(
            (
                "HTTP/1.1 200 OK\r\n"
                f"Content-Type: {ctype}\r\n{encoding}"
                "Cache-Control: no-cache\r\n"
                "Transfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
        )
        if behaviour.empty:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            record.outcome = "complete"
            return
        # EOF from the client while we stream means it went away (cancelled).
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await self._send_answer(writer, api, body, behaviour, record, gone)
        finally:
            gone.cancel()

    async def _send_answer(self, writer, api, body, behaviour, record, gone) -> None:
        compressor = zlib.compressobj(wbits=31) if behaviour.gzip else None  # 31: gzip container
        prompt = _last_user_text(api, body)
        tokens = answer_tokens(prompt, behaviour.tokens, behaviour.text)
        model = body.get("model") or DEMO_MODEL
        wire = _WIRES[api](model, usage=behaviour.usage and _wants_usage(api, body))
        pieces: List[bytes] = [wire.start()]
        reasoning = answer_tokens("", behaviour.reasoning) if behaviour.reasoning else []
        plan = [(True, t) for t in reasoning] + [(False, t) for t in tokens]
        if behaviour.ttft:
            await self._flush(writer, pieces, compressor)
            if await _wait_or_gone(gone, behaviour.ttft):
                record.outcome = "disconnected"
                return
        started = time.monotonic()
        batch = behaviour.chunk_tokens or 256
        stops = [k for k in (behaviour.stall_after, behaviour.drop_after, behaviour.error_after) if k is not None]
        if stops:
            plan = plan[: min(stops)]
        for index, (is_reasoning, token) in enumerate(plan):
            pieces.append(wire.reasoning(token) if is_reasoning else wire.text(token))
            record.tokens_sent = index + 1
            if behaviour.tps:
                await self._flush(writer, pieces, compressor)
                delay = started + (index + 1) / behaviour.tps - time.monotonic()
                if (delay > 0 and await _wait_or_gone(gone, delay)) or gone.done():
                    record.outcome = "disconnected"
                    return
            elif len(pieces) >= batch:
                await self._flush(writer, pieces, compressor)
                if gone.done():
                    record.outcome = "disconnected"
                    return
        sent = record.tokens_sent
        if behaviour.stall_after is not None and sent >= behaviour.stall_after:
            await self._flush(writer, pieces, compressor)
            record.outcome = "stalled"
            self._on_change()
            await _wait_or_gone(gone, 600.0)
            record.outcome = "disconnected" if gone.done() else "stalled"
            return
        if behaviour.drop_after is not None and sent >= behaviour.drop_after:
            await self._flush(writer, pieces, compressor)
            record.outcome = "dropped"
            writer.transport.abort()  # no terminating chunk: the body is truncated
            return
        if behaviour.error_after is not None and sent >= behaviour.error_after:
            pieces.append(wire.error("the demo server was told to fail mid-stream"))
            outcome = "error"
        elif behaviour.no_end:
            outcome = "cut"
        else:
            pieces.append(wire.finish(behaviour.finish, len(reasoning) + len(tokens), _count_prompt(body)))
            outcome = "complete"
        await self._flush(writer, pieces, compressor)
        # The answer is out. A client may close as soon as it has the finish, before the gzip
        # tail and the last chunk below are written: that is not a disconnect mid-answer.
        record.outcome = outcome
        if compressor is not None:
            tail = compressor.flush()
            writer.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _flush(self, writer, pieces: List[bytes], compressor: Any = None) -> None:
        """Everything pending as one HTTP chunk."""
        if not pieces:
            return
        data = b"".join(pieces)
        pieces.clear()
        if compressor is not None:
            data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


async def _wait_or_gone(gone: "asyncio.Future", seconds: float) -> bool:
    """Sleep, unless the client disconnects first (then True)."""
    try:
        await asyncio.wait_for(asyncio.shield(gone), seconds)
        return True
    except asyncio.TimeoutError:
        return False


def _route(method: str, path: str) -> Optional[str]:
    if method != "POST":
        return None
    if path.endswith("/chat/completions"):
        return "openai-chat"
    if path.endswith("/responses"):
        return "openai-responses"
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith("/api/chat"):
        return "ollama"
    return None


def _last_user_text(api: str, body: dict) -> str:
    messages = body.get("input") if api == "openai-responses" else body.get("messages")
    if isinstance(messages, str):
        return messages
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _count_prompt(body: dict) -> int:
    return max(1, len(json.dumps(body.get("messages") or body.get("input") or "")) // 4)


def _wants_usage(api: str, body: dict) -> bool:
    if api == "openai-chat":
        return bool((body.get("stream_options") or {}).get("include_usage"))
    return True


_NON_STREAM_BODIES = {
    "application/json": json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": "not streamed"}}]}
    ),
    "text/html": "<html><head><title>Captive portal: sign in</title></head><body>Sign in</body></html>",
    "text/plain": "this is not a stream",
}


async def _respond(writer, status: int, ctype: str, body: str, extra: str = "") -> None:
    data = body.encode()
    phrase = _PHRASES.get(status, "Error")
    writer.write(
        (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n"
        ).encode()
        + data
    )
    await writer.drain()


_PHRASES = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


async def _error_response(writer, api: str, b: Behaviour) -> None:
    status = b.status or 503
    message = {
        401: "Incorrect API key provided",
        429: "Rate limit reached: slow down",
        500: "The server had an error while processing your request",
        503: "The engine is currently overloaded, please try again later",
    }.get(status, f"demo server error {status}")
    extra = f"Retry-After: {b.retry_after}\r\n" if b.retry_after is not None else ""
    if b.error_body == "html":
        phrase = _PHRASES.get(status, "Error")
        body = f"<html><head><title>{status} {phrase}</title></head><body><center><h1>{status} {phrase}</h1></center><hr><center>nginx</center></body></html>"
        await _respond(writer, status, "text/html", body, extra)
    elif b.error_body == "text":
        await _respond(writer, status, "text/plain", f"upstream error: {message}\n", extra)
    elif api == "anthropic":
        body = json.dumps({"type": "error", "error": {"type": "api_error", "message": message}})
        await _respond(writer, status, "application/json", body, extra)
    elif api == "ollama":
        await _respond(writer, status, "application/json", json.dumps({"error": message}), extra)
    else:
        body = json.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": None}})
        await _respond(writer, status, "application/json", body, extra)


async def _model_list(writer, path: str, headers: Dict[str, str], b: Behaviour) -> None:
    """The model list in the shape the asking API expects: Ollama's for /api/tags, Anthropic's
    when the request carries `anthropic-version`, else OpenAI's. `status` and `content_type`
    break it as they break a stream."""
    api = "ollama" if path.endswith("/api/tags") else "anthropic" if "anthropic-version" in headers else "openai-chat"
    if b.status is not None:
        await _error_response(writer, api, b)
        return
    if b.content_type is not None:
        await _respond(writer, 200, b.content_type, _NON_STREAM_BODIES.get(b.content_type, "<html><head><title>Welcome to nginx!</title></head></html>"))
        return
    names = b.models.split(",") if b.models is not None else [DEMO_MODEL]
    if api == "ollama":
        body: Any = {"models": [{"name": n, "model": n, "modified_at": "2026-01-01T00:00:00Z", "size": 0} for n in names]}
    elif api == "anthropic":
        items = [{"type": "model", "id": n, "display_name": n, "created_at": "2026-01-01T00:00:00Z"} for n in names]
        body = {"data": items, "has_more": False, "first_id": names[0] if names else None, "last_id": names[-1] if names else None}
    else:
        body = {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "llmchat"} for n in names]}
    await _respond(writer, 200, "application/json", json.dumps(body))


# --- wire formats --------------------------------------------------------------------------


def _sse(data: str, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


class _ChatWire:
    def __init__(self, model: str, usage: bool) -> None:
        self.model = model
        self.usage = usage
        self._prefix = json.dumps({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": int(time.time()), "model": model})[:-1]

    def _chunk(self, delta: dict, finish: Optional[str] = None) -> bytes:
        choices = json.dumps([{"index": 0, "delta": delta, "finish_reason": finish}])
        return b"data: " + f'{self._prefix}, "choices": {choices}}}'.encode() + b"\n\n"

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, token: str) -> bytes:
        return self._chunk({"content": token})

    def reasoning(self, token: str) -> bytes:
        return self._chunk({"reasoning_content": token})

    def error(self, message: str) -> bytes:
        return _sse(json.dumps({"error": {"message": message, "type": "server_error"}}))

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        out = self._chunk({}, reason)
        if self.usage:
            usage = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
            out += b"data: " + f'{self._prefix}, "choices": [], "usage": {json.dumps(usage)}}}'.encode() + b"\n\n"
        return out + b"data: [DONE]\n\n"


class _ResponsesWire:
    def __init__(self, model: str, usage: bool) -> None:
        self.model = model
        self.usage = usage
        self.seq = 0

    def _event(self, kind: str, **payload: Any) -> bytes:
        self.seq += 1
        return _sse(json.dumps({"type": kind, "sequence_number": self.seq, **payload}), kind)

    def _response(self, status: str, **extra: Any) -> dict:
        return {"id": "resp_demo", "object": "response", "model": self.model, "status": status, **extra}

    def start(self) -> bytes:
        return (
            self._event("response.created", response=self._response("in_progress"))
            + self._event("response.in_progress", response=self._response("in_progress"))
            + self._event("response.output_item.added", output_index=0, item={"id": "msg_demo", "type": "message", "role": "assistant", "content": []})
            + self._event("response.content_part.added", item_id="msg_demo", output_index=0, content_index=0, part={"type": "output_text", "text": ""})
        )

    def text(self, token: str) -> bytes:
        return self._event("response.output_text.delta", item_id="msg_demo", output_index=0, content_index=0, delta=token)

    def reasoning(self, token: str) -> bytes:
        return self._event("response.reasoning_summary_text.delta", item_id="rs_demo", output_index=0, summary_index=0, delta=token)

    def error(self, message: str) -> bytes:
        return self._event("error", code="server_error", message=message, param=None)

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
        extra = {"usage": usage} if self.usage else {}
        if reason == "length":
            return self._event("response.incomplete", response=self._response("incomplete", incomplete_details={"reason": "max_output_tokens"}, **extra))
        return self._event("response.output_text.done", item_id="msg_demo", output_index=0, content_index=0, text="") + self._event(
            "response.completed", response=self._response("completed", **extra)
        )


class _AnthropicWire:
    def __init__(self, model: str, usage: bool) -> None:
        self.model = model
        self.usage = usage
        self.block: Optional[str] = None
        self.index = -1

    def _event(self, kind: str, **payload: Any) -> bytes:
        return _sse(json.dumps({"type": kind, **payload}), kind)

    def _open(self, kind: str) -> bytes:
        out = b""
        if self.block is not None:
            out += self._event("content_block_stop", index=self.index)
        self.index += 1
        self.block = kind
        empty = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": ""}
        return out + self._event("content_block_start", index=self.index, content_block=empty)

    def start(self) -> bytes:
        message = {"id": "msg_demo", "type": "message", "role": "assistant", "model": self.model, "content": [], "stop_reason": None, "usage": {"input_tokens": 0, "output_tokens": 1}}
        return self._event("message_start", message=message) + self._event("ping")

    def text(self, token: str) -> bytes:
        head = self._open("text") if self.block != "text" else b""
        return head + self._event("content_block_delta", index=self.index, delta={"type": "text_delta", "text": token})

    def reasoning(self, token: str) -> bytes:
        head = self._open("thinking") if self.block != "thinking" else b""
        return head + self._event("content_block_delta", index=self.index, delta={"type": "thinking_delta", "thinking": token})

    def error(self, message: str) -> bytes:
        return self._event("error", error={"type": "overloaded_error", "message": message})

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        out = self._event("content_block_stop", index=self.index) if self.block is not None else b""
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens} if self.usage else None
        stop = "max_tokens" if reason == "length" else "end_turn"
        delta: Dict[str, Any] = {"delta": {"stop_reason": stop, "stop_sequence": None}}
        if usage:
            delta["usage"] = usage
        return out + self._event("message_delta", **delta) + self._event("message_stop")


class _OllamaWire:
    def __init__(self, model: str, usage: bool) -> None:
        self.model = model
        self.usage = usage
        self._head = json.dumps({"model": model, "created_at": "2026-01-01T00:00:00Z"})[:-1]

    def _line(self, message: dict, **extra: Any) -> bytes:
        tail = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items())
        return f'{self._head}, "message": {json.dumps(message)}{tail}}}\n'.encode()

    def start(self) -> bytes:
        return b""

    def text(self, token: str) -> bytes:
        return self._line({"role": "assistant", "content": token}, done=False)

    def reasoning(self, token: str) -> bytes:
        return self._line({"role": "assistant", "content": "", "thinking": token}, done=False)

    def error(self, message: str) -> bytes:
        return (json.dumps({"error": message}) + "\n").encode()

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        extra: Dict[str, Any] = {"done": True, "done_reason": reason, "total_duration": 1}
        if self.usage:
            extra.update(prompt_eval_count=input_tokens, eval_count=output_tokens)
        return self._line({"role": "assistant", "content": ""}, **extra)


_WIRES: Dict[str, Callable[..., Any]] = {
    "openai-chat": _ChatWire,
    "openai-responses": _ResponsesWire,
    "anthropic": _AnthropicWire,
    "ollama": _OllamaWire,
}


class ServerThread:
    """The server on its own event loop in a background thread: for tests and benchmarks.

    `wait_for(predicate)` blocks until the predicate holds over the recorded requests.
    """

    def __init__(self, behaviour: Behaviour = Behaviour(), port: int = 0) -> None:
        self._changed = threading.Condition()
        self.server = FakeLLMServer(behaviour, port=port, on_change=self._notify)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-llm-server", daemon=True)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> List[RecordedRequest]:
        return self.server.requests

    def base_url(self, api: str, **options: Any) -> str:
        """The base URL a client for `api` should use, with per-request options."""
        from urllib.parse import quote

        prefix = ""
        if options:
            pairs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in options.items())
            prefix = f"/o/{pairs}"
        suffix = "/v1" if api.startswith("openai") else ""
        return f"{self.url}{prefix}{suffix}"

    def wait_for(self, predicate: Callable[[List[RecordedRequest]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.server.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True
