"""Every shipped theme keeps tool calls readable: each character of the tool blocks (every status,
an opened block's arguments and result) and of the question before a call meets WCAG 2 contrast
4.5:1 (7:1 for `contrast`), measured as test_theme_contrast.py measures the rest of the app."""

from __future__ import annotations

import json

import pytest
from test_theme_contrast import BAR, REPO_THEMES, SIZE, THEMES, low_contrast

from llmchat.engine.turns import Step, ToolActivity
from llmchat.stream.events import ToolCall
from llmchat.stream.metrics import Metrics
from llmchat.tools import Tool, ToolResult
from llmchat.tui.app import ChatApp, _ShownTurn
from llmchat.tui.screens.approve import ApproveTool
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets.tools import ToolBlock

CALC = Tool("add", "calc", "add", "Add two integers.")


def themed(settings_for, theme: str) -> ChatApp:
    return ChatApp(settings_for(tokens=3), status_interval=None, theme=theme, themes_from=[REPO_THEMES])


@pytest.mark.parametrize("theme", THEMES)
async def test_every_text_of_the_tool_blocks_is_readable(settings_for, theme):
    app = themed(settings_for, theme)
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.cursor_blink = False
        turn = app.session.begin("What is 2 + 3?", Metrics())
        turn.view = AssistantMessage()
        await app.transcript.mount(UserMessage(turn.prompt))
        await app.transcript.mount(turn.view)
        shown = _ShownTurn(app, turn)
        shown.text("Let me check.")
        calls = [
            ("add", CALC, "done", ToolResult("5"), 0.2),
            ("divide", CALC, "error", ToolResult("division by zero", is_error=True), 0.1),
            ("rm", None, "denied", ToolResult("denied by the user", is_error=True), None),
            ("slow", CALC, "running", None, None),
            ("wait", CALC, "asked", None, None),
        ]
        for number, (name, tool, status, result, duration) in enumerate(calls):
            call = ToolActivity(ToolCall(f"c{number}", name, json.dumps({"a": 2, "b": 3})), tool)
            turn.step.activities.append(call)
            call.status, call.result, call.duration, call.started_at = status, result, duration, 0.0
            shown.tool_finished(turn, call)
        turn.step.activities[3].status = "cancelled"  # as a cancel leaves it
        blocks = list(app.query(ToolBlock))
        blocks[3].show("cancelled")
        blocks[0].expanded = True  # its arguments and result
        shown.step(turn, Step(1, 0, Metrics()))
        shown.text("It is 5.")
        await pilot.pause()
        await pilot.pause()
        problems = low_contrast(app, BAR[theme])
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("theme", THEMES)
async def test_every_text_of_the_question_is_readable(settings_for, theme):
    app = themed(settings_for, theme)
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.cursor_blink = False
        app.push_screen(ApproveTool("add", "calc", '{"a": 2, "b": 3}', description="Add two integers.", position=(1, 2), arm_delay=0))
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ApproveTool)
        problems = low_contrast(app, BAR[theme])
        assert not problems, "\n".join(problems)
