"""Guard tests for llmchat's one reach into Textual's private code (tui/compat.py): Alt+Enter sent
as ESC CR is reported as alt+enter, through the parser the Linux driver really builds."""

from __future__ import annotations

import time

import pytest
from textual.drivers import linux_driver

from llmchat.tui import compat


def keys(parser_class, data: str, expected: int = 1) -> list:
    """What the parser makes of `data`, read at once. A lone ESC waits for more input (its
    timeout), so the parser is ticked in a bounded poll until `expected` keys are out."""
    parser = parser_class()
    events = list(parser.feed(data))
    deadline = time.monotonic() + 2.0
    while len([e for e in events if hasattr(e, "key")]) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
        events += parser.tick()
    return [event.key for event in events if hasattr(event, "key")]


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(linux_driver, "XTermParser", linux_driver.XTermParser)  # undone after the test
    assert compat.install_alt_enter()
    return compat.parser_in_use()


def test_the_driver_builds_the_patched_parser(installed):
    assert installed is compat.AltEnterParser
    assert linux_driver.XTermParser is compat.AltEnterParser


@pytest.mark.parametrize(
    "data, expected",
    [
        ("\x1b\r", ["alt+enter"]),
        ("a\x1b\rb", ["a", "alt+enter", "b"]),
        ("\r", ["enter"]),
        ("\x1bx", ["alt+x"]),
        ("\x1b[13;3u", ["alt+enter"]),  # the kitty protocol, as before
        ("\x1b[13;2u", ["shift+enter"]),
        ("\t", ["tab"]),
    ],
)
def test_escape_cr_is_alt_enter_and_nothing_else_changes(installed, data, expected):
    assert keys(installed, data, len(expected)) == expected


def test_stock_textual_still_drops_the_alt_the_patch_exists_for():
    """The day Textual reports ESC CR as alt+enter itself, this fails: remove the patch."""
    from textual._xterm_parser import XTermParser

    assert keys(XTermParser, "\x1b\r") == ["enter"]
