"""The engine (llmchat/engine) on its own, against the fake LLM server: a turn from settings to
stored outcome, as every face runs it. Real server, real store, real client; no face."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from llmchat.config import Settings
from llmchat.conversation import Message
from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import Behaviour, ServerThread
from llmchat.engine import CANCELLED, DONE, ERROR, STREAMING, THINKING, WAITING, Conversation, Engine, Observer, Turn
from llmchat.history import HistoryStore, default_path
from llmchat.stream.metrics import Metrics

WAIT = 15.0


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    opened = HistoryStore.open()
    yield opened
    opened.close()


def settings(srv: ServerThread, **options: Any) -> Settings:
    return Settings(api="openai-chat", model="m", base_url=srv.base_url("openai-chat", **options), history=True)


def rows(sql: str = "SELECT role, status FROM messages ORDER BY id", params: tuple = ()) -> List[tuple]:
    path = default_path()
    if not path.exists():
        return []
    db = sqlite3.connect(str(path), timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def stored_answer() -> tuple:
    """(text, status, stop reason, error) of the newest answer, its saved pieces included."""
    ((mid, content, status, stop, error),) = rows(
        "SELECT id, content, status, stop_reason, error FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1"
    )
    pieces = "".join(r[0] for r in rows("SELECT content FROM message_parts WHERE message_id = ? AND kind = 'text' ORDER BY id", (mid,)))
    return content + pieces, status, stop, error


async def until(predicate: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Seen(Observer):
    def __init__(self) -> None:
        self.states: List[str] = []
        self.texts: List[str] = []
        self.retries: List[int] = []
        self.notes: List[str] = []

    def text(self, text: str) -> None:
        self.texts.append(text)

    def state(self, turn: Turn) -> None:
        self.states.append(turn.state)

    def retry(self, turn: Turn) -> None:
        self.retries.append(turn.retries)

    def notice(self, turn: Turn, message: str) -> None:
        self.notes.append(message)


async def test_the_prompt_is_committed_before_the_request_and_the_answer_saved_as_it_grows(server, store):
    engine = Engine(settings(server, tokens=60, tps=30, ttft=0.3), store=store)
    await engine.start()
    turn = Turn("grow", Metrics())
    seen = Seen()
    task = asyncio.ensure_future(engine.run(turn, (), seen))
    await until(lambda: len(server.requests) == 1, "the request")
    # The server has the request: the prompt was stored first.
    assert rows()[:2] == [("user", "complete"), ("assistant", "streaming")]
    # Saved while it streams, by the timer (no token arrives for 0.3 s first, then slowly).
    await until(lambda: stored_answer()[0] != "", "a saved piece")
    text, status, _, _ = stored_answer()
    assert status == "streaming" and turn.state == STREAMING and turn.answer.startswith(text)
    await task
    assert stored_answer() == ("".join(answer_tokens("grow", 60)), "complete", "stop", None)
    assert seen.states == [STREAMING, DONE] and "".join(seen.texts) == turn.answer
    assert engine.conversation_id is not None and engine.active is None
    await engine.aclose()


@pytest.mark.parametrize(
    "options, state, status, stop, error",
    [
        (dict(tokens=8), DONE, "complete", "stop", None),
        (dict(tokens=8, finish="length"), DONE, "complete", "length", None),
        (dict(tokens=30, error_after=6), ERROR, "error", None, "the demo server was told to fail mid-stream"),
        (dict(status=500), ERROR, "error", None, "500"),
    ],
    ids=["complete", "length", "error-midway", "http-error"],
)
async def test_each_ending_is_stored_with_its_status(server, store, options, state, status, stop, error):
    engine = Engine(settings(server, **options), store=store)
    await engine.start()
    engine.client.max_retries = 0
    turn = await engine.run(Turn("end", Metrics()))
    await engine.aclose()
    text, stored_status, stored_stop, stored_error = stored_answer()
    assert (turn.state, stored_status, stored_stop, text) == (state, status, stop, turn.answer)
    assert (stored_error is None) if error is None else (error in stored_error)
    if options.get("finish") == "length":
        assert turn.warning and "cut short" in turn.warning
    if options.get("error_after"):
        assert turn.answer == "".join(answer_tokens("end", 6))  # the partial text is kept


async def test_a_cancel_mid_answer_keeps_the_text_stored_cancelled(server, store):
    engine = Engine(settings(server, tokens=400, tps=40), store=store)
    await engine.start()
    turn = Turn("cancel me", Metrics())
    seen = Seen()
    task = asyncio.ensure_future(engine.run(turn, (), seen))
    await until(lambda: len(turn.parts) >= 3, "three tokens")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turn.state == CANCELLED and seen.states[-1] == CANCELLED
    assert 0 < len(turn.answer) < len("".join(answer_tokens("cancel me", 400)))
    assert stored_answer() == (turn.answer, "cancelled", None, None)
    await engine.aclose()


async def test_closing_the_engine_mid_answer_stores_it_cancelled(server, store):
    """A face quitting: aclose ends the running turn and stores it before closing the client."""
    warnings: List[str] = []
    engine = Engine(settings(server, tokens=400, tps=40), store=store, warn=warnings.append)
    await engine.start()
    turn = Turn("quit", Metrics())
    task = asyncio.ensure_future(engine.run(turn))
    await until(lambda: len(turn.parts) >= 3, "three tokens")
    await engine.aclose()
    assert warnings == []
    assert turn.state == CANCELLED and stored_answer()[1] == "cancelled"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert stored_answer() == (turn.answer[: len(stored_answer()[0])], "cancelled", None, None)


async def test_retries_are_counted_and_told(server):
    engine = Engine(settings(server, tokens=5, status=503, fail_first=1, retry_after="0"))
    await engine.start()
    seen = Seen()
    turn = await engine.run(Turn("again", Metrics()), (), seen)
    await engine.aclose()
    assert turn.state == DONE and turn.retries == 1 and seen.retries == [1] and turn.retry is None
    assert turn.answer == "".join(answer_tokens("again", 5))


async def test_reasoning_comes_first_then_the_answer(server):
    engine = Engine(settings(server, tokens=5, reasoning=4))
    await engine.start()
    seen = Seen()
    turn = await engine.run(Turn("think", Metrics()), (), seen)
    await engine.aclose()
    assert seen.states == [THINKING, STREAMING, DONE]
    assert turn.reasoning and turn.answer_ttft is not None


async def test_the_context_goes_before_the_prompt(server):
    engine = Engine(settings(server, tokens=3))
    await engine.start()
    conversation: Conversation = Conversation()
    for prompt in ("one", "two"):
        turn = conversation.begin(prompt, Metrics())
        await engine.run(turn, conversation.context())
    await engine.aclose()
    sent = server.requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "one"),
        ("assistant", conversation.turns[0].answer),
        ("user", "two"),
    ]
    assert conversation.messages()[-1] == Message("user", "two")


async def test_the_demo_model_is_started_and_spoken_to(server):
    demo = Settings(api="demo", model="demo", base_url="", demo=True, history=False)
    engine = Engine(demo, demo_behaviour=Behaviour(tokens=4))
    await engine.start()
    assert engine.base_url.startswith("http://127.0.0.1:") and engine.base_url.endswith("/v1")
    turn = await engine.run(Turn("demo?", Metrics()))
    await engine.aclose()
    assert turn.state == DONE and turn.answer == "".join(answer_tokens("demo?", 4))


async def test_switching_settings_reconnects_and_keeps_the_conversation(server, store):
    engine = Engine(settings(server, tokens=3), store=store)
    await engine.start()
    await engine.run(Turn("first", Metrics()))
    cid = engine.conversation_id
    other = Settings(api="anthropic", model="other", base_url=server.base_url("anthropic", tokens=2), history=True)
    old_client = engine.client
    await engine.use(other)
    assert engine.client is not old_client and engine.settings is other
    turn = await engine.run(Turn("second", Metrics()))
    await engine.aclose()
    assert turn.state == DONE and turn.answer == "".join(answer_tokens("second", 2))
    assert server.requests[-1].path.endswith("/v1/messages") and server.requests[-1].body["model"] == "other"
    assert engine.conversation_id == cid
    assert rows("SELECT count(DISTINCT conversation_id) FROM messages") == [(1,)]


async def test_a_locked_store_never_blocks_the_event_loop(server, store):
    """Another process holds the write lock while the answer ends: the engine waits for the
    store off the event loop (other tasks keep running), and the answer is stored once free."""
    engine = Engine(settings(server, tokens=40, tps=40), store=store)
    await engine.start()
    turn = Turn("locked", Metrics())
    task = asyncio.ensure_future(engine.run(turn))
    await until(lambda: turn.state == STREAMING, "the answer")
    other = sqlite3.connect(str(default_path()), timeout=10, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    gaps: List[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    try:
        await until(lambda: turn.ended, "the end of the answer")
        ended = time.monotonic()
        await until(lambda: time.monotonic() - ended > 1.0, "a second with the store locked")
        assert not task.done()  # storing the end waits for the lock ...
    finally:
        other.execute("ROLLBACK")
        other.close()
    await task
    ticker.cancel()
    await engine.aclose()
    assert turn.state == DONE and max(gaps) < 0.5, max(gaps)  # ... and the loop went on meanwhile
    assert stored_answer()[:2] == (turn.answer, "complete")


async def test_a_turn_ended_before_it_runs_sends_nothing(server, store):
    engine = Engine(settings(server, tokens=3), store=store)
    await engine.start()
    turn = Turn("never", Metrics())
    assert engine.end(turn, CANCELLED) is True and engine.end(turn, ERROR) is False
    await engine.run(turn)
    await engine.aclose()
    assert server.requests == [] and rows() == [] and turn.state == CANCELLED


def test_a_new_turn_waits(server):
    assert Turn("x", Metrics()).state == WAITING


async def test_the_python_api_streams_the_events(server):
    import llmchat

    chosen = settings(server, tokens=6)
    events = [event async for event in llmchat.ask("api?", settings=chosen)]
    assert "".join(e.text for e in events if isinstance(e, llmchat.TextDelta)) == "".join(answer_tokens("api?", 6))
    assert isinstance(events[-1], llmchat.Finish) and events[-1].reason == "stop"
    failed = [event async for event in llmchat.ask("api?", settings=settings(server, status=404))]
    assert isinstance(failed[-1], llmchat.StreamError) and "404" in failed[-1].message
    assert not Path(default_path()).exists()  # the API stores nothing


async def test_breaking_out_of_the_python_api_cancels_the_request(server):
    import llmchat

    async for event in llmchat.ask("stop early", settings=settings(server, tokens=400, tps=40)):
        if isinstance(event, llmchat.TextDelta):
            break
    await until(lambda: server.requests and server.requests[-1].outcome == "disconnected", "the connection closed")
    assert server.requests[-1].tokens_sent < 400


def run_readme_example(server: ServerThread, home: Path) -> str:
    import os
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README's Python API section has an example"
    (home / "config.toml").write_text(
        f'[profiles.local]\napi = "openai-chat"\nbase_url = "{server.base_url("openai-chat", tokens=7)}"\nmodel = "m"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["LLMCHAT_HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", code.group(1)], env=env, capture_output=True, timeout=60, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_readme_example_works(server, tmp_path):
    out = run_readme_example(server, tmp_path)
    assert out.strip() == "".join(answer_tokens("why is the sky blue?", 7)).strip()


def test_importing_llmchat_stays_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, llmchat; llmchat.ask; llmchat.TextDelta; print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'textual', 'rich', 'typer'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


async def test_a_long_answer_is_held_joined_while_history_saves_it_as_it_grows(server):
    """The answer's parts are joined as they come (a string per delta costs ~60 bytes more than
    its text), also those already handed to history, which saves them often; what is stored
    is still every character, in order."""
    store = HistoryStore.open(flush_interval=0.005)  # hands the parts over at every chance
    try:
        engine = Engine(settings(server, tokens=40_000), store=store)
        await engine.start()
        turn = await engine.run(Turn("long", Metrics()))
        await engine.aclose()
    finally:
        store.close()
    answer = "".join(answer_tokens("long", 40_000))
    assert turn.state == DONE and turn.answer == answer and turn.answered
    assert len(turn.parts) < 40_000 / 100, len(turn.parts)  # before: most of them a string per delta
    assert stored_answer() == (answer, "complete", "stop", None)


async def test_a_long_conversations_body_is_built_while_its_prompt_is_stored(server, store, monkeypatch):
    """The request of a long conversation (1.4 MB of JSON for 1,000 turns) is built in a thread
    while the prompt is committed, not after it; its messages are encoded once over the
    conversation's sends; what is sent is what the provider builds."""
    from llmchat.stream import client as client_module

    building = threading.Event()
    built = client_module._big_body

    def big_body(*args: Any) -> Any:
        building.set()
        return built(*args)

    monkeypatch.setattr(client_module, "_big_body", big_body)
    began = store.begin_turn
    overlapped: List[bool] = []

    def begin_turn(*args: Any, **kwargs: Any) -> Any:  # in the store's syncer thread
        overlapped.append(building.wait(WAIT))  # the body is on its way before the prompt is in
        return began(*args, **kwargs)

    monkeypatch.setattr(store, "begin_turn", begin_turn)
    engine = Engine(settings(server, tokens=3), store=store)
    await engine.start()
    context: List[Message] = []
    for n in range(300):
        context += [Message("user", f"question {n}"), Message("assistant", f"answer {n} é ✓\n" * 300)]
    assert sum(len(m.content) for m in context) > client_module.BIG_BODY
    encoded = []
    for prompt in ("one", "two"):
        building.clear()
        turn = Turn(prompt, Metrics())
        await engine.run(turn, context)
        assert turn.state == DONE, turn.error
        encoded.append(engine.client._kept.encoded)
        sent = server.requests[-1].body["messages"]
        assert sent == [{"role": m.role, "content": m.content} for m in [*context, Message("user", prompt)]]
        context = [*context, Message("user", prompt), Message("assistant", turn.answer)]
    await engine.aclose()
    assert overlapped == [True, True]
    assert encoded == [601, 603]  # the second send: its prompt and the answer before it, no more
