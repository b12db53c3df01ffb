"""Attachments in the prompt: the chips above it (one per attached file or URL, each removable)
and the menu over it that `@` opens (paths under the working directory, narrowed as you type),
which also offers a pasted path -- a file dropped on the terminal -- as an attachment.

These widgets show and report; reading, checking and encoding the files is the app's, in a worker
thread (llmchat.attaching). Listing a directory for the menu happens in a thread too: a big or
slow directory never holds up the keys.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import unquote, urlparse

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from llmchat.sanitize import one_line

MENU_LIMIT = 50  # entries the menu lists at most
SCAN_LIMIT = 20_000  # directory entries looked at per listing: a huge directory stays quick
PASTE_LIMIT = 4096  # a longer paste is text, not a dropped file's path

Location = Tuple[int, int]  # (row, column) in the prompt's document

# What may follow `@` in a path being typed (`\ ` is a space in it); a path is looked for only
# this far back from the cursor, so a key in a very long line costs no more than in a short one.
_PATH_SO_FAR = re.compile(r"(?:\\ |[^\s@])*")
_AT_WINDOW = 4096


class Candidate(NamedTuple):
    """A completion: `path` as it goes in the prompt (a directory's ends with `/`)."""

    path: str
    is_dir: bool
    url: bool = False


def at_token(line: str, column: int) -> Optional[Tuple[int, str]]:
    """The `@path` being typed that ends at `column` of `line` -- an `@` at the start or after
    white space, then no white space but `\\ ` -- as (the column of its `@`, the path so far
    with `\\ ` read as a space), or None."""
    at = line.rfind("@", max(0, column - _AT_WINDOW), column)
    if at < 0 or (at > 0 and not line[at - 1].isspace()):
        return None
    typed = line[at + 1 : column]
    if _PATH_SO_FAR.fullmatch(typed) is None:
        return None
    return at, typed.replace("\\ ", " ")


def escape_path(path: str) -> str:
    """A path as typed after `@`: spaces escaped, so the token goes on past them."""
    return path.replace(" ", "\\ ")


def completions(fragment: str, cwd: Path, limit: int = MENU_LIMIT) -> List[Candidate]:
    """What `fragment` (typed after `@`) may become: the entries of its directory (relative to
    `cwd`; `~` is the home directory) whose names start with its last part, then those that
    contain it, case ignored; hidden entries only when the part typed starts with a dot.
    Blocking (a directory listing): call it off the event loop."""
    from llmchat.attachments import is_url

    if is_url(fragment):
        return [Candidate(fragment, False, url=True)]
    folder, _, prefix = fragment.rpartition("/")
    shown_folder = f"{folder}/" if folder or fragment.startswith("/") else ""
    base = Path(shown_folder or ".").expanduser()
    if not base.is_absolute():
        base = cwd / base
    wanted = prefix.casefold()
    starts: List[Candidate] = []
    contains: List[Candidate] = []
    try:
        with os.scandir(base) as entries:
            for seen, entry in enumerate(entries):
                if seen >= SCAN_LIMIT:
                    break
                name = entry.name
                if name.startswith(".") and not prefix.startswith("."):
                    continue
                folded = name.casefold()
                if not folded.startswith(wanted) and wanted not in folded:
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                candidate = Candidate(shown_folder + name + ("/" if is_dir else ""), is_dir)
                (starts if folded.startswith(wanted) else contains).append(candidate)
    except OSError:
        return []

    def order(candidate: Candidate) -> Tuple[str, str]:
        return candidate.path.casefold(), candidate.path

    return (sorted(starts, key=order) + sorted(contains, key=order))[:limit]


def pasted_paths(text: str, cwd: Optional[Path] = None) -> List[str]:
    """The files a paste names when it is nothing but their paths -- what terminals paste for a
    dropped file: quoted, with backslash-escaped spaces, or a file:// URL; several separated by
    spaces. [] for anything else, and for a bare word (a path has a `/` or starts with `~`).
    Blocking (it asks the file system): call it off the event loop."""
    text = text.strip()
    if not text or len(text) > PASTE_LIMIT:
        return []
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote
        words = []
    tries = [words] if words else []
    if len(words) != 1:
        tries.append([text.strip("'\"")])  # one path with bare spaces, pasted as it is
    for group in tries:
        paths = [_file_path(word, cwd) for word in group]
        if paths and all(path is not None for path in paths):
            return [str(path) for path in paths]
    return []


def _file_path(word: str, cwd: Optional[Path]) -> Optional[Path]:
    if word.startswith("file://"):
        parsed = urlparse(word)
        if parsed.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parsed.path))
    elif "/" in word or word.startswith("~"):
        path = Path(word).expanduser()
        if cwd is not None and not path.is_absolute():
            path = cwd / path
    else:
        return None
    try:
        return path if path.is_file() else None
    except OSError:
        return None


