"""The `‹ 2/3 ›` line under a message that has siblings in the conversation's tree: other
prompts asked at the same point (edits), or other answers to the same prompt (regenerations).

Clicking its left half steps to the previous sibling, its right half to the next; the app does
the stepping (store.select_branch, then the transcript shows the chosen branch). With a message
selected, `[`/`]` or Left/Right do the same from the keyboard (app.py).
"""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import Static


def sibling_mark(index: int, count: int) -> str:
    return f"‹ {index}/{count} ›"


class SiblingSwitcher(Static):
    DEFAULT_CSS = """
    SiblingSwitcher {
        width: auto;
        height: 1;
        padding: 0 1;
        color: $text-muted;
        &:hover { color: $text; }
        &.-prompt { margin: 0 0 0 6; }
    }
    """

    class Step(Message):
        """Step from `message_id` to the sibling `delta` places away (-1 or +1)."""

        def __init__(self, message_id: int, delta: int) -> None:
            super().__init__()
            self.message_id = message_id
            self.delta = delta

    def __init__(self, message_id: int, index: int, count: int, *, classes: str = "") -> None:
        super().__init__(Content(sibling_mark(index, count)), markup=False, classes=classes)
        self.message_id = message_id
        self.index = index
        self.count = count

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Step(self.message_id, -1 if event.x < self.size.width / 2 else 1))
