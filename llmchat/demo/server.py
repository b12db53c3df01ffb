"""A fake LLM server on loopback that speaks all four streaming APIs.

It serves the demo model and every test and benchmark. It can be told, for the whole server
or per request, how long the answer is, how fast it streams, how long before the first token,
to stall, to drop the connection, to end without the terminal signal, or to answer with an
HTTP error; and to read the APIs the way other servers do (a whole JSON answer for a streamed
request, several choices, content parts, tool calls, cache and timing figures) or to be
hostile (huge or deeply nested lines, absurd usage, long or key-echoing errors, keep-alives or
headers trickled forever).

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
from dataclasses import dataclass, field, fields, replace
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
    # --- servers that read the APIs their own way, and hostile ones ---
    whole: bool = False  # ignore `stream: true`: 200 application/json with the whole answer
    choices: int = 1  # openai-chat: this many choices (n > 1), their chunks interleaved
    parts: bool = False  # openai-chat: content as a list of parts, not a string
    tool: Optional[str] = None  # answer with a call of this tool (arguments TOOL_ARGUMENTS)
    # A scripted tool-calling turn: `name:{json};name:{json}` (llmchat.demo.scripted_tools). The
    # answer is these calls until the request carries their results, then a text quoting them.
    tools: Optional[str] = None
    tool_rounds: int = 1  # with `tools`: call them again until the conversation holds this many answers with calls
    cache_read: int = 0  # anthropic: input tokens read from the prompt cache
    server_rate: float = 0.0  # the server's own tok/s (llama.cpp `timings`, Ollama `eval_duration`)
    usage_raw: Optional[str] = None  # this JSON text as the output token count (e.g. 1e30, "7")
    error_message: Optional[str] = None  # the text of the error for `status` and `error_after`
    error_size: int = 0  # pad that error message to this many characters
    error_sse: bool = False  # the body for `status` framed as SSE (`data: {"error": ...}`)
    big_line: int = 0  # before the answer, one SSE data line (or NDJSON line) of this many bytes
    nested: int = 0  # before the answer, a JSON payload nested this deep
    trickle: float = 0.0  # while stalled (stall_after), a keep-alive comment every this many s
    slow_headers: float = 0.0  # send the response head one byte per this many seconds

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
    prompt: str = ""  # the last user message's text, without the text files inlined in it
    received: List[Any] = field(default_factory=list)  # its attachments (llmchat.demo.inputs.Received)
    earlier: int = 0  # attachments earlier user messages carry, sent again
    declared_tools: List[str] = field(default_factory=list)  # the names of the tools the request offered
    tool_results: List[Any] = field(default_factory=list)  # the results it sent back (scripted_tools.Result)
    tool_calls: List[Any] = field(default_factory=list)  # the calls the answer made (scripted_tools.Call)
    size: int = 0  # the body's bytes


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
        record = RecordedRequest(method, path, target, options, headers, body, size=len(raw_body))
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
        if not await _read_inputs(writer, api, body, record):
            return
        if behaviour.tools is not None or b'"tool' in raw_body or b'"function_call' in raw_body:
            scripted = await _read_tools(writer, api, body, behaviour, record)
            if scripted is None:
                return
            behaviour = scripted
        if behaviour.whole:
            await self._whole(writer, api, body, behaviour, record)
            return
        if behaviour.content_type is not None:
            await _respond(
                writer,
                200,
                behaviour.content_type,
                _NON_STREAM_BODIES.get(behaviour.content_type, "<html><head><title>Welcome to nginx!</title></head></html>"),
            )
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
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {ctype}\r\n{encoding}"
            "Cache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        # EOF from the client while we stream means it went away (cancelled).
        gone = asyncio.ensure_future(reader.read(1))
        try:
            if behaviour.slow_headers:  # a head that never quite arrives: each byte resets a read timeout
                for index in range(len(head)):
                    writer.write(head[index : index + 1])
                    await writer.drain()
                    if await _wait_or_gone(gone, behaviour.slow_headers):
                        record.outcome = "disconnected"
                        return
            else:
                writer.write(head)
            if behaviour.empty:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                record.outcome = "complete"
                return
            await self._send_answer(writer, api, body, behaviour, record, gone)
        finally:
            gone.cancel()

    async def _whole(self, writer, api, body, behaviour: Behaviour, record: RecordedRequest) -> None:
        """The answer as one JSON object, the way the API answers without `stream: true`."""
        tokens = _answer(record, behaviour)
        wire = _WIRES[api](body.get("model") or DEMO_MODEL, usage=behaviour.usage, behaviour=behaviour)
        wire.calls = record.tool_calls
        answer = wire.whole("".join(tokens), behaviour.finish, len(tokens), _count_prompt(body))
        ctype = "application/x-ndjson" if api == "ollama" else "application/json"
        await _respond(writer, 200, ctype, _with_raw_count(json.dumps(answer).encode(), behaviour).decode())
        record.tokens_sent = len(tokens)
        record.outcome = "complete"

    async def _send_answer(self, writer, api, body, behaviour, record, gone) -> None:
        compressor = zlib.compressobj(wbits=31) if behaviour.gzip else None  # 31: gzip container
        tokens = _answer(record, behaviour)
        model = body.get("model") or DEMO_MODEL
        wire = _WIRES[api](model, usage=behaviour.usage and _wants_usage(api, body), behaviour=behaviour)
        pieces: List[bytes] = [wire.start()]
        if behaviour.big_line:  # a keep-alive of hostile size: an SSE comment, or blank NDJSON
            pieces.append(b" " * behaviour.big_line + b"\n" if api == "ollama" else b":" + b"x" * behaviour.big_line + b"\n\n")
        if behaviour.nested:
            deep = b"[" * behaviour.nested + b"]" * behaviour.nested
            pieces.append(deep + b"\n" if api == "ollama" else b"data: " + deep + b"\n\n")
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
            if behaviour.trickle:  # stalled, but a keep-alive now and then keeps a read timeout away
                keep_alive = b"\n" if api == "ollama" else b": keep-alive\n\n"
                for _ in range(int(600 / behaviour.trickle)):
                    if await _wait_or_gone(gone, behaviour.trickle):
                        break
                    pieces.append(keep_alive)
                    await self._flush(writer, pieces, compressor)
            else:
                await _wait_or_gone(gone, 600.0)
            record.outcome = "disconnected" if gone.done() else "stalled"
            return
        if behaviour.drop_after is not None and sent >= behaviour.drop_after:
            await self._flush(writer, pieces, compressor)
            record.outcome = "dropped"
            writer.transport.abort()  # no terminating chunk: the body is truncated
            return
        if behaviour.error_after is not None and sent >= behaviour.error_after:
            pieces.append(wire.error(_error_text(behaviour, "the demo server was told to fail mid-stream")))
            outcome = "error"
        elif behaviour.tool:
            pieces.append(wire.tool_call(behaviour.tool, TOOL_ARGUMENTS))
            pieces.append(wire.finish("tool_calls", len(reasoning) + len(tokens) + 9, _count_prompt(body)))
            outcome = "complete"
        elif record.tool_calls:
            pieces.append(wire.tool_calls(record.tool_calls))
            pieces.append(wire.finish("tool_calls", len(reasoning) + 9 * len(record.tool_calls), _count_prompt(body)))
            outcome = "complete"
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


async def _read_inputs(writer, api: str, body: dict, record: RecordedRequest) -> bool:
    """Check the request's attachments as the API does and note what arrived; False when the
    request got the API's 400 for a malformed part."""
    if not _may_carry_attachments(api, body):
        record.prompt = _last_user_text(api, body)
        return True
    from llmchat.demo import inputs  # not imported for plain text: the demo model's --raw start-up stays as it was

    try:
        record.received, record.earlier = inputs.received(api, body)
    except inputs.Invalid as invalid:
        await _respond(writer, 400, "application/json", json.dumps(inputs.error_body(api, invalid)))
        record.outcome = "error"
        return False
    record.prompt = inputs.inlined(_last_user_text(api, body))[0]
    return True


