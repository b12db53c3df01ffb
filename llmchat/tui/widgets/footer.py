"""The key bar at the bottom: Textual's `Footer`, rebuilt only when the keys it shows change,
and without keeping every key it ever showed.

Rebuilt less. Textual's footer rebuilds itself (removes every key widget, mounts new ones:
styles, layout, a full paint) whenever its screen's bindings may have changed -- each focus
change, each `refresh_bindings()`. Moving the focus between the conversation list's search box,
its rows and its rename box changes none of the keys shown, yet each rebuild took 20-60 ms on the
key's way to the screen (tests/benchmarks/bench_tui.py, `locked`). `QuietFooter` compares what
the footer would show (each binding it lists: key, action, description, enabled, tooltip) with
what it shows, and rebuilds only on a difference.

Nothing kept. When it does rebuild, Textual binds each key's `compact` to its own with
`data_bind`: a watcher on the footer holding the key, which Textual drops only when `compact`
next changes -- in llmchat, never: every key ever shown stayed alive (tracemalloc of bench_tui's
`rounds` section; tests/tui/test_long_conversation.py guards it). After each recompose,
`mutate_reactive` runs the watchers once, which prunes those of removed keys (public API; the
live keys get the value they already have).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


def shown_bindings(screen: Screen) -> Tuple[Any, ...]:
    """What a footer on `screen` shows, as a comparable value: the bindings it lists (`show`)
    and the command palette's key, each with what its key widget is built from."""
    palette = screen.app.COMMAND_PALETTE_BINDING
    return tuple(
        (key, binding.action, binding.description, binding.key_display, binding.group, enabled, tooltip or binding.tooltip)
        for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show or key == palette
    )


class Footer(TextualFooter):
    """Textual's `Footer` that lets go of the keys a rebuild removed (see above)."""

    async def recompose(self) -> None:
        await super().recompose()
        if self.is_attached:
            self.mutate_reactive(TextualFooter.compact)


class QuietFooter(Footer):
    """A `Footer` that also skips rebuilds that would show the same keys (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: Optional[Tuple[Any, ...]] = None
        self.rebuilds = 0  # rebuilds asked for (tests)

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = shown_bindings(screen)
            if shown == self._shown:
                return
            self._shown = shown
            self.rebuilds += 1
        super().bindings_changed(screen)
