"""The conversation list (Ctrl+O or F2, or "Conversations" in the command palette): every stored
conversation, newest used first, with its title, model, message count and when it was last used.

Enter opens one (the app refuses while an answer streams, and the list stays open); `r` renames
it in place; `d` deletes it after a confirmation; `/` (or just typing in the box at the top)
searches titles and messages with the store's search, each match with a line of the message it
was found in. Esc closes (first it ends a rename in progress); Ctrl+O / F2 close too.

The list is composed once per app and kept (`ConversationList.for_app`): composing it -- its
styles, its footer, its first layout -- took 40-70 ms of the Ctrl+O key's way to the screen
(bench_tui.py, `locked`). Each opening starts as a new one did: the search box empty, no rename
open, the rows read again with the first highlighted (until they come, the last ones read show).

Every store call runs on the store's syncer thread (`HistoryStore.submit`), awaited by a worker,
and what it found is shown when it comes back: a store another process holds locked delays the
rows, never the keys (the heading says it is reading meanwhile). A newer search replaces one
still reading. What changes the chat (opening, deleting the conversation on screen) goes through
the app's `open_conversation` and `conversation_deleted`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from llmchat.sanitize import one_line
from llmchat.tui.widgets.footer import QuietFooter

if TYPE_CHECKING:
    from textual import getters

    from llmchat.tui.app import ChatApp

HINT = "Enter open · r rename · d delete · / search · Esc close"

# What the list starts that must finish even when it is closed meanwhile (the app runs them).
_OPEN, _CHANGE = "conversation-list-open", "conversation-list-change"
_APP_GROUPS = (_OPEN, _CHANGE)


class Confirm(ModalScreen[bool]):
    """Yes or no (y / n / Esc), for deleting a conversation or quitting with a draft."""

    DEFAULT_CSS = """
    Confirm {
        align: center middle;
        & > Vertical {
            width: 60;
            height: auto;
            padding: 1 2;
            background: $panel;
            border: thick $error;
        }
        & Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Delete", no: str = "Keep") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.question), id="question", markup=False)
            with Horizontal():
                yield Button(f"{self.no} (n)", id="keep")
                yield Button(f"{self.yes} (y)", id="delete", variant="error")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "delete")


class ConversationOptions(OptionList):
    """The list itself. Up at the first conversation and Down at the last stay there: Textual's
    list wraps round, and a user holding Up went from the newest to the oldest conversation
    and deleted the wrong one."""

    def action_cursor_up(self) -> None:
        if self.highlighted is None or self.highlighted > 0:
            super().action_cursor_up()

    def action_cursor_down(self) -> None:
        if self.highlighted is None or self.highlighted < self.option_count - 1:
            super().action_cursor_down()


