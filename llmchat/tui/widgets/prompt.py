"""The prompt: a multi-line TextArea where Enter sends and Ctrl+J / Alt+Enter / Shift+Enter
start a new line. Ctrl+J works in every terminal (it is LF). Alt+Enter arrives as ESC CR where
the terminal does not speak the kitty keyboard protocol (tmux 3.3, xterm: checked), which
tui/compat.py makes Textual report as alt+enter. Shift+Enter differs from Enter only with the
kitty protocol (Textual asks for it), so the hint names it only in terminals known to speak it.
Up in an empty prompt recalls the conversation's earlier prompts (Down goes forward again).

`@` starts a path: the menu over the prompt (widgets/attachments.py, `menu`) lists what it may
become as you type; Up/Down move in it, Tab or Enter takes the entry (a directory goes on into
it; a file leaves its path as plain text and is attached: `Attach`), Esc closes it. A paste
that is nothing but the paths of files (a file dropped on the terminal) is offered the same way.

TextArea handles Enter in its key handler before ordinary bindings run, so Enter is bound with
priority -- and the text is read only after the keys queued before it, or a fast burst (a paste
without bracketed paste, tmux send-keys) would send a truncated prompt. The prompt only announces
what was typed (`Submitted`); the app decides whether to accept it and clears the prompt when it
does, so nothing typed is lost to a refused send.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, List, Mapping, Optional, Tuple

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from llmchat.tui.widgets.attachments import at_token, escape_path

if TYPE_CHECKING:
    from llmchat.tui.widgets.attachments import Offer, PathMenu

# Format characters typed as keys are text (Textual's keys call them unprintable and drop them):
# the zero-width joiners inside emoji sequences, non-joiners in Persian, word joiners, tags in
# flag sequences. Not the bidirectional overrides and isolates, which reorder what is shown.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_format_character(character: Optional[str]) -> bool:
    return character is not None and len(character) == 1 and unicodedata.category(character) == "Cf" and character not in _BIDI_CONTROLS


HINT = "Enter sends · Ctrl+J or Alt+Enter new line"
HINT_WITH_SHIFT = "Enter sends · Ctrl+J, Alt+Enter or Shift+Enter new line"

# Terminals that speak the kitty keyboard protocol (Textual asks for it), the one way Shift+Enter
# differs from Enter. Not through a multiplexer: tmux 3.3 and screen send both as CR.
_KITTY_TERMS = frozenset({"xterm-kitty", "xterm-ghostty", "foot", "foot-extra", "wezterm"})
_KITTY_PROGRAMS = frozenset({"WezTerm", "ghostty", "kitty"})


def newline_hint(env: Mapping[str, str]) -> str:
    """The prompt's hint: Shift+Enter only where the terminal can tell it from Enter."""
    if env.get("TMUX") or env.get("STY") or env.get("ZELLIJ"):
        return HINT
    kitty = env.get("TERM", "") in _KITTY_TERMS or env.get("TERM_PROGRAM", "") in _KITTY_PROGRAMS or "KITTY_WINDOW_ID" in env
    return HINT_WITH_SHIFT if kitty else HINT


def _location(text: str, index: int) -> tuple:
    """The (row, column) of `text[index]`."""
    row = text.count("\n", 0, index)
    return row, index - (text.rfind("\n", 0, index) + 1)


