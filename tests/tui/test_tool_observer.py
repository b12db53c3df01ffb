"""The app's observer of a turn with tool calls, told what the engine's tool loop tells it (the
engine's own ToolActivity, Step, Tool and ToolResult): the question per call, in order; the blocks
and their statuses; the status bar; the text after the tools in a section below the blocks; a
cancel taking the question down."""

from __future__ import annotations

import asyncio
from typing import Any, List, Tuple

from llmchat.engine.turns import Step, ToolActivity
from llmchat.stream.events import ToolCall
from llmchat.stream.metrics import Metrics
from llmchat.tools import Tool, ToolResult
from llmchat.tui.app import ChatApp, _ShownTurn
from llmchat.tui.screens.approve import ApproveTool
from llmchat.tui.widgets import AssistantMessage
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from llmchat.tui.widgets.tools import ToolBlock

SIZE = (100, 30)
CALC = Tool("add", "calc", "add", "Add two integers.")


async def a_turn(app: ChatApp) -> Tuple[Any, _ShownTurn]:
    """A turn with its answer on screen and the app's observer of it (as `_start` and the worker
    make them)."""
    assert app.session is not None
    turn = app.session.begin("add things", Metrics(clock=app._clock))
    view = AssistantMessage()
    turn.view = view
    await app.transcript.mount(view)
    return turn, _ShownTurn(app, turn)


def activity(turn: Any, name: str = "add", arguments: str = '{"a": 2, "b": 3}', tool: Any = CALC) -> ToolActivity:
    found = ToolActivity(ToolCall(f"call-{len(turn.activities)}", name, arguments), tool)
    turn.step.activities.append(found)
    return found


async def answer_question(pilot: Any, until: Any, key: str) -> ApproveTool:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ApproveTool), what="the question")
    question = app.screen
    await until(pilot, lambda: question.armed, what="the question armed")
    await pilot.press(key)
    await until(pilot, lambda: app.screen is not question, what="the question answered")
    return question


