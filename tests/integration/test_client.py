"""StreamingClient against the real fake LLM server on 127.0.0.1, for all four APIs.

Every failure mode the server can be told to produce is met here as a client meets it: HTTP
errors with JSON, HTML or text bodies, retries before the first token (with a fake sleep, so
nothing waits), dropped and stalled connections, mid-stream error events, missing terminal
signals, wrong content types, and the reader going away (cancel, break) — which the server must
see as a disconnect.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Iterator, List, Optional, Sequence, Tuple

import httpx
import pytest

from llmchat.conversation import ChatRequest, Message
from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import ServerThread
from llmchat.providers import get_provider
from llmchat.stream.client import RetryNotice, StreamingClient
from llmchat.stream.events import Finish, ReasoningDelta, StreamError, TextDelta, Usage
from llmchat.stream.metrics import Metrics
from llmchat.stream.protocol import Provider

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]
PATHS = {
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "ollama": "/api/chat",
}
PROMPT = "Explain streaming in one paragraph"
KEY = "sk-test-not-a-real-key-1234"


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client trusts the environment: make sure loopback traffic never goes via a proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """A fresh server per test: its request log and fail_first counters start empty."""
    with ServerThread() as srv:
        yield srv


class FakeSleep:
    """Records the delays the client asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: List[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_request(base_url: str, prompt: str = PROMPT, api_key: Optional[str] = KEY) -> ChatRequest:
    return ChatRequest(
        model="demo",
        messages=[Message("user", prompt)],
        base_url=base_url,
        system="Be brief.",
        temperature=0.5,
        max_tokens=500,
        api_key=api_key,
    )


def setup(server: ServerThread, api: str, prompt: str = PROMPT, **options: Any) -> Tuple[Provider, ChatRequest]:
    return get_provider(api), make_request(server.base_url(api, **options), prompt)


async def collect(client: StreamingClient, provider: Provider, request: ChatRequest, metrics: Optional[Metrics] = None) -> List[Any]:
    return [event async for event in client.stream(provider, request, metrics)]


def text_of(events: Sequence[Any]) -> str:
    return "".join(e.text for e in events if type(e) is TextDelta)


def expected(prompt: str = PROMPT, tokens: Optional[int] = None) -> str:
    return "".join(answer_tokens(prompt, tokens))


def assert_well_formed(events: Sequence[Any]) -> None:
    """The last event, and only the last, is a Finish or a StreamError."""
    assert events
    terminal = [i for i, e in enumerate(events) if type(e) in (Finish, StreamError)]
    assert terminal == [len(events) - 1], events[-3:]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for_outcome(server: ServerThread, outcome: str, timeout: float = 5.0) -> bool:
    return await asyncio.to_thread(server.wait_for, lambda reqs: bool(reqs) and reqs[-1].outcome == outcome, timeout)


# --------------------------------------------------------------------------------------------
# the happy path


@pytest.mark.parametrize("tokens", [None, 40])
@pytest.mark.parametrize("api", APIS)
async def test_full_answer_usage_and_finish(server: ServerThread, api: str, tokens: Optional[int]) -> None:
    options = {"tokens": tokens} if tokens else {}
    provider, request = setup(server, api, **options)
    async with StreamingClient() as client:
        events = await collect(client, provider, request)
    answer = expected(PROMPT, tokens)
    assert text_of(events) == answer
    assert events[-1] == Finish("stop", events[-1].raw_reason)
    assert not events[-1].truncated
    assert_well_formed(events)
    usages = [e for e in events if type(e) is Usage]
    assert len(usages) == 1
    assert usages[0].output_tokens == len(answer_tokens(PROMPT, tokens))
    assert usages[0].input_tokens is not None and usages[0].input_tokens >= 1
    assert not [e for e in events if type(e) is ReasoningDelta]
    assert all(e.text for e in events if type(e) is TextDelta)


@pytest.mark.parametrize("api", APIS)
async def test_request_the_server_recorded(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=3)
    async with StreamingClient() as client:
        events = await collect(client, provider, request)
    assert isinstance(events[-1], Finish)
    assert len(server.requests) == 1
    rec = server.requests[0]
    assert rec.method == "POST"
    assert rec.path == PATHS[api]
    assert rec.options == "tokens=3"
    assert rec.api == api
    assert rec.headers["content-type"] == "application/json"
    body = rec.body
    assert body["stream"] is True
    assert body["model"] == "demo"
    if api == "openai-chat":
        assert body["stream_options"] == {"include_usage": True}
        assert body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PROMPT},
        ]
        assert body["max_tokens"] == 500  # not api.openai.com
        assert body["temperature"] == 0.5
        assert rec.headers["authorization"] == f"Bearer {KEY}"
        assert rec.headers["accept"] == "text/event-stream"
    elif api == "openai-responses":
        assert body["input"] == [{"role": "user", "content": PROMPT}]
        assert body["instructions"] == "Be brief."
        assert body["max_output_tokens"] == 500
        assert rec.headers["authorization"] == f"Bearer {KEY}"
    elif api == "anthropic":
        assert body["messages"] == [{"role": "user", "content": PROMPT}]
        assert body["system"] == "Be brief."
        assert body["max_tokens"] == 500
        assert rec.headers["x-api-key"] == KEY
        assert rec.headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in rec.headers
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["options"] == {"temperature": 0.5, "num_predict": 500}
        assert rec.headers["accept"] == "application/x-ndjson"
    assert await wait_for_outcome(server, "complete")