def meta_of(attachment: Any) -> Dict[str, Any]:
    """What the history keeps about an attachment (its `meta`), for one way of describing both."""
    return {
        "name": attachment.name,
        "kind": attachment.kind,
        "mime": attachment.mime,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "pages": attachment.pages,
    }


def kind_line(meta: Mapping[str, Any]) -> str:
    """An attachment's kind and size, as `history show` says it: `PNG image, 800x600, 41 KB`,
    `PDF, 3 pages, 2 MB`, `text, 12 KB`; a fetched URL's starts `URL, `."""
    from llmchat.attachments import is_url
    from llmchat.history.markdown import attachment_summary

    summary = attachment_summary(dict(meta))
    return f"URL, {summary}" if is_url(str(meta.get("name") or "")) else summary


def short_name(name: str) -> str:
    """An attachment's name as shown: a path given from the root or home by its file name (a
    dropped file's path would hide its kind and size), a relative path or a URL as given."""
    from llmchat.attachments import is_url

    if not is_url(name) and (name.startswith(("/", "~")) or os.path.isabs(name)):
        name = os.path.basename(name.rstrip("/")) or name
    return one_line(name)


def describe(meta: Mapping[str, Any]) -> str:
    """One line naming an attachment (`meta_of`, or as stored), its kind and size."""
    return f"{short_name(str(meta.get('name') or 'attachment'))} · {kind_line(meta)}"


# --- the chips --------------------------------------------------------------------------------


class _RemoveButton(Static):
    """A chip's ×: a click removes the chip."""

    def on_click(self, event: Any) -> None:
        event.stop()
        chip = self.parent
        if isinstance(chip, AttachmentChip):
            chip.action_remove()


class AttachmentChip(Horizontal, can_focus=True):
    """One attached item: its name, kind and size, and a × that removes it."""

    DEFAULT_CSS = """
    AttachmentChip {
        height: 1;
        width: 100%;
        background: $boost;
        & > .label { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; padding: 0 1; }
        & > .remove { width: 3; height: 1; color: $text-muted; text-align: center; }
        & > .remove:hover { color: $text-error; text-style: bold; }
        &:focus { background: $primary 30%; }
        &:focus > .remove { color: $text-error; }
    }
    """

    BINDINGS = [
        Binding("delete,backspace", "remove", "Remove"),
        Binding("up,left", "step(-1)", "Previous", show=False),
        Binding("down,right", "step(1)", "Next", show=False),
        Binding("escape", "leave", "Back to the prompt", show=False),
    ]

    # A click on the × removes the chip and leaves the focus where it was (the prompt); a
    # click on the rest focuses it (on_click).
    FOCUS_ON_CLICK = False

    def __init__(self, attachment: Any) -> None:
        super().__init__()
        self.attachment = attachment
        self.tooltip = one_line(attachment.name)

    def compose(self) -> ComposeResult:
        name = short_name(self.attachment.name)
        yield Static(Content.assemble("+ ", (name, "bold"), " · ", (kind_line(meta_of(self.attachment)), "$text-muted")), classes="label")
        yield _RemoveButton("×", classes="remove")

    def on_click(self, event: Any) -> None:
        event.stop()
        self.focus()

    def action_remove(self) -> None:
        self.post_message(AttachmentBar.Remove(self))

    def action_step(self, delta: int) -> None:
        chips = list(self.parent.query_children(AttachmentChip)) if self.parent is not None else []
        if self in chips:
            chips[max(0, min(len(chips) - 1, chips.index(self) + delta))].focus()

    def action_leave(self) -> None:
        self.post_message(AttachmentBar.Leave())


