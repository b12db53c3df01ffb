"""A user message with pasted text of many lines: each such paste shows as one collapsed line
with its line count, and Enter or a click shows it in full (and hides it again).

The prompt remembers what was pasted into it (`ChatPrompt.pasted`); only a paste still found
whole in the text sent is collapsed. What is sent and stored is always the whole text.
"""

from __future__ import annotations

from typing import List, Sequence

from textual.binding import Binding
from textual.content import Content
from textual.reactive import reactive

from llmchat.tui.widgets.messages import UserMessage

COLLAPSE_LINES = 6  # a paste of this many lines or more is collapsed


def long_pastes(text: str, pastes: Sequence[str]) -> List[str]:
    """The pastes worth collapsing that are still in `text` as pasted, in order, each once."""
    found: List[str] = []
    for paste in pastes:
        if paste.count("\n") + 1 >= COLLAPSE_LINES and paste in text and paste not in found:
            found.append(paste)
    return found


def user_message(text: str, pastes: Sequence[str] = (), attached: Sequence[str] = ()) -> UserMessage:
    """The transcript's entry for a sent prompt: collapsed pastes, if any, and the list of its
    attachments (`attached`: a line each)."""
    collapsed = long_pastes(text, pastes)
    return PastedUserMessage(text, collapsed, attached) if collapsed else UserMessage(text, attached)


class PastedUserMessage(UserMessage, can_focus=True):
    DEFAULT_CSS = """
    PastedUserMessage:focus { border-left: thick $accent; }
    """

    BINDINGS = [Binding("enter,space", "toggle", "Show/hide pasted text")]

    expanded: reactive[bool] = reactive(False, init=False)

    def __init__(self, text: str, pastes: Sequence[str], attached: Sequence[str] = ()) -> None:
        super().__init__(text, attached)
        self.pastes = list(pastes)
        self.update(self.shown())

    def shown(self) -> Content:
        """The message with each paste collapsed to one line, or in full with a line to hide it."""
        parts: List[object] = []
        rest = self.text
        for paste in self.pastes:
            before, _, rest = rest.partition(paste)
            lines = paste.count("\n") + 1
            if before:
                parts.append(before)
            if self.expanded:
                parts += [(f"▾ pasted text, {lines} lines (Enter or click hides it)", "italic $text-muted"), "\n", paste]
            else:
                parts.append((f"▸ pasted text, {lines} lines (Enter or click shows it)", "italic $text-accent"))
        if rest:
            parts.append(rest)
        return self.with_attached(Content.assemble(*parts))  # type: ignore[arg-type]

    def watch_expanded(self) -> None:
        self.update(self.shown())

    def action_toggle(self) -> None:  # type: ignore[override]  # this widget's own "toggle" action, not DOMNode's toggle(attribute)
        self.expanded = not self.expanded

    def on_click(self) -> None:
        self.action_toggle()