class ChatPrompt(TextArea):
    DEFAULT_CSS = """
    ChatPrompt {
        height: auto;
        min-height: 3;
        max-height: 12;
        border: tall $border-blurred;
        background: $surface;
        &:focus { border: tall $primary; }
        /* Textual's TextArea draws its placeholder at `$text 40%`, too faint to read (about
           3:1 in every theme); muted text is what themes keep readable. */
        & .text-area--placeholder { color: $text-muted; }
    }
    """

    ALLOW_MAXIMIZE = False  # maximized, the prompt is one line of text over a screen of hatching

    BINDINGS = [
        Binding("enter", "submit", "Send", priority=True),
        Binding("ctrl+j,alt+enter,shift+enter", "newline", "New line", key_display="^j"),
    ]

    class Submitted(Message):
        """The user asked to send `text`."""

        def __init__(self, prompt: "ChatPrompt", text: str, pasted: Optional[List[str]] = None) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text
            self.pasted = pasted or []  # what was pasted into it (the transcript may collapse it)

        @property
        def control(self) -> "ChatPrompt":
            return self.prompt

    class Attach(Message):
        """The user chose to attach `sources` (paths, or a URL) to the next message. `key`: an
        accepted paste's, which `Detach` names if Ctrl+Z takes the acceptance back."""

        def __init__(self, sources: List[str], key: Optional[int] = None) -> None:
            super().__init__()
            self.sources = sources
            self.key = key

    class Detach(Message):
        """Ctrl+Z put a pasted path back as it was pasted: the chips `Attach` with `key` made go too."""

        def __init__(self, key: int) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, placeholder: str = HINT, id: str | None = None) -> None:
        super().__init__(
            "",
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=placeholder,
            id=id,
        )
        self.earlier: List[str] = []  # this conversation's prompts, oldest first (the app keeps it)
        self.pasted: List[str] = []  # pastes since the prompt was last empty
        self._recalled: Optional[int] = None  # the index in `earlier` shown, while it is unedited
        self.menu: Optional[PathMenu] = None  # the `@` menu (the app gives it one)
        self._dismissed: Optional[tuple] = None  # where the `@` is whose menu Esc closed
        self._accepted: Optional[Tuple[str, int, Offer]] = None  # the text an accepted paste left, its Attach key, the offer
        self._accepts = 0  # Attach keys given so far

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        """Printable keys are the text's, except those the app binds while a message of the
        transcript is selected (`[`, `]`, `e`, `r`: app.py's `selection_keys`)."""
        if key in getattr(self.app, "selection_keys", ()):
            return False
        return super().check_consume_key(key, character)

    @property
    def recalling(self) -> bool:
        """Is an earlier prompt shown, unedited?"""
        return self._recalled is not None and self.text == self.earlier[self._recalled]

    def action_cursor_up(self, select: bool = False) -> None:
        if select:
            super().action_cursor_up(select)
        else:
            self._recall(-1)

    def action_cursor_down(self, select: bool = False) -> None:
        if select:
            super().action_cursor_down(select)
        else:
            self._recall(1)

    def _recall(self, step: int) -> None:
        """Up in an empty prompt shows the latest earlier prompt, Up again the one before; Down
        goes forward again, and past the latest back to an empty prompt. Anywhere else -- a
        draft, or the cursor not on the first (Up) or last (Down) line of a recalled prompt --
        the keys move the cursor as usual."""
        row = self.cursor_location[0]
        if self.recalling:
            at_edge = row == 0 if step < 0 else row == self.document.line_count - 1
            if not at_edge:
                self._move(step)
                return
            assert self._recalled is not None
            index: Optional[int] = self._recalled + step
        elif not self.text and step < 0 and self.earlier:
            index = len(self.earlier) - 1
        else:
            self._move(step)
            return
        if index is not None and index < 0:
            return  # the oldest stays shown
        if index is not None and index >= len(self.earlier):
            index = None
        self._recalled = index
        self.load_text("" if index is None else self.earlier[index])
        self.move_cursor(self.document.end)

    def _move(self, step: int) -> None:
        super().action_cursor_up() if step < 0 else super().action_cursor_down()

    def on_text_area_changed(self) -> None:
        if not self.text:
            self.pasted = []  # sent or cleared: its pastes go with it
            self._accepted = None
        self._follow_menu()

    def on_text_area_selection_changed(self) -> None:
        self._follow_menu()

    def on_paste(self, event: events.Paste) -> None:
        """Remember the paste (TextArea's own handler inserts it), as the document keeps it;
        if it names files, the menu offers them once it is in."""
        pasted = event.text.replace("\r\n", "\n").replace("\r", "\n")
        self.pasted.append(pasted)
        menu = self.menu
        if menu is not None and not self.read_only:
            self.call_later(menu.offer, pasted, self)

    # --- the `@` menu ---------------------------------------------------------------------

    def _token(self) -> Optional[tuple]:
        """The `@path` ending at the cursor: ((row, column of the `@`), the path so far)."""
        start, end = self.selection
        if start != end:
            return None
        row, column = end
        found = at_token(self.document.get_line(row), column)
        return None if found is None else ((row, found[0]), found[1])

    def _follow_menu(self) -> None:
        """The menu follows the text: an `@path` at the cursor lists its completions; anything
        else closes them; an offered paste is withdrawn by any edit."""
        menu = self.menu
        if menu is None:
            return
        token = self._token() if not self.read_only else None
        if token is None:
            self._dismissed = None
            if menu.kind == "complete" or menu.kind is None and menu.busy:
                menu.close()
            elif menu.kind == "offer" and menu.offered is not None and self.text != menu.offered.text:
                menu.close()
            return
        where, fragment = token
        if self._dismissed == where:
            return
        self._dismissed = None
        menu.complete(fragment, where)

    def _menu_key(self, key: str) -> bool:
        """Up, Down, Tab and Esc while the menu is shown are its; True when handled."""
        menu = self.menu
        if menu is None or not menu.shown:
            return False
        if key in ("up", "down"):
            menu.move(-1 if key == "up" else 1)
        elif key == "tab":
            self.accept_menu()
        elif key == "escape":
            token = self._token()
            self._dismissed = token[0] if token is not None else None
            menu.close()
        else:
            return False
        return True

    def accept_menu(self) -> None:
        """Take the menu's entry: a directory is completed and listed in turn; a file or URL
        becomes plain text (its path) and is attached; an offered paste is attached, its text
        left as the files' names."""
        menu = self.menu
        if menu is None or not menu.shown:
            return
        if menu.kind == "offer" and menu.offered is not None:
            offer = menu.offered
            menu.close()
            text, pasted = self.text, offer.pasted.strip()
            at = text.rfind(pasted)
            if at >= 0:
                from pathlib import Path

                mention = " ".join(Path(p).name for p in offer.paths)
                self.history.checkpoint()  # one Ctrl+Z takes back this, and only this
                self.replace(mention, _location(text, at), _location(text, at + len(pasted)), maintain_selection_offset=False)
                self.history.checkpoint()
            self._accepts += 1
            self._accepted = (self.text, self._accepts, offer)
            self.post_message(self.Attach(list(offer.paths), self._accepts))
            return
        choice = menu.choice()
        token = self._token()
        if choice is None or token is None:
            menu.close()
            return
        (row, column), _ = token
        end = self.cursor_location
        if choice.is_dir:
            self.replace("@" + escape_path(choice.path), (row, column), end, maintain_selection_offset=False)
            return  # the change lists the directory
        menu.close()
        self.replace(choice.path, (row, column), end, maintain_selection_offset=False)
        self.post_message(self.Attach([choice.path]))

    async def on_key(self, event: events.Key) -> None:
        """Keys in the order they were typed. A letter is inserted here; a key bound to one of
        the prompt's own actions (Ctrl+U, Ctrl+W, Ctrl+J, ...) would otherwise bubble up to the
        app and run from there -- after the letters queued behind it, so "abc", Ctrl+U, "K"
        arriving in one read left "" instead of "K". Such a key runs its action here, now."""
        if _is_format_character(event.character):
            event.stop()
            event.prevent_default()
            if not self.read_only:
                start, end = self.selection
                self.replace(event.character or "", start, end, maintain_selection_offset=False)
            return
        if event.is_printable:
            return  # TextArea's own handler inserts it
        if self._menu_key(event.key):
            event.stop()
            event.prevent_default()
            return
        active = self.app.active_bindings
        for key in event.aliases:
            bound = active.get(key)
            if bound is not None and bound.node is self and bound.enabled and not bound.binding.priority:
                # False when the action steps aside (SkipAction: Ctrl+C's copy with nothing
                # selected): then the key goes on up, to the app's own binding for it.
                if await self.app.run_action(bound.binding.action, self):
                    event.stop()
                    event.prevent_default()
                return

    def action_undo(self) -> None:
        """Ctrl+Z. Undoing an accepted paste's names back into its paths takes its chips off
        too, and offers the paste again (Enter attaches it anew)."""
        before, accepted = self.text, self._accepted
        super().action_undo()
        if accepted is None or self.text == before:
            return
        if before == accepted[0]:
            self._accepted = None
            self.post_message(self.Detach(accepted[1]))
            if self.menu is not None and self.text == accepted[2].text:
                self.menu.offer(accepted[2].pasted, self)

    def action_submit(self) -> None:
        # A priority binding runs as soon as the app sees the key, possibly before this widget
        # has handled the keys typed just before it (fast typing, tmux send-keys): read the
        # text only after everything already queued here.
        self.call_later(self._submit)

    def _submit(self) -> None:
        if self.menu is not None and self.menu.shown:
            self.accept_menu()  # Enter takes the menu's entry, as Tab does
            return
        text = self.text
        if text.strip():
            self.post_message(self.Submitted(self, text, list(self.pasted)))

    def action_newline(self) -> None:
        if self.read_only:
            return
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)