async def test_no_key_sends_no_auth_header(server: ServerThread) -> None:
    for api in APIS:
        provider = get_provider(api)
        request = make_request(server.base_url(api, tokens=2), api_key=None)
        async with StreamingClient() as client:
            events = await collect(client, provider, request)
        assert isinstance(events[-1], Finish), api
    for rec in server.requests:
        assert "authorization" not in rec.headers
        assert "x-api-key" not in rec.headers


@pytest.mark.parametrize("api", APIS)
async def test_one_network_chunk_per_token_gives_the_same_text(server: ServerThread, api: str) -> None:
    async with StreamingClient() as client:
        batched = await collect(client, *setup(server, api, tokens=120))
        single = await collect(client, *setup(server, api, tokens=120, chunk_tokens=1))
        odd = await collect(client, *setup(server, api, tokens=120, chunk_tokens=7))
    assert text_of(single) == text_of(batched) == text_of(odd) == expected(PROMPT, 120)
    assert [e for e in single if type(e) is not TextDelta] == [e for e in batched if type(e) is not TextDelta]
    assert isinstance(single[-1], Finish)


@pytest.mark.parametrize("api", APIS)
async def test_unicode_text_is_byte_exact(server: ServerThread, api: str) -> None:
    text = 'héllo wörld 😀🚀 — "quoted" \\ back\u2028line\u2029para\u0085nel\ttab\n\nend'
    provider, request = setup(server, api, text=text)
    async with StreamingClient() as client:
        events = await collect(client, provider, request)
    assert text_of(events) == text
    assert isinstance(events[-1], Finish)


@pytest.mark.parametrize("api", APIS)
async def test_reasoning_is_reasoning_not_text(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=10, reasoning=6)
    async with StreamingClient() as client:
        events = await collect(client, provider, request)
    reasoning = "".join(e.text for e in events if type(e) is ReasoningDelta)
    assert reasoning == "".join(answer_tokens("", 6))
    assert text_of(events) == expected(PROMPT, 10)
    first_text = next(i for i, e in enumerate(events) if type(e) is TextDelta)
    assert all(type(e) is not ReasoningDelta for e in events[first_text:])
    assert isinstance(events[-1], Finish)


@pytest.mark.parametrize("api", APIS)
async def test_length_stop_is_truncated(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=8, finish="length")
    async with StreamingClient() as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 8)
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "length"
    assert events[-1].truncated


# --------------------------------------------------------------------------------------------
# retries before the first token


