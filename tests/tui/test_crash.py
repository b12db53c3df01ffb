"""No crash reaches the user: the command palette survives keys queued for it while it closes,
and a bug caught at the top is logged with its traceback in the data dir and reported in one
line, after which the app exits 1."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.command import CommandInput, CommandPalette
from textual.widgets import Input

from llmchat.config import data_dir
from llmchat.tui.app import ChatApp

SIZE = (100, 30)


async def poll(condition, what: str, timeout: float = 5.0, must: bool = True) -> None:
    """Poll without Pilot (whose pauses wait for a busy app): bounded, every 10 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            assert not must, f"timed out waiting for {what}"
            return
        await asyncio.sleep(0.01)


def crash_logs() -> list:
    folder = data_dir() / "crashes"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("typed", ["y", "yz", "new conv"])
async def test_keys_queued_for_the_palette_as_it_closes_start_no_search(settings_for, until, typed):
    """The crash seen after fast typing on a busy app: keys forwarded to the palette's search box
    were handled by the box only after the palette had been dismissed, and each started a
    search on the leaving palette. Such a search races the removal of the palette's list: when
    the list goes first, the search's end raises NoMatches and Textual quits. None may start."""
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette) and "-ready" in app.screen.classes, what="the palette")
        palette = app.screen
        searches = []
        search = palette._gather_commands  # watched, not changed: a private name, read in a test only

        def watched(value: str) -> object:
            searches.append(value)
            return search(value)

        palette._gather_commands = watched
        box = palette.query_one(CommandInput)
        # Keys forwarded to the box before the palette closed, handled by it after: each
        # change reaches the palette behind the close (here posted straight to the palette, so
        # it is surely handled before the palette's removal).
        for n in range(1, len(typed) + 1):
            palette.post_message(Input.Changed(box, typed[:n]))
        palette.dismiss()  # what Esc, or Enter on a command, does
        await until(pilot, lambda: not palette.is_attached, what="the palette to go")
        for _ in range(10):
            await pilot.pause(0.02)
        assert searches == []
        assert app.is_running
        assert app.crash_log is None and crash_logs() == []
        assert app.screen is app.prompt.screen


class Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["handler", "worker"])
async def test_a_bug_is_logged_in_the_data_dir_and_reported_in_one_line(settings_for, until, where):
    app = ChatApp(settings_for())
    app.raise_crashes = False  # as in a real terminal
    exited = []
    original_exit = app.exit

    def exit_spy(*args, **kw):
        exited.append(kw)
        return original_exit(*args, **kw)

    app.exit = exit_spy

    def fail() -> None:
        raise Boom("the \x1b[2Jbug\nsecond line")

    async def failing_worker() -> None:
        fail()

    async with app.run_test(size=SIZE):
        if where == "handler":
            app.call_later(fail)
        else:
            app.run_worker(failing_worker(), exit_on_error=True)
        await poll(lambda: exited, "the app to exit")
    [log] = crash_logs()
    assert app.crash_log == log
    assert (log.stat().st_mode & 0o777) == 0o600
    text = log.read_text()
    assert "Traceback" in text and "Boom: the" in text and "in fail" in text
    [call] = exited
    assert call["return_code"] == 1
    line = call["message"].plain
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("error: llmchat stopped on an internal error (Boom: the ")
    assert line.endswith(f"details in {log}")
    assert app.return_code == 1


async def test_in_tests_a_bug_is_still_raised_and_also_logged(settings_for):
    app = ChatApp(settings_for())

    def fail() -> None:
        raise Boom("raised")

    with pytest.raises(Boom):
        async with app.run_test(size=SIZE) as pilot:
            app.call_later(fail)
            await pilot.pause()
            await pilot.pause()
    assert len(crash_logs()) == 1
