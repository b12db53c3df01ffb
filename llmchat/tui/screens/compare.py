"""Two answers compared (issue 11): their figures in a small table -- message and `‹ i/n ›`,
model, status, TTFT, tok/s, tokens, time -- and the two texts side by side, or as one word diff.

`d` switches between side by side and the word diff; Esc closes; Tab moves between the columns
(each scrolls on its own). Below 100 columns the two answers are stacked, one above the other,
in one scrolling view (two columns of 40 cells are too narrow to read Markdown in).

Side by side, each answer is Markdown drawn by the project's own renderer (`StreamingMarkdown`,
finished at once): the same look as in the transcript, one widget per answer however long, and
code blocks and tables read as the user read them there. The word diff is of the Markdown
source, as plain text (history/markdown.py `word_diff`): what changed between the two sources is
what a diff is for, and rendered Markdown has no place for a deletion inside a code block.
Deleted words are red and struck through, inserted words green and underlined, in the theme's
text colours (readable on every shipped theme: tests/tui/test_compare.py checks the contrast).

Everything read from the store is read off the event loop (the store may be locked by another
llmchat for a while), and every text shown is sanitised: answers and model names are model or
server output.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Static

from llmchat.sanitize import one_line, strip_controls
from llmchat.tui.widgets.footer import QuietFooter

NARROW = 100  # below this many columns the answers are stacked
FIELDS = ("model", "status", "TTFT", "tok/s", "tokens", "time")
DELETED = "$text-error strike"
INSERTED = "$text-success underline"


class Loaded:
    """What the screen shows, read from the store in a thread."""

    def __init__(self, a: Any, b: Any, prompts: List[Any]) -> None:
        self.a = a  # StoredMessage
        self.b = b
        self.prompts = prompts  # the prompt both answer (one), or each one's (two)


def load_pair(store: Any, a_id: int, b_id: int) -> Loaded:
    """The two messages and the prompts they answer (blocking: call it in a thread). Raises
    HistoryError."""
    a = store.message(a_id)
    b = store.message(b_id)
    parents = [a.parent_id] if a.parent_id == b.parent_id else [a.parent_id, b.parent_id]
    prompts = [store.message(parent) for parent in parents if parent is not None]
    return Loaded(a, b, prompts)


def last_answer_with_siblings(store: Any, conversation_id: int) -> Optional[Tuple[Any, List[Any]]]:
    """The last answer on the conversation's current branch that has other answers to the same
    prompt, and those others (oldest first); None when no answer has any (blocking: call it in
    a thread). Raises HistoryError."""
    for message in reversed(store.load(conversation_id).messages):
        if message.role == "assistant" and message.sibling_count > 1:
            others = [m for m in store.siblings(message.id) if m.id != message.id and m.role == "assistant"]
            if others:
                return message, others
    return None


def ending_note(message: Any) -> Optional[str]:
    """How an answer ended when not normally (cancelled, error and its message, cut short...);
    None when it did. Being off the current branch is no news here: one of two siblings is."""
    from dataclasses import replace

    from llmchat.history.markdown import status_note

    return status_note(replace(message, superseded=False))


def figures_table(a: Any, b: Any, width: int) -> Content:
    """The figures of the two answers as three lines: a header, then A's row and B's row, each
    column as wide as its widest cell; the model column gives way when `width` is short."""
    from llmchat.history.markdown import figures, sibling_mark

    rows: List[Dict[str, str]] = []
    for label, message in (("A", a), ("B", b)):
        cells = figures(message)
        mark = sibling_mark(message).replace(" ", "")  # "‹2/3›"
        cells["answer"] = f"{label} #{message.id}" + (f" {mark}" if mark else "")
        rows.append(cells)
    columns = ("answer",) + FIELDS
    widths = {name: max(len(name), *(len(row[name]) for row in rows)) for name in columns}
    others = sum(widths[name] + 2 for name in columns if name != "model")
    widths["model"] = max(8, min(widths["model"], width - others))
    parts: List[Any] = []
    header = "  ".join(name.ljust(widths[name]) for name in columns)
    parts.append((header.rstrip(), "bold"))
    for row in rows:
        line = "  ".join(one_line(row[name], widths[name]).ljust(widths[name]) for name in columns)
        parts += ["\n", line.rstrip()]
    return Content.assemble(*parts)


def diff_content(old: str, new: str) -> Content:
    """The word diff of two answers' sources: deletions (only in `old`) struck through in the
    theme's error colour, insertions (only in `new`) underlined in its success colour."""
    from llmchat.history.markdown import word_diff

    parts: List[Any] = []
    for op, text in word_diff(strip_controls(old), strip_controls(new)):
        if op == "=":
            parts.append(text)
        else:
            parts.append((text, DELETED if op == "-" else INSERTED))
    return Content.assemble(*parts)


