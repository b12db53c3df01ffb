"""Tool calling end to end on the wire, for all four APIs: the real StreamingClient against the
fake server scripted with `tools=...`. Parallel calls with arguments split across many deltas
decode into complete ToolCalls and a "tool_calls" finish; a round trip (calls -> results sent
back in the API's shape -> a final text quoting them) is driven by hand, as the engine's loop
will drive it; and a request whose tool shapes the API would refuse gets the API's 400.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any, Iterator, List

import httpx
import pytest
from test_client import APIS, KEY, FakeSleep, assert_well_formed, collect, text_of

from llmchat.conversation import ChatRequest, Message, ToolResult, ToolSpec, tool_results_message
from llmchat.demo.scripted_tools import parse
from llmchat.demo.server import ServerThread
from llmchat.providers import get_provider
from llmchat.stream.client import StreamingClient
from llmchat.stream.events import Finish, StreamError, ToolCall

SCRIPT = 'add:{"a":1,"b":2};echo:{"text":"hi"}'
TOOLS = (
    ToolSpec("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
    ToolSpec("echo", "Say it back", {"type": "object", "properties": {"text": {"type": "string"}}}),
)
PROMPT = "What is 1 + 2, and say hi"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


def request_for(server: ServerThread, api: str, messages: List[Message], **options: Any) -> ChatRequest:
    return ChatRequest(model="demo", messages=messages, base_url=server.base_url(api, **options), api_key=KEY, tools=TOOLS)


async def run(server: ServerThread, api: str, messages: List[Message], **options: Any) -> List[Any]:
    async with StreamingClient(sleep=FakeSleep(), read_timeout=10) as client:
        return await collect(client, get_provider(api), request_for(server, api, messages, **options))


def calls_of(events: List[Any]) -> List[ToolCall]:
    return [e for e in events if type(e) is ToolCall]


def test_the_script_option_parses_names_and_json_arguments() -> None:
    assert parse(SCRIPT) == [("add", '{"a": 1, "b": 2}'), ("echo", '{"text": "hi"}')]
    assert parse('now;say:{"text": "a;b"}') == [("now", "{}"), ("say", '{"text": "a;b"}')]
    with pytest.raises(ValueError):
        parse("add:[1, 2]")


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "whole"])
@pytest.mark.parametrize("api", APIS)
async def test_scripted_parallel_calls_come_complete_with_a_tool_calls_finish(server: ServerThread, api: str, whole: bool) -> None:
    events = await run(server, api, [Message("user", PROMPT)], tools=SCRIPT, **({"whole": 1} if whole else {}))
    assert_well_formed(events)
    calls = calls_of(events)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("add", {"a": 1, "b": 2}), ("echo", {"text": "hi"})]
    if api == "ollama":
        assert [c.id for c in calls] == ["", ""]  # Ollama's calls carry no ids
    else:
        assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)
    assert text_of(events) == ""
    assert type(events[-1]) is Finish and events[-1].reason == "tool_calls"
    record = server.requests[-1]
    assert record.declared_tools == ["add", "echo"]
    # The client may have its last event before the server has ended the body (Ollama's last
    # line): the server's record says "complete" a moment later. Wait for it, bounded.
    assert await asyncio.to_thread(server.wait_for, lambda requests: requests[-1].outcome == "complete", 10), record.outcome


@pytest.mark.parametrize("api", ["openai-chat", "openai-responses", "anthropic"])
async def test_the_arguments_come_in_many_small_deltas(server: ServerThread, api: str) -> None:
    """The decoder joins them: the server really split them (the SSE body holds the pieces)."""
    provider = get_provider(api)
    http = provider.build_request(request_for(server, api, [Message("user", PROMPT)], tools=SCRIPT))
    async with httpx.AsyncClient() as client:
        response = await client.post(http.url, json=http.json, headers=http.headers)
    pieces = response.text.count("input_json_delta" if api == "anthropic" else "arguments")
    assert pieces > 10


@pytest.mark.parametrize("api", APIS)
async def test_a_round_trip_calls_then_results_then_a_text_quoting_them(server: ServerThread, api: str) -> None:
    prompt = Message("user", PROMPT)
    first = await run(server, api, [prompt], tools=SCRIPT)
    calls = calls_of(first)
    results = {"add": "3", "echo": "hi"}
    conversation = [
        prompt,
        Message("assistant", "", tool_calls=tuple(calls)),
        tool_results_message(*(ToolResult(c.id, c.name, results[c.name]) for c in calls)),
    ]
    second = await run(server, api, conversation, tools=SCRIPT)
    assert_well_formed(second)
    assert not calls_of(second)
    assert text_of(second) == "Tool add returned 3. Tool echo returned hi."
    assert type(second[-1]) is Finish and second[-1].reason == "stop"
    record = server.requests[-1]
    assert [(r.name, r.content) for r in record.tool_results] == [("add", "3"), ("echo", "hi")]
    if api != "ollama":
        assert [r.call_id for r in record.tool_results] == [c.id for c in calls]

    # The next prompt in the same conversation: the model calls again, with ids new to it.
    third = await run(server, api, conversation + [Message("assistant", text_of(second)), Message("user", "again")], tools=SCRIPT)
    again = calls_of(third)
    assert [c.name for c in again] == ["add", "echo"]
    if api != "ollama":
        assert not {c.id for c in again} & {c.id for c in calls}


@pytest.mark.parametrize("api", ["openai-chat", "anthropic"])
async def test_an_error_result_is_quoted_as_a_failure(server: ServerThread, api: str) -> None:
    """Anthropic carries is_error; OpenAI has no such flag, so the text says it ("Error: ...")."""
    call = ToolCall("call_1_0" if api == "openai-chat" else "toolu_1_0", "add", '{"a": 1}')
    conversation = [
        Message("user", PROMPT),
        Message("assistant", "", tool_calls=(call,)),
        tool_results_message(ToolResult(call.id, "add", "denied by the user", is_error=True)),
    ]
    events = await run(server, api, conversation, tools=SCRIPT)
    expected = "Tool add failed: denied by the user." if api == "anthropic" else "Tool add returned Error: denied by the user."
    assert text_of(events) == expected


@pytest.mark.parametrize("api", APIS)
async def test_a_result_for_a_call_never_made_gets_the_apis_400(server: ServerThread, api: str) -> None:
    call = ToolCall("" if api == "ollama" else "call_real", "add", '{"a": 1, "b": 2}')
    conversation = [
        Message("user", PROMPT),
        Message("assistant", "", tool_calls=(call,)),
        tool_results_message(ToolResult("" if api == "ollama" else "call_other", "other" if api == "ollama" else "add", "3")),
    ]
    events = await run(server, api, conversation, tools=SCRIPT)
    assert len(events) == 1 and type(events[0]) is StreamError
    assert events[0].status == 400
    said = {
        "openai-chat": "must be a response to a preceeding message with 'tool_calls'",
        "openai-responses": "No tool call found for function call output with call_id call_other",
        "anthropic": "unexpected `tool_use_id` found in `tool_result` blocks: call_other",
        "ollama": "tool result for a call that was not made",
    }[api]
    assert said in events[0].message


@pytest.mark.parametrize("api", ["openai-chat", "anthropic"])
async def test_a_call_left_without_its_result_gets_the_apis_400(server: ServerThread, api: str) -> None:
    calls = (ToolCall("call_a", "add", "{}"), ToolCall("call_b", "echo", "{}"))
    conversation = [
        Message("user", PROMPT),
        Message("assistant", "", tool_calls=calls),
        tool_results_message(ToolResult("call_a", "add", "3")),
    ]
    events = await run(server, api, conversation, tools=SCRIPT)
    assert type(events[-1]) is StreamError and events[-1].status == 400
    assert "call_b" in events[-1].message


async def test_ollama_arguments_sent_as_a_string_get_ollamas_400(server: ServerThread) -> None:
    body = {
        "model": "demo",
        "messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": '{"a": 1}'}}]},
            {"role": "tool", "tool_name": "add", "content": "1"},
        ],
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(server.base_url("ollama") + "/api/chat", json=body)
    assert response.status_code == 400
    assert "cannot unmarshal string" in response.json()["error"]


async def test_a_malformed_script_is_a_400_naming_it(server: ServerThread) -> None:
    events = await run(server, "openai-chat", [Message("user", PROMPT)], tools="add:{not json}")
    assert type(events[-1]) is StreamError and events[-1].status == 400
    assert "arguments of 'add' are not JSON" in events[-1].message


async def test_without_the_script_tools_are_offered_and_the_demo_answers_in_text(server: ServerThread) -> None:
    events = await run(server, "anthropic", [Message("user", PROMPT)], tokens=5)
    assert not calls_of(events) and text_of(events)
    assert server.requests[-1].declared_tools == ["add", "echo"]


def test_a_plain_request_does_not_load_the_servers_tool_reader() -> None:
    """The demo model's plain start-up and answers stay as they were: scripted_tools (and the
    attachment reader it uses) is imported only for a request with tools."""
    code = (
        "import asyncio, sys\n"
        "from llmchat.conversation import ChatRequest, Message\n"
        "from llmchat.demo.server import ServerThread\n"
        "from llmchat.providers import get_provider\n"
        "from llmchat.stream.client import StreamingClient\n"
        "async def main(srv):\n"
        "    async with StreamingClient() as client:\n"
        "        for api in ('openai-chat', 'openai-responses', 'anthropic', 'ollama'):\n"
        "            request = ChatRequest('demo', [Message('user', 'hi')], srv.base_url(api, tokens=3))\n"
        "            events = [e async for e in client.stream(get_provider(api), request)]\n"
        "            assert type(events[-1]).__name__ == 'Finish', events\n"
        "with ServerThread() as srv:\n"
        "    asyncio.run(main(srv))\n"
        "print(sorted(m for m in sys.modules if m in ('llmchat.demo.scripted_tools', 'llmchat.demo.inputs')))\n"
    )
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "[]", done.stderr
