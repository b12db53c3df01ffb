"""The key bar at the bottom: Textual's `Footer`, changed in place when the keys it shows
change, and without keeping every key it ever showed.

Rebuilt less. Textual's footer rebuilds itself (removes every key widget, mounts new ones:
styles, layout, a full paint) whenever its screen's bindings may have changed -- each focus
change, each `refresh_bindings()`. Moving the focus between the conversation list's search box,
its rows and its rename box changes none of the keys shown, yet each rebuild took 20-60 ms on the
key's way to the screen (tests/benchmarks/bench_tui.py, `locked`). `QuietFooter` compares what
the footer would show (each binding it lists: key, action, description, enabled, tooltip) with
what it shows, and does nothing on no difference.

Changed in place. An answer's start shows Esc (Cancel) and hides Ctrl+R (Retry); its end the
reverse. Rebuilt for that, the bar took 15-40 ms twice per answer, on the main thread next to
the answer's first and last paints (most of it CSS: each new key is styled twice, once per
component class, and again when `compact` is bound). `QuietFooter` instead hides a key that goes
(`display`), shows it again when it comes back, and mounts only a key it has never shown; it
rebuilds only when the keys would come in another order, or in binding groups (llmchat has
none). What it shows is always what Textual's `Footer` would compose (tests/tui/test_footer.py
compares the two).

Nothing kept. When it does rebuild, Textual binds each key's `compact` to its own with
`data_bind`: a watcher on the footer holding the key, which Textual drops only when `compact`
next changes -- in llmchat, never: every key ever shown stayed alive (tracemalloc of bench_tui's
`rounds` section; tests/tui/test_long_conversation.py guards it). After each recompose,
`mutate_reactive` runs the watchers once, which prunes those of removed keys (public API; the
live keys get the value they already have). Keys hidden in place stay: at most one per binding.

Never one key over another. Textual docks the command palette's key at the right, over whatever
keys reach it: at 40 columns the bar read `^q Qui▏^p palette`. `QuietFooter` fits its keys to its
width (`fitted`): spaced as Textual spaces them when they fit; compact (less space around each)
when only that fits; and when even that is too wide, the keys that matter least are hidden (the
screen names those that stay longest; the palette's key, which reaches every command, goes only
when no other fits beside it). Every key still works; the Keys panel lists them all.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

# What a key widget is built from, apart from whether it is enabled and its tooltip: a key
# with the same identity is the same widget, shown or hidden.
Identity = Tuple[str, str, str, str, bool]  # key, key display, description, action, the palette's


def shown_bindings(screen: Screen) -> Tuple[Any, ...]:
    """What a footer on `screen` shows, as a comparable value: the bindings it lists (`show`)
    and the command palette's key, each with what its key widget is built from."""
    palette = screen.app.COMMAND_PALETTE_BINDING
    return tuple(
        (key, binding.action, binding.description, binding.key_display, binding.group, enabled, tooltip or binding.tooltip)
        for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show or key == palette
    )


def _identity(key: FooterKey) -> Identity:
    return (key.key, key.key_display, key.description, key.action, key.has_class("-command-palette"))


def _born_as(key: FooterKey, compact: bool) -> None:
    """A key born in the footer's `compact`: Textual's is born compact, then bound to the
    footer's (two restylings of each key at every rebuild). Not the palette's key: Textual
    leaves it compact, whatever the footer."""
    if not key.has_class("-command-palette"):
        key.set_reactive(FooterKey.compact, compact)
        key.set_class(compact, "-compact", update=False)


class Footer(TextualFooter):
    """Textual's `Footer` that lets go of the keys a rebuild removed (see above)."""

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                _born_as(widget, self.compact)
            yield widget

    async def recompose(self) -> None:
        await super().recompose()
        if self.is_attached:
            self.mutate_reactive(TextualFooter.compact)


def key_width(key: FooterKey, compact: bool) -> int:
    """The columns `key` takes in a footer that is `compact` or not (Textual's FooterKey and
    Footer CSS: the key padded by one each side, then the description and a space; compact, one
    space between them and a margin of one after. The palette's key is always compact, after a
    border of one, and keeps one column at the right: a padding, or in a compact footer a
    margin)."""
    text = cell_len(key.key_display)
    described = cell_len(key.description) + 1 if key.description else 0
    if key.has_class("-command-palette"):
        return 1 + text + described + 1
    if compact:
        return text + described + 1
    return text + 2 + described


def fitted(keys: List[FooterKey], palette: Optional[FooterKey], width: int, first: Sequence[str] = ()) -> Tuple[bool, List[FooterKey], bool]:
    """How `keys` (those shown, in order, the palette's apart) fit a footer `width` columns
    wide: (compact, the keys to show, show the palette's key). All of them, spaced as Textual
    spaces them when that fits, else compact. When even that is too wide, as many as fit
    beside the palette's key (it reaches every command), taken by their action in the order of
    `first`, then in their own; without it only when no key fits beside it."""
    for compact in (False, True):
        needed = sum(key_width(key, compact) for key in keys)
        if palette is not None:
            needed += key_width(palette, compact)
        if needed <= width:
            return compact, keys, palette is not None
    rank = {action: index for index, action in enumerate(first)}
    ranked = sorted(range(len(keys)), key=lambda index: (rank.get(keys[index].action, len(rank)), index))
    for with_palette in (True, False) if palette is not None else (False,):
        room = width - (key_width(palette, True) if with_palette and palette is not None else 0)
        chosen = set()
        for index in ranked:
            needed = key_width(keys[index], True)
            if needed <= room:
                chosen.add(index)
                room -= needed
        if chosen or not keys:
            return True, [key for index, key in enumerate(keys) if index in chosen], with_palette
    return True, [], False