@pytest.mark.parametrize("api", APIS)
async def test_retries_503_then_succeeds(server: ServerThread, api: str) -> None:
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider, request = setup(server, api, tokens=12, fail_first=2, status=503)
    async with StreamingClient(sleep=sleep, on_retry=notices.append, max_retries=3) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 12)
    assert isinstance(events[-1], Finish)
    assert len(server.requests) == 3
    assert [r.outcome for r in server.requests[:2]] == ["error", "error"]
    assert await wait_for_outcome(server, "complete")
    assert len(notices) == 2
    assert [n.attempt for n in notices] == [2, 3]
    assert all(n.max_attempts == 4 for n in notices)
    assert all("503" in n.reason for n in notices)
    assert sleep.delays == [n.delay for n in notices]
    assert sleep.delays == [0.5, 1.0]  # bounded exponential backoff
    assert not [e for e in events if type(e) is StreamError]


async def test_retry_after_is_honoured(server: ServerThread) -> None:
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider, request = setup(server, "openai-chat", tokens=5, fail_first=2, status=429, retry_after="3")
    async with StreamingClient(sleep=sleep, on_retry=notices.append) as client:
        events = await collect(client, provider, request)
    assert sleep.delays == [3.0, 3.0]
    assert [n.delay for n in notices] == [3.0, 3.0]
    assert "429" in notices[0].reason
    assert text_of(events) == expected(PROMPT, 5)
    assert len(server.requests) == 3


async def test_no_retry_when_retry_after_exceeds_the_budget(server: ServerThread) -> None:
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider, request = setup(server, "openai-chat", status=429, retry_after="120")
    async with StreamingClient(sleep=sleep, on_retry=notices.append, retry_budget=60.0) as client:
        events = await collect(client, provider, request)
    assert events == [events[0]] and isinstance(events[0], StreamError)
    assert events[0].kind == "http"
    assert events[0].status == 429
    assert "429" in events[0].message
    assert "Rate limit reached: slow down" in events[0].message
    assert sleep.delays == []
    assert notices == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_retries_are_bounded(server: ServerThread, api: str) -> None:
    sleep = FakeSleep()
    provider, request = setup(server, api, status=503)
    async with StreamingClient(sleep=sleep, max_retries=2) as client:
        events = await collect(client, provider, request)
    assert len(events) == 1
    err = events[0]
    assert isinstance(err, StreamError) and err.kind == "http" and err.status == 503
    assert "The engine is currently overloaded" in err.message
    assert sleep.delays == [0.5, 1.0]
    assert len(server.requests) == 3


@pytest.mark.parametrize("api", APIS)
async def test_401_is_not_retried_and_quotes_the_server(server: ServerThread, api: str) -> None:
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider, request = setup(server, api, status=401)
    async with StreamingClient(sleep=sleep, on_retry=notices.append) as client:
        events = await collect(client, provider, request)
    assert len(events) == 1
    err = events[0]
    assert isinstance(err, StreamError)
    assert err.kind == "http"
    assert err.status == 401
    assert "401" in err.message
    assert "Incorrect API key provided" in err.message
    assert KEY not in err.message
    assert len(server.requests) == 1
    assert sleep.delays == [] and notices == []


async def test_html_error_body_is_reduced_to_its_title(server: ServerThread) -> None:
    provider, request = setup(server, "openai-chat", status=403, error_body="html")
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert isinstance(err, StreamError) and err.status == 403
    assert "403 Forbidden" in err.message  # the page's <title>
    assert "<" not in err.message and "nginx" not in err.message
    assert len(server.requests) == 1


async def test_retryable_html_error_body(server: ServerThread) -> None:
    sleep = FakeSleep()
    provider, request = setup(server, "anthropic", status=502, error_body="html")
    async with StreamingClient(sleep=sleep, max_retries=1) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert err.kind == "http" and err.status == 502
    assert "502 Bad Gateway" in err.message
    assert "<" not in err.message
    assert sleep.delays == [0.5]


