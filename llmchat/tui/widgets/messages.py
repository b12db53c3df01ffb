"""The transcript's entries: the user's messages, the assistant's answers, a welcome note.

A user message is plain text (what was typed, never read as markup), and under it the
attachments it carried, one line each (name, kind, size). An answer is a
`StreamingMarkdown` the app streams into (one widget however long the answer: see
streaming_markdown.py), the app's Thinking block above it when the model thinks aloud
(thinking.py), and under it the answer's figures once it ended and a note for how it ended when
that is worth saying (cancelled, error, cut short, retrying, superseded). The state is a reactive attribute mirrored as a CSS class, so the theme colours it.

While an answer streams it holds full garbage collections off (the app's GC policy,
llmchat/tui/gc_policy.py), from its mount until a moment after it ended.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from llmchat.tui.compat import RowsKeptOnResize, quiet_virtual_size, still_virtual_size, use_tall_styles_cache
from llmchat.tui.gc_policy import GC_DELAY
from llmchat.tui.session import FINAL_STATES, WAITING
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown


class Welcome(Static):
    DEFAULT_CSS = """
    Welcome {
        color: $text-muted;
        padding: 1 2;
    }
    """


class UserMessage(Static):
    virtual_size = quiet_virtual_size()  # not scrollable: its first size needs no second layout

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 6;
        padding: 0 1;
        background: $primary 15%;
        border-left: thick $primary;
        color: $foreground;
        &.-selected { background: $primary 35%; border-left: thick $secondary; }
    }
    """

    def __init__(self, text: str, attached: Sequence[str] = ()) -> None:
        """`attached`: a line for each attachment (widgets/attachments.py `describe`)."""
        self.text = text
        self.attached = list(attached)
        super().__init__(self.with_attached(Content(text)), markup=False)

    def with_attached(self, content: Content) -> Content:
        """`content` with the list of attachments under it."""
        if not self.attached:
            return content
        lines = [("\n+ " + line, "$text-muted") for line in self.attached]
        return Content.assemble(content, *lines)


class AssistantMessage(RowsKeptOnResize, Vertical):
    virtual_size = still_virtual_size()  # (see StreamingMarkdown)

    DEFAULT_CSS = """
    AssistantMessage {
        height: auto;
        margin: 1 6 0 0;
        padding: 0 0 0 0;
        background: $surface;
        border-left: thick $accent;

        & > StreamingMarkdown {
            padding: 0 1;
            margin: 0;
            background: transparent;
        }
        & > .figures {
            display: none;
            padding: 0 1;
            color: $text-muted;
        }
        & > .note {
            display: none;
            padding: 0 1;
            color: $text-muted;
        }
        &.-has-figures > .figures { display: block; }
        &.-has-note > .note { display: block; }
        &.-superseded { opacity: 70%; }
        &.-selected { background: $accent 20%; border-left: thick $secondary; }
        &.-cancelled { border-left: thick $warning; }
        &.-cancelled > .note { color: $text-warning; }
        &.-error { border-left: thick $error; }
        &.-error > .note { color: $text-error; }
    }
    """

    state: reactive[str] = reactive(WAITING, init=False)

    def __init__(self) -> None:
        super().__init__()
        # As tall as its answer: a flood's end (its `-cancelled` border) marked every row of it
        # dirty in Textual's cache, a set of ~500,000 row numbers (~30 MB) for 11 MB of text.
        use_tall_styles_cache(self)
        self.markdown = StreamingMarkdown()
        self.figures = Static("", classes="figures", markup=False)
        self.figures_text = ""
        self.note = Static("", classes="note", markup=False)
        self.note_text = ""
        self._gc_hold: Any = None  # the app's GC policy while this answer holds it (gc_policy.py)
        self.add_class(f"-{WAITING}")

    def compose(self) -> ComposeResult:
        yield self.markdown
        yield self.figures
        yield self.note

    def rows_kept_on_resize(self) -> bool:
        """Its rows (the border at the left, the background) are the same at any height: while
        its answer grows a line at a time (a layout each), the rows painted stay painted."""
        gutter = self.styles.gutter
        return not (gutter.top or gutter.bottom)

    @property
    def _holds_gc(self) -> bool:
        return self._gc_hold is not None

    def on_mount(self) -> None:
        policy = getattr(self.app, "gc_policy", None)
        if policy is not None and self.state not in FINAL_STATES:
            policy.begin("answer")
            self._gc_hold = policy

    def on_unmount(self) -> None:
        self._release_gc()  # removed before it ended (a new conversation, the app closing)

    def _release_gc(self) -> None:
        policy, self._gc_hold = self._gc_hold, None
        if policy is not None:
            policy.end("answer")

    def watch_state(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")
        if new in FINAL_STATES and old not in FINAL_STATES and self._holds_gc:
            self.set_timer(GC_DELAY, self._release_gc)  # after the last frames are painted

    def set_figures(self, text: str) -> None:
        """The line of figures under an ended answer (as a reopened answer has)."""
        self.figures_text = text
        self.set_class(bool(text), "-has-figures")
        self.figures.update(Content(text))

    def set_note(self, text: Optional[str]) -> None:
        self.note_text = text or ""
        self.set_class(bool(text), "-has-note")
        self.note.update(Content(self.note_text))
