"""The approval question and the tool blocks on their own, in a small app: each choice and its
keys, the arming delay, the blocks' statuses, folding, and what a result may not do to the
terminal."""

from __future__ import annotations

import json
from typing import Any, List, Optional

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Button, Static

from llmchat.tui.screens.approve import ApproveTool, pretty_arguments
from llmchat.tui.widgets.tools import PREVIEW_LINES, ToolBlock, ToolTitle, preview

ARGS = json.dumps({"a": 2, "b": 3})


class Asker(App[None]):
    """Pushes one question and keeps what it was answered."""

    def __init__(self, question: ApproveTool) -> None:
        super().__init__()
        self.question = question
        self.answers: List[Optional[str]] = []

    def compose(self) -> ComposeResult:
        yield Static("the transcript")

    def on_mount(self) -> None:
        self.push_screen(self.question, self.answers.append)


def question(**kw: Any) -> ApproveTool:
    kw.setdefault("arm_delay", 0)
    return ApproveTool("add", "calc", ARGS, **kw)


@pytest.mark.parametrize(
    "keys, choice",
    [
        (["enter"], "once"),
        (["o"], "once"),
        (["a"], "always"),
        (["d"], "deny"),
        (["escape"], "deny"),
        (["tab", "enter"], "always"),  # Enter presses the focused button
        (["tab", "tab", "enter"], "deny"),
    ],
)
async def test_each_key_answers_the_question(keys: List[str], choice: str) -> None:
    app = Asker(question())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
        assert app.answers == [choice]
        assert not isinstance(app.screen, ApproveTool)


@pytest.mark.parametrize("button, choice", [("#once", "once"), ("#always", "always"), ("#deny", "deny")])
async def test_each_button_answers_the_question(button: str, choice: str) -> None:
    app = Asker(question())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.click(button)
        await pilot.pause()
        assert app.answers == [choice]


