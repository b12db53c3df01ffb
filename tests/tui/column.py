"""A widget alone in a scrolling column, as the transcript holds an answer: the app the widget
tests (StreamingMarkdown, AssistantMessage, a lazily laid-out huge answer) mount it in, and what
its screen shows."""

from __future__ import annotations

from typing import List

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
