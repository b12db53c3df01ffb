"""How often the status bar is refreshed while an answer streams: its figures a few times a
second (each refresh is a paint of the bar), the spinner of a wait or thinking ten times."""

from __future__ import annotations

from typing import Any, List

import pytest

from llmchat.config import Settings
from llmchat.demo.server import Behaviour
from llmchat.stream.metrics import Metrics
from llmchat.tui.app import STATUS_INTERVAL, STREAMING_STATUS_INTERVAL, ChatApp
from llmchat.tui.session import STREAMING, THINKING, WAITING, Turn

FRAME = 1 / 40  # an answer's frames at 200 tok/s


def demo_settings() -> Settings:
    return Settings(api="demo", model="demo", base_url="", demo=True, demo_reason="no API key")


def refreshes_in_a_second(app: ChatApp, clock: Any, state: str, frames: bool = True) -> int:
    """A second of an answer in `state`: a frame every FRAME seconds (each asks whether the bar
    is due; none with `frames` False) and the status timer every STATUS_INTERVAL; how many times
    the bar was refreshed."""
    metrics = Metrics(clock=clock)
    metrics.first_sent_at = metrics.sent_at = clock()
    turn = Turn("hi", metrics, state=state)
    app._active = turn
    shown: List[float] = []
    show = app._show_status

    def counted() -> None:
        shown.append(clock())
        show()

    app._show_status = counted  # type: ignore[method-assign]
    timer_at = clock.now
    end = clock.now + 1.0
    try:
        while clock.now < end - 1e-9:
            clock.now += FRAME
            if frames:
                app._status_with_frame()
            if clock.now - timer_at >= STATUS_INTERVAL - 1e-9:
                timer_at = clock.now
                app._refresh_status()
    finally:
        app._show_status = show  # type: ignore[method-assign]
        app._active = None
    return len(shown)


async def test_the_figures_are_refreshed_a_few_times_a_second_while_text_streams(manual_clock):
    app = ChatApp(demo_settings(), clock=manual_clock, demo_behaviour=Behaviour(tokens=3))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        count = refreshes_in_a_second(app, manual_clock, STREAMING)
        assert 1 / STREAMING_STATUS_INTERVAL - 1 <= count <= 1 / STREAMING_STATUS_INTERVAL + 1
        assert count <= 5


@pytest.mark.parametrize("state", [WAITING, THINKING, STREAMING])
async def test_without_frames_the_timer_refreshes_the_bar_as_before(manual_clock, state):
    """Waiting, thinking or a stalled stream: no frames, the timer keeps the bar (its spinner,
    the stall's count) fresh five times a second, whatever the state."""
    app = ChatApp(demo_settings(), clock=manual_clock, demo_behaviour=Behaviour(tokens=3))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert refreshes_in_a_second(app, manual_clock, state, frames=False) >= 1 / (STREAMING_STATUS_INTERVAL + STATUS_INTERVAL)
        if state != STREAMING:
            assert refreshes_in_a_second(app, manual_clock, state, frames=False) >= 1 / (2 * STATUS_INTERVAL)


@pytest.mark.parametrize("state", [WAITING, THINKING])
async def test_the_frames_refresh_the_bar_ten_times_a_second_before_the_text(manual_clock, state):
    app = ChatApp(demo_settings(), clock=manual_clock, demo_behaviour=Behaviour(tokens=3))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert refreshes_in_a_second(app, manual_clock, state) >= 1 / STATUS_INTERVAL - 3
