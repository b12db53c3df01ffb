"""A widget alone in a scrolling column, as the transcript holds an answer: the app the widget
tests (StreamingMarkdown, AssistantMessage, a lazily laid-out huge answer) mount it in, and what
its screen shows."""

from __future__ import annotations

import time
from typing import Any, List

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget


class Column(App[None]):
    """`widget` in a VerticalScroll (#column); with `follow`, the column follows its end, as the
    transcript does while an answer streams."""

    def __init__(self, widget: Widget, follow: bool = False) -> None:
        super().__init__()
        self.widget = widget
        self.follow = follow

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="column"):
            yield self.widget

    def on_mount(self) -> None:
        if self.follow:
            self.query_one("#column").anchor()


def Follow(widget: Widget) -> Column:
    """`widget` in a column that follows its end."""
    return Column(widget, follow=True)


def screen_text(app: App) -> List[str]:
    """The screen's rows as text."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def drained(pilot: Any, widget: Any, timeout: float = 10.0) -> None:
    """Wait (bounded) until a finished StreamingMarkdown has taken in all its text."""
    deadline = time.monotonic() + timeout
    while not (widget.finished and not widget.backlog):
        if time.monotonic() > deadline:
            raise AssertionError(f"the answer still holds {widget.backlog} characters not taken in")
        await pilot.pause(0.02)