@pytest.mark.parametrize("api", ["openai-chat", "ollama"])
async def test_text_plain_error_body(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, status=401, error_body="text")
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert err.kind == "http" and err.status == 401
    assert "401" in err.message
    assert "upstream error: Incorrect API key provided" in err.message
    assert "\n" not in err.message


async def test_connection_refused_is_a_network_error_after_retries() -> None:
    port = closed_port()
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider = get_provider("openai-chat")
    request = make_request(f"http://127.0.0.1:{port}/v1")
    async with StreamingClient(sleep=sleep, on_retry=notices.append, max_retries=2) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert isinstance(err, StreamError)
    assert err.kind == "network"
    assert err.status is None
    assert f"127.0.0.1:{port}" in err.message
    assert "cannot connect" in err.message
    assert sleep.delays == [0.5, 1.0]
    assert len(notices) == 2


# --------------------------------------------------------------------------------------------
# failures after the response started


@pytest.mark.parametrize("api", APIS)
async def test_dropped_connection_keeps_text_and_is_never_retried(server: ServerThread, api: str) -> None:
    sleep = FakeSleep()
    notices: List[RetryNotice] = []
    provider, request = setup(server, api, tokens=50, drop_after=7)
    async with StreamingClient(sleep=sleep, on_retry=notices.append) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 7)
    err = events[-1]
    assert isinstance(err, StreamError)
    assert err.kind == "network"
    assert "dropped" in err.message
    assert_well_formed(events)
    assert len(server.requests) == 1
    assert server.requests[0].outcome == "dropped"
    assert sleep.delays == [] and notices == []


@pytest.mark.parametrize("api", APIS)
async def test_error_event_mid_stream(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=50, error_after=6)
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 6)
    err = events[-1]
    assert isinstance(err, StreamError)
    assert err.kind == "api"
    assert "the demo server was told to fail mid-stream" in err.message
    assert_well_formed(events)
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_no_terminal_signal_is_cut_off(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=20, no_end=True)
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 20)
    assert isinstance(events[-1], StreamError)
    assert events[-1].kind == "cutoff"
    assert_well_formed(events)
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_empty_body_is_an_error(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, empty=True)
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert isinstance(err, StreamError)
    assert err.kind == "protocol"
    assert "empty" in err.message
    assert err.status == 200


@pytest.mark.parametrize("api", APIS)
async def test_html_instead_of_a_stream_is_a_protocol_error(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, content_type="text/html")
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert isinstance(err, StreamError)
    assert err.kind == "protocol"
    assert "text/html" in err.message
    assert "Captive portal: sign in" in err.message
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", ["openai-responses", "anthropic"])
async def test_json_of_another_api_instead_of_sse_is_a_protocol_error_without_a_random_field(server: ServerThread, api: str) -> None:
    # The server's canned body is a chat completion: an answer of no API but openai-chat.
    provider, request = setup(server, api, content_type="application/json")
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    (err,) = events
    assert err.kind == "protocol"
    assert err.message == "200 OK but the server sent application/json, not text/event-stream, and it is not an answer"


async def test_a_plain_json_chat_completion_instead_of_sse_is_the_answer(server: ServerThread) -> None:
    provider, request = setup(server, "openai-chat", content_type="application/json")
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    assert events == [TextDelta("not streamed"), Finish("unknown", None)]  # the body has no finish_reason


