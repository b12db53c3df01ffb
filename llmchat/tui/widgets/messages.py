"""The transcript's entries: the user's messages, the assistant's answers, a welcome note.

A user message is plain text (what was typed, never read as markup). An answer is a
`StreamingMarkdown` the app streams into (one widget however long the answer: see
streaming_markdown.py), the app's Thinking block above it when the model thinks aloud
(thinking.py), and under it the answer's figures once it ended and a note for how it ended when
that is worth saying (cancelled, error, cut short, retrying, superseded). The state is a reactive attribute mirrored as a CSS class, so the theme colours it.

Garbage collection: a full (oldest-generation) collection walks every object the process
tracks -- ~100k once Textual, Rich and Pygments are loaded -- and took 60-80 ms here, long
enough to hold a frame past the 50 ms the streaming latency allows. So in a real terminal,
what is alive when the transcript is first mounted (the imports, the app, its screen) is frozen
out of the collector (`gc.freeze`), once; while an answer streams there are no full collections
at all (even of what was made since the freeze they took 10-16 ms, three times in five seconds
at 200 tokens/s; the young generations are still collected, and they free most garbage); and
when the answer has ended, what it left is collected, outside any stream.

Nothing is frozen after that: a widget is a web of references (parent, children, message
queue), so a frozen widget removed later -- an answer cleared by "New conversation", a stored
turn scrolled far away -- would never be freed (the collector never looks at frozen objects
again). The transcript keeps the number of live widgets bounded (transcript.py), so what a full
collection walks stays bounded too. Headless apps (tests, many apps in one process) leave the
collector alone unless they ask (`ChatApp.manage_gc`, the benchmark).
"""

from __future__ import annotations

import gc
from typing import Any, Optional

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.reactive import Reactive, reactive
from textual.widgets import Static

from llmchat.tui.session import FINAL_STATES, WAITING
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

GC_DELAY = 0.5  # seconds after an answer ends
_FROZEN = False
_HELD = 0  # answers streaming (or just ended) that hold full collections off
_THRESHOLDS: Optional[tuple] = None  # the collector's thresholds before the first hold
NO_FULL_COLLECTIONS = 1 << 30  # as the oldest generation's threshold: never reached


def manages_gc(app: Any) -> bool:
    """Whether `app` runs the policy above: in a real terminal, or when it asks."""
    manage = getattr(app, "manage_gc", None)
    return not app.is_headless if manage is None else bool(manage)


def freeze_start_up() -> None:
    """Keep what is alive now (imports, the app) out of every later full collection (once)."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.freeze()


def collect_and_freeze() -> None:
    """Collect what is garbage now, then keep what is left out of later full collections.
    (The benchmark's sessions; the app itself freezes only at start-up: see above.)"""
    gc.collect()
    gc.freeze()


def hold_full_collections() -> None:
    """An answer starts: no full collections until every answer that held them released them."""
    global _HELD, _THRESHOLDS
    if _HELD == 0:
        _THRESHOLDS = gc.get_threshold()
        gc.set_threshold(_THRESHOLDS[0], _THRESHOLDS[1], NO_FULL_COLLECTIONS)
    _HELD += 1


def release_full_collections() -> None:
    """An answer has ended (and its last frames are painted): once no answer holds them, full
    collections are back, and what the answers left is collected now."""
    global _HELD
    if _HELD == 0:
        return
    _HELD -= 1
    if _HELD == 0:
        assert _THRESHOLDS is not None
        gc.set_threshold(*_THRESHOLDS)
        gc.collect()


# Textual lays the whole screen out again whenever a widget's virtual size changes (the
# reactive has layout=True), right after the layout that changed it. For these widgets that
# second layout finds nothing new -- a container's virtual size comes from its layout, and
# scrollbars appearing or going have their own layout-triggering reactives -- yet it is a
# full reflow: each time an answer grows, two layout ticks in a row, and Textual's update timer
# then skips a tick (a tick longer than its period pushes the next one two periods on). These
# widgets keep the value without asking for that second layout.
def quiet_virtual_size() -> Reactive:
    return Reactive(Size(0, 0), layout=False)


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
    virtual_size = quiet_virtual_size()

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
        self.figures = Static("", classes="figures", markup=False)
        self.figures_text = ""
        self.note = Static("", classes="note", markup=False)
        self.note_text = ""
        self._holds_gc = False
        self.add_class(f"-{WAITING}")

    def compose(self) -> ComposeResult:
        yield self.markdown
        yield self.figures
        yield self.note

    def on_mount(self) -> None:
        self._holds_gc = manages_gc(self.app) and self.state not in FINAL_STATES
        if self._holds_gc:
            hold_full_collections()

    def on_unmount(self) -> None:
        self._release_gc()  # removed before it ended (a new conversation, the app closing)

    def _release_gc(self) -> None:
        if self._holds_gc:
            self._holds_gc = False
            release_full_collections()

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
