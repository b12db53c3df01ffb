"""The engine's tool loop (engine/tooling.py) with real parts: the fake LLM server scripted to
call tools (llmchat/demo/scripted_tools.py) and the SDK-built calc MCP server as a real stdio
process. The model asks, the observer approves (or the call is allowed already), the calls run
in parallel, the results go back and the model answers with them."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

from llmchat.config import Settings, load_config
from llmchat.demo.server import ServerThread
from llmchat.engine import CANCELLED, DONE, Engine, Observer, Turn
from llmchat.engine.turns import DENIED, TOOL_DONE, TOOL_ERROR, context
from llmchat.stream.metrics import Metrics
from tests.tools.mcp_helpers import calc

APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")
WAIT = 20.0


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


def settings(srv: ServerThread, api: str = "openai-chat", *, servers: Any = None, **options: Any) -> Settings:
    return Settings(
        api=api,
        model="m",
        base_url=srv.base_url(api, **options),
        api_key="k",
        history=False,
        mcp_servers=tuple(servers if servers is not None else (calc(),)),
    )


class Seen(Observer):
    """Records what the engine tells it; `answers` decides approvals by tool name."""

    def __init__(self, answers: Any = None) -> None:
        self.answers = dict(answers or {})
        self.asked: List[str] = []
        self.events: List[Tuple[str, str, str]] = []  # (what, tool, status)
        self.steps: List[int] = []
        self.notes: List[str] = []
        self.running = asyncio.Event()

    async def approve(self, turn: Turn, activity: Any) -> str:
        self.asked.append(activity.call.name)
        return self.answers.get(activity.call.name, "deny")

    def tool_started(self, turn: Turn, activity: Any) -> None:
        self.events.append(("started", activity.call.name, activity.status))
        if activity.status == "running":
            self.running.set()

    def tool_finished(self, turn: Turn, activity: Any) -> None:
        assert activity.result is not None and activity.duration is not None
        self.events.append(("finished", activity.call.name, activity.status))

    def step(self, turn: Turn, step: Any) -> None:
        self.steps.append(step.index)

    def notice(self, turn: Turn, message: str) -> None:
        self.notes.append(message)


async def ask(s: Settings, obs: Observer, prompt: str = "go", engine: Any = None) -> Turn:
    own = engine is None
    engine = engine or Engine(s)
    if own:
        await engine.start()
    try:
        turn = Turn(prompt, Metrics())
        return await asyncio.wait_for(engine.run(turn, (), obs), WAIT)
    finally:
        if own:
            await engine.aclose()


@pytest.mark.parametrize("api", APIS)
async def test_allowed_parallel_calls_run_and_the_model_answers_with_their_results(server: ServerThread, api: str) -> None:
    s = settings(server, api, tools='add:{"a":1,"b":2};echo:{"text":"hi"}')
    s.allow_tools = ("add", "echo")
    obs = Seen()
    turn = await ask(s, obs)
    assert turn.state == DONE, turn.error
    assert turn.answer == "Tool add returned 3. Tool echo returned hi."
    assert obs.asked == []  # allowed calls are never put to the observer
    assert [len(step.activities) for step in turn.steps] == [2, 0] and obs.steps == [1]
    assert [a.status for a in turn.steps[0].activities] == [TOOL_DONE, TOOL_DONE]
    assert [a.result.text for a in turn.steps[0].activities] == ["3", "hi"]
    assert turn.tool_note is None  # they ran: no "none ran" note
    first, second = (step.metrics for step in turn.steps)
    assert second is not first and second.finish is not None
    # Each request keeps its own figures; the turn's add them up.
    assert first is not turn.metrics and first.finish is not None and first.finish.reason == "tool_calls"
    assert first.output_tokens + second.output_tokens == turn.metrics.output_tokens and 0 < first.output_tokens < turn.metrics.output_tokens
    assert first.elapsed() < turn.metrics.elapsed()
    assert turn.steps[1].finish is not None and turn.steps[1].finish.reason == "stop"
    # The in-memory context replays the turn as it was sent: calls, results, the answer.
    roles = [m.role for m in context([turn, Turn("next", Metrics())])]
    assert roles == ["user", "assistant", "tool", "assistant"]


async def test_the_calls_of_a_step_run_at_the_same_time(server: ServerThread) -> None:
    s = settings(server, tools='slow:{"seconds":0.6};slow:{"seconds":0.6};slow:{"seconds":0.6}')
    s.allow_all_tools = True
    obs = Seen()
    turn = await ask(s, obs)
    assert turn.state == DONE
    activities = turn.steps[0].activities
    assert [a.status for a in activities] == [TOOL_DONE] * 3
    starts = [a.started_at for a in activities]
    ends = [a.started_at + a.duration for a in activities]
    assert max(starts) < min(ends)  # every call started before any ended
    assert [e[0] for e in obs.events] == ["started"] * 3 + ["finished"] * 3


async def test_the_observer_approves_once_or_denies(server: ServerThread) -> None:
    s = settings(server, tools='add:{"a":2,"b":5};echo:{"text":"secret"}')
    obs = Seen({"add": "once", "echo": "deny"})
    turn = await ask(s, obs)
    assert obs.asked == ["add", "echo"]
    add, echo = turn.steps[0].activities
    assert (add.status, add.result.text) == (TOOL_DONE, "7")
    assert (echo.status, echo.result.text, echo.result.is_error) == (DENIED, "denied by the user", True)
    assert ("started", "echo", DENIED) in obs.events
    assert turn.answer.startswith("Tool add returned 7. Tool echo ") and turn.answer.endswith("denied by the user.")


async def test_an_unknown_tool_is_an_error_result_not_a_crash(server: ServerThread) -> None:
    s = settings(server, tools='nosuch:{"x":1}')
    obs = Seen()
    turn = await ask(s, obs)
    assert turn.state == DONE
    (activity,) = turn.steps[0].activities
    assert activity.tool is None and activity.status == TOOL_ERROR and "no such tool" in activity.result.text
    assert obs.asked == []  # nothing to approve: it cannot run
    assert turn.answer.startswith("Tool nosuch ") and "no such tool" in turn.answer


async def test_a_call_past_tool_timeout_gives_the_model_an_error(server: ServerThread) -> None:
    s = settings(server, servers=[calc(tool_timeout=0.5)], tools='slow:{"seconds":20}')
    s.allow_all_tools = True
    started = time.monotonic()
    turn = await ask(s, Seen())
    assert time.monotonic() - started < 10
    (activity,) = turn.steps[0].activities
    assert activity.status == TOOL_ERROR and "tool_timeout" in activity.result.text
    assert turn.state == DONE and "did not answer" in turn.answer


async def test_max_steps_ends_the_turn_with_a_notice(server: ServerThread) -> None:
    s = settings(server, tools='add:{"a":1,"b":1}', tool_rounds=5)
    s.allow_all_tools = True
    s.max_steps = 2
    obs = Seen()
    turn = await ask(s, obs)
    assert turn.state == DONE
    assert len(turn.steps) == 3  # two rounds ran; the third request asked again
    assert [a.status for a in turn.activities] == [TOOL_DONE, TOOL_DONE, TOOL_ERROR]
    assert "not run" in turn.steps[2].activities[0].result.text
    assert obs.notes and "--max-steps 2" in obs.notes[0] and turn.notices == obs.notes
    assert [e for e in obs.events if e[0] == "finished"] == [("finished", "add", TOOL_DONE)] * 2 + [("finished", "add", TOOL_ERROR)]


async def test_calls_past_max_steps_are_stored_with_their_error_results(server: ServerThread) -> None:
    from llmchat.history import HistoryStore

    s = settings(server, tools='add:{"a":1,"b":1}', tool_rounds=5)
    s.history, s.allow_all_tools, s.max_steps = True, True, 1
    with HistoryStore.open() as store:
        engine = Engine(s, store=store)
        await engine.start()
        try:
            turn = await ask(s, Seen(), engine=engine)
        finally:
            await engine.aclose()
        stored = store.context(engine.conversation_id)
    assert stored == context([turn, Turn("next", Metrics())])
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant", "tool"]
    assert "not run" in stored[4].tool_results[0].content


async def test_without_tools_nothing_changes(server: ServerThread) -> None:
    s = settings(server, servers=[], tools='add:{"a":1,"b":1}')
    turn = await ask(s, Seen())
    assert turn.state == DONE and len(turn.steps) == 1
    assert turn.tool_note is not None and "none ran" in turn.tool_note  # today's plain note


async def test_a_server_that_fails_is_one_warning_and_the_chat_goes_on(server: ServerThread) -> None:
    said: List[str] = []
    s = settings(server, servers=[calc("broken", "--fail-start")])
    engine = Engine(s, warn=said.append)
    await engine.start()
    try:
        assert len(said) == 1 and "broken" in said[0] and engine.tools == []
        turn = await ask(s, Seen(), engine=engine)
        assert turn.state == DONE and turn.answer and len(turn.steps) == 1
    finally:
        await engine.aclose()


async def test_cancelling_mid_tool_stops_the_loop_and_the_tool_process(server: ServerThread, tmp_path: Path) -> None:
    pid_file = tmp_path / "calc.pid"
    s = settings(server, servers=[calc("calc", "--pid-file", str(pid_file))], tools='slow:{"seconds":60}')
    s.allow_all_tools = True
    obs = Seen()
    engine = Engine(s)
    await engine.start()
    pid = int(pid_file.read_text())
    turn = Turn("go", Metrics())
    task = asyncio.ensure_future(engine.run(turn, (), obs))
    await asyncio.wait_for(obs.running.wait(), WAIT)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert turn.state == CANCELLED
    (activity,) = turn.steps[0].activities
    assert activity.status == TOOL_ERROR and "cancelled" in activity.result.text
    deadline = time.monotonic() + WAIT
    while _alive(pid):
        assert time.monotonic() < deadline, "the tool's process outlived the cancel"
        await asyncio.sleep(0.05)
    # The next turn gets fresh servers.
    s2 = settings(server, servers=engine.settings.mcp_servers, tools='add:{"a":1,"b":2}')
    await engine.use(s2)
    try:
        again = await ask(s2, Seen(), engine=engine)
        assert again.answer == "Tool add returned 3."
    finally:
        await engine.aclose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_always_allows_the_tool_for_the_run_and_remembers_it_in_the_profile(server: ServerThread, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\ndefault = "p"\n\n[profiles.p]\nmodel = "m" # keep\n\n[profiles.q]\nmodel = "n"\n', encoding="utf-8")
    s = settings(server, tools='add:{"a":1,"b":2}')
    s.profile, s.config_path = "p", path
    obs = Seen({"add": "always"})
    engine = Engine(s)
    await engine.start()
    try:
        await ask(s, obs, engine=engine)
        await ask(s, obs, "again", engine=engine)
    finally:
        await engine.aclose()
    assert obs.asked == ["add"]  # the second turn's call was allowed already
    text = path.read_text(encoding="utf-8")
    assert text == '# mine\ndefault = "p"\n\n[profiles.p]\nallow_tools = ["add"]\nmodel = "m" # keep\n\n[profiles.q]\nmodel = "n"\n'
    assert load_config(path).profiles["p"].allow_tools == ["add"]


@pytest.mark.parametrize("api", APIS)
async def test_history_stores_the_calls_and_results_and_replays_them_as_the_engine_does(server: ServerThread, api: str) -> None:
    from llmchat.history import HistoryStore

    s = settings(server, api, tools='add:{"a":1,"b":2};echo:{"text":"hi"}')
    s.history = True
    s.allow_tools = ("add",)
    with HistoryStore.open() as store:
        engine = Engine(s, store=store)
        await engine.start()
        try:
            turn = await ask(s, Seen(), engine=engine)
        finally:
            await engine.aclose()
        assert turn.state == DONE
        stored = store.context(engine.conversation_id)
    in_memory = context([turn, Turn("next", Metrics())])
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored == in_memory
    results = stored[2].tool_results
    assert [(r.name, r.content, r.is_error) for r in results] == [("add", "3", False), ("echo", "denied by the user", True)]


async def test_ending_the_turn_while_a_tool_runs_stops_the_call_and_the_loop(server: ServerThread) -> None:
    s = settings(server, tools='slow:{"seconds":60}')
    s.allow_all_tools = True
    obs = Seen()
    engine = Engine(s)
    await engine.start()
    try:
        turn = Turn("go", Metrics())
        task = asyncio.ensure_future(engine.run(turn, (), obs))
        await asyncio.wait_for(obs.running.wait(), WAIT)
        engine.end(turn, CANCELLED)  # what a face's Esc does first
        await asyncio.wait_for(task, 5)
        assert turn.state == CANCELLED and len(turn.steps) == 1
        (activity,) = turn.steps[0].activities
        assert activity.status == TOOL_ERROR and "cancelled" in activity.result.text
        assert ("finished", "slow", TOOL_ERROR) in obs.events
    finally:
        await engine.aclose()


class Waits(Seen):
    """Never answers: the question stays up until the turn is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.asking = asyncio.Event()

    async def approve(self, turn: Turn, activity: Any) -> str:
        self.asking.set()
        await asyncio.Event().wait()
        return "deny"