@pytest.mark.parametrize("api", APIS)
async def test_stall_is_a_timeout_and_keeps_the_partial_text(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=50, stall_after=5)
    async with StreamingClient(read_timeout=0.4, sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(PROMPT, 5)
    err = events[-1]
    assert isinstance(err, StreamError)
    assert err.kind == "timeout"
    assert "0.4 s" in err.message
    assert_well_formed(events)
    assert len(server.requests) == 1
    # The client hung up on the stalled server.
    assert await wait_for_outcome(server, "disconnected")


# --------------------------------------------------------------------------------------------
# the reader goes away


@pytest.mark.parametrize("api", APIS)
async def test_cancelling_the_reading_task_disconnects(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=1000, tps=50)
    first = asyncio.Event()
    seen: List[Any] = []

    async def consume(client: StreamingClient) -> None:
        async for event in client.stream(provider, request):
            seen.append(event)
            if type(event) is TextDelta:
                first.set()

    async with StreamingClient() as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_for_outcome(server, "disconnected")
    rec = server.requests[-1]
    assert rec.tokens_sent < 1000
    assert len(server.requests) == 1
    assert seen and not [e for e in seen if type(e) in (Finish, StreamError)]


@pytest.mark.parametrize("api", APIS)
async def test_breaking_out_and_closing_the_generator_disconnects(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=1000, tps=50)
    async with StreamingClient() as client:
        stream = client.stream(provider, request)
        got: Optional[TextDelta] = None
        async for event in stream:
            if type(event) is TextDelta:
                got = event
                break
        await stream.aclose()
        assert got is not None and got.text
        assert await wait_for_outcome(server, "disconnected")
    assert server.requests[-1].tokens_sent < 1000
    assert len(server.requests) == 1


# --------------------------------------------------------------------------------------------
# metrics


class CountingMetrics(Metrics):
    __slots__ = ("starts", "observed")

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0
        self.observed: List[Any] = []

    def start(self) -> None:
        self.starts += 1
        super().start()

    def observe(self, event: Any) -> None:
        self.observed.append(event)
        super().observe(event)


@pytest.mark.parametrize("api", APIS)
async def test_metrics_are_fed(server: ServerThread, api: str) -> None:
    metrics = CountingMetrics()
    provider, request = setup(server, api, tokens=30, tps=150)  # 0.2 s: long enough for a rate
    async with StreamingClient() as client:
        events = await collect(client, provider, request, metrics)
    assert metrics.starts == 1
    assert metrics.observed == events
    assert metrics.ttft is not None and metrics.ttft >= 0
    assert metrics.exact is True
    assert metrics.output_tokens == 30
    assert metrics.deltas == len([e for e in events if type(e) is TextDelta])
    assert metrics.finish == events[-1]
    assert metrics.ended_at is not None
    frozen = metrics.elapsed()
    assert frozen is not None and frozen >= metrics.ttft
    assert metrics.elapsed() == frozen
    assert metrics.tokens_per_second is not None and metrics.tokens_per_second > 0
    assert "~" not in metrics.summary()


async def test_metrics_start_again_on_each_retry_and_see_the_error(server: ServerThread) -> None:
    metrics = CountingMetrics()
    provider, request = setup(server, "ollama", tokens=5, fail_first=1, status=503)
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request, metrics)
    assert metrics.starts == 2
    assert isinstance(events[-1], Finish)
    assert metrics.observed == events  # the retried 503 is not an event

    failing = CountingMetrics()
    provider, request = setup(server, "ollama", tokens=50, drop_after=3)
    async with StreamingClient(sleep=FakeSleep()) as client:
        events = await collect(client, provider, request, failing)
    assert failing.error == events[-1]
    assert failing.ttft is not None
    assert failing.exact is False
    assert failing.ended_at is not None


# --------------------------------------------------------------------------------------------
# wire details no real server here produces (httpx.MockTransport: no network at all)


def mock_client(chunks: Sequence[bytes], content_type: str = "text/event-stream") -> StreamingClient:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, content=body())

    return StreamingClient(transport=httpx.MockTransport(handler), sleep=FakeSleep())


def _chunk(content: str) -> bytes:
    return (
        'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"' + content + '"},"finish_reason":null}]}\n\n'
    ).encode("utf-8")


async def test_data_after_done_is_not_read() -> None:
    chunks = [
        _chunk("one"),
        b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
        _chunk(" AFTER"),
        b"data: this is not JSON and must never be parsed\n\n",
    ]
    async with mock_client(chunks) as client:
        events = await collect(client, get_provider("openai-chat"), make_request("http://127.0.0.1:9/v1"))
    assert events == [TextDelta("one"), Finish("stop", "stop")]


