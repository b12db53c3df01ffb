"""StreamingClient: one request, read as bytes, framed, decoded into StreamEvents.

It retries only before the first token (connect errors, 408/429/5xx, honouring Retry-After,
bounded in count and total time); once text has been delivered a failure is reported, never
retried. Leaving the async iterator early, or cancelling the task that reads it, closes the
connection at once. Failures are events, not exceptions: the last event of every stream is a
`Finish` or a `StreamError`.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import httpx

from llmchat.conversation import ChatRequest
from llmchat.stream.early import EarlyConnection, proxies_configured
from llmchat.stream.events import StreamError, StreamEvent
from llmchat.stream.metrics import Metrics
from llmchat.stream.ndjson import NDJSONDecoder, NDJSONError
from llmchat.stream.protocol import HttpRequest, ProtocolError, Provider, StreamDecoder, error_message, one_line, redact
from llmchat.stream.sse import MAX_EVENT, SSEDecoder, SSEError
from llmchat.stream.warm import WarmBackend, warm_transport

T = TypeVar("T")

if sys.version_info >= (3, 11):
    from asyncio import timeout_at as _timeout_at
else:  # pragma: no cover - exercised on 3.10 only

    @asynccontextmanager
    async def _timeout_at(deadline: float) -> AsyncIterator[None]:
        """asyncio.timeout_at (3.11+) from anyio: the same TimeoutError at the same loop time."""
        import anyio

        with anyio.fail_after(deadline - anyio.current_time()):
            yield


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class RetryNotice:
    """Told to `on_retry` before the client waits and tries again."""

    attempt: int  # the attempt that is about to start, from 2
    max_attempts: int
    delay: float
    reason: str


class StreamingClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_retries: int = 3,
        retry_budget: float = 60.0,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_retry: Optional[Callable[[RetryNotice], None]] = None,
        verify: bool = True,
        max_time: Optional[float] = None,
        secrets: Sequence[str] = (),
    ) -> None:
        """`max_time`: seconds for the whole request, retries included (None: no limit), an
        error once exceeded; `secrets`: strings never to show in an error, beyond the
        request's key and the environment's keys."""
        self.read_timeout = read_timeout
        self.max_time = max_time
        self.secrets = tuple(secrets)
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self._clock = clock
        self._sleep = sleep
        self.on_retry = on_retry
        self._warm: Optional[WarmBackend] = None  # opens connections early (warm_up)
        self._kept = EncodedItems()  # the JSON of the last big body's messages (`_big_body`)
        self._warming: "Optional[asyncio.Future[None]]" = None  # `warm_body` at work
        if transport is None and not proxies_configured():  # httpx reads proxies only for its own transport
            transport, self._warm = warm_transport(verify)
        # trust_env: proxies (HTTP(S)_PROXY, NO_PROXY) and SSL_CERT_FILE as httpx reads them.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            trust_env=True,
            follow_redirects=False,
            verify=verify,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._warm is not None:
            await self._warm.aclose()

    def warm_up(self, url: str, early: Optional[EarlyConnection] = None) -> None:
        """Open the connection a request to `url` will be sent on, in the background, so the
        request does not wait for TCP and TLS (stream/warm.py). Fire and forget: it never
        delays or breaks a request, and does nothing when the connection is ready already,
        with an injected transport, or when a proxy may carry the request. `early` is a socket
        a thread is connecting (stream/early.py), taken instead of a new connect."""
        target = httpx.URL(url)
        if self._warm is None or target.scheme not in ("http", "https") or not target.host or proxies_configured():
            if early is not None:
                early.close()
            return
        port = target.port or (443 if target.scheme == "https" else 80)
        self._warm.preconnect(target.scheme, target.raw_host.decode("ascii"), port, self._http.timeout.connect, early)

    async def __aenter__(self) -> "StreamingClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def prepare(self, provider: Provider, request: ChatRequest) -> "Optional[asyncio.Future[Tuple[HttpRequest, List[bytes]]]]":
        """Start building `request`'s body now when it is big (a long conversation's: 1.4 MB of
        JSON for 1,000 turns), in a worker thread, e.g. while the face stores the prompt; give
        the result to `stream` as `prepared` with the same request. None for a small body
        (built as it is sent). A result not given to `stream` should be cancelled."""
        if _content_size(request) < BIG_BODY:
            return None
        self._stop_warming()  # what it encoded so far is kept; the thread encodes the rest
        return asyncio.ensure_future(asyncio.to_thread(_big_body, provider, request, self._kept))

    def warm_body(self, provider: Provider, build: Callable[[], ChatRequest]) -> None:
        """Encode the messages of the request `build` gives, when its body is big (a long
        conversation's earlier messages, while the user types the next): the body of the next
        request that sends them again (`prepare`, `stream`) then encodes only what is new. On
        the event loop, WARM_SLICE seconds at a time: in a thread it took the GIL from the loop
        for 5 ms at a time (the interpreter's switch interval) whenever the loop waited, and a
        key typed meanwhile waited 50-90 ms. Fire and forget (a failure is the request's to
        report); one at a time; stopped by the next `prepare` or `stream`."""
        if self._warming is not None and not self._warming.done():
            return
        warming = self._warming = asyncio.ensure_future(_warm_body(provider, build, self._kept))
        warming.add_done_callback(_retrieved)

    def _stop_warming(self) -> None:
        warming, self._warming = self._warming, None
        if warming is not None:
            warming.cancel()  # (suspended between two slices: `kept` is whole)

    async def stream(
        self,
        provider: Provider,
        request: ChatRequest,
        metrics: Optional[Metrics] = None,
        prepared: "Optional[Awaitable[Tuple[HttpRequest, List[bytes]]]]" = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer as StreamEvents; the last one is a Finish or a StreamError. `prepared`:
        what `prepare` returned for this request.

        Every StreamError, the server's own mid-stream ones included, arrives as one clean line
        of readable length with every key llmchat knows replaced by ***.
        """
        body: Optional[List[bytes]] = None  # a big body, serialised already (`_big_body`)
        if prepared is not None:
            spec, body = await prepared
        elif _content_size(request) < BIG_BODY:
            spec = provider.build_request(request)
        else:
            self._stop_warming()
            spec, body = await asyncio.to_thread(_big_body, provider, request, self._kept)
        started = self._clock()
        deadline = None if self.max_time is None else asyncio.get_running_loop().time() + self.max_time
        attempt = 1
        while True:
            failure: Optional[StreamError] = None
            retry_after: Optional[float] = None
            streaming = False  # a 200 arrived: whatever fails from now on is not retried
            decoder = provider.new_decoder()
            try:
                if metrics is not None:
                    metrics.start()
                if body is None:
                    outgoing = self._http.build_request("POST", spec.url, json=spec.json, headers=spec.headers)
                else:  # its pieces as they are, again on a retry
                    headers = httpx.Headers(spec.headers)
                    headers["Content-Type"] = "application/json"
                    headers["Content-Length"] = str(sum(len(piece) for piece in body))
                    outgoing = self._http.build_request("POST", spec.url, content=_pieces(body), headers=headers)
                response = await _before(deadline, self._http.send(outgoing, stream=True))
                try:
                    if response.status_code != 200:
                        failure = await _before(deadline, _http_failure(response))
                        retry_after = _retry_after(response.headers.get("retry-after"))
                    else:
                        streaming = True
                        ctype = _content_type(response)
                        if provider.framing == "sse" and _is_json(ctype):
                            # A server that ignored `stream: true`: its whole answer in one object.
                            whole = await _before(deadline, _whole_answer(decoder, response, ctype))
                            if metrics is not None:
                                metrics.arrived()
                            for event in whole:
                                if metrics is not None:
                                    metrics.observe(event)
                                yield self._clean(event, request) if type(event) is StreamError else event
                            return
                        failure = await _before(deadline, _content_type_failure(provider.framing, response))
                    if failure is None:
                        framing = SSEDecoder() if provider.framing == "sse" else NDJSONDecoder()
                        observe = metrics.observe if metrics is not None else _ignore
                        arrived = metrics.arrived if metrics is not None else _nothing
                        received = 0
                        chunks = response.aiter_bytes()
                        if deadline is not None:
                            chunks = _until(deadline, chunks)
                        try:
                            async for chunk in chunks:
                                arrived()  # its tokens carry this time, however slowly they are handled
                                received += len(chunk)
                                for item in framing.decode(chunk):
                                    events = decoder.feed(item)
                                    if decoder.done:  # the last events: an error among them is cleaned
                                        events = self._cleaned(events, request)
                                    for event in events:
                                        observe(event)
                                        yield event
                                    if decoder.done:
                                        return
                            if not received:
                                failure = StreamError("200 OK but the response body was empty", kind="protocol", status=200)
                            else:
                                arrived()  # the end of the body
                                for item in framing.flush():
                                    for event in self._cleaned(decoder.feed(item), request):
                                        observe(event)
                                        yield event
                                for event in self._cleaned(decoder.end(), request):
                                    observe(event)
                                    yield event
                                return
                        except (ProtocolError, NDJSONError, SSEError) as exc:
                            failure = StreamError(str(exc), kind="protocol")
                        except RecursionError:
                            failure = StreamError("the server sent JSON nested too deeply to read", kind="protocol")
                        except (TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError) as exc:
                            # JSON of an unexpected shape (e.g. a list where an object belongs).
                            failure = StreamError(f"unexpected data in the stream ({exc.__class__.__name__}: {exc})", kind="protocol")
                finally:
                    await response.aclose()
            except TimeoutError:  # --max-time (an httpx timeout is not a TimeoutError)
                failure = StreamError(f"gave up after {self.max_time:g} s: the answer took longer than --max-time", kind="timeout")
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = StreamError(f"cannot connect to {_origin(spec.url)}: {_reason(exc)}", kind="network")
            except httpx.ReadTimeout:
                failure = StreamError(
                    f"timed out: no data from {_origin(spec.url)} for {self.read_timeout:g} s",
                    kind="timeout",
                )
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                failure = StreamError(f"connection to {_origin(spec.url)} dropped: {_reason(exc)}", kind="network")
            except httpx.HTTPError as exc:  # anything else httpx raises: one line, no traceback
                failure = StreamError(f"{_reason(exc)} ({_origin(spec.url)})", kind="network")
                streaming = True

            assert failure is not None
            if streaming and decoder.pending_finish is not None and not decoder.done:
                # The answer was complete (its finish reason arrived); only the trailer was lost.
                for event in self._cleaned(decoder.end(), request):
                    if metrics is not None:
                        metrics.observe(event)
                    yield event
                return
            if not streaming and _retryable(failure) and attempt <= self.max_retries:
                delay = retry_after if retry_after is not None else min(8.0, 0.5 * 2 ** (attempt - 1))
                remaining = self.retry_budget - (self._clock() - started)
                if deadline is not None:
                    remaining = min(remaining, deadline - asyncio.get_running_loop().time())
                if delay <= remaining:
                    attempt += 1
                    if self.on_retry is not None:
                        self.on_retry(RetryNotice(attempt, self.max_retries + 1, delay, self._clean(failure, request).message))
                    await self._sleep(delay)
                    continue
            failure = self._clean(failure, request)
            if failure.status == 401 and not request.api_key and request.api_key_env:
                failure = StreamError(f"{failure.message} (no API key was sent: set {request.api_key_env})", failure.kind, 401)
            if metrics is not None:
                metrics.observe(failure)
            yield failure
            return

    def _clean(self, error: StreamError, request: ChatRequest) -> StreamError:
        """The error as one line of readable length, with no key llmchat knows in it."""
        secrets = _known_keys(request.api_key, self.secrets)
        message = one_line(redact(error.message, secrets))  # redacted before it is cut
        if message == error.message:
            return error
        return StreamError(message or "the server reported an error without a message", error.kind, error.status)

    def _cleaned(self, events: Sequence[StreamEvent], request: ChatRequest) -> Sequence[StreamEvent]:
        if not any(type(event) is StreamError for event in events):
            return events
        return [self._clean(event, request) if type(event) is StreamError else event for event in events]

    async def list_models(self, provider: Provider, base_url: str, api_key: Optional[str] = None) -> List[str]:
        """The server's model names, sanitised, sorted, without duplicates.

        Raises:
            ModelListError: one line that says why (network, HTTP status, not a model list);
                it never contains the key.
        """
        spec = provider.models_request(base_url, api_key)
        try:
            names = await self._fetch_models(provider, spec)
        except ModelListError as exc:
            message = str(exc)
            if api_key and api_key in message:  # never echo a key
                message = message.replace(api_key, "***")
            raise ModelListError(clean_name(message)) from None  # it quotes the server
        return sorted({clean_name(name) for name in names} - {""}, key=str.casefold)

    async def _fetch_models(self, provider: Provider, spec: HttpRequest) -> List[str]:
        origin = _origin(spec.url)
        timeout = httpx.Timeout(min(self.read_timeout, MODEL_LIST_TIMEOUT), connect=self._http.timeout.connect)
        try:
            async with self._http.stream("GET", spec.url, headers=spec.headers, timeout=timeout) as response:
                if response.status_code != 200:
                    raise ModelListError((await _http_failure(response)).message)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MODEL_LIST_LIMIT:
                        raise ModelListError(f"the model list from {origin} is larger than {MODEL_LIST_LIMIT // 2**20} MiB")
                ctype = response.headers.get("content-type", "")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ModelListError(f"cannot connect to {origin}: {_reason(exc)}") from None
        except httpx.TimeoutException:
            raise ModelListError(f"timed out waiting for the model list from {origin}") from None
        except httpx.HTTPError as exc:
            raise ModelListError(f"connection to {origin} failed: {_reason(exc)}") from None
        try:
            data = json.loads(body)
        except ValueError:
            said = describe_body(bytes(body), ctype)
            raise ModelListError(f"{origin} did not send JSON ({ctype or 'no content type'})" + (f": {said}" if said else "")) from None
        try:
            return provider.parse_models(data)
        except ProtocolError as exc:
            raise ModelListError(f"{exc} ({spec.url.split('?')[0]})") from None


class ModelListError(Exception):
    """The server's model list could not be had; the message is one line."""


MODEL_LIST_TIMEOUT = 15.0
MODEL_LIST_LIMIT = 8 * 2**20
# Invisible direction marks (ALM, LRM, RLM): harmless in prose, but a name holding one would not
# match what the user types.
_MARKS = dict.fromkeys((0x061C, 0x200E, 0x200F))


# --- big bodies -------------------------------------------------------------------------------
#
# A request carrying a 10 MB PDF has ~13.4 MB of base64 in its JSON body. Serialised on the
# event loop (httpx's json=) that stalled the loop for 130-250 ms (tests/benchmarks/README.md):
# no key, no frame in the TUI meanwhile. A worker thread alone does not help: json.dumps of one
# long string is one C call that holds the GIL throughout. So a big body is built in a worker
# thread *in pieces*: the JSON around its long strings is serialised as usual, each long string
# 256 K characters at a time, and the pieces are sent as they are (no join: no new 13 MB object).
# Between two pieces the loop gets the GIL back. Small bodies keep httpx's json= exactly.

BIG_BODY = 1024 * 1024  # characters of text and bytes of attachments a request carries
_PIECE = 256 * 1024  # characters of one long string serialised at a time
WARM_SLICE = 0.002  # seconds `warm_body` encodes for before it lets the event loop run


def _content_size(request: ChatRequest) -> int:
    """About how large the request's body will be: its messages' text and attachments."""
    size = 0
    for message in request.messages:
        size += len(message.content)
        if message.attachments:
            size += sum(item.size for item in message.attachments)
    return size


def _big_body(provider: Provider, request: ChatRequest, kept: Optional["EncodedItems"] = None) -> "Tuple[HttpRequest, List[bytes]]":
    """The request (built here: a data URL is a new long string) and its JSON body in pieces,
    byte for byte what httpx's json= would send. Runs in a worker thread. `kept`: the messages
    encoded for the last big body, reused (and replaced by this body's)."""
    spec = provider.build_request(request)
    return spec, json_pieces(spec.json, kept=kept)


async def _warm_body(provider: Provider, build: Callable[[], ChatRequest], kept: "EncodedItems") -> None:
    """`StreamingClient.warm_body`: the text messages of `build()`'s top-level lists into `kept`."""
    request = build()
    await asyncio.sleep(0)
    if _content_size(request) < BIG_BODY:
        return
    value = provider.build_request(request).json
    if type(value) is not dict:
        return
    items = kept.items  # added to; the next body built keeps only its own
    started = time.perf_counter()
    for node in value.values():
        if type(node) is not list:
            continue
        for n, item in enumerate(node):
            key = _simple(item, _PIECE)
            if key is not None and key not in items:
                items[key] = _ENCODER.encode(item).encode("utf-8")
                kept.encoded += 1
            if n % 16 == 15 and time.perf_counter() - started >= WARM_SLICE:
                await asyncio.sleep(0)  # keys and frames first
                started = time.perf_counter()


def _retrieved(done: "asyncio.Future[None]") -> None:
    if not done.cancelled():
        done.exception()


class EncodedItems:
    """The JSON of the messages of the last big body built (`json_pieces`), by their content.

    A message sent in a long conversation sends all the earlier ones again, the same dicts with
    the same text: encoded once, their JSON is reused at the next send and only the new
    messages are encoded (1,000 turns: 1.4 MB of JSON, 15-35 ms of encoding that holds the
    GIL). Only what the last body held is kept: a conversation's worth of bytes, no more."""

    def __init__(self) -> None:
        self.items: Dict[Tuple[Tuple[str, str], ...], bytes] = {}
        self.encoded = 0  # messages encoded (not found here) so far: for tests


def _simple(item: object, piece: int) -> Optional[Tuple[Tuple[str, str], ...]]:
    """`item`'s key in EncodedItems: a dict of short strings (a message of text: role and
    content), else None (attachments, tool calls: encoded each time)."""
    if type(item) is not dict:
        return None
    for key, value in item.items():
        if type(key) is not str or type(value) is not str or len(value) > piece:
            return None
    return tuple(item.items())


def json_pieces(value: object, piece: int = _PIECE, kept: Optional[EncodedItems] = None) -> List[bytes]:
    """`value` as compact UTF-8 JSON (httpx's json=: ensure_ascii=False, no spaces, no NaN), in
    pieces: no piece holds more than `piece` characters of one string, so no single step of the
    work holds the GIL long. b"".join(json_pieces(v)) == httpx's body for v.

    With `kept`, the items of `value`'s lists (a request's messages) are encoded one by one,
    those of text found in `kept` not again, and `kept` then holds this body's."""
    long: List[str] = []
    lists: List[list] = []
    nonce = os.urandom(8).hex()  # a mark no text of the request's can forge

    def swap(node: object) -> object:
        if type(node) is str:
            if len(node) <= piece:
                return node
            long.append(node)
            return f"\x00{nonce}:{len(long) - 1}\x00"  # in the JSON: "\u0000<nonce>:N\u0000"
        if type(node) is dict:
            return {key: swap(item) for key, item in node.items()}
        if isinstance(node, (list, tuple)):
            return [swap(item) for item in node]
        return node

    def outer(node: object) -> object:  # the top level: its lists are encoded item by item
        if type(node) is list:
            lists.append(node)
            return f"\x00{nonce}:L{len(lists) - 1}\x00"
        return swap(node)

    top = {key: outer(item) for key, item in value.items()} if kept is not None and type(value) is dict else swap(value)
    outline = json.dumps(top, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not long and not lists:
        return [outline.encode("utf-8")]
    pieces: List[bytes] = []
    now: Dict[Tuple[Tuple[str, str], ...], bytes] = {}  # the messages of this body (`kept`)
    at = 0
    for mark in re.finditer(r'"\\u0000' + nonce + r':(L?)(\d+)\\u0000"', outline):
        before = outline[at : mark.start()].encode("utf-8")
        at = mark.end()
        if mark.group(1):
            assert kept is not None
            pieces.append(before + b"[")
            _encode_items(lists[int(mark.group(2))], piece, kept, now, pieces)
            pieces.append(b"]")
            continue
        pieces.append(before + b'"')
        text = long[int(mark.group(2))]
        for start in range(0, len(text), piece):
            pieces.append(json.dumps(text[start : start + piece], ensure_ascii=False)[1:-1].encode("utf-8"))
        pieces.append(b'"')
    pieces.append(outline[at:].encode("utf-8"))
    if kept is not None and lists:
        kept.items = now  # only this body's: what is kept stays one conversation's worth
    return pieces


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # json.dumps's, made once


def _encode_items(items: list, piece: int, kept: EncodedItems, now: Dict[Tuple[Tuple[str, str], ...], bytes], pieces: List[bytes]) -> None:
    """A list's items as JSON separated by commas, into `pieces` (of about `piece` bytes): a
    message of text from `kept` when it was encoded for the last body, and into `now`."""
    old = kept.items
    run: List[bytes] = []
    size = 0
    for n, item in enumerate(items):
        key = _simple(item, piece)
        if key is None:
            encoded = json_pieces(item, piece)
        else:
            data = old.get(key)
            if data is None:
                data = _ENCODER.encode(item).encode("utf-8")
                kept.encoded += 1
            now[key] = data
            encoded = [data]
        if n:
            run.append(b",")
            size += 1
        for part in encoded:
            run.append(part)
            size += len(part)
            if size >= piece:
                pieces.append(b"".join(run))
                run, size = [], 0
    if run:
        pieces.append(b"".join(run))


async def _pieces(body: List[bytes]) -> AsyncIterator[bytes]:
    for piece in body:
        yield piece


def clean_name(name: str) -> str:
    """A name (or words) from a server, safe to show on one line."""
    return one_line(name).translate(_MARKS)


async def _before(deadline: Optional[float], awaitable: Awaitable[T]) -> T:
    """`awaitable`, given up (TimeoutError) at the loop time `deadline` (None: never)."""
    if deadline is None:
        return await awaitable
    async with _timeout_at(deadline):
        return await awaitable


async def _until(deadline: float, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks, until the loop time `deadline` (then TimeoutError). Only with --max-time:
    the timeout costs a timer per chunk."""
    iterator = chunks.__aiter__()
    while True:
        async with _timeout_at(deadline):
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
        yield chunk


def _known_keys(api_key: Optional[str], extra: Sequence[str]) -> List[str]:
    """Every key llmchat knows: the request's, the ones the face named, and any in the
    environment under a name that says it holds a key or token (profiles may name any)."""
    keys = [api_key] if api_key else []
    keys.extend(extra)
    for name, value in os.environ.items():
        upper = name.upper()
        if len(value) >= 8 and ("KEY" in upper or "TOKEN" in upper or "SECRET" in upper):
            keys.append(value)
    return sorted(set(keys), key=len, reverse=True)  # longest first: a key inside another


def _ignore(event: StreamEvent) -> None:
    pass


def _nothing() -> None:
    pass


def tls_may_be_needed(url: str) -> bool:
    """False only for a plain-http URL with no proxy configured: then no certificate store is
    needed, and loading it costs ~35 ms of start-up. Anything else keeps full verification."""
    if not url.startswith("http://"):
        return True
    proxies = ("all_proxy", "http_proxy", "https_proxy")
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in proxies)


def _retryable(failure: StreamError) -> bool:
    if failure.kind == "network":
        return True
    return failure.kind == "http" and failure.status in RETRY_STATUSES


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.host}{port}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # only for the rare HTTP-date form

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _http_failure(response: httpx.Response) -> StreamError:
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass  # the status alone still says what happened
    status = response.status_code
    phrase = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    said = describe_body(body, response.headers.get("content-type", ""))
    message = f"{status} {phrase}".strip()
    if said and not said.startswith(message):  # an HTML error page's title often is the status
        message += f": {said}"
    elif said:
        message = said
    return StreamError(message, kind="http", status=status)


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json(ctype: str) -> bool:
    return ctype == "application/json" or ctype.endswith("+json")


async def _whole_answer(decoder: StreamDecoder, response: httpx.Response, ctype: str) -> Sequence[StreamEvent]:
    """The events of a 200 whose body is one JSON object instead of a stream: the answer, when
    it is one of this API's answers; else the protocol error that says what came instead."""
    parts: List[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_EVENT:
            mb = MAX_EVENT / (1024 * 1024)
            return (StreamError(f"the server answered with a JSON body larger than {mb:g} MB", kind="protocol", status=200),)
    body = b"".join(parts)
    if not body.strip():
        return (StreamError("200 OK but the response body was empty", kind="protocol", status=200),)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    else:
        try:
            return decoder.whole(parsed)
        except (ProtocolError, TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError, RecursionError):
            pass
    # Quote the server only where it said something (an error); a random JSON field is noise.
    said = describe_body(body, ctype) if parsed is None or _has_words(parsed) else ""
    message = f"200 OK but the server sent {ctype}, not text/event-stream, and it is not an answer"
    return (StreamError(message + (f": {said}" if said else ""), kind="protocol", status=200),)


def _has_words(parsed: object) -> bool:
    return isinstance(parsed, dict) and any(key in parsed for key in ("error", "message", "detail"))


async def _content_type_failure(framing: str, response: httpx.Response) -> Optional[StreamError]:
    ctype = _content_type(response)
    if framing == "sse":
        ok = ctype == "text/event-stream"
    else:
        ok = ctype in ("application/x-ndjson", "application/jsonl", "application/json", "")
    if ok:
        return None
    failure = await _http_failure(response)  # quotes the body, e.g. a proxy's HTML page
    said = failure.message.partition(": ")[2]
    expected = "text/event-stream" if framing == "sse" else "application/x-ndjson"
    message = f"200 OK but the server sent {ctype or 'no content type'}, not {expected}"
    return StreamError(message + (f": {said}" if said else ""), kind="protocol", status=200)


_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


def describe_body(body: bytes, content_type: str = "") -> str:
    """The server's own words from an error body: JSON error, HTML page or plain text."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    if text[:1] in "{[":
        try:
            return _one_line(error_message(json.loads(text)))
        except (ValueError, RecursionError):
            pass
    if text.startswith(("data:", "event:", ":")):  # an error framed as SSE: its data, not the framing
        return _one_line(_sse_error(body))
    if "html" in content_type.lower() or text[:1] == "<":
        title = _TITLE.search(text)
        if title:
            return _one_line(html.unescape(title.group(1)))
        return _one_line(html.unescape(_TAG.sub(" ", text)))
    return _one_line(text)


def _sse_error(body: bytes) -> str:
    """The message in an error body framed as server-sent events (`data: {"error": ...}`)."""
    framing = SSEDecoder()
    said = []
    try:
        events = framing.decode(body + b"\n\n")
    except SSEError:
        events = []
    for event in events:
        data = event.data.strip()
        if not data or data == "[DONE]":
            continue
        try:
            said.append(error_message(json.loads(data)))
        except (ValueError, RecursionError):
            said.append(data)
        if said[-1]:
            return said[-1]
    return ""


def _one_line(text: str, limit: int = 300) -> str:
    return one_line(text, limit)
