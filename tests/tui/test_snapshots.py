"""Snapshots of the app with deterministic content and figures: a fake clock (advanced by each
read), no status timer (figures copied at each change of state only), no cursor blink."""

from __future__ import annotations

import pytest

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


TABLE = (
    "Here is how they compare:\n\n| API | Framing | Notes |\n|:----|:-------:|------:|\n"
    "| OpenAI Chat | SSE | the most widely copied wire format of them all |\n"
    "| Ollama | NDJSON | local |\n"
)
CODE = "Run this:\n\n```python\nprint('a very long line of code that goes well past the edge of a narrow terminal view')\n```\n"


def answered(settings_for, step_clock, ask, text: str):
    app = make_app(settings_for(text=text), step_clock)

    async def run_before(pilot) -> None:
        await ask(pilot, "show me")

    return app, run_before


SIZES = pytest.mark.parametrize("size", [(40, 15), (80, 24)], ids=["40x15", "80x24"])


@SIZES
def test_a_table(snap_compare, settings_for, step_clock, ask, size):
    app, run_before = answered(settings_for, step_clock, ask, TABLE)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_a_long_code_line(snap_compare, settings_for, step_clock, ask, size):
    app, run_before = answered(settings_for, step_clock, ask, CODE)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def streaming(settings_for, step_clock, until):
    """An answer that stops arriving after 150 tokens, the connection open: a frame of a
    streaming answer, the same every time."""
    app = make_app(settings_for(tokens=400, stall_after=150), step_clock)

    async def run_before(pilot) -> None:
        app.prompt.cursor_blink = False
        app.prompt.load_text("stream")
        await pilot.press("enter")
        await until(pilot, lambda: app.session is not None and app.session.last is not None and len(app.session.last.parts) >= 150, what="150 tokens")
        widget = app.session.last.view.markdown
        transcript = app.transcript

        def settled() -> bool:
            """All the text laid out at the width it keeps (the transcript's scrollbar shown: it
            takes two columns, and the text wraps again), the height laid out, the view at the end."""
            return (
                not widget.backlog
                and widget.shown_chars == len(widget.source)
                and transcript.show_vertical_scrollbar
                and widget._width == widget.size.width
                and widget.size.height == widget.height_shown
                and transcript.scroll_offset.y == transcript.max_scroll_y
            )

        await until(pilot, settled, what="the text laid out at its final width")
        # The room kept for growth (out of view, but the scrollbar shows it) grows faster when
        # lines come faster, by the wall clock: keep it the fixed step, as a slow answer would.
        # (Reset before the scrollbar showed, the room was found for lines wrapped two columns
        # wider: a line fewer, and a thumb a row off on a busy machine.)
        widget._reserved, widget._above, widget._grown = 0, 0, None
        widget._show()
        await until(pilot, settled, what="the room laid out")

    return app, run_before


@SIZES
def test_a_streaming_frame(snap_compare, settings_for, step_clock, until, size):
    app, run_before = streaming(settings_for, step_clock, until)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