class CompareScreen(ModalScreen[None]):
    """Answer `a_id` (A) and answer `b_id` (B) of `store`, compared."""

    DEFAULT_CSS = """
    CompareScreen {
        align: center middle;
        & > #panel {
            width: 100%;
            height: 100%;
            background: $panel;
            padding: 0 1;
        }
        & #heading { text-style: bold; padding: 0 1; height: auto; max-height: 2; }
        & #figures { padding: 0 1; margin-bottom: 1; height: auto; }
        & #answers {
            height: 1fr;
            layout: horizontal;
            overflow: hidden hidden;
        }
        & .answer {
            width: 1fr;
            height: 1fr;
            background: $surface;
            border: round $primary 50%;
            border-title-color: $text;
            &:focus { border: round $primary; }
        }
        & .answer StreamingMarkdown { padding: 0 1; background: transparent; }
        & .answer .empty { padding: 0 1; color: $text-muted; }
        & .answer .note { padding: 0 1; margin-top: 1; color: $text-warning; }
        & #answers.-stacked {
            layout: vertical;
            overflow: hidden auto;
            & > .answer { height: auto; overflow: hidden hidden; }
        }
        & #diff {
            display: none;
            height: 1fr;
            background: $surface;
            border: round $primary;
            border-title-color: $text;
            padding: 0 1;
        }
        & #diff-text { height: auto; }
        & #legend { padding: 0 1; color: $text-muted; display: none; height: auto; }
        &.-diff #diff, &.-diff #legend { display: block; }
        &.-diff #answers { display: none; }
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("d", "toggle_diff", "Word diff / side by side"),
    ]

    showing_diff = reactive(False)  # the word diff, not the two answers
    stacked = reactive(False)  # the answers one above the other (a narrow screen)

    def __init__(self, store: Any, a_id: int, b_id: int) -> None:
        super().__init__()
        self.store = store
        self.a_id = a_id
        self.b_id = b_id
        self.loaded: Optional[Loaded] = None  # set once both answers are read (tests wait on it)
        self.error: Optional[str] = None  # why they could not be read
        self.diffed = False  # the word diff is in place
        self._diffing = False

    def compose(self) -> ComposeResult:
        with Vertical(id="panel"):
            yield Static(Content(f"Comparing answers {self.a_id} and {self.b_id}…"), id="heading", markup=False)
            yield Static("", id="figures", markup=False)
            with ScrollableContainer(id="answers"):
                yield VerticalScroll(id="a", classes="answer")
                yield VerticalScroll(id="b", classes="answer")
            yield Static(Content(""), id="legend", markup=False)
            with VerticalScroll(id="diff"):
                yield Static("", id="diff-text", markup=False)
        yield QuietFooter()

    def on_mount(self) -> None:
        self.set_reactive(CompareScreen.stacked, self.app.size.width < NARROW)
        self.watch_stacked(self.stacked)  # once, whichever the width
        self._load()

    def on_resize(self) -> None:
        self.stacked = self.app.size.width < NARROW
        if self.loaded is not None:
            self._show_figures()

    def watch_stacked(self, stacked: bool) -> None:
        """Side by side, each column scrolls (and takes the focus); stacked, the two scroll as one."""
        answers = self.query_one("#answers")
        answers.set_class(stacked, "-stacked")
        answers.can_focus = stacked
        for column in self.query(".answer"):
            column.can_focus = not stacked
        if not self.showing_diff:
            self._focus_answers()

    def watch_showing_diff(self, showing: bool) -> None:
        self.set_class(showing, "-diff")
        if showing:
            self.query_one("#diff").focus()
            self._fill_diff()
        else:
            self._focus_answers()

    def _focus_answers(self) -> None:
        self.query_one("#answers" if self.stacked else "#a").focus()

    @work(exclusive=True, group="compare-load")
    async def _load(self) -> None:
        from llmchat.history import HistoryError

        try:
            loaded = await asyncio.to_thread(load_pair, self.store, self.a_id, self.b_id)
        except HistoryError as exc:
            self.error = one_line(f"Cannot compare answers {self.a_id} and {self.b_id}: {exc}")
            self.query_one("#heading", Static).update(Content(self.error))
            self.notify(self.error, severity="error", timeout=8)
            return
        await self._show(loaded)

    async def _show(self, loaded: Loaded) -> None:
        from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

        self.loaded = loaded
        if len(loaded.prompts) == 1:
            heading = f"Two answers to “{one_line(loaded.prompts[0].content, 200)}”"
        else:
            heading = f"Answers {self.a_id} and {self.b_id}, to different prompts"
        self.query_one("#heading", Static).update(Content(heading))
        self._show_figures()
        for key, message in (("a", loaded.a), ("b", loaded.b)):
            column = self.query_one(f"#{key}", VerticalScroll)
            column.border_title = self._title(key.upper(), message)
            text = strip_controls(message.content)  # model output: no control sequences
            if text.strip():
                await column.mount(StreamingMarkdown(text))
            else:
                await column.mount(Static(Content("(no text)"), classes="empty", markup=False))
            note = ending_note(message)
            if note:
                await column.mount(Static(Content(note), classes="note", markup=False))
        self.query_one("#diff").border_title = f"Word diff: A #{loaded.a.id} → B #{loaded.b.id}"
        self.query_one("#legend", Static).update(
            Content.assemble(
                ("struck through", DELETED), f": only in A (#{loaded.a.id}) · ", ("underlined", INSERTED), f": only in B (#{loaded.b.id})"
            )
        )
        if self.showing_diff:
            self._fill_diff()

    def _title(self, label: str, message: Any) -> str:
        from llmchat.history.markdown import sibling_mark

        mark = sibling_mark(message)
        return one_line(f"{label} · answer {message.id}{' ' + mark if mark else ''} · {message.model or '?'}", 80)

    def _show_figures(self) -> None:
        assert self.loaded is not None
        width = max(20, self.app.size.width - 4)
        self.query_one("#figures", Static).update(figures_table(self.loaded.a, self.loaded.b, width))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_toggle_diff(self) -> None:
        self.showing_diff = not self.showing_diff

    def _fill_diff(self) -> None:
        if self.loaded is None or self.diffed or self._diffing:
            return
        self._diffing = True
        self.query_one("#diff-text", Static).update(Content("Comparing word by word…"))
        self._diff(self.loaded.a.content, self.loaded.b.content)

    @work(exclusive=True, group="compare-diff")
    async def _diff(self, old: str, new: str) -> None:
        # difflib over the words of two long answers can take a while: not on the event loop.
        content = await asyncio.to_thread(diff_content, old, new)
        self.query_one("#diff-text", Static).update(content)
        self.diffed = True
        self._diffing = False


def choice_text(message: Any) -> Tuple[str, str]:
    """A picker's title and help for an answer: `‹ 2/3 › #12 · model · status`, and its first words."""
    from llmchat.history.markdown import sibling_mark

    title = one_line(f"{sibling_mark(message)} answer {message.id} · {message.model or '?'} · {message.status}".strip(), 100)
    return title, one_line(strip_controls(message.content), 100) or "(no text)"
