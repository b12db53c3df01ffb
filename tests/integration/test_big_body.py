"""A request with a big body (a 10 MB PDF is ~13.4 MB of base64) is built and serialised off the
event loop, in pieces, and sent byte for byte as httpx's json= would send it: the fake server
checks each API's shapes, a retry sends it again, and a 10 ms ticker on the loop keeps ticking."""

from __future__ import annotations

import asyncio
import os
import re
import select
import subprocess
import sys
import time
from typing import Any, Iterator, List

import httpx
import pytest
from cpu_wait import waited_for_a_cpu  # tests/cpu_wait.py
from hypothesis import given, settings
from hypothesis import strategies as st

from llmchat.attachments import from_bytes, prepare
from llmchat.conversation import ChatRequest, Message
from llmchat.demo.server import ServerThread
from llmchat.providers import get_provider
from llmchat.stream.client import BIG_BODY, EncodedItems, StreamingClient, json_pieces
from llmchat.stream.events import Finish, StreamError, TextDelta

APIS = ("openai-chat", "openai-responses", "anthropic")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def httpx_body(value: Any) -> bytes:
    """What httpx's json= sends: the reference the pieces must match."""
    return httpx.Request("POST", "http://127.0.0.1/", json=value).read()


def big_pdf(megabytes: float) -> Any:
    return from_bytes("big.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Page >>\nendobj\n" + os.urandom(int(megabytes * 1024 * 1024)))


# --------------------------------------------------------------------------------------------
# the pieces are httpx's body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5), piece=st.integers(min_value=1, max_value=12))
def test_the_pieces_joined_are_httpxs_body_for_any_json(value: Any, piece: int) -> None:
    pieces = json_pieces(value, piece)
    assert b"".join(pieces) == httpx_body(value)


def test_a_long_string_is_cut_into_pieces_of_at_most_the_piece_size() -> None:
    text = 'quote " backslash \\ newline \n tab \t nul \x00 é ✓ 🙂 ' * 300
    value = {"messages": [{"content": text, "short": "x"}, ("tuple", text)], "n": 1}
    pieces = json_pieces(value, 100)
    assert b"".join(pieces) == httpx_body(value)
    assert max(len(p.decode("utf-8")) for p in pieces) <= 2 * 100  # escapes may double a character
    assert len(pieces) > 2 * len(text) // 100


def test_text_that_looks_like_a_mark_stays_text() -> None:
    value = {"a": "\x00" + "0" * 16 + ":0\x00", "b": "y" * 50}
    assert b"".join(json_pieces(value, 10)) == httpx_body(value)


# --------------------------------------------------------------------------------------------
# sent for real


async def ask(api: str, base_url: str, message: Message, **client: Any) -> List[Any]:
    request = ChatRequest(model="m", messages=[message], base_url=base_url, max_tokens=16)
    async with StreamingClient(**client) as http:
        return [event async for event in http.stream(get_provider(api), request)]


@pytest.mark.parametrize("api", APIS)
async def test_a_big_pdf_arrives_whole_in_each_apis_shape(api: str) -> None:
    pdf = big_pdf(BIG_BODY / 1024 / 1024 * 1.5)
    await asyncio.to_thread(prepare, [pdf], [api])
    with ServerThread() as server:
        events = await ask(api, server.base_url(api, tokens=3), Message("user", "summarise", (pdf,)))
        assert type(events[-1]) is Finish, events[-1]
        (recorded,) = server.server.requests
        (got,) = recorded.received
        assert (got.kind, got.size) == ("pdf", pdf.size)
        assert int(recorded.headers["content-length"]) == len(httpx_body(recorded.body))
        assert recorded.headers["content-type"] == "application/json"


async def test_a_retried_big_request_sends_its_body_again() -> None:
    from llmchat.stream.client import RetryNotice

    pdf = big_pdf(1.5)
    prepare([pdf], ["anthropic"])
    notices: List[RetryNotice] = []

    async def no_wait(seconds: float) -> None:
        pass

    with ServerThread() as server:
        url = server.base_url("anthropic", tokens=3, fail_first=1, status=503)
        events = await ask("anthropic", url, Message("user", "again", (pdf,)), sleep=no_wait, on_retry=notices.append)
        assert type(events[-1]) is Finish and len(notices) == 1
        first, second = server.server.requests
        assert second.received[0].size == pdf.size and second.body == first.body


