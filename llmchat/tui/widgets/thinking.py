"""The "Thinking" block above an answer: the model's reasoning, labelled and foldable.

Open while the reasoning streams, folded once the answer starts (the app folds it); the title
toggles it with a click, or with Enter or Space when focused, and the app's Ctrl+T toggles the
newest one from the prompt. The text is the model's: it is sanitised before it is shown, and
never read as markup.

Its own small widget rather than Textual's `Collapsible`: that one scrolls itself into view
whenever it opens or folds, which would pull a transcript that follows a streaming answer away
from the end, and it nests a container more than this needs.
"""

from __future__ import annotations

from typing import List

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from llmchat.output import strip_controls

TITLE = "Thinking"
OPEN_SYMBOL, FOLDED_SYMBOL = "▼", "▶"


class ThinkingTitle(Static, can_focus=True):
    """The block's label: click it, or focus it and press Enter or Space, to fold or open."""

    ALLOW_SELECT = False
    BINDINGS = [Binding("enter,space", "toggle", "Fold or open", show=False)]

    class Toggle(Message):
        """Asks the block to fold or open."""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Toggle())

    def action_toggle(self) -> None:
        self.post_message(self.Toggle())


class ThinkingBlock(Vertical):
    DEFAULT_CSS = """
    ThinkingBlock {
        height: auto;
        padding: 0 1;
        background: transparent;

        & > ThinkingTitle {
            width: auto;
            color: $text-muted;
            text-style: bold;
            pointer: pointer;
            &:hover { color: $foreground; background: $block-hover-background; }
            &:focus { background: $block-cursor-background; color: $block-cursor-foreground; }
        }
        & > .thinking-text {
            padding: 0 0 0 2;
            color: $text-muted;
            text-style: italic;
        }
        &.-folded > .thinking-text { display: none; }
    }
    """

    expanded: reactive[bool] = reactive(True, init=False)

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.title = ThinkingTitle(self._label(True), markup=False)
        self.body = Static("", classes="thinking-text", markup=False)
        self.text = ""
        self._parts = 0
        self.update_text(text)

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.body

    def show_parts(self, parts: List[str]) -> None:
        """Show the reasoning as the list of fragments it arrives in (joined only when it grew:
        the app calls this at every status refresh)."""
        if len(parts) != self._parts:
            self._parts = len(parts)
            self.update_text("".join(parts))

    def update_text(self, text: str) -> None:
        """Show `text` (the whole reasoning so far, as the model sent it)."""
        if text != self.text:
            self.text = text
            self.body.update(Content(strip_controls(text)))

    def fold(self) -> None:
        self.expanded = False

    def toggle(self) -> None:
        self.expanded = not self.expanded

    def on_thinking_title_toggle(self, event: ThinkingTitle.Toggle) -> None:
        event.stop()
        self.toggle()

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(not expanded, "-folded")
        self.title.update(self._label(expanded))

    @staticmethod
    def _label(expanded: bool) -> str:
        return f"{OPEN_SYMBOL if expanded else FOLDED_SYMBOL} {TITLE}"
