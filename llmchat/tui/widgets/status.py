"""The status bar: model, state and the live figures of the current (or last) answer.

The app copies figures from `Metrics` into the reactive attributes on a timer (and once at each
change of state), never per token: the bar repaints at most at the timer's rate, and the figures
of a finished answer stay until the next request starts.

One line when the terminal is wide enough, else two (model and state, then the figures). The
choice depends on the width only, never on the figures, so the bar does not jump while they
change.
"""

from __future__ import annotations

from typing import Any, Optional

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from llmchat.stream.metrics import Metrics
from llmchat.tui.session import CANCELLED, DONE, ERROR, STREAMING, THINKING, WAITING

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
READY = "ready"

_STATE_STYLE = {
    READY: "$text-muted",
    WAITING: "bold $warning",
    THINKING: "bold $secondary",
    STREAMING: "bold $accent",
    DONE: "bold $success",
    CANCELLED: "bold $warning",
    ERROR: "bold $error",
}
_SEPARATOR = (" │ ", "$text-muted")
# Room the state and the four figures take on one line, typically ("streaming │ TTFT 0.41 s │
# tok/s ~85.2 │ tokens ~123 │ elapsed 2.1 s"), plus the separator after the model.
_FIGURES_WIDTH = 3 + 68


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    model: reactive[str] = reactive("", layout=True)
    state: reactive[str] = reactive(READY)
    ttft: reactive[Optional[float]] = reactive(None)
    tokens_per_second: reactive[Optional[float]] = reactive(None)
    exact: reactive[bool] = reactive(False)
    tokens: reactive[Optional[int]] = reactive(None)
    elapsed: reactive[Optional[float]] = reactive(None)

    def __init__(self, model: str, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.set_reactive(StatusBar.model, model)

    def show(self, metrics: Optional[Metrics], state: str) -> None:
        """Copy the figures from `metrics` (None: no request yet)."""
        self.state = state
        if metrics is None:
            self.ttft = self.tokens_per_second = self.tokens = self.elapsed = None
            return
        self.ttft = metrics.ttft
        self.tokens_per_second = metrics.tokens_per_second
        self.exact = metrics.exact
        self.tokens = metrics.output_tokens if metrics.first_at is not None or metrics.exact else None
        self.elapsed = metrics.elapsed()

    def is_narrow(self, width: int) -> bool:
        return width < len(self.model) + _FIGURES_WIDTH

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 2 if self.is_narrow(width) else 1

    @property
    def figures(self) -> str:
        """The bar as plain text (what tests read)."""
        return self.render().plain

    def render(self) -> Content:
        state = self.state
        if state == WAITING:
            frame = SPINNER[int((self.elapsed or 0.0) * 10) % len(SPINNER)]
            state_text = f"{frame} waiting"
        else:
            state_text = state
        mark = "" if self.exact else "~"
        narrow = self.is_narrow(self.content_size.width)
        parts = [
            (self.model, "bold"),
            _SEPARATOR,
            (state_text, _STATE_STYLE.get(state, "")),
            "\n" if narrow else _SEPARATOR,
            *_figure("TTFT", None if self.ttft is None else f"{self.ttft:.2f} s"),
            _SEPARATOR,
            *_figure("tok/s", None if self.tokens_per_second is None else f"{mark}{self.tokens_per_second:.1f}"),
            _SEPARATOR,
            *_figure("tokens", None if self.tokens is None else f"{mark}{self.tokens}"),
            _SEPARATOR,
            *_figure("elapsed", None if self.elapsed is None else f"{self.elapsed:.1f} s"),
        ]
        return Content.assemble(*parts)


def _figure(label: str, value: Optional[str]) -> tuple:
    return (label + " ", "$text-muted"), (value if value is not None else "–", "")