async def test_raw_line_separators_and_split_crlf_and_utf8_through_the_client() -> None:
    wire = (_chunk("a\u2028b\u2029c\u0085d 😀") + _chunk(" é")).replace(b"\n", b"\r\n")
    wire += b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n'
    # Cut between every CR and its LF and inside every multi-byte character.
    cuts = sorted({i + 1 for i, b in enumerate(wire) if b in (0x0D, 0xF0, 0xE2, 0xC3)})
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)]) if b > a]
    async with mock_client(pieces) as client:
        events = await collect(client, get_provider("openai-chat"), make_request("http://127.0.0.1:9/v1"))
    assert text_of(events) == "a\u2028b\u2029c\u0085d 😀 é"
    assert events[-1] == Finish("stop", "stop")


async def test_malformed_json_mid_stream_is_a_protocol_error_after_the_text() -> None:
    chunks = [_chunk("kept"), b"data: {not json\n\n", _chunk(" lost")]
    async with mock_client(chunks) as client:
        events = await collect(client, get_provider("openai-chat"), make_request("http://127.0.0.1:9/v1"))
    assert events[0] == TextDelta("kept")
    assert isinstance(events[-1], StreamError) and events[-1].kind == "protocol"
    assert text_of(events) == "kept"


async def test_ndjson_garbage_line_is_a_protocol_error() -> None:
    chunks = [b'{"message":{"role":"assistant","content":"ok"},"done":false}\n', b"<html>oops</html>\n"]
    async with mock_client(chunks, "application/x-ndjson") as client:
        events = await collect(client, get_provider("ollama"), make_request("http://127.0.0.1:9"))
    assert events[0] == TextDelta("ok")
    assert isinstance(events[-1], StreamError) and events[-1].kind == "protocol"


class StoppedClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


_STOP = b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


async def _read_slowly(reads: Sequence[Tuple[float, bytes]], clock: StoppedClock, per_event: float) -> Metrics:
    """Stream `reads` (each: the network time before it comes in, its bytes) to a reader that
    takes `per_event` seconds over each event; the figures the client kept."""

    async def body() -> AsyncIterator[bytes]:
        for delay, data in reads:
            clock.now += delay
            yield data

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    metrics = Metrics(clock)
    async with StreamingClient(transport=httpx.MockTransport(handler), sleep=FakeSleep(), clock=clock) as client:
        async for _event in client.stream(get_provider("openai-chat"), make_request("http://127.0.0.1:9/v1"), metrics):
            clock.now += per_event
    return metrics


async def test_the_tokens_of_one_read_are_a_burst_however_slowly_the_reader_handles_them() -> None:
    clock = StoppedClock()
    # 250 tokens in one read, handled at 10 ms each: 2.5 s of handling, but they all came at once.
    metrics = await _read_slowly([(0.3, b"".join(_chunk("t") for _ in range(250)) + _STOP)], clock, per_event=0.01)
    assert metrics.deltas == 250
    assert metrics.first_at == metrics.last_at == 100.3
    assert metrics.tokens_per_second is None  # a burst has no rate
    assert metrics.ttft == pytest.approx(0.3)  # from the sending to the read with the first token
    assert metrics.ended_at is not None and metrics.ended_at > metrics.last_at  # the end is when the reader saw it


async def test_the_rate_spans_the_reads_arrivals_not_the_readers_pace() -> None:
    clock = StoppedClock()
    ten = b"".join(_chunk("t") for _ in range(10))
    # Two reads 0.5 s apart on the wire; the reader takes 10 ms over each of the first read's
    # 10 tokens before it asks for the second.
    metrics = await _read_slowly([(0.3, ten), (0.5, ten + _STOP)], clock, per_event=0.01)
    assert metrics.first_at == pytest.approx(100.3)
    assert metrics.last_at == pytest.approx(100.3 + 0.1 + 0.5)
    assert metrics.tokens_per_second == pytest.approx(20 / 0.6)