async def test_an_enter_typed_as_the_question_opens_allows_nothing() -> None:
    """A key typed for the prompt just as the question appeared: ignored until it is armed;
    denying works at once."""
    app = Asker(question(arm_delay=30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter", "o", "a")
        await pilot.click("#always")
        await pilot.pause()
        assert app.answers == [] and isinstance(app.screen, ApproveTool)
        app.screen._arm()  # what its timer does
        await pilot.press("a")
        await pilot.pause()
        assert app.answers == ["always"]

    app = Asker(question(arm_delay=30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert app.answers == ["deny"]


async def test_the_question_arms_itself_after_its_delay() -> None:
    app = Asker(question(arm_delay=0.05))
    async with app.run_test(size=(80, 24)) as pilot:
        asked = app.question
        for _ in range(100):
            if asked.armed:
                break
            await pilot.pause(0.02)
        assert asked.armed
        await pilot.press("enter")
        await pilot.pause()
        assert app.answers == ["once"]


async def test_the_question_shows_tool_server_position_and_pretty_sanitised_arguments() -> None:
    hostile = json.dumps({"path": "/tmp/x"})[:-1] + ', "note": "a\x1b]0;owned\x07b"}'
    app = Asker(ApproveTool("write\x1b[2Jfile", "fs\x07", hostile, position=(2, 3), arm_delay=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        texts = [str(widget.render()) for widget in screen.query(Static) if not isinstance(widget, Button)]
        shown = "\n".join(texts)
        assert "writefile" in shown and "on server fs" in shown
        assert "\x1b" not in shown and "\x07" not in shown
        assert '  "path": "/tmp/x"' in shown  # indented JSON
        assert '"a\\u001b]0;owned\\u0007b"' in shown  # a raw control character in a string: shown escaped
        assert screen.query_one("#dialog").border_title == "Run this tool? (2 of 3)"


def test_arguments_that_are_not_json_are_shown_as_written_but_sanitised() -> None:
    assert pretty_arguments("not json \x1b[31mred") == "not json red"
    assert pretty_arguments("") == "(no arguments)"
    assert pretty_arguments('{"a":1}') == '{\n  "a": 1\n}'
    assert pretty_arguments("x" * 50, limit=10).endswith("… (40 more characters)")


@pytest.mark.parametrize("size", [(40, 15), (120, 40)])
async def test_long_arguments_scroll_and_the_buttons_stay_on_screen(size: tuple) -> None:
    long = json.dumps({"items": list(range(200))})
    app = Asker(ApproveTool("add", "calc", long, arm_delay=0))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        scroll = screen.query_one("#arguments", VerticalScroll)
        assert scroll.max_scroll_y > 0
        for button in screen.query(Button):
            region = button.region
            assert region.height >= 1 and region.bottom <= size[1] and region.right <= size[0], button.id
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0
        await pilot.press("d")
        await pilot.pause()
        assert app.answers == ["deny"]


# --- the blocks ----------------------------------------------------------------------------


class Blocks(App[None]):
    def __init__(self, *blocks: ToolBlock) -> None:
        super().__init__()
        self.blocks = blocks

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield from self.blocks


def body_shown(block: ToolBlock) -> bool:
    arguments = block.query_one(".tool-arguments")
    return arguments.display and arguments.region.height > 0


async def test_a_block_goes_from_asked_to_running_to_done_and_folds() -> None:
    block = ToolBlock("add", "calc", ARGS)
    app = Blocks(block)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert block.has_class("-asked") and block.expanded
        assert "add ? waiting for you · calc" in block.title_text
        block.show("running", started_at=10.0)
        block.tick(11.5)
        await pilot.pause()
        assert block.has_class("-running") and not block.has_class("-asked")
        assert "running · 1.50 s" in block.title_text and block.expanded
        block.show("done", result="5", duration=0.012)
        await pilot.pause()
        assert block.has_class("-done") and not block.expanded and block.has_class("-folded")
        assert block.title_text == "▶ add ✓ done · 12 ms · calc → 5"


@pytest.mark.parametrize("status", ["error", "denied"])
async def test_an_error_or_a_denial_has_its_own_look_and_folds(status: str) -> None:
    block = ToolBlock("add", "calc", ARGS)
    app = Blocks(block)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        block.show(status, result="denied by the user" if status == "denied" else "no such tool", is_error=True, duration=0.5)
        await pilot.pause()
        assert block.has_class(f"-{status}") and not block.expanded
        assert ("✗ error" if status == "error" else "⊘ denied") in block.title_text


async def test_a_click_or_enter_on_the_title_opens_and_folds_a_block() -> None:
    block = ToolBlock("add", "calc", ARGS, status="done")
    app = Blocks(block)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not body_shown(block)
        await pilot.click(ToolTitle)
        await pilot.pause()
        assert body_shown(block) and block.title_text.startswith("▼")
        block.title.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert not body_shown(block) and block.title_text.startswith("▶")


async def test_a_result_with_escape_sequences_is_shown_without_them() -> None:
    result = "plain \x1b[2J\x1b]52;c;ZXZpbA==\x07text\x1b[31m red\n" + "more\n" * 40
    block = ToolBlock("echo", "calc", ARGS)
    app = Blocks(block)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        block.show("done", result=result, duration=1.0)
        block.expanded = True
        await pilot.pause()
        shown = "\n".join(block.result_view.render_line(y).text for y in range(block.result_view.size.height))
        assert "\x1b" not in shown and "\x07" not in shown
        assert shown.startswith("plain text red")
        assert len(shown.splitlines()) == PREVIEW_LINES + 1 and "more lines" in shown.splitlines()[-1]
        block.expanded = False  # folded, the title says the result's first line
        assert block.title_text.endswith("→ plain text red")


def test_a_preview_is_capped_in_characters_and_lines() -> None:
    assert preview("x" * 5000, chars=100).endswith("… (4,900 more characters)")
    assert preview("short") == "short"
    assert preview("a\nb\nc\nd", lines=2) == "a\nb\n… (2 more lines, 4 characters)"
