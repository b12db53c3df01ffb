"""Snapshots of tool calls in the app, at a narrow and a usual size: the question before a call
runs, and an answer with its tool blocks (done, error, denied, one opened) and the text after them.
Deterministic: the engine's tool objects handed to the app's observer, a fake clock, no status
timer, no cursor blink."""

from __future__ import annotations

import json

import pytest

from llmchat.engine.turns import DONE, Step, ToolActivity
from llmchat.stream.events import ToolCall
from llmchat.stream.metrics import Metrics
from llmchat.tools import Tool, ToolResult
from llmchat.tui.app import ChatApp, _ShownTurn
from llmchat.tui.screens.approve import ApproveTool
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets.tools import ToolBlock

SIZES = pytest.mark.parametrize("size", [(40, 15), (80, 24)], ids=["40x15", "80x24"])
CALC = Tool("add", "calc", "add", "Add two integers.")


@SIZES
def test_the_question_before_a_tool_runs(snap_compare, settings_for, step_clock, size):
    app = ChatApp(settings_for(tokens=3), clock=step_clock, status_interval=None)
    arguments = json.dumps({"expression": "2 + 3 * (4 - 1)", "precision": 4, "note": "a\x1b]0;owned\x07b", "values": list(range(12))})

    async def run_before(pilot) -> None:
        app.prompt.cursor_blink = False
        app.push_screen(ApproveTool("calculate", "calc", arguments, description="Evaluate an arithmetic expression", position=(1, 2), arm_delay=0))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_an_answer_with_tool_blocks(snap_compare, settings_for, step_clock, size):
    app = ChatApp(settings_for(tokens=3), clock=step_clock, status_interval=None)

    async def run_before(pilot) -> None:
        app.prompt.cursor_blink = False
        turn = app.session.begin("What is 2 + 3, and 1 / 0?", Metrics(clock=step_clock))
        view = AssistantMessage()
        turn.view = view
        await app.transcript.mount(UserMessage(turn.prompt))
        await app.transcript.mount(view)
        shown = _ShownTurn(app, turn)
        shown.text("Let me work these out with the calculator.")
        results = [
            ("add", '{"a": 2, "b": 3}', CALC, "done", ToolResult("5"), 0.012),
            ("divide", '{"a": 1, "b": 0}', Tool("divide", "calc", "divide"), "error", ToolResult("division by zero", is_error=True), 0.2),
            ("rm", '{"path": "/"}', None, "denied", ToolResult("denied by the user", is_error=True), None),
        ]
        for number, (name, arguments, tool, status, result, duration) in enumerate(results):
            call = ToolActivity(ToolCall(f"c{number}", name, arguments), tool)
            turn.step.activities.append(call)
            call.status, call.result, call.duration = status, result, duration
            shown.tool_finished(turn, call)
        step = Step(1, len(turn.parts), Metrics(clock=step_clock))
        turn.steps.append(step)
        shown.step(turn, step)
        shown.text("So **2 + 3 = 5**, and dividing by zero is an error.")
        turn.state = DONE
        shown.state(turn)
        await shown.markdown.get_stream().stop()
        app.query(ToolBlock).first().expanded = True  # one opened: its arguments and result
        await pilot.pause()
        app.transcript.scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