async def test_a_big_text_history_is_sent_in_pieces_too() -> None:
    long = "line of an earlier answer\n" * (BIG_BODY // 20)
    with ServerThread() as server:
        events = await ask("openai-chat", server.base_url("openai-chat", tokens=3), Message("user", long + "and?"))
        assert type(events[-1]) is Finish
        assert server.server.requests[0].body["messages"][-1]["content"] == long + "and?"
        assert "".join(e.text for e in events if type(e) is TextDelta)


# --------------------------------------------------------------------------------------------
# the loop keeps running


@pytest.fixture(scope="module")
def server_process() -> Iterator[str]:
    """The fake server in its own process: its reading of a 27 MB body costs this one nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCHAT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmchat", "demo-server", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"\n" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            seen += os.read(proc.stdout.fileno(), 4096)
        match = re.search(rb"http://127\.0\.0\.1:\d+", seen)
        assert match, seen
        yield match.group(0).decode()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_event_loop_keeps_ticking_while_a_20_mb_pdf_is_sent(server_process: str) -> None:
    """Serialised on the loop (httpx's json=) a 20 MB PDF stalled it 300-500 ms; in pieces off
    the loop the ticker is late by what any busy thread costs (the GIL's 5 ms switch interval,
    more on a loaded machine). 150 ms: far from both."""
    pdf = big_pdf(20)
    await asyncio.to_thread(prepare, [pdf], ["anthropic"])
    late: List[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            due, queued = loop.time() + 0.01, waited_for_a_cpu()
            await asyncio.sleep(0.01)
            late.append(loop.time() - due - (waited_for_a_cpu() - queued))  # not what other processes cost

    request = ChatRequest(model="m", messages=[Message("user", "summarise", (pdf,))], base_url=f"{server_process}/o/tokens=3", max_tokens=16)
    async with StreamingClient(read_timeout=60) as http:  # made first: its TLS context takes a while to load
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        try:
            events = [event async for event in http.stream(get_provider("anthropic"), request)]
        finally:
            done.set()
            await task
    assert type(events[-1]) is Finish, [e for e in events if type(e) is StreamError]
    assert max(late) < 0.150, f"the loop stalled {max(late) * 1e3:.0f} ms"


# --------------------------------------------------------------------------------------------
# a long conversation: its messages encoded once, across sends


@settings(max_examples=200, deadline=None)
@given(
    value=st.dictionaries(st.text(max_size=8), json_values | st.lists(json_values, max_size=4), max_size=5),
    piece=st.integers(min_value=1, max_value=12),
)
def test_the_pieces_with_kept_messages_are_httpxs_body_at_each_build(value: Any, piece: int) -> None:
    kept = EncodedItems()
    for _ in range(2):  # the second build from what the first kept
        assert b"".join(json_pieces(value, piece, kept)) == httpx_body(value)


def history(turns: int, size: int) -> List[Message]:
    """A conversation's earlier messages, `size` characters of answer each, not all ASCII."""
    out: List[Message] = []
    for n in range(turns):
        out.append(Message("user", f"question {n}"))
        out.append(Message("assistant", (f'answer {n} é ✓ "quoted"\n' * (size // 20))[:size]))
    return out


def conversation_request(base_url: str, messages: List[Message]) -> ChatRequest:
    return ChatRequest(model="m", messages=messages, base_url=base_url, max_tokens=16)


async def test_the_messages_sent_again_are_not_encoded_again_and_the_bodies_are_httpxs() -> None:
    earlier = history(300, BIG_BODY // 250)
    assert sum(len(m.content) for m in earlier) > BIG_BODY
    with ServerThread() as server:
        url = server.base_url("openai-chat", tokens=3)
        async with StreamingClient() as http:
            provider = get_provider("openai-chat")
            first = earlier + [Message("user", "and?")]
            events = [e async for e in http.stream(provider, conversation_request(url, first))]
            assert type(events[-1]) is Finish
            assert http._kept.encoded == len(first)
            second = first + [Message("assistant", "an answer"), Message("user", "and then?")]
            events = [e async for e in http.stream(provider, conversation_request(url, second))]
            assert type(events[-1]) is Finish
            assert http._kept.encoded == len(first) + 2  # only the two new messages
            assert len(http._kept.items) == len(second)  # what is kept: this body's messages
        for recorded, sent in zip(server.server.requests, (first, second)):
            expected = provider.build_request(conversation_request(url, sent)).json
            assert recorded.body == expected
            assert int(recorded.headers["content-length"]) == len(httpx_body(expected))
            assert recorded.size == len(httpx_body(expected))  # byte for byte (its length; its JSON above)


async def test_a_body_warmed_while_typing_encodes_only_the_prompt_at_the_send(monkeypatch: pytest.MonkeyPatch) -> None:
    # A slice of encoding as short as can be: the loop runs every 16 messages, however fast
    # this machine encodes (with 2 ms slices a fast run took 7 of them, the test wanted > 10).
    monkeypatch.setattr("llmchat.stream.client.WARM_SLICE", 0.0)
    earlier = history(300, BIG_BODY // 250)
    with ServerThread() as server:
        url = server.base_url("openai-chat", tokens=3)
        async with StreamingClient() as http:
            provider = get_provider("openai-chat")
            ticks = 0

            async def tick() -> None:  # the event loop runs while the messages are encoded
                nonlocal ticks
                while True:
                    await asyncio.sleep(0)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            http.warm_body(provider, lambda: conversation_request(url, earlier))
            deadline = time.monotonic() + 10
            while len(http._kept.items) < len(earlier) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            ticker.cancel()
            assert http._kept.encoded == len(earlier) and ticks > 10
            request = conversation_request(url, earlier + [Message("user", "and?")])
            prepared = http.prepare(provider, request)
            assert prepared is not None
            events = [e async for e in http.stream(provider, request, prepared=prepared)]
            assert type(events[-1]) is Finish
            assert http._kept.encoded == len(earlier) + 1  # the prompt
        assert server.server.requests[0].body == provider.build_request(request).json


async def test_a_send_while_the_messages_are_being_encoded_stops_that_and_sends_them_whole() -> None:
    earlier = history(300, BIG_BODY // 250)
    with ServerThread() as server:
        url = server.base_url("openai-chat", tokens=3)
        async with StreamingClient() as http:
            provider = get_provider("openai-chat")
            http.warm_body(provider, lambda: conversation_request(url, earlier))
            warming = http._warming
            request = conversation_request(url, earlier + [Message("user", "and?")])
            events = [e async for e in http.stream(provider, request, prepared=http.prepare(provider, request))]
            assert type(events[-1]) is Finish and warming is not None and warming.cancelled()
            assert http._kept.encoded == len(earlier) + 1  # each once, by one or the other
        assert server.server.requests[0].body == provider.build_request(request).json


async def test_a_small_request_is_not_prepared() -> None:
    async with StreamingClient() as http:
        assert http.prepare(get_provider("openai-chat"), conversation_request("http://127.0.0.1:9/v1", history(2, 100))) is None