class AttachmentBar(Vertical):
    """The chips above the prompt: what goes with the next message (`attachments`, in order).
    Hidden while there are none."""

    DEFAULT_CSS = """
    AttachmentBar {
        display: none;
        height: auto;
        max-height: 25%;  /* of the screen: a few chips, and the transcript keeps its room */
        overflow-y: auto;
        padding: 0 1;
        &.-has-chips { display: block; }
    }
    """

    # Plain classes, not dataclasses: a dataclass costs a millisecond or so at start-up.
    class Remove(Message):
        """The user removed `chip` (its ×, or Delete on it)."""

        def __init__(self, chip: AttachmentChip) -> None:
            super().__init__()
            self.chip = chip

    class Leave(Message):
        """The user left the chips (Esc): the prompt takes the focus again."""

    class Changed(Message):
        """Attachments were added or removed."""

        def __init__(self, bar: "AttachmentBar") -> None:
            super().__init__()
            self.bar = bar

    can_focus = False

    @property
    def attachments(self) -> Tuple[Any, ...]:
        return tuple(chip.attachment for chip in self.query_children(AttachmentChip))

    async def add(self, attachments: Sequence[Any]) -> None:
        """Chips for `attachments`, after those there are (the same file twice stays one)."""
        have = {(a.name, a.sha256) for a in self.attachments}
        new = [AttachmentChip(a) for a in attachments if (a.name, a.sha256) not in have]
        if new:
            await self.mount_all(new)
            self._changed()

    async def remove_chip(self, chip: AttachmentChip) -> None:
        chips = list(self.query_children(AttachmentChip))
        if chip not in chips:
            return
        refocus = chip.has_focus
        at = chips.index(chip)
        await chip.remove()
        rest = chips[:at] + chips[at + 1 :]
        if refocus and rest:
            rest[min(at, len(rest) - 1)].focus()
        elif refocus:
            self.post_message(self.Leave())
        self._changed()

    async def remove_attachments(self, attachments: Sequence[Any]) -> None:
        """The chips of `attachments` (these objects, not others of the same file) removed."""
        for chip in list(self.query_children(AttachmentChip)):
            if any(chip.attachment is a for a in attachments):
                await self.remove_chip(chip)

    async def clear(self) -> None:
        if self.query_children(AttachmentChip):
            await self.remove_children(AttachmentChip)
            self._changed()

    def _changed(self) -> None:
        self.set_class(bool(self.query_children(AttachmentChip)), "-has-chips")
        self.post_message(self.Changed(self))


# --- the menu ---------------------------------------------------------------------------------

MenuKind = Literal["complete", "offer"]


class Offer(NamedTuple):
    """A pasted text that names files: offered as attachments while the prompt is as it was."""

    paths: List[str]
    pasted: str
    text: str  # the prompt's text when it was offered: any edit withdraws the offer


