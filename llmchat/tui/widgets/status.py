"""The status bar: model, state and the live figures of the current (or last) answer.

The app copies figures from `Metrics` into the reactive attributes on a timer (and once at each
change of state), never per token: the bar repaints at most at the timer's rate, and the figures
of a finished answer stay until the next request starts.

Only figures that mean something are shown: tok/s is `–` for a burst (`meaningful_rate` in
session.py), and while no data has arrived for more than `STALL_AFTER` seconds the rate gives
way to `stalled 2.1 s`. TTFT says how many retries came before it, a retry's wait counts down,
and when reasoning came first the time to the first answer token is shown beside TTFT (which
keeps its definition: the first token of either kind).

Three forms, chosen by the width only, never by the figures, so the bar never changes height
while they change: one line when the terminal is wide enough for everything, two lines (model
and state, then the figures) when it is not, and below `TWO_LINES_MIN` columns one compact line
(state and short figures, no model). A line that would still be too long loses its least
important figures, never wraps.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from llmchat.engine.turns import live_figures
from llmchat.stream.metrics import Metrics
from llmchat.tui.session import CANCELLED, DONE, ERROR, STREAMING, THINKING, WAITING, Turn, meaningful_rate

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
READY = "ready"

STALL_AFTER = 1.0  # seconds without data before the rate gives way to "stalled"

_STATE_STYLE = {
    READY: "$text-muted",
    WAITING: "bold $warning",
    THINKING: "bold $text-secondary",  # $secondary itself is dark blue on the dark panel
    STREAMING: "bold $accent",
    DONE: "bold $success",
    CANCELLED: "bold $warning",
    ERROR: "bold $error",
}
_TOOLS_STYLE = "bold $text-warning"
_SEPARATOR = (" │ ", "$text-muted")
_MUTED = "$text-muted"
_STALLED_STYLE = "bold $warning"
# Room the state and the four figures take on one line, typically ("streaming │ TTFT 0.41 s │
# tok/s ~85.2 │ tokens ~123 │ elapsed 2.1 s"), plus the separator after the model.
_FIGURES_WIDTH = 3 + 68
# Below this many columns of content the two-line form's figures line ("TTFT 0.41 s │ tok/s
# ~85.2 │ tokens ~123 │ elapsed 2.1 s") would not fit: one compact line instead.
TWO_LINES_MIN = 54
# A compact line this wide has room for the elapsed time after the longest usual figures
# ("streaming │ TTFT 0.41s │ ~85.2 tok/s").
COMPACT_ELAPSED_MIN = 46

WIDE, TWO_LINES, COMPACT = "wide", "two lines", "compact"

# A figure: its pieces (text, style) and how readily it is left out of a line too long for the
# bar (the highest first; 0 never).
_Figure = Tuple[int, List[Tuple[str, str]]]


def retries_text(retries: int) -> str:
    return "1 retry" if retries == 1 else f"{retries} retries"


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
    tokens_per_second: reactive[Optional[float]] = reactive(None)  # None also for a burst
    exact: reactive[bool] = reactive(False)
    tokens: reactive[Optional[int]] = reactive(None)
    elapsed: reactive[Optional[float]] = reactive(None)
    retries: reactive[int] = reactive(0)  # failed tries before the one answering
    answer_ttft: reactive[Optional[float]] = reactive(None)  # to the first answer token, after reasoning
    stalled: reactive[Optional[float]] = reactive(None)  # seconds since the last token, once past STALL_AFTER
    retry_in: reactive[Optional[float]] = reactive(None)  # seconds left of a retry's wait
    tools: reactive[Optional[str]] = reactive(None)  # what the answer's tool calls are doing, shown in place of the state

    def __init__(self, model: str, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.set_reactive(StatusBar.model, model)

    def show(
        self,
        metrics: Optional[Metrics],
        state: str,
        *,
        retries: int = 0,
        answer_ttft: Optional[float] = None,
        retry_until: Optional[float] = None,
    ) -> None:
        """Copy the figures from `metrics` (None: no request yet). `retries`: failed tries
        so far; `answer_ttft`: seconds from the request to the first answer token, when
        reasoning came first; `retry_until`: when a retry's wait ends (the metrics' clock)."""
        self.state = state
        self.retries = retries
        self.answer_ttft = answer_ttft
        if metrics is None:
            self.ttft = self.tokens_per_second = self.tokens = self.elapsed = None
            self.stalled = self.retry_in = None
            return
        self.ttft = metrics.ttft
        self.tokens_per_second = meaningful_rate(metrics)
        self.exact = metrics.exact
        self.tokens = metrics.output_tokens if metrics.first_at is not None or metrics.exact else None
        elapsed = self.elapsed = metrics.elapsed()
        # Now, on the metrics' clock, without reading it again.
        now = None if elapsed is None or metrics.first_sent_at is None else metrics.first_sent_at + elapsed
        live = metrics.ended_at is None and now is not None
        quiet = now - metrics.last_at if live and metrics.last_at is not None and state in (THINKING, STREAMING) else None  # type: ignore[operator]
        self.stalled = quiet if quiet is not None and quiet > STALL_AFTER else None
        left = retry_until - now if live and retry_until is not None and state == WAITING else None  # type: ignore[operator]
        self.retry_in = left if left is not None and left > 0 else None

    def show_turn(self, turn: Turn) -> None:
        """The figures and state of `turn`, with its retries, its time to the answer and the
        end of the retry wait it is in."""
        retry_until = turn.retry_until if turn.retry is not None else None
        self.show(live_figures(turn), turn.state, retries=turn.retries, answer_ttft=turn.answer_ttft, retry_until=retry_until)

    def form(self, width: int) -> str:
        """WIDE, TWO_LINES or COMPACT for `width` columns of content."""
        if width >= len(self.model) + _FIGURES_WIDTH:
            return WIDE
        return TWO_LINES if width >= TWO_LINES_MIN else COMPACT

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 2 if self.form(width) == TWO_LINES else 1

    @property
    def figures(self) -> str:
        """The bar as plain text (what tests read)."""
        return self.render().plain

    def render(self) -> Content:
        width = self.content_size.width
        form = self.form(width)
        if form == COMPACT:
            state = (0, [(self._state_text(compact=True), self._state_style())])
            return _line([state] + self._compact_figures(with_elapsed=width >= COMPACT_ELAPSED_MIN), width)
        head: List[_Figure] = [
            (0, [(self.model, "bold")]),
            (0, [(self._state_text(compact=False), self._state_style())]),
        ]
        if form == WIDE:
            return _line(head + self._figures(), width)
        return Content("\n").join([_line(head, width), _line(self._figures(), width)])

    def _state_style(self) -> str:
        return _TOOLS_STYLE if self.tools is not None else _STATE_STYLE.get(self.state, "")

    def _state_text(self, *, compact: bool) -> str:
        if self.tools is not None:
            return self.tools
        state = self.state
        if state != WAITING:
            return state
        frame = SPINNER[int((self.elapsed or 0.0) * 10) % len(SPINNER)]
        if self.retry_in is not None:
            return f"{frame} retry in {self.retry_in:.1f}{'' if compact else ' '}s"
        return f"{frame} waiting"

    def _figures(self) -> List[_Figure]:
        mark = "" if self.exact else "~"
        ttft = _labelled("TTFT", None if self.ttft is None else f"{self.ttft:.2f} s")
        if self.retries:
            ttft.append((f" after {retries_text(self.retries)}", _MUTED))
        figures: List[_Figure] = [(0, ttft)]
        if self.answer_ttft is not None:
            figures.append((2, _labelled("answer at", f"{self.answer_ttft:.2f} s")))
        if self.stalled is not None:
            figures.append((0, [(f"stalled {self.stalled:.1f} s", _STALLED_STYLE)]))
        else:
            figures.append((0, _labelled("tok/s", None if self.tokens_per_second is None else f"{mark}{self.tokens_per_second:.1f}")))
        figures.append((1, _labelled("tokens", None if self.tokens is None else f"{mark}{self.tokens}")))
        figures.append((3, _labelled("elapsed", None if self.elapsed is None else f"{self.elapsed:.1f} s")))
        return figures

    def _compact_figures(self, *, with_elapsed: bool) -> List[_Figure]:
        mark = "" if self.exact else "~"
        ttft = _labelled("TTFT", None if self.ttft is None else f"{self.ttft:.2f}s")
        if self.retries:
            ttft.append((f" ↻{self.retries}", _MUTED))  # "after N retries", in two cells
        figures: List[_Figure] = [(0, ttft)]
        if self.stalled is not None:
            figures.append((0, [(f"stalled {self.stalled:.1f}s", _STALLED_STYLE)]))
        else:
            rate = "–" if self.tokens_per_second is None else f"{mark}{self.tokens_per_second:.1f}"
            figures.append((0, [(rate, ""), (" tok/s", _MUTED)]))
        if with_elapsed:
            figures.append((1, [("–" if self.elapsed is None else f"{self.elapsed:.1f}s", "")]))
        return figures


def _labelled(label: str, value: Optional[str]) -> List[Tuple[str, str]]:
    return [(label + " ", _MUTED), (value if value is not None else "–", "")]


def _line(figures: List[_Figure], width: int) -> Content:
    """The figures joined by separators, leaving out the most dispensable ones (the highest
    number first, the last of equals first) until the line fits `width`; cut as a last resort."""
    kept = list(figures)

    def length() -> int:
        return sum(len(text) for _, parts in kept for text, _style in parts) + len(_SEPARATOR[0]) * (len(kept) - 1)

    while length() > width and any(rank for rank, _ in kept):
        worst = max(rank for rank, _ in kept)
        del kept[max(i for i, (rank, _) in enumerate(kept) if rank == worst)]
    pieces: List[Any] = []
    for index, (_, parts) in enumerate(kept):
        if index:
            pieces.append(_SEPARATOR)
        pieces.extend(parts)
    line = Content.assemble(*pieces)
    return line.truncate(width, ellipsis=True) if width > 0 and line.cell_length > width else line
