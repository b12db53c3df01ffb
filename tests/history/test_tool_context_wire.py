"""A conversation continued after an answer that called tools: what the store sends again
(`store.context`) is a sequence every API accepts, checked against the fake server, which
refuses tool shapes as each real API does (a call without its result, a result for no call,
Anthropic's tool blocks in a request that declares no tools)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import pytest

from llmchat.conversation import ChatRequest, Message, ToolSpec, without_tool_steps
from llmchat.demo.server import ServerThread
from llmchat.history import CANCELLED, COMPLETE, HistoryStore
from llmchat.providers import get_provider
from llmchat.stream.client import StreamingClient
from llmchat.stream.events import StreamError, TextDelta

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]
KEY = "sk-test-not-a-real-key-1234"
TOOLS = (
    ToolSpec("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
    ToolSpec("echo", "Say it back", {"type": "object", "properties": {"text": {"type": "string"}}}),
)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.open(tmp_path / "history.db") as s:
        yield s


class NoSleep:
    async def __call__(self, seconds: float) -> None:
        pass


async def send(server: ServerThread, api: str, messages: List[Message], tools: Any = TOOLS) -> List[Any]:
    request = ChatRequest(model="demo", messages=messages, base_url=server.base_url(api), api_key=KEY, tools=tools)
    async with StreamingClient(sleep=NoSleep(), read_timeout=10) as client:
        return [event async for event in client.stream(get_provider(api), request)]


def errors(events: List[Any]) -> List[str]:
    return [e.message for e in events if type(e) is StreamError]


def ids(api: str, step: int, count: int) -> List[str]:
    """The call ids the API gives (Ollama gives none)."""
    return ["" if api == "ollama" else f"{'toolu' if api == 'anthropic' else 'call'}_{step}_{k}" for k in range(count)]


def stored_tool_turn(store: HistoryStore, api: str, *, status: str = COMPLETE, answered: bool = True, final_text: bool = True) -> int:
    """A turn as the engine stores a tool loop on `api`: two parallel calls, their results, a
    last text (or, cancelled, a call never answered / no text after the results)."""
    answer = store.begin_turn(None, "What is 1 + 2, and say hi", api=api)
    first, second = ids(api, 1, 2)
    answer.append("Let me check.")
    answer.add_part("tool_call", '{"a": 1, "b": 2}', {"id": first, "name": "add", "server": "calc"})
    answer.add_part("tool_call", '{"text": "hi"}', {"id": second, "name": "echo", "server": "calc"})
    answer.add_part("tool_result", "hi", {"call_id": second, "name": "echo", "is_error": False, "status": "done", "duration": 0.1})
    if answered:
        answer.add_part("tool_result", "3", {"call_id": first, "name": "add", "is_error": False, "status": "done", "duration": 0.2})
    if final_text:
        answer.append("Tool add returned 3. Tool echo returned hi.")
    answer.finish(status)
    assert answer.conversation_id is not None
    return answer.conversation_id


SHAPES = {
    "complete": dict(),
    "cancelled while a tool ran": dict(status=CANCELLED, answered=False, final_text=False),
    "cancelled after the results": dict(status=CANCELLED, final_text=False),
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("api", APIS)
async def test_a_continued_tool_conversation_is_accepted_by_every_api(server: ServerThread, store: HistoryStore, api: str, shape: str) -> None:
    conversation = stored_tool_turn(store, api, **SHAPES[shape])
    context = store.context(conversation)
    assert any(m.role == "tool" for m in context)
    events = await send(server, api, context + [Message("user", "And 2 + 2?")])
    assert not errors(events), errors(events)
    assert "".join(e.text for e in events if type(e) is TextDelta)
    assert server.wait_for(lambda requests: requests[-1].outcome != "open")  # set once the server wrote its last byte
    record = server.requests[-1]
    assert record.outcome == "complete"
    assert record.tool_results == []  # results before the new prompt: the model answers the prompt


@pytest.mark.parametrize("api", APIS)
async def test_a_stored_step_then_its_results_pending_continue_the_loop(server: ServerThread, store: HistoryStore, api: str) -> None:
    """Regenerating from the stored step: the request ends with the results, as the engine's
    next step sends them; the fake model then quotes them."""
    conversation = stored_tool_turn(store, api, final_text=False)
    context = store.context(conversation)
    assert context[-1].role == "tool"
    events = await send(server, api, context)
    assert not errors(events), errors(events)
    assert "".join(e.text for e in events if type(e) is TextDelta) == "Tool add returned 3. Tool echo returned hi."  # the calls' order


@pytest.mark.parametrize("api", APIS)
async def test_without_tools_the_steps_go_as_text(server: ServerThread, store: HistoryStore, api: str) -> None:
    """A continuation that sends no tools (none configured now, --no-tools) sends the steps as
    text: Anthropic refuses tool blocks in a request without tools."""
    conversation = stored_tool_turn(store, api)
    context = store.context(conversation)
    flat = without_tool_steps(context)
    assert [m.role for m in flat] == ["user", "assistant"]
    assert flat[1].content == (
        'Let me check.\n\n[called add({"a": 1, "b": 2})]\n[called echo({"text": "hi"})]\n\n[add returned: 3]\n[echo returned: hi]'
        "\n\nTool add returned 3. Tool echo returned hi."
    )
    events = await send(server, api, flat + [Message("user", "And 2 + 2?")], tools=())
    assert not errors(events), errors(events)
    if api == "anthropic":
        refused = await send(server, api, context + [Message("user", "And 2 + 2?")], tools=())
        assert any("must define tools" in message for message in errors(refused)), refused
