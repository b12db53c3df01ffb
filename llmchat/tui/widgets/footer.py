"""The key bar at the bottom, as Textual's `Footer`, without keeping every key it ever showed.

Textual's Footer composes its keys again whenever the bindings change (a new conversation, an
answer starting or ending: a few times a turn), and binds each key's `compact` to its own with
`data_bind`. That binding is a watcher on the Footer holding the key, which Textual drops only
when `compact` next changes -- in llmchat, never: every key ever shown stayed alive (tracemalloc
of bench_tui's `rounds` section; tests/tui/test_long_conversation.py guards it). After each
recompose, `mutate_reactive` runs the watchers once, which prunes those of removed keys (public
API; the live keys get the value they already have).
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    async def recompose(self) -> None:
        await super().recompose()
        if self.is_attached:
            self.mutate_reactive(TextualFooter.compact)
