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
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Optional

import httpx

from llmchat.conversation import ChatRequest
from llmchat.stream.events import StreamError, StreamEvent
from llmchat.stream.metrics import Metrics
from llmchat.stream.ndjson import NDJSONDecoder, NDJSONError
from llmchat.stream.protocol import ProtocolError, Provider, error_message
from llmchat.stream.sse import SSEDecoder

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
        sleep: Callable[[float], "asyncio.Future"] = asyncio.sleep,
        on_retry: Optional[Callable[[RetryNotice], None]] = None,
        verify: bool = True,
    ) -> None:
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self._clock = clock
        self._sleep = sleep
        self.on_retry = on_retry
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

    async def __aenter__(self) -> "StreamingClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def stream(
        self,
        provider: Provider,
        request: ChatRequest,
        metrics: Optional[Metrics] = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer as StreamEvents; the last one is a Finish or a StreamError."""
        spec = provider.build_request(request)
        started = self._clock()
        attempt = 1
        while True:
            failure: Optional[StreamError] = None
            retry_after: Optional[float] = None
            streaming = False  # a 200 arrived: whatever fails from now on is not retried
            decoder = provider.new_decoder()
            try:
                if metrics is not None:
                    metrics.start()
                async with self._http.stream(
                    "POST", spec.url, json=spec.json, headers=spec.headers
                ) as response:
                    if response.status_code != 200:
                        failure = await _http_failure(response)
                        retry_after = _retry_after(response.headers.get("retry-after"))
                    else:
                        streaming = True
                        failure = await _content_type_failure(provider.framing, response)
                    if failure is None:
                        framing = SSEDecoder() if provider.framing == "sse" else NDJSONDecoder()
                        observe = metrics.observe if metrics is not None else _ignore
                        received = 0
                        try:
                            async for chunk in response.aiter_bytes():
                                received += len(chunk)
                                for item in framing.decode(chunk):
                                    for event in decoder.feed(item):
                                        observe(event)
                                        yield event
                                    if decoder.done:
                                        return
                            if not received:
                                failure = StreamError("200 OK but the response body was empty", kind="protocol", status=200)
                            else:
                                for item in framing.flush():
                                    for event in decoder.feed(item):
                                        observe(event)
                                        yield event
                                for event in decoder.end():
                                    observe(event)
                                    yield event
                                return
                        except (ProtocolError, NDJSONError) as exc:
                            failure = StreamError(str(exc), kind="protocol")
                        except (TypeError, AttributeError, KeyError, ValueError) as exc:
                            # JSON of an unexpected shape (e.g. a list where an object belongs).
                            failure = StreamError(
                                f"unexpected data in the stream ({exc.__class__.__name__}: {exc})", kind="protocol"
                            )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = StreamError(
                    f"cannot connect to {_origin(spec.url)}: {_reason(exc)}", kind="network"
                )
            except httpx.ReadTimeout:
                failure = StreamError(
                    f"timed out: no data from {_origin(spec.url)} for {self.read_timeout:g} s",
                    kind="timeout",
                )
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                failure = StreamError(
                    f"connection to {_origin(spec.url)} dropped: {_reason(exc)}", kind="network"
                )
            except httpx.HTTPError as exc:  # anything else httpx raises: one line, no traceback
                failure = StreamError(f"{_reason(exc)} ({_origin(spec.url)})", kind="network")
                streaming = True

            assert failure is not None
            if streaming and decoder.pending_finish is not None and not decoder.done:
                # The answer was complete (its finish reason arrived); only the trailer was lost.
                for event in decoder.end():
                    if metrics is not None:
                        metrics.observe(event)
                    yield event
                return
            if not streaming and _retryable(failure) and attempt <= self.max_retries:
                delay = retry_after if retry_after is not None else min(8.0, 0.5 * 2 ** (attempt - 1))
                remaining = self.retry_budget - (self._clock() - started)
                if delay <= remaining:
                    attempt += 1
                    if self.on_retry is not None:
                        self.on_retry(RetryNotice(attempt, self.max_retries + 1, delay, failure.message))
                    await self._sleep(delay)
                    continue
            if request.api_key and request.api_key in failure.message:  # never echo a key
                failure = StreamError(failure.message.replace(request.api_key, "***"), failure.kind, failure.status)
            elif failure.status == 401 and not request.api_key and request.api_key_env:
                failure = StreamError(f"{failure.message} (no API key was sent: set {request.api_key_env})", failure.kind, 401)
            if metrics is not None:
                metrics.observe(failure)
            yield failure
            return


def _ignore(event: StreamEvent) -> None:
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


async def _content_type_failure(framing: str, response: httpx.Response) -> Optional[StreamError]:
    full = response.headers.get("content-type", "")
    ctype = full.split(";")[0].strip().lower()
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
_SPACE = re.compile(r"\s+")


def describe_body(body: bytes, content_type: str = "") -> str:
    """The server's own words from an error body: JSON error, HTML page or plain text."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    if text[:1] in "{[":
        try:
            return _one_line(error_message(json.loads(text)))
        except ValueError:
            pass
    if "html" in content_type.lower() or text[:1] == "<":
        title = _TITLE.search(text)
        if title:
            return _one_line(html.unescape(title.group(1)))
        return _one_line(html.unescape(_TAG.sub(" ", text)))
    return _one_line(text)


def _one_line(text: str, limit: int = 300) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
