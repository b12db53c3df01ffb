"""Snapshots of the app with deterministic content and figures: a fake clock (advanced by each
read), no status timer (figures copied at each change of state only), no cursor blink."""

from __future__ import annotations

from llmchat.config import Settings
from llmchat.demo.server import Behaviour
from llmchat.tui.app import ChatApp

SIZE = (100, 30)


def make_app(settings: Settings, clock, **kw) -> ChatApp:
    app = ChatApp(settings, clock=clock, status_interval=None, **kw)
    return app


async def no_blink(pilot) -> None:
    pilot.app.prompt.cursor_blink = False
    await pilot.pause()


def test_first_frame_in_demo_mode(snap_compare, step_clock):
    settings = Settings(api="demo", model="demo", base_url="", demo=True, demo_reason="no API key, config or --api given")
    app = make_app(settings, step_clock, demo_behaviour=Behaviour(tokens=10))
    assert snap_compare(app, terminal_size=SIZE, run_before=no_blink)


def test_finished_answer_with_figures(snap_compare, settings_for, step_clock, ask):
    app = make_app(settings_for(tokens=90), step_clock)

    async def run_before(pilot) -> None:
        await ask(pilot, "Show me what you can do")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_error_in_the_transcript(snap_compare, settings_for, step_clock, ask):
    app = make_app(settings_for(status=401), step_clock)

    async def run_before(pilot) -> None:
        await ask(pilot, "Hello?")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