async def _read_tools(writer, api: str, body: dict, behaviour: Behaviour, record: RecordedRequest) -> Optional[Behaviour]:
    """Check the request's tool shapes as the API does (None: it got the API's 400) and script
    the answer: the calls of `tools` until the request carries results, then a text quoting them."""
    from llmchat.demo import inputs, scripted_tools  # only for a request with tools

    try:
        script = scripted_tools.parse(behaviour.tools) if behaviour.tools else []
    except ValueError as exc:
        await _respond(writer, 400, "application/json", json.dumps({"error": {"message": str(exc)}}))
        record.outcome = "error"
        return None
    try:
        found = scripted_tools.read(api, body)
    except inputs.Invalid as invalid:
        await _respond(writer, 400, "application/json", json.dumps(inputs.error_body(api, invalid)))
        record.outcome = "error"
        return None
    record.declared_tools, record.tool_results = found.tools, found.results
    if found.results and (not script or found.steps >= behaviour.tool_rounds):
        return replace(behaviour, text=scripted_tools.quote(found.results), tokens=None, tool=None)
    if script:
        record.tool_calls = scripted_tools.calls_for(api, script, found.steps + 1)
        return replace(behaviour, tool=None)
    return behaviour


def _may_carry_attachments(api: str, body: dict) -> bool:
    """Content parts, Ollama images or a text file's heading anywhere in the messages."""
    messages = body.get("input") if api == "openai-responses" else body.get("messages")
    if isinstance(messages, str):
        return "File: " in messages or "URL: " in messages
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, str) or "images" in message or "File: " in content or "URL: " in content:
            return True
    return False


