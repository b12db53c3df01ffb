"""Snapshots of the Thinking block and the status bar at 40x15 (its compact one-line form) and
80x24. Deterministic figures: either a clock that advances by each read with no status timer
(figures copied at each change of state), or a clock that stands still until the test moves it,
with the timer on (so what streams in is shown, whatever the machine's pace)."""

from __future__ import annotations

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.session import THINKING, WAITING

SIZES = [pytest.param((40, 15), id="40x15"), pytest.param((80, 24), id="80x24")]


async def _until(pilot, condition) -> None:
    for _ in range(1000):  # at most ~10 s
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("the app never reached the state to snapshot")


@pytest.mark.parametrize("size", SIZES)
def test_thinking_open_while_it_streams(snap_compare, settings_for, manual_clock, size):
    """The reasoning has stopped coming (a stall after 12 tokens), with the block still open."""
    app = ChatApp(settings_for(reasoning=20, stall_after=12, tokens=10), clock=manual_clock, status_interval=0.05)

    async def run_before(pilot) -> None:
        app.prompt.cursor_blink = False
        app.prompt.load_text("Think first")
        await pilot.press("enter")
        await _until(
            pilot,
            lambda: (
                app.session is not None
                and app.session.last is not None
                and app.session.last.thinking is not None
                and len(app.session.last.reasoning) == 12
            ),
        )
        manual_clock.now += 0.6  # the tokens came at once; 0.6 s later, not yet a stall
        await _until(pilot, lambda: app.status.elapsed is not None and app.status.elapsed > 0.5 and app.session.last.thinking.text.endswith("at"))
        assert app.status.state == THINKING
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_thinking_folded_once_the_answer_came(snap_compare, settings_for, step_clock, ask, size):
    app = ChatApp(settings_for(reasoning=12, tokens=8), clock=step_clock, status_interval=None)

    async def run_before(pilot) -> None:
        await ask(pilot, "Think first")
        app.session.last.thinking.scroll_visible(top=True, animate=False, immediate=True)  # at 40x15 it is above
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_compact_status_during_a_retry_wait(snap_compare, settings_for, manual_clock):
    app = ChatApp(settings_for(fail_first=1, retry_after="30", tokens=10), clock=manual_clock, status_interval=0.05)

    async def run_before(pilot) -> None:
        app.prompt.cursor_blink = False
        app.prompt.load_text("Hello?")
        await pilot.press("enter")
        await _until(pilot, lambda: app.status.retry_in is not None)
        manual_clock.now += 12.35
        await _until(pilot, lambda: app.status.retry_in is not None and app.status.retry_in < 20)
        assert app.status.state == WAITING
        await pilot.pause()

    assert snap_compare(app, terminal_size=(40, 15), run_before=run_before)
