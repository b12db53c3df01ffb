"""An answer's tool calls and results stored as message parts (`AnswerWriter.add_part`), in
their place in the answer's text however the saves fall, secrets masked; read back in order
(`StoredMessage.segments`) and as the messages each API is sent again (`store.context`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, List

import pytest
from history_helpers import query

from llmchat.conversation import Message, ToolResult, without_tool_steps
from llmchat.history import CANCELLED, COMPLETE, HistoryStore
from llmchat.history import store as store_module
from llmchat.history.store import FLUSH_INTERVAL
from llmchat.history.tool_parts import NO_RESULT, ToolItem
from llmchat.stream.events import ToolCall


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with HistoryStore.open(tmp_path / "history.db", clock=clock) as s:
        yield s


def call(call_id: str, name: str, server: str = "calc") -> dict:
    return {"id": call_id, "name": name, "server": server}


def result(call_id: str, name: str, *, is_error: bool = False, status: str = "done", duration: float = 0.25) -> dict:
    return {"call_id": call_id, "name": name, "is_error": is_error, "status": status, "duration": duration}


def tool_loop_answer(answer: Any, clock: FakeClock, *, flush_between: bool) -> None:
    """Two model steps as the engine writes them: text, two parallel calls, their results (the
    second first), more text and one call, its result, the last text."""

    def tick() -> None:
        if flush_between:
            clock.now += FLUSH_INTERVAL
            answer.flush_if_due()

    for piece in ("Let me ", "add ", "them."):
        answer.append(piece)
        tick()
    answer.add_part("tool_call", '{"a": 1, "b": 2}', call("call_1", "add"))
    answer.add_part("tool_call", '{"text": "hi"}', call("call_2", "echo", "util"))
    tick()
    answer.add_part("tool_result", "hi", result("call_2", "echo"))
    answer.add_part("tool_result", "3", result("call_1", "add", duration=1.5))
    answer.append("Now ")
    tick()
    answer.append("the square.")
    answer.add_part("tool_call", '{"x": 3}', call("call_3", "square"))
    answer.add_part("tool_result", "boom", result("call_3", "square", is_error=True, status="error"))
    for piece in ("It ", "failed; ", "1 + 2 = 3."):
        answer.append(piece)
        tick()


def kinds(segments: List[Any]) -> List[Any]:
    return [value if kind == "text" else (value.name, value.result) for kind, value in segments]


EXPECTED = ["Let me add them.", ("add", "3"), ("echo", "hi"), "Now the square.", ("square", "boom"), "It failed; 1 + 2 = 3."]
TEXT = "Let me add them.Now the square.It failed; 1 + 2 = 3."


@pytest.mark.parametrize("flush_between", [False, True], ids=["saved at the end", "saved as it streams"])
def test_tool_parts_keep_their_place_in_the_answer(store: HistoryStore, clock: FakeClock, flush_between: bool) -> None:
    answer = store.begin_turn(None, "what is 1 + 2?")
    tool_loop_answer(answer, clock, flush_between=flush_between)
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert message.content == TEXT  # list, search and markdown: the answer's text only
    assert kinds(message.segments) == EXPECTED
    add = message.segments[1][1]
    assert isinstance(add, ToolItem)
    assert (add.call_id, add.server, add.arguments, add.is_error, add.state(), add.duration) == (
        "call_1",
        "calc",
        '{"a": 1, "b": 2}',
        False,
        "done",
        1.5,
    )
    square = message.segments[4][1]
    assert (square.is_error, square.state()) == (True, "error")
    # The text was joined into the row (searchable); the tool parts stay parts.
    assert query(store.path, "SELECT kind FROM message_parts WHERE message_id = ? ORDER BY id", (answer.message_id,)) == [("tool_call",)] * 2 + [
        ("tool_result",)
    ] * 2 + [("tool_call",), ("tool_result",)]
    assert [hit.message_id for hit in store.search("failed")] == [answer.message_id]


def test_the_order_holds_while_the_answer_is_still_in_pieces(store: HistoryStore, clock: FakeClock) -> None:
    """Streaming (read by another face), or left interrupted: the text is still in pieces."""
    answer = store.begin_turn(None, "q")
    tool_loop_answer(answer, clock, flush_between=True)
    answer.flush()
    message = store.load(answer.conversation_id).messages[-1]
    assert message.status == "streaming"
    assert kinds(message.segments) == EXPECTED


def test_the_order_holds_in_an_answer_too_long_to_join(store: HistoryStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "JOIN_CHARS", 10)  # every answer stays in pieces
    answer = store.begin_turn(None, "q")
    tool_loop_answer(answer, clock, flush_between=True)
    answer.finish(COMPLETE)
    assert query(store.path, "SELECT count(*) FROM message_parts WHERE message_id = ? AND kind = 'text'", (answer.message_id,))[0][0] > 1
    message = store.load(answer.conversation_id).messages[-1]
    assert (message.content, kinds(message.segments)) == (TEXT, EXPECTED)


def test_a_part_added_while_the_store_is_locked_waits_in_order(store: HistoryStore, clock: FakeClock) -> None:
    """A save that finds the file locked by another process keeps its rows, in order, for the next."""
    answer = store.begin_turn(None, "q")
    other = sqlite3.connect(str(store.path), timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        answer.append("before ")
        answer.add_part("tool_call", "{}", call("c1", "now"))
        assert store.wait_idle(5)
        answer.append("between ")
        answer.add_part("tool_result", "noon", result("c1", "now"))
        assert store.wait_idle(5)
        assert answer.unsaved_chars() > 0
    finally:
        other.rollback()
        other.close()
    answer.append("after")
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert kinds(message.segments) == ["before ", ("now", "noon"), "between after"]


def test_secrets_are_masked_in_tool_parts(store: HistoryStore, clock: FakeClock) -> None:
    key = "sk-secret-key-0123456789"
    answer = store.begin_turn(None, "q", secrets=[key])
    answer.append("the key is sk-secret-")  # a secret split across the text and...
    answer.append("key-0123456789")  # ...cut by the call that follows it
    answer.add_part("tool_call", json.dumps({"token": key}), {"id": "c1", "name": "login", "server": f"srv-{key}", "extra": {"k": [key]}})
    answer.add_part("tool_result", f"logged in with {key}", result("c1", "login") | {"status": f"done {key}"})
    answer.append(f" and again {key[:5]}")
    answer.append(key[5:])
    answer.finish(COMPLETE)
    store.close()
    raw = (
        store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes() if Path(str(store.path) + "-wal").exists() else store.path.read_bytes()
    )
    assert key.encode() not in raw
    with HistoryStore.open(store.path) as again:
        message = again.load(answer.conversation_id).messages[-1]
    assert message.content == "the key is *** and again ***"
    login = message.segments[1][1]
    assert (login.arguments, login.server, login.result, login.status) == ('{"token": "***"}', "srv-***", "logged in with ***", "done ***")


def test_a_huge_result_is_stored_cut_to_one_piece(store: HistoryStore) -> None:
    store._piece_chars = 5000
    answer = store.begin_turn(None, "q")
    answer.add_part("tool_call", "{}", call("c1", "dump"))
    answer.add_part("tool_result", "x" * 20_000, result("c1", "dump"))
    answer.finish(COMPLETE)
    item = store.load(answer.conversation_id).messages[-1].segments[0][1]
    assert len(item.result) <= 5000 and item.result.endswith("more characters not stored]")


def test_add_part_refuses_the_text_kinds(store: HistoryStore) -> None:
    answer = store.begin_turn(None, "q")
    for kind in ("text", "reasoning", "attachment", ""):
        with pytest.raises(ValueError):
            answer.add_part(kind, "x")
    answer.finish(COMPLETE)


def test_a_part_added_before_a_deferred_turn_is_written_lands_in_it(store: HistoryStore, tmp_path: Path) -> None:
    other = sqlite3.connect(str(store.path), timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        answer = store.begin_turn(None, "q", defer_if_busy=True)
        assert not answer.begun
        answer.append("thinking ")
        answer.add_part("tool_call", "{}", call("c1", "now"))
    finally:
        other.rollback()
        other.close()
    answer.add_part("tool_result", "noon", result("c1", "now"))
    answer.append("done")
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert kinds(message.segments) == ["thinking ", ("now", "noon"), "done"]


# --- sent again as context -------------------------------------------------------------------


def test_context_expands_an_answer_into_its_steps(store: HistoryStore, clock: FakeClock) -> None:
    answer = store.begin_turn(None, "what is 1 + 2?")
    tool_loop_answer(answer, clock, flush_between=True)
    answer.finish(COMPLETE)
    context = store.context(answer.conversation_id)
    assert context == [
        Message("user", "what is 1 + 2?"),
        Message(
            "assistant", "Let me add them.", tool_calls=(ToolCall("call_1", "add", '{"a": 1, "b": 2}'), ToolCall("call_2", "echo", '{"text": "hi"}'))
        ),
        Message("tool", "", tool_results=(ToolResult("call_1", "add", "3"), ToolResult("call_2", "echo", "hi"))),  # in the calls' order
        Message("assistant", "Now the square.", tool_calls=(ToolCall("call_3", "square", '{"x": 3}'),)),
        Message("tool", "", tool_results=(ToolResult("call_3", "square", "boom", True),)),
        Message("assistant", "It failed; 1 + 2 = 3."),
    ]
    assert store.load(answer.conversation_id).messages[-1].answer_messages() == context[1:]  # for a face's own context
    # Sending a turn again (regenerate) sends what came before it the same way.
    follow = store.begin_turn(answer.conversation_id, "and 2 + 2?")
    follow.append("4")
    follow.finish(COMPLETE)
    before, prompt, _ = store.turn_context(follow.message_id)
    assert (before, prompt) == (context, "and 2 + 2?")


def test_a_call_left_without_its_result_is_sent_with_an_error_result(store: HistoryStore) -> None:
    """Cancelled while the tool ran: the call is kept, and the model hears it gave nothing."""
    answer = store.begin_turn(None, "q")
    answer.add_part("tool_call", "{}", {"id": "", "name": "slow", "server": "s"})  # no id (Ollama)
    answer.finish(CANCELLED)
    message = store.load(answer.conversation_id).messages[-1]
    assert message.segments[0][1].state() == "no result"
    context = store.context(answer.conversation_id)
    synthetic = context[1].tool_calls[0].id
    assert synthetic.startswith("call_llmchat_")
    assert context[1:] == [
        Message("assistant", "", tool_calls=(ToolCall(synthetic, "slow", "{}"),)),
        Message("tool", "", tool_results=(ToolResult(synthetic, "slow", NO_RESULT, True),)),
    ]


def test_results_without_ids_match_their_calls_by_name_in_order(store: HistoryStore) -> None:
    answer = store.begin_turn(None, "q")
    answer.add_part("tool_call", '{"n": 1}', {"id": "", "name": "twice"})
    answer.add_part("tool_call", '{"n": 2}', {"id": "", "name": "twice"})
    answer.add_part("tool_result", "2", {"call_id": "", "name": "twice"})
    answer.add_part("tool_result", "4", {"call_id": "", "name": "twice"})
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert [(item.arguments, item.result) for _, item in message.segments] == [('{"n": 1}', "2"), ('{"n": 2}', "4")]


def test_a_conversation_stored_before_tool_parts_reads_as_before(store: HistoryStore) -> None:
    answer = store.begin_turn(None, "hello")
    answer.append("hi there")
    answer.finish(COMPLETE)
    message = store.load(answer.conversation_id).messages[-1]
    assert (message.tool_parts, message.segments) == ([], [("text", "hi there")])
    assert store.context(answer.conversation_id) == [Message("user", "hello"), Message("assistant", "hi there")]


def test_a_fork_copies_the_tool_parts(store: HistoryStore, clock: FakeClock) -> None:
    answer = store.begin_turn(None, "q")
    tool_loop_answer(answer, clock, flush_between=False)
    answer.finish(COMPLETE)
    fork = store.fork(answer.conversation_id, answer.message_id)
    assert kinds(store.load(fork).messages[-1].segments) == EXPECTED
    assert store.context(fork) == store.context(answer.conversation_id)


def test_an_answer_left_streaming_by_a_dead_process_keeps_its_calls(store: HistoryStore) -> None:
    """Killed while a tool ran: the next start marks the answer interrupted, its text joined, its
    call kept in place; sent again, the call gets an error result."""
    answer = store.begin_turn(None, "q")
    answer.append("Checking the time.")
    answer.add_part("tool_call", "{}", call("c1", "now"))
    answer.flush()
    store_module._live_answers.discard((store._key, answer.message_id))  # as if its process were gone
    answer.finished = True
    store._writers.discard(answer)
    assert store.mark_interrupted_on_start() == 1
    message = store.load(answer.conversation_id).messages[-1]
    assert (message.status, message.content) == ("interrupted", "Checking the time.")
    assert kinds(message.segments) == ["Checking the time.", ("now", None)]
    assert store.context(answer.conversation_id)[2] == Message("tool", "", tool_results=(ToolResult("c1", "now", NO_RESULT, True),))


def test_without_tool_steps_writes_an_answers_steps_into_one_message() -> None:
    plain = [Message("user", "a"), Message("assistant", "b")]
    assert without_tool_steps(plain) is plain
    messages = [
        Message("user", "q"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "rm", '{"path": "/"}'),)),
        Message("tool", "", tool_results=(ToolResult("c1", "rm", "denied by the user", True),)),
        Message("assistant", "I was not allowed to."),
        Message("user", "next"),
    ]
    assert without_tool_steps(messages) == [
        Message("user", "q"),
        Message("assistant", '[called rm({"path": "/"})]\n\n[rm failed: denied by the user]\n\nI was not allowed to.'),
        Message("user", "next"),
    ]
