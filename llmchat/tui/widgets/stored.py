"""A stored answer, shown when a conversation is reopened: its Markdown, finished (never
streamed), with its tool calls as folded blocks where the model made them (widgets/tools.py),
then the line `llmchat history show` prints for it -- model, TTFT, tok/s, tokens, time, stop
reason -- and a note when it did not end normally (cancelled, interrupted, error) or was asked
again (superseded).

Its own widget, not the live `AssistantMessage`: a finished answer needs none of its streaming
state, and it looks the same (left border coloured by how it ended). The Markdown is a finished
`StreamingMarkdown`: one widget that paints lines, whose height is known at its first layout
(Textual's `Markdown` mounts a widget per block, in the background, and grows over several
frames), which the transcript needs to keep the view still when it shows turns above it.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from llmchat.output import strip_controls
from llmchat.tui.compat import quiet_virtual_size, use_tall_styles_cache
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown


class _Line(Static):
    """A line under a stored answer (its figures, its note)."""

    virtual_size = quiet_virtual_size()  # its first size needs no second layout


class StoredAnswer(Vertical):
    virtual_size = quiet_virtual_size()  # (see transcript.TurnView)

    DEFAULT_CSS = """
    StoredAnswer {
        height: auto;
        margin: 1 6 0 0;
        background: $surface;
        border-left: thick $accent;

        & > StreamingMarkdown {
            padding: 0 1;
            margin: 0;
            background: transparent;
        }
        & > .metrics {
            padding: 0 1;
            color: $text-muted;
        }
        & > .note {
            padding: 0 1;
            color: $text-warning;
        }
        &.-cancelled, &.-interrupted, &.-streaming { border-left: thick $warning; }
        &.-error { border-left: thick $error; }
        &.-error > .note { color: $text-error; }
        &.-superseded { opacity: 70%; }
        &.-selected { background: $accent 20%; border-left: thick $secondary; }
    }
    """

    def __init__(self, message: Any) -> None:
        """`message`: a history `StoredMessage` (role "assistant")."""
        from llmchat.history.markdown import metrics_line, status_note

        super().__init__(classes=f"-{message.status}")
        use_tall_styles_cache(self)  # as tall as its answer: megabytes of Markdown, maybe
        self.set_class(bool(message.superseded), "-superseded")
        self.source = message.content
        # The answer in order: its text, and its tool calls where the model made them (history's
        # segments: just the text for an answer without tools, or a store that has none).
        self.segments: List[Tuple[str, Any]] = list(getattr(message, "segments", None) or ([("text", self.source)] if self.source else []))
        self.reasoning = message.reasoning or ""
        self.metrics_text = metrics_line(message)
        self.note_text: Optional[str] = status_note(message)
        self.message_id: int = message.id
        self.sibling_index: int = getattr(message, "sibling_index", 1)
        self.sibling_count: int = getattr(message, "sibling_count", 1)

    def compose(self) -> ComposeResult:
        if self.reasoning:
            from llmchat.tui.widgets.thinking import ThinkingBlock

            yield ThinkingBlock(self.reasoning, stored=True)  # folded, as a live one ends
        for kind, value in self.segments:
            if kind == "text":
                if value:
                    yield StreamingMarkdown(strip_controls(value))  # model text: no control sequences
            else:
                from llmchat.tui.widgets.tools import ToolBlock

                yield ToolBlock.stored(value)
        yield _Line(Content(self.metrics_text), classes="metrics", markup=False)
        if self.note_text:
            yield _Line(Content(self.note_text), classes="note", markup=False)
        if self.sibling_count > 1:
            from llmchat.tui.widgets.siblings import SiblingSwitcher

            yield SiblingSwitcher(self.message_id, self.sibling_index, self.sibling_count)
