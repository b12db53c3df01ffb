"""How an answer looks in the app while it streams and after: the newest text on the last row
of the transcript, tables and long code lines readable at any width, links that show where
they go. Each test drives the real app against the fake server."""

from __future__ import annotations

from typing import Any, List

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.session import STREAMING

DECORATION = set("▊█▌▐▎▍▏▕▁▂▃▄▅▆▇ ")


def transcript_rows(app: ChatApp) -> List[str]:
    """The transcript's rows as painted, without the message borders and the scrollbar."""
    region = app.transcript.region
    strips = app.screen._compositor.render_strips()
    return [strip.crop(region.x, region.right).text for strip in strips[region.y : region.bottom]]


def blank(row: str) -> bool:
    return all(character in DECORATION for character in row)


def rows_under_the_text(rows: List[str]) -> int:
    filled = [index for index, row in enumerate(rows) if not blank(row)]
    return len(rows) - 1 - filled[-1] if filled else len(rows)


@pytest.mark.parametrize("size", [(40, 15), (80, 24), (120, 40)])
async def test_the_newest_text_is_on_the_last_row_while_an_answer_streams(size, settings_for, submit, settled):
    """At every terminal size, every frame sampled while the answer streams shows text on the
    transcript's last row or the one above it (the transcript's own padding), never the room
    the answer keeps for growing."""
    app = ChatApp(settings_for(tokens=500, tps=250))
    samples: List[Any] = []
    painted = app._display

    def display(screen: Any, renderable: Any) -> None:
        painted(screen, renderable)  # then look at the screen as painted
        turn = app.session.last if app.session is not None else None
        if renderable is not None and turn is not None and turn.state == STREAMING and turn.view.markdown.line_count > 2:
            rows = transcript_rows(app)
            samples.append((rows_under_the_text(rows), rows))

    app._display = display  # type: ignore[method-assign]
    async with app.run_test(size=size) as pilot:
        await submit(pilot, "hello")
        await settled(app)
        assert len(samples) >= 10
        worst = max(samples, key=lambda sample: sample[0])
        assert worst[0] <= 1, "\n".join(worst[1])
