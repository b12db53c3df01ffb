"""The transcript's entries: the user's messages, the assistant's answers, a welcome note.

A user message is plain text (what was typed, never read as markup). An answer is a
`StreamingMarkdown` the app streams into (one widget however long the answer: see
streaming_markdown.py), a dim reasoning block shown only when the model thinks aloud, and
a note under it for how the answer ended when that is worth saying (cancelled, error, cut short,
retrying). The state is a reactive attribute mirrored as a CSS class, so the theme colours it.
"""

from __future__ import annotations

from typing import Optional

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from llmchat.tui.session import WAITING
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown


class Welcome(Static):
    DEFAULT_CSS = """
    Welcome {
        color: $text-muted;
        padding: 1 2;
    }
    """


class UserMessage(Static):
    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 6;
        padding: 0 1;
        background: $primary 15%;
        border-left: thick $primary;
        color: $foreground;
    }
    """

    def __init__(self, text: str) -> None:
        super().__init__(Content(text), markup=False)
        self.text = text


class AssistantMessage(Vertical):
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
        & > .reasoning {
            display: none;
            padding: 0 1;
            color: $text-muted;
            text-style: italic;
        }
        & > .note {
            display: none;
            padding: 0 1;
            color: $text-muted;
        }
        &.-has-reasoning > .reasoning { display: block; }
        &.-has-note > .note { display: block; }
        &.-cancelled { border-left: thick $warning; }
        &.-cancelled > .note { color: $text-warning; }
        &.-error { border-left: thick $error; }
        &.-error > .note { color: $text-error; }
    }
    """

    state: reactive[str] = reactive(WAITING, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.markdown = StreamingMarkdown()
        self.reasoning = Static("", classes="reasoning", markup=False)
        self.note = Static("", classes="note", markup=False)
        self.note_text = ""
        self.add_class(f"-{WAITING}")

    def compose(self) -> ComposeResult:
        yield self.reasoning
        yield self.markdown
        yield self.note

    def watch_state(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def show_reasoning(self, text: str) -> None:
        self.add_class("-has-reasoning")
        self.reasoning.update(Content(text))

    def set_note(self, text: Optional[str]) -> None:
        self.note_text = text or ""
        self.set_class(bool(text), "-has-note")
        self.note.update(Content(self.note_text))