async def test_a_cancel_while_the_question_is_up_runs_nothing_and_keeps_the_calls(server: ServerThread) -> None:
    s = settings(server, tools='add:{"a":1,"b":2};echo:{"text":"hi"}')
    obs = Waits()
    engine = Engine(s)
    await engine.start()
    try:
        turn = Turn("go", Metrics())
        task = asyncio.ensure_future(engine.run(turn, (), obs))
        await asyncio.wait_for(obs.asking.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await engine.aclose()
    assert turn.state == CANCELLED
    assert [a.status for a in turn.steps[0].activities] == ["asked", "asked"] and obs.events == []
    sent = context([turn, Turn("next", Metrics())])
    assert [r.content for r in sent[2].tool_results] == ["no result: the call did not finish (the turn was cancelled or interrupted)"] * 2


async def test_a_server_that_crashes_in_a_call_is_an_error_result_and_one_warning(server: ServerThread) -> None:
    said: List[str] = []
    s = settings(server, tools="crash")
    s.allow_all_tools = True
    engine = Engine(s, warn=said.append)
    await engine.start()
    try:
        turn = await ask(s, Seen(), engine=engine)
    finally:
        await engine.aclose()
    assert turn.state == DONE
    (activity,) = turn.steps[0].activities
    assert activity.status == TOOL_ERROR and "crash" in activity.result.text
    assert len(said) == 1 and "stopped" in said[0] and "crashing on purpose" in said[0], said


async def test_tools_over_streamable_http(server: ServerThread, http_url: str) -> None:
    from llmchat.tools.config import ServerConfig

    s = settings(server, "anthropic", servers=[ServerConfig("web", url=http_url)], tools='add:{"a":4,"b":5}')
    s.allow_tools = ("add",)
    turn = await ask(s, Seen())
    assert turn.answer == "Tool add returned 9.", (turn.state, turn.error, turn.tool_note)
    assert turn.steps[0].activities[0].tool.server == "web"


async def test_the_servers_warnings_go_to_tool_warn_not_the_stores_warn(server: ServerThread) -> None:
    """A face tells the MCP servers' lines from the store's by the callback, not by their text."""
    store_lines: List[str] = []
    tool_lines: List[str] = []
    engine = Engine(settings(server, servers=[calc("calc", "--fail-start")]), warn=store_lines.append, tool_warn=tool_lines.append)
    try:
        await asyncio.wait_for(engine.start(), WAIT)
    finally:
        await engine.aclose()
    assert len(tool_lines) == 1 and "calc" in tool_lines[0] and "going on without it" in tool_lines[0], tool_lines
    assert store_lines == []
    lines: List[str] = []  # without tool_warn: `warn` has them, as before
    engine = Engine(settings(server, servers=[calc("calc", "--fail-start")]), warn=lines.append)
    try:
        await asyncio.wait_for(engine.start(), WAIT)
    finally:
        await engine.aclose()
    assert len(lines) == 1 and "going on without it" in lines[0]


class SlowUser(Seen):
    """Takes an hour (on the turn's clock) to answer each question; notes the turn's TTFT as
    the answer starts streaming (what the status bar shows then)."""

    def __init__(self, clock: "Jumping", answers: Any) -> None:
        super().__init__(answers)
        self.clock = clock
        self.ttft_streaming: List[Any] = []
        self.elapsed_asking: List[Any] = []  # the turn's elapsed time while the question is up

    async def approve(self, turn: Turn, activity: Any) -> str:
        self.clock.offset += 3600.0
        self.elapsed_asking.append(turn.metrics.elapsed())
        return await super().approve(turn, activity)

    def state(self, turn: Turn) -> None:
        if turn.state == "streaming":
            self.ttft_streaming.append(turn.metrics.ttft)


class Jumping:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def test_ttft_does_not_count_the_time_the_user_took_to_answer(server: ServerThread) -> None:
    """The first request asked for a tool and said nothing: the turn's TTFT is the next
    request's own, not an hour of the user's thinking; stored and shown alike."""
    clock = Jumping()
    s = settings(server, tools='add:{"a":1,"b":2}')
    obs = SlowUser(clock, {"add": "once"})
    engine = Engine(s, clock=clock)
    await engine.start()
    try:
        turn = await asyncio.wait_for(engine.run(Turn("go", Metrics(clock)), (), obs), WAIT)
    finally:
        await engine.aclose()
    assert turn.state == DONE and turn.answer == "Tool add returned 3."
    ttft = turn.metrics.ttft
    assert ttft is not None and 0 <= ttft < 60, ttft
    assert obs.ttft_streaming == [ttft]  # the status bar's figure while the text streams
    assert ttft == turn.steps[1].metrics.ttft
    assert turn.metrics.elapsed() > 3600  # the turn's whole time does count it ...
    assert len(obs.elapsed_asking) == 1 and obs.elapsed_asking[0] > 3600  # ... running on while the question is up (the status bar's)
    assert turn.steps[0].metrics.elapsed() < 60  # the first request's own time does not


class Streaming(Seen):
    """Sets `second` once the request after the tool results has streamed some text."""

    def __init__(self) -> None:
        super().__init__()
        self.second = asyncio.Event()
        self.turn: Any = None

    def text(self, text: str) -> None:
        if self.turn is not None and len(self.turn.steps) > 1 and self.turn.steps[-1].metrics.deltas >= 2:
            self.second.set()


@pytest.mark.parametrize("how", ["end", "cancel"])
async def test_a_later_request_counts_in_the_figures_as_it_streams_and_when_cancelled(server: ServerThread, how: str) -> None:
    from llmchat.engine.turns import live_figures

    s = settings(server, tools='add:{"a":1,"b":2}', tps=4)  # the answer after the result: slowly
    s.allow_tools = ("add",)
    obs = Streaming()
    engine = Engine(s)
    await engine.start()
    try:
        turn = Turn("go", Metrics())
        obs.turn = turn
        task = asyncio.ensure_future(engine.run(turn, (), obs))
        await asyncio.wait_for(obs.second.wait(), WAIT)
        first, second = turn.steps[0].metrics, turn.steps[1].metrics
        live = live_figures(turn)  # what the status bar shows: the second request's tokens so far too
        assert live.deltas == first.deltas + second.deltas > turn.metrics.deltas == first.deltas
        if how == "end":
            engine.end(turn, CANCELLED)  # Esc while the answer after the tools streams
            await asyncio.wait_for(task, 5)
        else:  # quitting, a signal: the run's task is cancelled
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        assert turn.state == CANCELLED
        # Stored figures: both requests' tokens, and the turn's end stays its end.
        assert turn.metrics.deltas == first.deltas + second.deltas and second.deltas >= 2
        assert turn.metrics.ended_at is not None and live_figures(turn) is turn.metrics
    finally:
        await engine.aclose()
