"""The one place llmchat reaches into Textual's private code (textual 8.2.x), each use with a
feature check, a fallback to Textual's own behaviour, and a guard test (tests/tui/test_compat.py)
that goes through Textual's own code path.

Alt+Enter. Terminals without the kitty keyboard protocol (xterm, GNOME Terminal, tmux 3.3 --
checked) send Alt+Enter as ESC CR. Textual's key parser keeps the Alt of ESC + a letter but
drops it for keys it maps by table (Enter, Tab, Backspace), so Alt+Enter arrived as Enter and
sent the prompt the user wanted to break. `AltEnterParser` reports it as alt+enter; the Linux
driver builds its parser from the name `XTermParser` in its module, which `install` points at
this subclass -- a process-wide change, made by the TUI's entry point only (`run_tui`).
Written up for upstream: `_sequence_to_key_events` should prefix "alt+" to table-mapped keys.

Elsewhere, one override: `ChatApp._handle_exception`, Textual's only hook for an exception no
handler or worker caught (it writes the crash log; see llmchat/crash.py). Its guard is
tests/tui/test_crash.py, which raises real errors in a handler and in a worker.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual import events

try:  # the feature check: the names this relies on, as textual 8.2 has them
    from textual._xterm_parser import XTermParser
    from textual.drivers import linux_driver

    _PATCHABLE = hasattr(XTermParser, "_sequence_to_key_events") and getattr(linux_driver, "XTermParser", None) is XTermParser
except ImportError:  # pragma: no cover - another Textual: stock behaviour
    XTermParser = object  # type: ignore[assignment,misc]
    linux_driver = None  # type: ignore[assignment]
    _PATCHABLE = False


class AltEnterParser(XTermParser):
    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if alt and sequence == "\r":
            yield events.Key("alt+enter", None)
            return
        yield from super()._sequence_to_key_events(sequence, alt=alt)


def install_alt_enter() -> bool:
    """Make the Linux driver report ESC CR as alt+enter; False (stock Textual) when this
    Textual does not have what the patch relies on."""
    if not _PATCHABLE:
        return False
    linux_driver.XTermParser = AltEnterParser  # type: ignore[misc]
    return True


def parser_in_use() -> Any:
    """The parser class the Linux driver builds (for the guard test)."""
    return getattr(linux_driver, "XTermParser", None)
