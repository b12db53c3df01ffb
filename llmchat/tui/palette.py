"""The command palette llmchat opens (Ctrl+P and the pickers): Textual's, minus one crash.

Keys typed fast while the app is busy can still be queued for the palette's search box when the
palette is dismissed (Esc, or Enter on a command). Each of them changes the box, and Textual's
palette answers every change by starting a search worker -- on a screen that is leaving, whose
list is removed under the worker: `NoMatches: No nodes match 'CommandList'` raised in
`_gather_commands`, and the app quit with a traceback. A palette that is no longer the active
screen ignores its box (through `prevent_default`, Textual's public way to skip the handlers
of the classes below).
"""

from __future__ import annotations

from textual import on
from textual.command import CommandPalette
from textual.widgets import Input


class ChatPalette(CommandPalette):
    @on(Input.Changed)
    def _ignore_input_once_dismissed(self, event: Input.Changed) -> None:
        if not self.is_active:
            event.stop()
            event.prevent_default()  # CommandPalette's own handler would start a search
