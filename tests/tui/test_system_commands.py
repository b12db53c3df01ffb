"""The palette's system commands offer what makes sense and say what they did: Screenshot saves
in the data dir (not ~/Downloads, which may not exist) and says where, or where and why not;
Maximize is not offered for the prompt; the Keys panel closes with Esc."""

from __future__ import annotations

import pytest
from test_palette import run_command
from textual.widgets import HelpPanel

from llmchat.config import data_dir
from llmchat.tui.app import ChatApp

SIZE = (100, 30)


def titles(app: ChatApp) -> list:
    return [command.title for command in app.get_system_commands(app.screen)]


async def test_screenshot_is_saved_in_the_data_dir_when_downloads_is_missing(settings_for, until, spy_notices, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    app = ChatApp(settings_for())
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, until, "screensh", "Screenshot")
        folder = data_dir() / "screenshots"
        await until(pilot, lambda: folder.exists() and list(folder.glob("*.svg")), what="the screenshot")
        [svg] = folder.glob("*.svg")
        assert "<svg" in svg.read_text()
        await until(pilot, lambda: notices, what="the notice")
        assert notices == [(f"Saved in {svg}", "information")]


async def test_a_screenshot_that_cannot_be_saved_says_where_and_why(settings_for, until, spy_notices, isolated_home):
    (isolated_home / "data").write_text("a file where the data dir should be")
    app = ChatApp(settings_for())
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, until, "screensh", "Screenshot")
        await until(pilot, lambda: any(m.startswith("Screenshot") for m, _ in notices), what="the notice")
        [(message, severity)] = [notice for notice in notices if notice[0].startswith("Screenshot")]
        assert severity == "error"
        assert message.startswith(f"Screenshot not saved in {isolated_home / 'data' / 'screenshots'}: ")
        assert message.rstrip(".").split(": ", 1)[1] in ("Not a directory", "File exists")


async def test_maximize_is_not_offered_for_the_prompt(settings_for):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        assert app.prompt.has_focus
        assert "Maximize" not in titles(app)
        app.screen.action_maximize()  # bound by nothing, but asked for anyway: nothing happens
        await pilot.pause()
        assert app.screen.maximized is None


@pytest.mark.parametrize("opened_by", ["palette", "action"])
async def test_the_keys_panel_closes_with_esc(settings_for, until, opened_by):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        if opened_by == "palette":
            await run_command(pilot, until, "keys", "Keys")
        else:
            app.action_show_help_panel()
        await until(pilot, lambda: app.screen.query(HelpPanel), what="the keys panel")
        await pilot.press("escape")
        await until(pilot, lambda: not app.screen.query(HelpPanel), what="the panel to close", timeout=3)
        await pilot.press("x")
        assert app.prompt.text == "x"  # typing still goes to the prompt
