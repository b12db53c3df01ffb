"""The "Thinking" block above an answer: the model's reasoning, labelled and foldable.

Open while the reasoning streams (showing its last few thousand characters: all of a long one
would take longer to lay out than a frame), folded once the answer starts (the app folds it and
says it has ended: then all of it is there to open). The title toggles it with a click, or with
Enter or Space when focused, and the app's Ctrl+T toggles the newest one from the prompt. The text is the model's: it is sanitised before it is shown, and
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
TAIL_CHARS = 3000  # of the reasoning shown while it streams (all of it once it has ended)


class ThinkingTitle(Static, can_focus=True):
    """The block's label: click it, or focus it and press Enter or Space, to fold or open."""

    ALLOW_SELECT = False
    BINDINGS = [Binding("enter,space", "toggle", "Fold or open", show=False)]

    class Toggle(Message):
        """Asks the block to fold or open."""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Toggle())

    def action_toggle(self) -> None:  # type: ignore[override]  # this widget's own "toggle" action, not DOMNode's toggle(attribute)
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

    def __init__(self, text: str = "", *, stored: bool = False) -> None:
        """`stored`: the whole reasoning of an answer from history, shown folded."""
        super().__init__(classes="-folded" if stored else "")
        if stored:
            self.set_reactive(ThinkingBlock.expanded, False)
        self.title = ThinkingTitle(self._label(not stored), markup=False)
        self.body = Static("", classes="thinking-text", markup=False)
        self.text = ""  # all of the reasoning so far, as the model sent it
        self.live = not stored  # still streaming: only its tail is shown (see TAIL_CHARS)
        self._parts = 0
        if text:
            self.update_text(text)

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.body

    def show_parts(self, parts: List[str]) -> None:
        """Show the reasoning as the growing list of fragments it arrives in (the app calls
        this at every status refresh: nothing is done unless it grew)."""
        if len(parts) != self._parts:
            self.text += "".join(parts[self._parts :])
            self._parts = len(parts)
            self._show()

    def update_text(self, text: str) -> None:
        """Show `text`, the whole reasoning so far."""
        self.text = text
        self._show()

    def finish(self) -> None:
        """The reasoning has ended (the answer began, or the turn is over): all of it is shown
        from now on, laid out once."""
        if self.live:
            self.live = False
            self._show()

    def _show(self) -> None:
        text = strip_controls(self.text)
        if self.live and len(text) > TAIL_CHARS:
            # Laying out all of a long reasoning at every refresh costs more than a frame (20k
            # tokens: ~0.8 s); while it streams, its tail is what there is to read.
            start = text.find("\n", len(text) - TAIL_CHARS) + 1 or len(text) - TAIL_CHARS
            text = "…\n" + text[start:]
        self.body.update(Content(text))

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
