"""Huge finished answers (issue 9, "Long conversations"): a stored answer of megabytes, or the
backlog a cancelled flood leaves, is laid out lazily -- only the units near the view are parsed
and drawn, the others' heights are estimated and corrected when they come into view, without
moving what the view shows -- and reads exactly as when it is drawn whole: the first and the
last line, every line in between when scrolled through, a copied selection."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, List, Set

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Offset
from textual.selection import SELECT_ALL, Selection

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryStore
from llmchat.tui import compat
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import lazy_layout
from llmchat.tui.widgets import streaming_markdown as sm
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from tests.tui.column import Column, screen_text

SIZE = (100, 30)
DOCS = Path(__file__).parent / "markdown_docs"
END = "THE END MARK"


def demo_text(chars: int) -> str:
    """The demo answer (headings, lists, code, a table) repeated to about `chars`, then END."""
    unit = "".join(answer_tokens("q", 300)) + "\n\n"
    return unit * max(1, chars // len(unit)) + f"\n\n{END}\n"


def numbered_text(paragraphs: int, seed: int = 1) -> str:
    """Paragraphs "P<n> ..." of random lengths (estimates are wrong both ways), with a code
    block and a list now and then."""
    rng = random.Random(seed)
    out = []
    for n in range(paragraphs):
        out.append(f"P{n} " + " ".join("word" * rng.randint(1, 3) for _ in range(rng.randint(1, 60))) + "\n\n")
        if n % 17 == 5:
            out.append("```\n" + "".join(f"code line {k}\n\n" for k in range(rng.randint(1, 8))) + "```\n\n")
        if n % 23 == 7:
            out.append("".join(f"- item {k}\n" for k in range(rng.randint(1, 6))) + "\n")
    return "".join(out)


def seed(text: str) -> int:
    with HistoryStore.open() as store:
        writer = store.begin_turn(None, "big", model="m", api="openai-chat", base_url="http://127.0.0.1:9/v1")
        writer.append(text)
        writer.finish(COMPLETE, stop_reason="stop")
        return writer.conversation_id


def drawn(widget: StreamingMarkdown) -> int:
    return sum(widget._exact)


async def test_a_huge_stored_answer_opens_at_its_end_drawing_only_what_is_near_the_view(settings_for, until, tap):
    settings = settings_for()
    cid = seed(demo_text(2_000_000))
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any(END in row for row in screen_text(app)), what="the end of the answer")
        [widget] = app.transcript.query(StreamingMarkdown)
        units = len(widget._exact)
        assert units > 500
        # The view's lines, the last EXACT_PAGES pages and little more (the demo answer's
        # sections are ~2 KB, ~50 lines): not the answer.
        assert drawn(widget) <= 12, (drawn(widget), units)
        await tap(pilot, "ctrl+home")
        await until(pilot, lambda: any("Hello from the demo model" in row for row in screen_text(app)), what="the answer's first line")
        assert drawn(widget) <= 20
        await tap(pilot, "ctrl+end")
        await until(pilot, lambda: any(END in row for row in screen_text(app)), what="the end again")
        assert drawn(widget) <= 20


async def test_a_lazily_laid_out_answer_paints_as_when_drawn_whole(monkeypatch):
    source = "\n\n".join(path.read_text() for path in sorted(DOCS.glob("*.md")) if path.stem != "basics") * 10 + numbered_text(200)
    assert len(source) > 2 * lazy_layout.LAZY_CHARS
    with monkeypatch.context() as patch:
        patch.setattr(lazy_layout, "LAZY_CHARS", 10**12)
        whole = StreamingMarkdown(source)
    lazy = StreamingMarkdown(source)
    assert any(unit.kind == "section" for unit in lazy.document.units)
    assert not any(unit.kind == "section" for unit in whole.document.units)

    class Two(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield whole
                yield lazy

    app = Two()
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.pause()
        assert lazy._estimated > 0
        assert [line.text for line in lazy.rendered_lines()] == [line.text for line in whole.rendered_lines()]
        assert [list(line) for line in lazy.rendered_lines()] == [list(line) for line in whole.rendered_lines()]


def paragraphs_on_screen(rows: List[str]) -> Set[int]:
    return {int(match) for row in rows for match in re.findall(r"\bP(\d+) ", row)}


def column_rows(app: App) -> List[str]:
    """The screen's text, without the scrollbar's column."""
    return [strip.text[:-2] for strip in app.screen._compositor.render_strips()]


@pytest.mark.parametrize("step", [20, 1], ids=["page", "line"])
async def test_scrolling_up_through_estimated_heights_shows_every_line_and_never_jumps(monkeypatch, step):
    """From the end to the top a page (or a line) at a time: each step moves what was on
    screen down by exactly the step, also when it brings units into view whose estimated
    heights were wrong, and every paragraph is seen on the way."""
    monkeypatch.setattr(lazy_layout, "LAZY_CHARS", 4000)
    count = 400 if step > 1 else 80
    widget = StreamingMarkdown(numbered_text(count, seed=7))
    app = Column(widget)
    async with app.run_test(size=(70, 24)) as pilot:
        column = app.query_one("#column")
        column.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        await pilot.pause()
        assert widget._estimated > 0
        rows = column_rows(app)
        seen = paragraphs_on_screen(rows)
        steps = 0
        while column.scroll_y >= step:
            before = rows
            column.scroll_to(y=column.scroll_y - step, animate=False, immediate=True)
            await pilot.pause()
            await pilot.pause()
            rows = column_rows(app)
            assert rows[step:] == before[:-step], f"the view jumped at step {steps}"
            seen |= paragraphs_on_screen(rows)
            steps += 1
            assert steps < 5000
        column.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        await pilot.pause()
        rows = column_rows(app)
        assert rows[0].strip().startswith("P0 ")
        assert seen | paragraphs_on_screen(rows) == set(range(count))


async def test_a_selection_spanning_estimated_units_copies_exactly(monkeypatch):
    source = numbered_text(500, seed=3)
    monkeypatch.setattr(sm, "SELECTION_DRAW_CHARS", 10**12)  # (146 KB: all drawn for it)
    with monkeypatch.context() as patch:
        patch.setattr(lazy_layout, "LAZY_CHARS", 10**12)
        whole = StreamingMarkdown(source)
    lazy = StreamingMarkdown(source)
    app = Column(lazy)
    async with app.run_test(size=(70, 24)) as pilot:
        await pilot.pause()  # at the top: the first units are drawn, the middle only estimated
        assert lazy._exact[0] and not all(lazy._exact) and lazy._estimated > 0
        top_line = lazy.line_text(3)
        last = lazy.line_count - 1  # on an estimated line count: the selection ends where it is
        assert not lazy._exact[lazy._unit_at(last - 200)]
        copied, _ = lazy.get_selection(Selection(Offset(2, 3), None))
    reference = Column(whole)
    async with reference.run_test(size=(70, 24)) as pilot:
        await pilot.pause()
        expected, _ = whole.get_selection(Selection(Offset(2, 3), None))
        assert whole.line_text(3) == top_line
    assert copied == expected
    assert copied.startswith(top_line[2:].rstrip()) and copied.rstrip().endswith(source.rstrip().split("\n")[-1][-20:])


async def test_selecting_all_of_an_answer_of_megabytes_draws_only_its_ends():
    """Copying a select-all (a double click) drew every unit of the answer for its text: ~6 ms
    a KB, a minute for 12 MB with the app held. Beyond SELECTION_DRAW_CHARS, the units wholly
    inside the selection that were never drawn give their Markdown source."""
    source = demo_text(400_000)
    lazy = StreamingMarkdown(source)
    app = Column(lazy)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        units = len(lazy.document.units)
        estimated = lazy._estimated
        assert estimated > units // 2
        top_line = lazy.line_text(0).strip()
        drawn = []
        real_draw = lazy._draw
        lazy._draw = lambda index, keep=True: drawn.append(index) or real_draw(index, keep)  # type: ignore[method-assign]
        copied, _ = lazy.get_selection(SELECT_ALL)
        assert len(set(drawn)) <= 2  # the first and the last unit at most
        assert lazy._estimated >= estimated - 2
        assert copied.startswith(top_line)
        assert copied.rstrip().endswith(END)
        # Every section in between is there, as its source.
        sections = [unit for unit in lazy.document.units if unit.kind == "section"]
        assert len(sections) > 10
        middle = sections[len(sections) // 2]
        assert middle.whole[middle.start_at : middle.end_at].strip("\n") in copied
        # From a column on a line of the first unit to one on a line of the last.
        start = Offset(2, 1)
        end = Offset(5, lazy.line_count - 1)
        part, _ = lazy.get_selection(Selection(start, end))
        assert part.startswith(lazy.line_text(1)[2:].rstrip())
        assert part.split("\n")[-1] == lazy.line_text(lazy.line_count - 1)[:5].rstrip()


async def test_a_selection_in_a_drawn_answer_draws_each_unit_once(monkeypatch):
    """A selection's text took each line from its unit, drawing a unit not in the shared cache
    again for every one of its lines."""
    source = numbered_text(60, seed=5)
    widget = StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=(70, 24)) as pilot:
        await pilot.pause()
        expected = "\n".join(widget.line_text(y).rstrip() for y in range(widget.line_count)).rstrip("\n")
        sm.DRAWN.clear()
        drawn = []
        real_draw = widget._draw
        widget._draw = lambda index, keep=True: drawn.append(index) or real_draw(index, keep)  # type: ignore[method-assign]
        copied, _ = widget.get_selection(SELECT_ALL)
        assert copied == expected
        assert sorted(drawn) == sorted(set(drawn))


async def test_a_long_backlog_is_final_at_once_when_finished(until):
    """The flood's Esc: ~2 MB not taken in yet is final right after finish(), laid out lazily,
    and no frames are left to take it in."""
    widget = StreamingMarkdown()
    app = Column(widget)
    async with app.run_test(size=(70, 24)) as pilot:
        widget.append("Start of the answer.\n\n")
        await pilot.pause()
        text = demo_text(2_000_000)
        for at in range(0, len(text), 5000):
            widget.append(text[at : at + 5000])
        assert widget.backlog > 1_000_000
        widget.finish()
        await until(pilot, lambda: widget.finished, what="the answer final")
        assert widget.backlog == 0
        await pilot.pause()
        assert len(widget._exact) > 500 and drawn(widget) <= 30  # (frames may have taken a few slices first)
        column = app.query_one("#column")

        def at_the_end() -> bool:
            column.scroll_end(animate=False, immediate=True)  # (again: the last layout may have changed the end)
            return any(END in row for row in screen_text(app))

        await until(pilot, at_the_end, what="the end on screen")
        assert widget.source.endswith(f"{END}\n")


async def test_a_new_width_does_not_draw_the_whole_answer_again(monkeypatch, until):
    widget = StreamingMarkdown(demo_text(1_000_000))
    app = Column(widget)
    async with app.run_test(size=(100, 30)) as pilot:
        column = app.query_one("#column")
        column.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        draws = []
        original = sm.StreamingMarkdown._draw

        def counting(self: Any, index: int, keep: bool = True) -> Any:
            draws.append(index)
            return original(self, index, keep)

        monkeypatch.setattr(sm.StreamingMarkdown, "_draw", counting)
        await pilot.resize_terminal(80, 30)
        await pilot.pause()
        await pilot.pause()
        assert widget._width < 100
        assert 0 < len(draws) <= 30, len(draws)

        def at_the_end() -> bool:
            column.scroll_end(animate=False, immediate=True)
            return any(END in row for row in screen_text(app))

        await until(pilot, at_the_end, what="the end on screen")


async def test_a_new_width_keeps_the_line_at_the_top_of_the_view_near_it(monkeypatch, until):
    """Scrolled into the middle of a long answer, a resize lays it out again (estimated above the
    view): the view moves with the text, the paragraph at its top stays at its top."""
    monkeypatch.setattr(lazy_layout, "LAZY_CHARS", 4000)
    widget = StreamingMarkdown(numbered_text(600, seed=5))
    app = Column(widget)
    async with app.run_test(size=(100, 24)) as pilot:
        column = app.query_one("#column")
        await pilot.pause()
        column.scroll_to(y=widget.line_count // 2, animate=False, immediate=True)
        await pilot.pause()
        await pilot.pause()
        rows = column_rows(app)
        top = next(k for k, row in enumerate(rows) if re.match(r"\s*P\d+ ", row))
        column.scroll_to(y=column.scroll_y + top, animate=False, immediate=True)
        await pilot.pause()
        await pilot.pause()
        paragraph = column_rows(app)[0].split()[0]
        assert re.fullmatch(r"P\d+", paragraph)
        await pilot.resize_terminal(70, 24)
        await until(pilot, lambda: widget._width < 90, what="the new width")
        await pilot.pause()
        await pilot.pause()
        first_rows = " ".join(column_rows(app)[:4])
        assert f"{paragraph} " in first_rows, (paragraph, column_rows(app)[:4])


def test_tall_regions_are_found_by_the_spatial_map_without_filling_its_grid():
    from textual._spatial_map import SpatialMap
    from textual.geometry import Offset, Region

    compat.install_tall_regions()
    tall = Region(0, 10, 80, 500_000)
    spatial: SpatialMap[str] = SpatialMap()
    spatial.insert(
        [
            (Region(0, 0, 80, 10), Offset(), False, False, "top"),
            (tall, Offset(), False, False, "tall"),
            (Region(0, 500_010, 80, 5), Offset(), False, False, "end"),
        ]
    )
    assert len(spatial._map) < 10  # the tall region is not listed in 25,000 cells
    assert spatial.total_region == Region(0, 0, 80, 500_015)
    assert spatial.get_values_in_region(Region(0, 0, 80, 5)) == ["top"]
    assert spatial.get_values_in_region(Region(0, 5, 80, 10)) == ["top", "tall"]
    assert spatial.get_values_in_region(Region(0, 250_000, 80, 40)) == ["tall"]
    assert spatial.get_values_in_region(Region(0, 500_000, 80, 40)) == ["end", "tall"]  # (the grid's first)