class PathMenu(OptionList, can_focus=False):
    """The list over the prompt: completions of an `@path`, or the offer of a pasted path. The
    prompt drives it (`complete`, `offer`, `move`, `choice`, `close`); it never has the focus."""

    DEFAULT_CSS = """
    PathMenu {
        display: none;
        height: auto;
        max-height: 35%;  /* of the screen: 8 entries at 24 rows, 5 at 15 */
        margin: 0 1;
        border: none;
        padding: 0 1;
        background: $panel;
        &.-shown { display: block; }
    }
    """

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.kind: Optional[MenuKind] = None
        self.where: Optional[Location] = None  # the `@` of the path being completed
        self.candidates: List[Candidate] = []
        self.offered: Optional[Offer] = None
        self._wanted: Optional[Tuple[Location, str]] = None  # the fragment listed last, or being listed
        self.cwd = Path.cwd()

    @property
    def shown(self) -> bool:
        return self.kind is not None

    @property
    def busy(self) -> bool:
        """Shown, or listing completions to show."""
        return self.kind is not None or self._wanted is not None

    def complete(self, fragment: str, where: Location) -> None:
        """List what `fragment` (typed after the `@` at `where`) may become; shown when listed."""
        if self._wanted == (where, fragment):
            return  # shown, being listed, or found empty: the cursor moved, the text did not
        self._wanted = (where, fragment)
        self._list(fragment, where)

    @work(thread=True, exclusive=True, group="path-menu", exit_on_error=False)
    def _list(self, fragment: str, where: Location) -> None:
        found = completions(fragment, self.cwd)
        self.app.call_from_thread(self._show_completions, fragment, where, found)

    def _show_completions(self, fragment: str, where: Location, found: List[Candidate]) -> None:
        if self._wanted != (where, fragment):
            return  # typed on, or closed, since
        if not found:
            self.close(keep_wanted=True)
            return
        self.kind, self.where, self.candidates, self.offered = "complete", where, found, None
        self.set_options([self._option(c) for c in found])
        self.highlighted = 0
        self.add_class("-shown")

    @staticmethod
    def _option(candidate: Candidate) -> Option:
        if candidate.url:
            return Option(Content.assemble("fetch and attach ", (one_line(candidate.path), "bold")))
        style = "bold $text-accent" if candidate.is_dir else ""
        return Option(Content.styled(one_line(candidate.path), style))

    def offer(self, pasted: str, prompt: Any) -> None:
        """Look at a paste just put in `prompt` (a TextArea): if it names files, offer them
        while the prompt reads as it does now."""
        self._check_paste(pasted, prompt, prompt.text)

    @work(thread=True, exclusive=True, group="path-menu-paste", exit_on_error=False)
    def _check_paste(self, pasted: str, prompt: Any, text: str) -> None:
        paths = pasted_paths(pasted, self.cwd)
        if paths:
            self.app.call_from_thread(self._show_offer, Offer(paths, pasted, text), prompt)

    def _show_offer(self, offer: Offer, prompt: Any) -> None:
        if self.kind == "complete" or prompt.text != offer.text:
            return  # typed on since (an @path comes first)
        self.kind, self.offered, self.where, self.candidates = "offer", offer, None, []
        names = ", ".join(one_line(Path(p).name) for p in offer.paths)
        what = f"the pasted file {names}" if len(offer.paths) == 1 else f"the {len(offer.paths)} pasted files {names}"
        self.set_options([Option(Content.assemble("Attach ", (what, "bold"), "? ", ("Tab or Enter attaches · Esc keeps the text", "$text-muted")))])
        self.highlighted = 0
        self.add_class("-shown")

    def move(self, delta: int) -> None:
        if self.option_count:
            self.highlighted = ((self.highlighted or 0) + delta) % self.option_count

    def choice(self) -> Optional[Candidate]:
        """The highlighted completion (None for an offer)."""
        index = self.highlighted
        if self.kind != "complete" or index is None or not 0 <= index < len(self.candidates):
            return None
        return self.candidates[index]

    def close(self, keep_wanted: bool = False) -> None:
        self.kind, self.where, self.candidates, self.offered = None, None, [], None
        if not keep_wanted:
            self._wanted = None
        self.remove_class("-shown")
        self.clear_options()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A click on an entry: the prompt accepts it as Tab would."""
        event.stop()
        self.highlighted = event.option_index
        self.post_message(self.Accept())

    class Accept(Message):
        """The user clicked an entry."""