def _answer(record: RecordedRequest, b: Behaviour) -> List[str]:
    if record.tool_calls:  # a tool-call-only answer
        return []
    described = ""
    if record.received:
        from llmchat.demo.inputs import describe

        described = describe(record.received)
    return answer_tokens(record.prompt, b.tokens, b.text, described, record.earlier)


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
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
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
        (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n").encode() + data
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


TOOL_ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'


def _error_text(b: Behaviour, default: str) -> str:
    message = b.error_message if b.error_message is not None else default
    if b.error_size > len(message):
        message += " " + "e" * (b.error_size - len(message) - 1)
    return message


async def _error_response(writer, api: str, b: Behaviour) -> None:
    status = b.status or 503
    message = _error_text(
        b,
        {
            401: "Incorrect API key provided",
            429: "Rate limit reached: slow down",
            500: "The server had an error while processing your request",
            503: "The engine is currently overloaded, please try again later",
        }.get(status, f"demo server error {status}"),
    )
    extra = f"Retry-After: {b.retry_after}\r\n" if b.retry_after is not None else ""
    if b.error_sse:  # LiteLLM, OpenRouter and others frame an error as an event even on a 500
        body = json.dumps({"error": {"message": message, "type": "server_error", "code": str(status)}})
        await _respond(writer, status, "text/event-stream", f"data: {body}\n\n", extra)
    elif b.error_body == "html":
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
        await _respond(
            writer, 200, b.content_type, _NON_STREAM_BODIES.get(b.content_type, "<html><head><title>Welcome to nginx!</title></head></html>")
        )
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


_RAW_OUTPUT = "__demo_raw_output_count__"  # replaced by `usage_raw` in the wire bytes


def _with_raw_count(data: bytes, b: Behaviour) -> bytes:
    if b.usage_raw is None:
        return data
    return data.replace(json.dumps(_RAW_OUTPUT).encode(), b.usage_raw.encode())


def _output_count(b: Behaviour, count: int) -> Any:
    return _RAW_OUTPUT if b.usage_raw is not None else count


def _fragments(text: str, size: int = 7) -> List[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class _ChatWire:
    def __init__(self, model: str, usage: bool, behaviour: Behaviour = Behaviour()) -> None:
        self.model = model
        self.usage = usage
        self.b = behaviour
        self.choices = max(1, behaviour.choices)
        self.calls: List[Any] = []  # scripted tool calls, for `whole`
        self._prefix = json.dumps({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": int(time.time()), "model": model})[:-1]

    def _chunk(self, delta: dict, finish: Optional[str] = None, index: int = 0, extra: str = "") -> bytes:
        choices = json.dumps([{"index": index, "delta": delta, "finish_reason": finish}])
        return b"data: " + f'{self._prefix}, "choices": {choices}{extra}}}'.encode() + b"\n\n"

    def start(self) -> bytes:
        return b"".join(self._chunk({"role": "assistant", "content": ""}, index=k) for k in range(self.choices))

    def text(self, token: str) -> bytes:
        content: Any = [{"type": "text", "text": token}] if self.b.parts else token
        out = self._chunk({"content": content})
        for k in range(1, self.choices):  # the other choices say something else, interleaved
            out += self._chunk({"content": f"<{k}>{token}"}, index=k)
        return out

    def reasoning(self, token: str) -> bytes:
        return self._chunk({"reasoning_content": token})

    def tool_call(self, name: str, arguments: str) -> bytes:
        first = {"index": 0, "id": "call_demo", "type": "function", "function": {"name": name, "arguments": ""}}
        out = self._chunk({"role": "assistant", "content": None, "tool_calls": [first]})
        for piece in _fragments(arguments):
            out += self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        return out

    def tool_calls(self, calls: List[Any]) -> bytes:
        """Scripted calls one after another, as OpenAI streams them: each call's id and name in
        its first delta, its arguments in small pieces, all under its `index`."""
        out = b""
        for k, call in enumerate(calls):
            first = {"index": k, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            out += self._chunk({"role": "assistant", "content": None, "tool_calls": [first]} if k == 0 else {"tool_calls": [first]})
            for piece in _fragments(call.arguments, 3):
                out += self._chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
        return out

    def error(self, message: str) -> bytes:
        return _sse(json.dumps({"error": {"message": message, "type": "server_error"}}))

    def _timings(self, output_tokens: int) -> str:
        if not self.b.server_rate:
            return ""
        ms = output_tokens / self.b.server_rate * 1000
        timings = {"predicted_n": output_tokens, "predicted_ms": ms, "predicted_per_second": self.b.server_rate}
        return f', "timings": {json.dumps(timings)}'

    def _usage(self, output_tokens: int, input_tokens: int) -> dict:
        return {
            "prompt_tokens": input_tokens,
            "completion_tokens": _output_count(self.b, output_tokens),
            "total_tokens": input_tokens + output_tokens,
        }

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        timings = self._timings(output_tokens)
        out = b"".join(self._chunk({}, reason, index=k, extra=timings if k == 0 else "") for k in range(self.choices))
        if self.usage:
            usage = self._usage(output_tokens, input_tokens)
            out += b"data: " + f'{self._prefix}, "choices": [], "usage": {json.dumps(usage)}{timings}}}'.encode() + b"\n\n"
        return _with_raw_count(out + b"data: [DONE]\n\n", self.b)

    def whole(self, text: str, reason: str, output_tokens: int, input_tokens: int) -> dict:
        message: Dict[str, Any] = {"role": "assistant", "content": text}
        if self.b.tool:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_demo", "type": "function", "function": {"name": self.b.tool, "arguments": TOOL_ARGUMENTS}}],
            }
            reason = "tool_calls"
        if self.calls:
            calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in self.calls]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            reason = "tool_calls"
        choices = [{"index": 0, "message": message, "finish_reason": reason}]
        choices += [{"index": k, "message": {"role": "assistant", "content": f"<{k}>"}, "finish_reason": reason} for k in range(1, self.choices)]
        answer: Dict[str, Any] = {
            "id": "chatcmpl-demo",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
        }
        if self.usage:
            answer["usage"] = self._usage(output_tokens, input_tokens)
        return answer


class _ResponsesWire:
    def __init__(self, model: str, usage: bool, behaviour: Behaviour = Behaviour()) -> None:
        self.model = model
        self.usage = usage
        self.b = behaviour
        self.seq = 0
        self.calls: List[Any] = []

    def _event(self, kind: str, **payload: Any) -> bytes:
        self.seq += 1
        return _sse(json.dumps({"type": kind, "sequence_number": self.seq, **payload}), kind)

    def _response(self, status: str, **extra: Any) -> dict:
        return {"id": "resp_demo", "object": "response", "model": self.model, "status": status, **extra}

    def start(self) -> bytes:
        return (
            self._event("response.created", response=self._response("in_progress"))
            + self._event("response.in_progress", response=self._response("in_progress"))
            + self._event(
                "response.output_item.added", output_index=0, item={"id": "msg_demo", "type": "message", "role": "assistant", "content": []}
            )
            + self._event(
                "response.content_part.added", item_id="msg_demo", output_index=0, content_index=0, part={"type": "output_text", "text": ""}
            )
        )

    def text(self, token: str) -> bytes:
        return self._event("response.output_text.delta", item_id="msg_demo", output_index=0, content_index=0, delta=token)

    def reasoning(self, token: str) -> bytes:
        return self._event("response.reasoning_summary_text.delta", item_id="rs_demo", output_index=0, summary_index=0, delta=token)

    def _call_item(self, name: str, arguments: str) -> dict:
        return {"id": "fc_demo", "type": "function_call", "status": "completed", "call_id": "call_demo", "name": name, "arguments": arguments}

    def tool_call(self, name: str, arguments: str) -> bytes:
        out = self._event("response.output_item.added", output_index=1, item={**self._call_item(name, ""), "status": "in_progress"})
        for piece in _fragments(arguments):
            out += self._event("response.function_call_arguments.delta", item_id="fc_demo", output_index=1, delta=piece)
        out += self._event("response.function_call_arguments.done", item_id="fc_demo", output_index=1, arguments=arguments)
        return out + self._event("response.output_item.done", output_index=1, item=self._call_item(name, arguments))

    def _scripted_item(self, call: Any, arguments: str, status: str = "completed") -> dict:
        return {
            "id": "fc_" + call.id.partition("_")[2],
            "type": "function_call",
            "status": status,
            "call_id": call.id,
            "name": call.name,
            "arguments": arguments,
        }

    def tool_calls(self, calls: List[Any]) -> bytes:
        """Each scripted call as its own output item: added, its arguments in small deltas, done."""
        out = b""
        for k, call in enumerate(calls, start=1):  # output 0 is the message start() opened
            item = self._scripted_item(call, "", "in_progress")
            out += self._event("response.output_item.added", output_index=k, item=item)
            for piece in _fragments(call.arguments, 3):
                out += self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=k, delta=piece)
            out += self._event("response.function_call_arguments.done", item_id=item["id"], output_index=k, arguments=call.arguments)
            out += self._event("response.output_item.done", output_index=k, item=self._scripted_item(call, call.arguments))
        return out

    def error(self, message: str) -> bytes:
        return self._event("error", code="server_error", message=message, param=None)

    def _usage(self, output_tokens: int, input_tokens: int) -> dict:
        return {"input_tokens": input_tokens, "output_tokens": _output_count(self.b, output_tokens), "total_tokens": input_tokens + output_tokens}

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        extra = {"usage": self._usage(output_tokens, input_tokens)} if self.usage else {}
        if reason == "length":
            return _with_raw_count(
                self._event(
                    "response.incomplete", response=self._response("incomplete", incomplete_details={"reason": "max_output_tokens"}, **extra)
                ),
                self.b,
            )
        return _with_raw_count(
            self._event("response.output_text.done", item_id="msg_demo", output_index=0, content_index=0, text="")
            + self._event("response.completed", response=self._response("completed", **extra)),
            self.b,
        )

    def whole(self, text: str, reason: str, output_tokens: int, input_tokens: int) -> dict:
        output: List[dict] = [
            {
                "id": "msg_demo",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
        if self.b.tool:
            output = [self._call_item(self.b.tool, TOOL_ARGUMENTS)]
        if self.calls:
            output = [self._scripted_item(c, c.arguments) for c in self.calls]
        extra: Dict[str, Any] = {"output": output}
        if self.usage:
            extra["usage"] = self._usage(output_tokens, input_tokens)
        if reason == "length":
            return self._response("incomplete", incomplete_details={"reason": "max_output_tokens"}, **extra)
        return self._response("completed", **extra)


class _AnthropicWire:
    def __init__(self, model: str, usage: bool, behaviour: Behaviour = Behaviour()) -> None:
        self.model = model
        self.usage = usage
        self.b = behaviour
        self.block: Optional[str] = None
        self.index = -1
        self.calls: List[Any] = []

    def _event(self, kind: str, **payload: Any) -> bytes:
        return _sse(json.dumps({"type": kind, **payload}), kind)

    def _open(self, kind: str, block: Optional[dict] = None) -> bytes:
        out = b""
        if self.block is not None:
            out += self._event("content_block_stop", index=self.index)
        self.index += 1
        self.block = kind
        empty = block or ({"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": ""})
        return out + self._event("content_block_start", index=self.index, content_block=empty)

    def _cache(self) -> dict:
        return {"cache_read_input_tokens": self.b.cache_read, "cache_creation_input_tokens": 0} if self.b.cache_read else {}

    def start(self) -> bytes:
        usage = {"input_tokens": 0, "output_tokens": 1, **self._cache()}
        message: dict = {
            "id": "msg_demo",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "usage": usage,
        }
        return self._event("message_start", message=message) + self._event("ping")

    def text(self, token: str) -> bytes:
        head = self._open("text") if self.block != "text" else b""
        return head + self._event("content_block_delta", index=self.index, delta={"type": "text_delta", "text": token})

    def reasoning(self, token: str) -> bytes:
        head = self._open("thinking") if self.block != "thinking" else b""
        return head + self._event("content_block_delta", index=self.index, delta={"type": "thinking_delta", "thinking": token})

    def tool_call(self, name: str, arguments: str) -> bytes:
        out = self._open("tool_use", {"type": "tool_use", "id": "toolu_demo", "name": name, "input": {}})
        for piece in _fragments(arguments):
            out += self._event("content_block_delta", index=self.index, delta={"type": "input_json_delta", "partial_json": piece})
        return out

    def tool_calls(self, calls: List[Any]) -> bytes:
        """Each scripted call as a `tool_use` block, its input in small `input_json_delta`s."""
        out = b""
        for call in calls:
            out += self._open("tool_use", {"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
            for piece in _fragments(call.arguments, 3):
                out += self._event("content_block_delta", index=self.index, delta={"type": "input_json_delta", "partial_json": piece})
        return out

    def error(self, message: str) -> bytes:
        return self._event("error", error={"type": "overloaded_error", "message": message})

    def _usage(self, output_tokens: int, input_tokens: int) -> dict:
        return {"input_tokens": input_tokens, "output_tokens": _output_count(self.b, output_tokens), **self._cache()}

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        out = self._event("content_block_stop", index=self.index) if self.block is not None else b""
        usage = self._usage(output_tokens, input_tokens) if self.usage else None
        stop = {"length": "max_tokens", "tool_calls": "tool_use"}.get(reason, "end_turn")
        delta: Dict[str, Any] = {"delta": {"stop_reason": stop, "stop_sequence": None}}
        if usage:
            delta["usage"] = usage
        return _with_raw_count(out + self._event("message_delta", **delta) + self._event("message_stop"), self.b)

    def whole(self, text: str, reason: str, output_tokens: int, input_tokens: int) -> dict:
        content: List[dict] = [{"type": "text", "text": text}]
        stop = "max_tokens" if reason == "length" else "end_turn"
        if self.b.tool:
            content = [{"type": "tool_use", "id": "toolu_demo", "name": self.b.tool, "input": json.loads(TOOL_ARGUMENTS)}]
            stop = "tool_use"
        if self.calls:
            content = [{"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)} for c in self.calls]
            stop = "tool_use"
        answer: Dict[str, Any] = {
            "id": "msg_demo",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
        }
        if self.usage:
            answer["usage"] = self._usage(output_tokens, input_tokens)
        return answer


class _OllamaWire:
    def __init__(self, model: str, usage: bool, behaviour: Behaviour = Behaviour()) -> None:
        self.model = model
        self.usage = usage
        self.b = behaviour
        self._head = json.dumps({"model": model, "created_at": "2026-01-01T00:00:00Z"})[:-1]
        self.calls: List[Any] = []

    def _line(self, message: dict, **extra: Any) -> bytes:
        tail = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items())
        return f'{self._head}, "message": {json.dumps(message)}{tail}}}\n'.encode()

    def start(self) -> bytes:
        return b""

    def text(self, token: str) -> bytes:
        return self._line({"role": "assistant", "content": token}, done=False)

    def reasoning(self, token: str) -> bytes:
        return self._line({"role": "assistant", "content": "", "thinking": token}, done=False)

    def tool_call(self, name: str, arguments: str) -> bytes:
        call = {"function": {"name": name, "arguments": json.loads(arguments)}}
        return self._line({"role": "assistant", "content": "", "tool_calls": [call]}, done=False)

    def _scripted(self, calls: List[Any]) -> List[dict]:
        return [{"function": {"index": k, "name": c.name, "arguments": json.loads(c.arguments)}} for k, c in enumerate(calls)]

    def tool_calls(self, calls: List[Any]) -> bytes:
        """Each scripted call whole, on a line of its own (Ollama streams no argument pieces)."""
        return b"".join(self._line({"role": "assistant", "content": "", "tool_calls": [call]}, done=False) for call in self._scripted(calls))

    def error(self, message: str) -> bytes:
        return (json.dumps({"error": message}) + "\n").encode()

    def _final(self, reason: str, output_tokens: int, input_tokens: int) -> Dict[str, Any]:
        # Ollama says "stop" after a tool call too.
        extra: Dict[str, Any] = {"done": True, "done_reason": "length" if reason == "length" else "stop", "total_duration": 1}
        if self.usage:
            extra.update(prompt_eval_count=input_tokens, eval_count=_output_count(self.b, output_tokens))
            if self.b.server_rate:
                extra["eval_duration"] = int(output_tokens / self.b.server_rate * 1e9)
        return extra

    def finish(self, reason: str, output_tokens: int, input_tokens: int) -> bytes:
        return _with_raw_count(self._line({"role": "assistant", "content": ""}, **self._final(reason, output_tokens, input_tokens)), self.b)

    def whole(self, text: str, reason: str, output_tokens: int, input_tokens: int) -> dict:
        message: Dict[str, Any] = {"role": "assistant", "content": text}
        if self.b.tool:
            message = {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": self.b.tool, "arguments": json.loads(TOOL_ARGUMENTS)}}],
            }
        if self.calls:
            message = {"role": "assistant", "content": "", "tool_calls": self._scripted(self.calls)}
        return {"model": self.model, "created_at": "2026-01-01T00:00:00Z", "message": message, **self._final(reason, output_tokens, input_tokens)}


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
