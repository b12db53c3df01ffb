"""A tool call in an answer: one block per call, where it happened between the answer's text.

    block = ToolBlock("add", "calc", '{"a": 1, "b": 2}')        # asked
    block.show(RUNNING, started_at=clock())                      # the tool runs
    block.tick(clock())                                          # its time so far (the app's status timer)
    block.show(DONE, result="3", duration=0.31)                  # folded: a title line

The title line says what and how it went: the tool, the status (each its own colour, also on the
block's left border), the time it took, its server, and (folded) the first line of the result. It opens
with a click, or Enter / Space when focused, to the arguments (pretty JSON) and the start of the
result: at most PREVIEW_CHARS characters and PREVIEW_LINES lines of it. A block stays open while
the call is asked for or runs, and folds once it has ended (a stored one is shown folded).

Everything in it comes from the model or a tool: it is sanitised before it is shown (nothing
becomes a control sequence) and never read as markup.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from llmchat.engine.turns import ASKED, DENIED, RUNNING
from llmchat.engine.turns import TOOL_DONE as DONE
from llmchat.engine.turns import TOOL_ERROR as ERROR
from llmchat.sanitize import one_line, strip_controls
from llmchat.tui.screens.approve import pretty_arguments
from llmchat.tui.widgets.thinking import ThinkingTitle

# The engine's statuses of a call (ToolActivity.status), and one of the face's own: a call the
# turn's end (a cancel, an error) caught still asked for or running.
TOOL_CANCELLED = "cancelled"
TOOL_ENDED = ENDED = frozenset({DONE, ERROR, DENIED, TOOL_CANCELLED})

PREVIEW_CHARS = 2000  # of a result shown in an open block
PREVIEW_LINES = 15
ARGUMENTS_CHARS = 4000  # of the arguments shown in an open block
OPEN_SYMBOL, FOLDED_SYMBOL = "▼", "▶"

# How each status reads in the title: a mark, a word and its style.
_STATUS: Dict[str, tuple] = {
    ASKED: ("?", "waiting for you", "bold $text-warning"),
    RUNNING: ("⋯", "running", "bold $text-accent"),
    DONE: ("✓", "done", "bold $text-success"),
    ERROR: ("✗", "error", "bold $text-error"),
    DENIED: ("⊘", "denied", "bold $text-muted"),
    TOOL_CANCELLED: ("■", "cancelled", "bold $text-warning"),
}


def shown_text(turn: Any) -> str:
    """An answer's text as the app shows it: the text of each request after tool results is a
    section of its own (a paragraph break between them, not the sentences run together)."""
    steps, parts = turn.steps, turn.parts
    if len(steps) < 2:
        return turn.answer
    ends = [step.first_part for step in steps[1:]] + [len(parts)]
    texts = ("".join(parts[step.first_part : end]) for step, end in zip(steps, ends))
    return "\n\n".join(text.strip("\n") for text in texts if text.strip())


def tools_state(activities: Sequence[Any], now: float, asking: Any = None) -> Optional[str]:
    """What a step's tool calls are doing, for the status bar: the calls running and for how
    long, else the call the user is asked about (`asking`, else the first waiting for its turn
    to be asked); None when neither."""
    running = [a for a in activities if a.status == RUNNING]
    if running:
        what = one_line(running[0].call.name, 30) if len(running) == 1 else f"{len(running)} tools"
        since = min((a.started_at for a in running if a.started_at is not None), default=None)
        return f"running {what}" + (f" {max(0.0, now - since):.1f} s" if since is not None else "")
    asked = [asking] if asking is not None else [a for a in activities if a.status == ASKED]
    if asked:
        return f"allow {one_line(asked[0].call.name, 30)}?"
    return None


def preview(text: str, chars: int = PREVIEW_CHARS, lines: int = PREVIEW_LINES) -> str:
    """The start of a result, sanitised: at most `chars` characters and `lines` lines, with a
    last line saying how much more there is."""
    clean = strip_controls(text)
    kept = "\n".join(clean[:chars].split("\n")[:lines])
    if len(kept) >= len(clean):
        return kept
    rest = clean[len(kept) :]
    more_lines = rest.strip("\n").count("\n") + 1
    what = f"{len(rest):,} more characters" if more_lines == 1 else f"{more_lines:,} more lines, {len(rest):,} characters"
    return f"{kept.rstrip()}\n… ({what})"


def seconds(duration: float) -> str:
    return f"{duration * 1000:.0f} ms" if duration < 0.1 else f"{duration:.1f} s" if duration >= 10 else f"{duration:.2f} s"


class ToolTitle(ThinkingTitle):
    """The block's title line, a foldable title like the Thinking block's: click it, or focus it
    and press Enter or Space, to open or fold (it posts `ThinkingTitle.Toggle`)."""


class ToolBlock(Vertical):
    """One tool call and how it went."""

    DEFAULT_CSS = """
    ToolBlock {
        height: auto;
        margin: 0 1;
        padding: 0 1;
        background: $boost;
        border-left: outer $warning;

        &.-running { border-left: outer $accent; }
        &.-done { border-left: outer $success; }
        &.-error { border-left: outer $error; }
        &.-denied { border-left: outer $foreground 30%; }
        &.-cancelled { border-left: outer $warning; }

        & > ToolTitle {
            width: 1fr;
            height: 1;
            text-wrap: nowrap;
            text-overflow: ellipsis;
            pointer: pointer;
            &:hover { background: $block-hover-background; }
            &:focus { background: $block-cursor-background; color: $block-cursor-foreground; }
        }
        & > .tool-label { color: $text-muted; text-style: italic; }
        & > .tool-arguments, & > .tool-result { padding: 0 0 0 2; }
        &.-error > .tool-result { color: $text-error; }
        &.-folded > .tool-body { display: none; }
        &.-no-result > .tool-result-part { display: none; }
    }
    """

    expanded: reactive[bool] = reactive(True, init=False)
    status: reactive[str] = reactive(ASKED, init=False)

    def __init__(self, name: str, server: Optional[str], arguments: str, *, status: str = ASKED, classes: str = "") -> None:
        """`name`, `server` (None: no server offers it) and `arguments` (JSON text) as the model
        and the engine gave them."""
        super().__init__(classes=f"{classes} -{status} -no-result".strip())
        self.set_reactive(ToolBlock.status, status)
        self.tool_name = one_line(name, 80) or "(unnamed)"
        self.server = one_line(server, 60) if server else None
        self.arguments = arguments
        self.result: Optional[str] = None
        self.is_error = False
        self.duration: Optional[float] = None
        self.started_at: Optional[float] = None
        self._running_for: Optional[float] = None  # seconds so far, while it runs (tick)
        self.title = ToolTitle("", markup=False)
        self.result_view = Static("", classes="tool-body tool-result tool-result-part", markup=False)
        if status in ENDED:
            self.set_reactive(ToolBlock.expanded, False)
            self.add_class("-folded")

    @classmethod
    def stored(cls, item: Any) -> "ToolBlock":
        """A call as history stored it (history `ToolItem`), folded. One whose result was
        never stored (the turn was cancelled or the process ended) reads "cancelled"."""
        status = item.state()
        block = cls(item.name, item.server, item.arguments, status=status if status in _STATUS else TOOL_CANCELLED)
        block.show(block.status, result=item.result, is_error=item.is_error, duration=item.duration)
        return block

    def compose(self) -> ComposeResult:
        yield self.title
        yield Static("arguments", classes="tool-body tool-label", markup=False)
        yield Static(Content(pretty_arguments(self.arguments, ARGUMENTS_CHARS)), classes="tool-body tool-arguments", markup=False)
        yield Static("result", classes="tool-body tool-label tool-result-part", markup=False)
        yield self.result_view

    def on_mount(self) -> None:
        self._show_title()

    # --- what the app tells it ---

    def show(
        self,
        status: str,
        *,
        result: Optional[str] = None,
        is_error: bool = False,
        duration: Optional[float] = None,
        started_at: Optional[float] = None,
    ) -> None:
        """The call's status now; a result (the tool's text, or why it did not run) and its
        duration once it has ended. An ended call folds."""
        if started_at is not None:
            self.started_at = started_at
        if duration is not None:
            self.duration = duration
        if result is not None:
            self.result = result
            self.is_error = is_error
            self.result_view.update(Content(preview(result)))
            self.remove_class("-no-result")
        was = self.status
        self.status = status
        if status in ENDED and was not in ENDED:
            self.expanded = False
        self._show_title()

    def show_activity(self, activity: Any) -> None:
        """The engine's `ToolActivity` as it is now (status, result, times). A block the turn's
        cancel marked stays marked (the engine then ends the call as an error "cancelled")."""
        result = activity.result
        self.show(
            TOOL_CANCELLED if self.status == TOOL_CANCELLED else activity.status,
            result=result.text if result is not None else None,
            is_error=bool(result is not None and result.is_error),
            duration=activity.duration,
            started_at=activity.started_at,
        )

    def tick(self, now: float) -> None:
        """While it runs: the time so far (`now` on the clock `started_at` was read from)."""
        if self.status == RUNNING and self.started_at is not None:
            self._running_for = max(0.0, now - self.started_at)
            self._show_title()

    def toggle(self) -> None:
        self.expanded = not self.expanded

    # --- showing it ---

    def on_thinking_title_toggle(self, event: ThinkingTitle.Toggle) -> None:
        event.stop()
        self.toggle()

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(not expanded, "-folded")
        self._show_title()

    def watch_status(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    @property
    def title_text(self) -> str:
        """The title line as plain text (what tests read)."""
        return self._title().plain

    def _title(self) -> Content:
        mark, word, style = _STATUS.get(self.status, ("·", self.status, ""))
        # Most telling first, so a narrow terminal cuts the least: the tool, how it went, the
        # time, then where it ran and what it gave.
        pieces: list = [(f"{OPEN_SYMBOL if self.expanded else FOLDED_SYMBOL} ", "$text-muted"), (self.tool_name, "bold")]
        pieces.append((f" {mark} {word}", style))
        # (A denied call never ran: no time.)
        took = self.duration if self.status in ENDED and self.status != DENIED else self._running_for if self.status == RUNNING else None
        if took is not None:
            pieces.append((f" · {seconds(took)}", ""))
        if self.server:
            pieces.append((f" · {self.server}", "$text-muted"))
        if self.result is not None and not self.expanded:
            first = one_line(self.result.strip().split("\n", 1)[0], 200)
            if first:
                pieces.append((f" → {first}", "$text-error" if self.is_error else ""))
        return Content.assemble(*pieces)

    def _show_title(self) -> None:
        self.title.update(self._title())
