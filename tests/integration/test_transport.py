"""What the client takes from httpx as it comes: gzip bodies, proxies from the environment,
and the configured timeouts."""

from __future__ import annotations

import httpx
import pytest

from llmchat.conversation import ChatRequest, Message
from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import ServerThread
from llmchat.providers import PROVIDERS, get_provider
from llmchat.stream.client import StreamingClient, tls_may_be_needed
from llmchat.stream.events import Finish, StreamError, TextDelta

PROMPT = "transport"


@pytest.fixture
def server():
    with ServerThread() as srv:
        yield srv


async def _collect(base_url: str, api: str):
    async with StreamingClient(max_retries=0) as client:
        request = ChatRequest(model="m", messages=[Message("user", PROMPT)], base_url=base_url)
        events = [event async for event in client.stream(get_provider(api), request)]
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1]


@pytest.mark.parametrize("api", list(PROVIDERS))
async def test_gzip_bodies_are_decoded_byte_exact(server, api):
    text = "gzip \u2028 😀 " * 50
    answer, last = await _collect(server.base_url(api, gzip=1, text=text, chunk_tokens=3), api)
    assert answer == text
    assert isinstance(last, Finish)
    # The server records the outcome after its last write: the client may finish first.
    assert server.wait_for(lambda reqs: reqs[-1].outcome == "complete", 10.0), server.requests[-1]


async def test_proxy_from_the_environment_is_used(server, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the fake server answers proxy requests too
    # This host never resolves: only a proxy can answer for it.
    answer, last = await _collect("http://llm.invalid/o/tokens=12/v1", "openai-chat")
    assert answer == "".join(answer_tokens(PROMPT, 12))
    assert isinstance(last, Finish)
    assert server.requests[-1].target.startswith("http://llm.invalid/")


def test_timeouts_reach_the_transport():
    client = StreamingClient(connect_timeout=2.5, read_timeout=7.0)
    assert client._http.timeout.connect == 2.5
    assert client._http.timeout.read == 7.0


def test_certificates_are_skipped_only_for_plain_http_without_a_proxy(monkeypatch):
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert tls_may_be_needed("https://api.openai.com/v1")
    assert not tls_may_be_needed("http://127.0.0.1:8000/v1")
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:443")
    assert tls_may_be_needed("http://127.0.0.1:8000/v1")  # the proxy itself may speak TLS


class _DroppingBody(httpx.AsyncByteStream):
    """Sends `chunks`, then the connection breaks."""

    def __init__(self, chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
        raise httpx.ReadError("connection reset by peer")


def _dropping_transport(chunks):
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_DroppingBody(chunks))

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "api, chunks, reason",
    [
        (
            "openai-chat",
            [
                b'data: {"choices":[{"delta":{"content":"Hi."},"finish_reason":null}]}\n\n',
                b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n',
            ],
            "stop",
        ),
        (
            "anthropic",
            [
                b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi."}}\n\n',
                b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n',
            ],
            "stop",
        ),
    ],
)
async def test_a_drop_after_the_finish_reason_is_still_a_finished_answer(api, chunks, reason):
    client = StreamingClient(transport=_dropping_transport(chunks), max_retries=0)
    request = ChatRequest(model="m", messages=[Message("user", "x")], base_url="http://127.0.0.1:9/v1")
    events = [e async for e in client.stream(get_provider(api), request)]
    await client.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi."
    assert isinstance(events[-1], Finish) and events[-1].reason == reason


async def test_a_drop_before_the_finish_reason_is_an_error():
    chunks = [b'data: {"choices":[{"delta":{"content":"Hi."},"finish_reason":null}]}\n\n']
    client = StreamingClient(transport=_dropping_transport(chunks), max_retries=0)
    request = ChatRequest(model="m", messages=[Message("user", "x")], base_url="http://127.0.0.1:9/v1")
    events = [e async for e in client.stream(get_provider("openai-chat"), request)]
    await client.aclose()
    assert isinstance(events[-1], StreamError) and "dropped" in events[-1].message


async def test_the_api_key_never_appears_in_an_error():
    def handler(request):
        return httpx.Response(401, json={"error": {"message": "Incorrect API key provided: sk-abc123"}})

    client = StreamingClient(transport=httpx.MockTransport(handler), max_retries=0)
    request = ChatRequest(model="m", messages=[Message("user", "x")], base_url="http://127.0.0.1:9/v1", api_key="sk-abc123")
    events = [e async for e in client.stream(get_provider("openai-chat"), request)]
    await client.aclose()
    assert isinstance(events[-1], StreamError)
    assert "sk-abc123" not in events[-1].message and "***" in events[-1].message
