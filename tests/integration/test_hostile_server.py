"""StreamingClient against the fake server told to read the APIs its own way or to be hostile,
for all four APIs: whole JSON answers, several choices, content parts, tool calls, cache and
timing figures, absurd usage, errors framed as SSE, long, multi-line or key-echoing errors,
huge or deeply nested lines, and requests kept alive forever (--max-time)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator, List

import pytest
from test_client import APIS, KEY, FakeSleep, collect, expected, setup, text_of

from llmchat.demo.server import TOOL_ARGUMENTS, ServerThread
from llmchat.stream.client import StreamingClient
from llmchat.stream.events import Finish, Notice, StreamError, ToolCall, Usage

SSE_APIS = ["openai-chat", "openai-responses", "anthropic"]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


async def events_for(server: ServerThread, api: str, **options: Any) -> List[Any]:
    provider, request = setup(server, api, **options)
    async with StreamingClient(sleep=FakeSleep(), read_timeout=10) as client:
        return await collect(client, provider, request)


def only(events: List[Any], kind: type) -> List[Any]:
    return [e for e in events if type(e) is kind]


# --------------------------------------------------------------------------------------------
# servers that read the APIs their own way


@pytest.mark.parametrize("api", APIS)
async def test_a_server_that_ignores_stream_true_gives_the_answer_usage_and_stop(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, whole=1, tokens=12, finish="length")
    assert text_of(events) == expected(tokens=12)
    (usage,) = only(events, Usage)
    assert usage.output_tokens == 12 and usage.input_tokens
    assert events[-1].reason == "length"


@pytest.mark.parametrize("api", APIS)
async def test_a_tool_call_only_answer_gives_a_complete_tool_call(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, tool="get_weather", tokens=0)
    (call,) = only(events, ToolCall)
    assert call.name == "get_weather" and call.arguments == TOOL_ARGUMENTS
    assert call.id == ("" if api == "ollama" else ("toolu_demo" if api == "anthropic" else "call_demo"))
    assert text_of(events) == ""
    assert type(events[-1]) is Finish


@pytest.mark.parametrize("api", APIS)
async def test_a_whole_tool_call_answer_gives_the_tool_call(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, whole=1, tool="get_weather", tokens=0)
    assert [(c.name, c.arguments) for c in only(events, ToolCall)] == [("get_weather", TOOL_ARGUMENTS)]


async def test_several_choices_give_the_first_and_one_notice(server: ServerThread) -> None:
    events = await events_for(server, "openai-chat", choices=3, tokens=20)
    assert text_of(events) == expected(tokens=20)
    assert len(only(events, Notice)) == 1
    assert events[-1] == Finish("stop", "stop")


async def test_content_as_parts_is_the_text(server: ServerThread) -> None:
    events = await events_for(server, "openai-chat", parts=1, tokens=20)
    assert text_of(events) == expected(tokens=20)


async def test_anthropic_input_includes_the_cache(server: ServerThread) -> None:
    events = await events_for(server, "anthropic", cache_read=30, tokens=5)
    (usage,) = only(events, Usage)
    fresh = server.requests[-1].body and usage.input_tokens - 30
    assert fresh >= 1 and usage.cached_input_tokens == 30


@pytest.mark.parametrize("api", ["openai-chat", "ollama"])
async def test_the_servers_own_rate_reaches_the_usage(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, server_rate=42.1, tokens=10)
    rates = {round(u.server_rate, 3) for u in only(events, Usage) if u.server_rate is not None}
    assert rates == {42.1}


# --------------------------------------------------------------------------------------------
# hostile servers


@pytest.mark.parametrize("value", ["1e30", '"12"', "[1]", "-4", '{"n": 1}'])
@pytest.mark.parametrize("api", APIS)
async def test_absurd_usage_keeps_the_answer_and_drops_the_count(server: ServerThread, api: str, value: str) -> None:
    events = await events_for(server, api, tokens=6, usage_raw=value)
    assert text_of(events) == expected(tokens=6)
    assert [u.output_tokens for u in only(events, Usage)] == [None]
    assert type(events[-1]) is Finish


@pytest.mark.parametrize("api", APIS)
async def test_an_error_framed_as_sse_on_a_500_is_its_message(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, status=500, error_sse=1, error_message="upstream model crashed")
    (err,) = events
    assert err.message == "500 Internal Server Error: upstream model crashed (500)"
    assert "data:" not in err.message


@pytest.mark.parametrize("api", APIS)
async def test_a_multi_line_mid_stream_error_is_one_line(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, tokens=10, error_after=4, error_message="first line\nsecond line\r\n\x1b[2Jthird")
    err = events[-1]
    assert type(err) is StreamError
    assert err.message.startswith("first line second line third")  # the whole sequence goes, not only its ESC
    assert "\n" not in err.message and "\x1b" not in err.message
    assert text_of(events) == expected(tokens=4)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("where", [{"error_after": 3, "tokens": 6}, {"status": 400}])
async def test_a_five_megabyte_error_is_cut_to_a_readable_line(server: ServerThread, api: str, where: dict) -> None:
    events = await events_for(server, api, error_message="the model failed", error_size=5_000_000, **where)
    err = events[-1]
    assert type(err) is StreamError
    assert len(err.message) <= 300 and "the model failed" in err.message


@pytest.mark.parametrize("api", APIS)
async def test_a_key_echoed_in_a_mid_stream_error_is_redacted(server: ServerThread, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    other = "sk-ant-another-key-llmchat-knows-0001"
    monkeypatch.setenv("MY_ANTHROPIC_KEY", other)  # a profile's api_key_env may name any variable
    message = f"invalid key {KEY} (also tried {other})"
    events = await events_for(server, api, tokens=5, error_after=2, error_message=message)
    err = events[-1]
    assert type(err) is StreamError
    assert KEY not in err.message and other not in err.message
    assert err.message.startswith("invalid key *** (also tried ***)")


@pytest.mark.parametrize("api", APIS)
async def test_json_nested_too_deeply_is_a_protocol_error(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, nested=100_000, tokens=5)
    assert events == [StreamError("the server sent JSON nested too deeply to read", kind="protocol")]


@pytest.mark.parametrize("api", APIS)
async def test_a_line_past_sixteen_megabytes_is_a_protocol_error(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, big_line=17 * 1024 * 1024, tokens=5)
    (err,) = events
    assert err.kind == "protocol" and "16 MB" in err.message


@pytest.mark.parametrize("api", APIS)
async def test_a_five_megabyte_keep_alive_line_does_not_disturb_the_answer(server: ServerThread, api: str) -> None:
    events = await events_for(server, api, big_line=5 * 1024 * 1024, tokens=8)
    assert text_of(events) == expected(tokens=8)
    assert type(events[-1]) is Finish


# --------------------------------------------------------------------------------------------
# --max-time: an overall limit that trickled keep-alives or headers cannot escape


@pytest.mark.parametrize("api", APIS)
async def test_max_time_ends_a_stream_kept_alive_by_comments_and_keeps_the_partial_text(server: ServerThread, api: str) -> None:
    provider, request = setup(server, api, tokens=50, stall_after=5, trickle=0.05)
    started = time.monotonic()
    async with StreamingClient(read_timeout=0.5, max_time=1.0, sleep=FakeSleep()) as client:
        events = await asyncio.wait_for(collect(client, provider, request), 20)
    assert time.monotonic() - started < 10
    assert text_of(events) == expected(tokens=5)
    err = events[-1]
    assert type(err) is StreamError and err.kind == "timeout"
    assert err.message == "gave up after 1 s: the answer took longer than --max-time"


async def test_max_time_ends_a_request_whose_headers_trickle(server: ServerThread) -> None:
    provider, request = setup(server, "openai-chat", tokens=5, slow_headers=0.05)
    async with StreamingClient(read_timeout=0.5, max_time=0.5, sleep=FakeSleep()) as client:
        events = await asyncio.wait_for(collect(client, provider, request), 20)
    (err,) = events
    assert err.kind == "timeout" and "--max-time" in err.message


async def test_max_time_leaves_a_quick_answer_alone(server: ServerThread) -> None:
    provider, request = setup(server, "anthropic", tokens=30, tps=300)
    async with StreamingClient(max_time=30, sleep=FakeSleep()) as client:
        events = await collect(client, provider, request)
    assert text_of(events) == expected(tokens=30)
    assert type(events[-1]) is Finish


async def test_max_time_leaves_no_room_for_a_retry_that_would_pass_it(server: ServerThread) -> None:
    provider, request = setup(server, "openai-chat", status=503, retry_after="5")
    sleep = FakeSleep()
    async with StreamingClient(max_time=2, sleep=sleep) as client:
        events = await collect(client, provider, request)
    assert sleep.delays == []  # waiting 5 s would pass the 2 s limit
    assert events[-1].status == 503