async def test_a_call_is_asked_about_then_runs_then_folds_and_the_text_goes_on_below(settings_for, until):
    app = ChatApp(settings_for(tokens=3), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        turn, shown = await a_turn(app)
        shown.text("Let me add them.")
        call = activity(turn)
        asking = asyncio.ensure_future(shown.approve(turn, call))
        await until(pilot, lambda: isinstance(app.screen, ApproveTool), what="the question")
        [block] = app.query(ToolBlock)
        assert block.status == "asked" and block.expanded
        assert app.status.tools == "allow add?" and "allow add?" in app.status.figures
        question = await answer_question(pilot, until, "o")
        assert question.tool_name == "add" and question.server == "calc" and question.position is None
        assert await asking == "once"

        call.status, call.started_at = "running", app._clock()
        shown.tool_started(turn, call)
        await pilot.pause()
        assert block.status == "running" and app.status.tools is not None and app.status.tools.startswith("running add")

        call.status, call.result, call.duration = "done", ToolResult("5"), 0.25
        shown.tool_finished(turn, call)
        await pilot.pause()
        assert block.status == "done" and not block.expanded and block.title_text.endswith("→ 5")
        assert app.status.tools is None

        step = Step(1, len(turn.parts), Metrics())
        turn.steps.append(step)
        shown.step(turn, step)
        shown.text("The sum is **5**.")
        await pilot.pause()
        view = turn.view
        kinds = [type(child).__name__ for child in view.children if child.display]
        assert kinds[:3] == ["StreamingMarkdown", "ToolBlock", "StreamingMarkdown"], kinds
        first, second = view.query(StreamingMarkdown)
        assert first.source == "Let me add them." and first.finished
        assert second.source == "The sum is **5**." and shown.markdown is second


async def test_several_calls_are_asked_about_one_at_a_time_in_order(settings_for, until):
    app = ChatApp(settings_for(tokens=3), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        turn, shown = await a_turn(app)
        calls = [activity(turn, "add"), activity(turn, "echo", '{"text": "hi"}', Tool("echo", "calc", "echo")), activity(turn, "nope", "{}", None)]
        asking = [asyncio.ensure_future(shown.approve(turn, call)) for call in calls]
        seen: List[Any] = []
        for key in ("o", "a", "d"):
            seen.append(await answer_question(pilot, until, key))
        assert [await task for task in asking] == ["once", "always", "deny"]
        assert [(q.tool_name, q.position) for q in seen] == [("add", (1, 3)), ("echo", (2, 3)), ("nope", (3, 3))]
        assert seen[2].server is None  # no configured server offers it: the question says so
        assert [block.tool_name for block in app.query(ToolBlock)] == ["add", "echo", "nope"]


async def test_a_cancel_takes_the_question_down_and_marks_the_calls(settings_for, until):
    app = ChatApp(settings_for(tokens=3), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        turn, shown = await a_turn(app)
        call = activity(turn)
        asking = asyncio.ensure_future(shown.approve(turn, call))
        await until(pilot, lambda: isinstance(app.screen, ApproveTool), what="the question")
        asking.cancel()
        await until(pilot, lambda: asking.done() and not isinstance(app.screen, ApproveTool), what="the question gone")
        assert asking.cancelled()
        turn.state = "cancelled"
        shown.state(turn)
        await pilot.pause()
        [block] = app.query(ToolBlock)
        assert block.status == "cancelled" and "■ cancelled" in block.title_text
        assert app.status.tools is None


async def test_a_cancel_at_the_first_question_shows_the_calls_not_asked_about_yet(settings_for, until):
    """The model asked for two calls; Ctrl+C at the first question: both show, cancelled, as
    history keeps them (a reopened conversation shows both)."""
    app = ChatApp(settings_for(tokens=3), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        turn, shown = await a_turn(app)
        first, _ = activity(turn), activity(turn, "echo", '{"text": "hi"}', Tool("echo", "calc", "echo"))
        asking = asyncio.ensure_future(shown.approve(turn, first))
        await until(pilot, lambda: isinstance(app.screen, ApproveTool), what="the question")
        asking.cancel()
        await until(pilot, lambda: asking.done() and not isinstance(app.screen, ApproveTool), what="the question gone")
        turn.state = "cancelled"
        shown.state(turn)
        await pilot.pause()
        assert [(block.tool_name, block.status) for block in app.query(ToolBlock)] == [("add", "cancelled"), ("echo", "cancelled")]


async def test_a_call_that_was_allowed_already_shows_its_block_without_a_question(settings_for, until):
    app = ChatApp(settings_for(tokens=3), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        turn, shown = await a_turn(app)
        call = activity(turn)
        call.status, call.started_at = "running", app._clock()
        shown.tool_started(turn, call)
        call.status, call.result, call.duration = "error", ToolResult("boom\x1b[2J", is_error=True), 1.5
        shown.tool_finished(turn, call)
        await pilot.pause()
        assert not isinstance(app.screen, ApproveTool)
        [block] = app.query(ToolBlock)
        assert block.status == "error" and block.title_text.endswith("→ boom")


def test_the_text_before_and_after_tool_calls_is_copied_as_two_paragraphs() -> None:
    from llmchat.engine.turns import Turn
    from llmchat.tui.widgets.tools import shown_text

    turn = Turn("q", Metrics())
    turn.parts += ["Let me ", "check.\n"]
    turn.steps.append(Step(1, len(turn.parts), Metrics()))
    turn.steps.append(Step(2, len(turn.parts), Metrics()))  # a step that only called tools
    turn.parts += ["It is ", "5."]
    assert shown_text(turn) == "Let me check.\n\nIt is 5."
    plain = Turn("q", Metrics())
    plain.parts += ["just ", "text"]
    assert shown_text(plain) == "just text"
