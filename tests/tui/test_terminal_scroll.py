"""While an answer streams with its newest line on the last row, each new line moves every row
of it on screen: the terminal moves them (compat.PacedScreen.scroll_rows, a scroll region and a
scroll), and only the rows the move exposed and the lines that changed are painted. Checked the
way a person would see it: every update the app writes is played into a small terminal
(tests/tui/vt.py), and when the answer stalls, what that terminal shows must be what the app
would paint from scratch."""

from __future__ import annotations

from typing import Any, List

import pytest

from llmchat.demo.answer import answer_tokens
from llmchat.tui.app import ChatApp
from llmchat.tui.compat import AVAILABLE, ScrolledUpdate
from llmchat.tui.widgets import AssistantMessage
from tests.tui.vt import Terminal

TOKENS, STALL_AFTER = 600, 450  # the demo answer: headings, lists, code, a table, a quote


class Watched:
    """Plays every update `app` writes into a Terminal (headless apps write none: rendered here
    as a terminal app would)."""

    def __init__(self, app: ChatApp, width: int, height: int) -> None:
        self.app = app
        self.terminal = Terminal(width, height)
        self.updates: List[Any] = []
        stock = app._display

        def display(screen: Any, renderable: Any) -> None:
            stock(screen, renderable)
            if renderable is not None and app.screen is screen:
                self.updates.append(type(renderable))
                self.terminal.feed(renderable.render_segments(app.console))

        app._display = display  # type: ignore[method-assign]
        app.screen.refresh()  # the next update paints the whole screen: the terminal starts from it

    @property
    def scrolls(self) -> int:
        return sum(1 for kind in self.updates if kind is ScrolledUpdate)

    def painted_afresh(self) -> List[str]:
        """Every row of the screen as the app would paint it now, from scratch."""
        compositor = self.app.screen._compositor
        chops = compositor._render_chops(compositor.size.region, lambda y: True)
        return ["".join(strip.text for strip in chop.values()).rstrip() for chop in chops]

    def differences(self) -> List[str]:
        """The transcript's rows where the terminal shows something else than the app."""
        region = self.app.transcript.region
        shown, fresh = self.terminal.text(), self.painted_afresh()
        return [f"row {y}: shown {shown[y]!r}, the app {fresh[y]!r}" for y in range(region.y, region.bottom) if shown[y] != fresh[y]]


async def stream_and_compare(app: ChatApp, pilot: Any, watched: Watched, until: Any, tap: Any, server_saw: Any, srv: Any) -> None:
    app.prompt.load_text("hi")
    await tap(pilot, "enter", "\r")
    await until(pilot, lambda: app.check_action("cancel_stream", ()), what="the answer to start")
    # Stalled (the server stops sending, the connection stays open): once the answer has all of
    # it and its frames are painted, the terminal shows what the app would paint. A row the
    # moves garbled is never painted again while nothing comes, so it stays different.
    await server_saw(srv, lambda requests: requests and requests[-1].outcome == "stalled")
    markdown = app.query(AssistantMessage).last().markdown
    sent = "".join(answer_tokens("hi", TOKENS)[:STALL_AFTER])
    await until(pilot, lambda: markdown.source == sent and not markdown.backlog, what="the answer to take all that came")
    await until(pilot, lambda: not watched.differences(), timeout=10, what="the terminal to show the stalled answer")


@pytest.mark.skipif(not AVAILABLE["terminal_scroll"], reason="this Textual is not the one terminal_scroll was checked against")
@pytest.mark.parametrize("size", [(60, 20), (40, 15), (120, 40)])
async def test_the_terminal_moves_the_rows_and_shows_what_the_app_would_paint(settings_for, until, tap, server_saw, srv, size):
    app = ChatApp(settings_for(tokens=TOKENS, tps=150, stall_after=STALL_AFTER))
    async with app.run_test(size=size) as pilot:
        watched = Watched(app, *size)
        await pilot.pause()
        await stream_and_compare(app, pilot, watched, until, tap, server_saw, srv)
        assert watched.scrolls >= 5, watched.updates  # the terminal moved the rows, again and again
        assert not watched.differences()


@pytest.mark.skipif(not AVAILABLE["terminal_scroll"], reason="this Textual is not the one terminal_scroll was checked against")
async def test_with_a_notice_over_the_answer_the_rows_are_painted_not_moved(settings_for, until, tap, server_saw, srv):
    """A toast sits over the answer's rows: moving the rows would move it too. They are painted
    instead while it shows, and the terminal still shows what the app would paint."""
    app = ChatApp(settings_for(tokens=TOKENS, tps=150, stall_after=STALL_AFTER))
    async with app.run_test(size=(60, 20), notifications=True) as pilot:
        watched = Watched(app, 60, 20)
        await pilot.pause()
        app.notify("a notice over the answer\n" + "\n".join(f"line {n}" for n in range(8)), timeout=60)  # tall: over the transcript
        await until(
            pilot, lambda: app.screen.query("Toast") and app.screen.query_one("Toast").region.overlaps(app.transcript.region), what="the toast"
        )
        await stream_and_compare(app, pilot, watched, until, tap, server_saw, srv)
        assert watched.scrolls == 0, watched.updates
        assert any("a notice over the answer" in row for row in watched.terminal.text())


def test_the_tiny_terminal_scrolls_a_region_as_a_terminal_does():
    terminal = Terminal(5, 4)
    terminal.feed("\x1b[1;1Haaaaa\x1b[2;1Hbbbbb\x1b[3;1Hccccc\x1b[4;1Hddddd")
    terminal.feed("\x1b[2;3r\x1b[1S\x1b[r")
    assert terminal.text() == ["aaaaa", "ccccc", "", "ddddd"]
    terminal.feed("\x1b[1;4r\x1b[2T\x1b[r")
    assert terminal.text() == ["", "", "aaaaa", "ccccc"]
    terminal.feed("\x1b[4;1H\n")  # a line feed at the bottom scrolls
    assert terminal.text() == ["", "aaaaa", "ccccc", ""]
    terminal.feed("\x1b[1;1H表x")
    assert terminal.text()[0] == "表x"