class ConversationList(ModalScreen[None]):
    class Renamed(Message):
        """A conversation got a new title (the app updates its note if it is the open one)."""

        def __init__(self, conversation_id: int, title: str, info: Any = None) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.title = title
            self.info = info  # its ConversationInfo, read with the new title

    DEFAULT_CSS = """
    ConversationList {
        align: center middle;
        & > #panel {
            width: 90%;
            max-width: 110;
            height: 90%;
            background: $panel;
            border: thick $primary;
            padding: 0 1;
        }
        & #heading { text-style: bold; padding: 0 1; }
        & #search { margin: 0 0 1 0; }
        & #conversations { height: 1fr; background: $surface; }
        & #rename { display: none; }
        & #rename.-shown { display: block; }
        & #hint { color: $text-muted; padding: 0 1; }
    }
    """

    if TYPE_CHECKING:  # Textual's own way to type `app` as the app that opens this list
        app = getters.app(ChatApp)

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+o,f2", "close", "Close", show=False),
        Binding("slash", "search", "Search"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("down", "to_list", show=False),
    ]

    NAME = "conversations"  # the name the kept list is installed under (App.install_screen)

    @classmethod
    def for_app(cls, app: Any, store: Any, current: Optional[int]) -> "ConversationList":
        """The list to push on `app`: the one composed at the first opening, kept installed and
        made ready to open again (see above); a new one the first time or for another store."""
        if app.is_screen_installed(cls.NAME):
            kept = app.get_screen(cls.NAME)
            if kept in app.screen_stack:  # open under another screen (a confirmation): a one-off list
                return cls(store, current)
            if isinstance(kept, cls) and kept.store is store:
                kept._reopen(current)
                return kept
            app.uninstall_screen(cls.NAME)
        screen = cls(store, current)
        app.install_screen(screen, cls.NAME)
        return screen

    def __init__(self, store: Any, current: Optional[int], when: Optional[Callable[[float], str]] = None) -> None:
        """`store`: the open HistoryStore; `current`: the conversation on screen (marked);
        `when`: how a time is written (local time, as `llmchat history` writes it)."""
        super().__init__()
        self.store = store
        self.current = current
        if when is None:
            from llmchat.history.markdown import local_time

            when = local_time
        self._when = when
        self._infos: Dict[int, Any] = {}
        self.shown: List[int] = []  # the IDs listed, in order (tests read it)
        self._renaming: Optional[int] = None
        self._first_row = False  # the next rows read highlight the first (a new opening)

    def _reopen(self, current: Optional[int]) -> None:
        """Opened again: as a new list would start (the search box empty, no rename, the rows
        read again); called before the push, while the screen is suspended."""
        self.current = current
        if not self.is_mounted:
            return  # composed at its push, which reads the rows
        self._renaming = None
        self.rename_box.remove_class("-shown")
        with self.prevent(Input.Changed):
            self.search_box.value = ""
        self._first_row = True
        self.set_focus(self.options)  # what a resumed screen focuses (Textual restores it)
        self.refill()

    def compose(self) -> ComposeResult:
        with Vertical(id="panel"):
            yield Static("Conversations", id="heading", markup=False)
            yield Input(placeholder="Search titles and messages…", id="search")
            yield ConversationOptions(id="conversations")
            yield Input(id="rename")
            yield Static(HINT, id="hint", markup=False)
        yield QuietFooter()  # rebuilt only when its keys change (widgets/footer.py)

    @property
    def options(self) -> OptionList:
        return self.query_one("#conversations", OptionList)

    @property
    def search_box(self) -> Input:
        return self.query_one("#search", Input)

    @property
    def rename_box(self) -> Input:
        return self.query_one("#rename", Input)

    def on_mount(self) -> None:
        self.refill()
        self.options.focus()

    # --- the store, off the event loop -------------------------------------------------------

    async def _store_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the store's syncer thread, awaited without holding up the loop."""
        return await asyncio.wrap_future(self.store.submit(fn, *args))

    async def settled(self) -> None:
        """Until every read and change asked of the store so far has shown (tests, benchmarks)."""
        from textual.worker import WorkerCancelled, WorkerFailed

        while True:
            busy = [worker for worker in self.workers if (worker.node is self or worker.group in _APP_GROUPS) and not worker.is_finished]
            if not busy:
                return
            for worker in busy:
                try:
                    await worker.wait()
                except (WorkerCancelled, WorkerFailed):
                    pass

    # --- filling the list ------------------------------------------------------------------

    def refill(self) -> None:
        """List the conversations again: all of them, or what the search box finds. Read on the
        store's syncer; a refill still reading is replaced by this one."""
        query = self.search_box.value.strip()
        if not self._infos:
            self.query_one("#heading", Static).update(Content("Conversations (reading the history…)"))
        self.run_worker(self._refill(query), group="refill", exclusive=True, exit_on_error=False)

    def _read(self, query: str) -> Tuple[List[Any], Optional[List[Any]]]:
        """On the syncer: the conversations, and the search's hits (None without a query)."""
        return self.store.list_conversations(), (self.store.search(query) if query else None)

    async def _refill(self, query: str) -> None:
        from llmchat.history import HistoryError

        try:
            infos, hits = await self._store_call(self._read, query)
        except HistoryError as exc:
            self.notify(one_line(f"Cannot read the history: {exc}"), severity="error", timeout=8)
            return
        if not self.is_attached:
            return
        keep = None if self._first_row else self._highlighted_id()
        self._first_row = False
        self._infos = {info.id: info for info in infos}
        snippets: Dict[int, Optional[str]] = {}
        if hits is None:
            order = [info.id for info in infos]
        else:
            order = []
            for hit in hits:  # newest first; one row per conversation, its newest match
                if hit.conversation_id in self._infos and hit.conversation_id not in snippets:
                    order.append(hit.conversation_id)
                    snippets[hit.conversation_id] = hit.snippet if hit.message_id is not None else None
        self.shown = order
        options = self.options
        options.set_options(Option(self._row(self._infos[cid], snippets.get(cid)), id=str(cid)) for cid in order)
        heading = f"Conversations ({len(infos)})" if hits is None else f"{len(order)} of {len(infos)} conversations match “{query}”"
        self.query_one("#heading", Static).update(Content(heading))
        if order:
            options.highlighted = order.index(keep) if keep in order else 0

    def _row(self, info: Any, snippet: Optional[str]) -> Content:
        count = "1 message" if info.message_count == 1 else f"{info.message_count} messages"
        title = one_line(info.title) or "untitled"  # stored rows may hold control sequences
        parts: List[Any] = [(title, "bold")]
        if info.id == self.current:
            parts.append(("  (open)", "italic"))  # the row's own colour: readable on the highlight too
        details = f"#{info.id} · {one_line(info.model or '?')} · {count} · last used {self._when(info.last_used_at)}"
        parts += ["\n", (details, "$text-muted")]
        if snippet:
            parts += ["\n", (one_line(snippet), "italic")]
        return Content.assemble(*parts)

    def _highlighted_id(self) -> Optional[int]:
        option = self.options.highlighted_option if self.is_mounted else None
        return int(option.id) if option is not None and option.id is not None else None

    @on(Input.Changed, "#search")
    def search_changed(self) -> None:
        self.refill()

    # --- actions -------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.search_box.focus()

    def action_to_list(self) -> None:
        self.options.focus()

    def action_close(self) -> None:
        if self._renaming is not None:
            self._end_rename()
            return
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#conversations")
    def selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self._open(int(event.option.id))

    @on(Input.Submitted, "#search")
    def search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        chosen = self._highlighted_id()
        if chosen is not None:
            self._open(chosen)

    def _open(self, conversation_id: int) -> None:
        """Open it in a worker (the app reads it on the store's syncer): the screen goes on
        drawing meanwhile; a second Enter replaces the first."""

        async def opening() -> None:
            if await self.app.open_conversation(conversation_id) and self.is_current:
                self.dismiss(None)

        self.app.run_worker(opening(), group=_OPEN, exclusive=True)

    def action_rename(self) -> None:
        chosen = self._highlighted_id()
        if chosen is None:
            return
        self._renaming = chosen
        box = self.rename_box
        box.value = one_line(self._infos[chosen].title)
        box.border_title = f"New title for #{chosen} (Enter saves, Esc keeps the old one)"
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#rename")
    def rename_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        chosen = self._renaming
        if chosen is None:
            return
        if not event.value.strip():  # the store's own rule, said at once: the box stays open
            self.notify("Not renamed: a title cannot be empty", severity="error", timeout=6)
            return
        self._end_rename()  # the list goes on while the store (maybe locked) takes the new title
        self.app.run_worker(self._rename(chosen, event.value), group=_CHANGE)

    def _renamed(self, conversation_id: int, title: str) -> Any:
        """On the syncer: rename, and the conversation as it is now."""
        self.store.rename(conversation_id, title)
        return self.store.get(conversation_id)

    async def _rename(self, conversation_id: int, title: str) -> None:
        from llmchat.history import HistoryError

        try:
            info = await self._store_call(self._renamed, conversation_id, title)
        except HistoryError as exc:
            self.app.notify(one_line(f"Not renamed: {exc}"), severity="error", timeout=6)
            return
        if self.is_attached:
            self.refill()
        self.app.post_message(self.Renamed(conversation_id, info.title, info))

    def _end_rename(self) -> None:
        self._renaming = None
        self.rename_box.remove_class("-shown")
        self.options.focus()

    def action_delete(self) -> None:
        chosen = self._highlighted_id()
        if chosen is None:
            return
        info = self._infos[chosen]
        count = "1 message" if info.message_count == 1 else f"{info.message_count} messages"
        question = f"Delete “{info.title or 'untitled'}” (#{chosen}) and its {count}? This cannot be undone."

        def answered(yes: Optional[bool]) -> None:
            if yes:
                self._delete(chosen)

        self.app.push_screen(Confirm(question), answered)

    def _delete(self, conversation_id: int) -> None:
        if not self.app.may_delete(conversation_id):
            return
        self.app.run_worker(self._deleting(conversation_id), group=_CHANGE)

    async def _deleting(self, conversation_id: int) -> None:
        from llmchat.history import HistoryError

        try:
            await self._store_call(self.store.delete, conversation_id)
        except HistoryError as exc:
            self.app.notify(one_line(f"Not deleted: {exc}"), severity="error", timeout=6)
            return
        self.app.conversation_deleted(conversation_id)
        if conversation_id == self.current:
            self.current = None
        if self.is_attached:
            self.refill()
        self.app.notify(f"Conversation {conversation_id} deleted.", timeout=3)