class QuietFooter(Footer):
    """A `Footer` that skips rebuilds that would show the same keys, and changes the keys in
    place when it can (see above)."""

    def __init__(self, *args: Any, first: Sequence[str] = (), **kwargs: Any) -> None:
        """`first`: the actions whose keys stay longest when not all fit (see `fitted`)."""
        super().__init__(*args, **kwargs)
        self.first = tuple(first)
        self._shown: Optional[Tuple[Any, ...]] = None
        self._unfit: List[FooterKey] = []  # keys hidden only because they did not fit
        self.rebuilds = 0  # rebuilds asked for (tests)
        self.changes = 0  # changes made in place (tests)

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = shown_bindings(screen)
            if shown == self._shown:
                return
            self._shown = shown
            if self._bindings_ready and self._change_in_place(screen):
                self.changes += 1
                self._unfit = []  # (each key shown or hidden by what the screen wants)
                self._fit()
                return
            self.rebuilds += 1
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self._unfit = []
        self._fit()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """Space the keys, or not, and show as many of them as fit, the palette's key included
        (see `fitted`)."""
        width = self.size.width
        if not width or not self.is_attached:
            return
        keys: List[FooterKey] = []
        palette: Optional[FooterKey] = None
        for key in self.query_children(FooterKey):
            if key.has_class("-command-palette"):
                palette = key
            elif key.display or key in self._unfit:
                keys.append(key)
        if palette is not None and not self._palette_wanted():
            palette = None
        compact, shown, with_palette = fitted(keys, palette, width, self.first)
        if compact != self.compact:
            self.compact = compact
        self._unfit = [key for key in keys if key not in shown]
        for key in keys:
            if key.display != (key in shown):
                key.display = key in shown
        if palette is not None and palette.display != with_palette:
            palette.display = with_palette

    def _palette_wanted(self) -> bool:
        """Whether the screen's bindings would show the palette's key (hidden only to fit)."""
        shown = self._shown if self._shown is not None else shown_bindings(self.screen)
        key = self.app.COMMAND_PALETTE_BINDING
        return self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and any(binding[0] == key for binding in shown)

    def watch_compact(self, compact: bool) -> None:
        # (The keys Textual composed are bound to `compact`; those mounted in place are not:
        # bound outside the footer's own messages, `data_bind` refuses.)
        for key in self.query_children(FooterKey):
            if not key.has_class("-command-palette"):
                key.compact = compact

    def _wanted(self, screen: Screen) -> Optional[List[Tuple[Identity, bool, str]]]:
        """The keys Textual's `compose` would yield, in its order: (identity, enabled,
        tooltip) each. None when it would yield more than keys (binding groups)."""
        app = screen.app
        palette = app.COMMAND_PALETTE_BINDING
        wanted: List[Tuple[Identity, bool, str]] = []
        actions = set()
        palette_key = None
        for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items():
            if key == palette and self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
                palette_key = (
                    (binding.key, app.get_key_display(binding), binding.description, binding.action, True),
                    enabled,
                    binding.tooltip or binding.description,
                )
            if not binding.show:
                continue
            if binding.group is not None:
                return None
            if binding.action in actions:  # (the first binding of an action is the one shown)
                continue
            actions.add(binding.action)
            wanted.append(((binding.key, app.get_key_display(binding), binding.description, binding.action, False), enabled, tooltip))
        if palette_key is not None:
            wanted.append(palette_key)
        return wanted

    def _change_in_place(self, screen: Screen) -> bool:
        """Show the keys `screen` has, hide the others, mount those never shown; False (a
        rebuild is needed) when the keys would come in another order."""
        wanted = self._wanted(screen)
        if wanted is None:
            return False
        keys: List[FooterKey] = []
        for child in self.children:
            if not isinstance(child, FooterKey):
                return False
            keys.append(child)
        have: Dict[Identity, FooterKey] = {_identity(key): key for key in keys}
        if len(have) != len(keys):
            return False
        place = {key: index for index, key in enumerate(keys)}
        placed = [place[have[identity]] for identity, _, _ in wanted if identity in have]
        if placed != sorted(placed):
            return False
        for index, (identity, enabled, tooltip) in enumerate(wanted):
            if identity in have:
                continue
            key, key_display, description, action, in_palette = identity
            widget = FooterKey(
                key, key_display, description, action, disabled=not enabled, tooltip=tooltip, classes="-command-palette" if in_palette else ""
            )
            _born_as(widget, self.compact)
            later = [have[other] for other, _, _ in wanted[index + 1 :] if other in have]
            if later:
                self.mount(widget, before=later[0])
            else:
                self.mount(widget)
            have[identity] = widget
        showing = {identity: (enabled, tooltip) for identity, enabled, tooltip in wanted}
        for identity, widget in have.items():
            state = showing.get(identity)
            if state is None:
                widget.display = False
                continue
            enabled, tooltip = state
            widget.display = True
            if widget._disabled == enabled:
                widget._disabled = not enabled
                widget.set_class(not enabled, "-disabled")
                widget.refresh()
            if widget.tooltip != (tooltip or None):
                widget.tooltip = tooltip or None
        return True
