"""Long lists and tables are drawn in parts, as long code blocks are: a list is kept in runs of
at most LIST_UNIT_ITEMS items, a table of more than TABLE_UNIT_ROWS rows in groups of that many
rows (its columns as wide as the whole table's), each drawn only near the view. Drawn whole, a
list of 3,000 items held the app ~2 s, a table of 5,000 rows ~4 s; streamed, a table was parsed
and drawn whole every frame (5,000 rows: 44 s). The rows are those of the block drawn whole:
every row is compared, styles included, at 40 and 100 columns, shown whole and streamed."""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import pytest

from llmchat.tui.widgets import lazy_layout
from llmchat.tui.widgets import streaming_markdown as sm
from llmchat.tui.widgets.streaming_markdown import StreamingDocument, StreamingMarkdown
from tests.tui.column import Column, drained

WIDTHS = [40, 100]


def ordered_list(count: int, start: int = 7) -> str:
    """Items of several shapes: numbers that widen (9 -> 10 -> 100 -> 1000), wrapping items, a
    nested list, a second paragraph, a code block, a quote, loose (blank lines) and tight runs."""
    out = []
    for n in range(count):
        number = start + n
        pad = " " * len(f"{number}. ")  # (where the item's text begins: what continues it)
        if n % 37 == 5:
            out.append(f"{number}. item {n} with a nested list:\n{pad}- inner {n}\n{pad}- inner *two*\n{pad}  1. deeper\n")
        elif n % 41 == 7:
            out.append(f"{number}. item {n}, loose:\n\n{pad}a second paragraph, long enough to wrap at forty columns for sure\n\n")
        elif n % 53 == 11:
            out.append(f"{number}. item {n} with code:\n\n{pad}```python\n{pad}x = {n}\n{pad}```\n")
        elif n % 59 == 13:
            out.append(f"{number}. > a quote in item {n}\n")
        else:
            out.append(f"{number}. item {n} **bold** and `code` " + "words " * (n % 9) + "\n")
    return "".join(out)


def bullet_list(count: int) -> str:
    out = []
    for n in range(count):
        if n % 23 == 3:
            out.append(f"* item {n}\n  * nested {n}\n    * deeper {n}\n")
        elif n % 29 == 4:
            out.append(f"* item {n}\n\n  more of it\n\n")
        else:
            out.append(f"* item {n} " + "text " * (n % 12) + "\n")
    return "".join(out)


def table(rows: int, late_wide: bool = False) -> str:
    out = ["| Name | Notes | N |\n", "|:-----|:-----:|--:|\n"]
    for n in range(rows):
        note = "a longer note that wraps over lines here " * (n % 3) if n % 7 == 1 else f"note *{n}*"
        out.append(f"| name {n} | {note} | {n * 7} |\n")
    if late_wide:
        out.append("| the last row has by far the widest name cell of all | x | 1 |\n")
    return "".join(out)


def rows_of(widget: StreamingMarkdown) -> List[Tuple[str, List[Any]]]:
    return [(line.text, [(text, style) for text, style, _ in line]) for line in widget.rendered_lines()]


async def drawn(source: str, width: int, stream: bool = False, pieces: Sequence[int] = ()) -> Tuple[List[Tuple[str, List[Any]]], List[str]]:
    """The rows drawn and the units' kinds: shown whole, or streamed (397 characters a frame,
    or cut at `pieces`)."""
    widget = StreamingMarkdown() if stream else StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=(width + 2, 24)) as pilot:
        await pilot.pause()
        if stream:
            cuts = [0, *pieces, len(source)] if pieces else [*range(0, len(source), 397), len(source)]
            for at, end in zip(cuts, cuts[1:]):
                widget.append(source[at:end])
                widget._take_in(force=True)
                widget._lay_out(widget.size.width)
            widget.finish()
            await drained(pilot, widget)
        await pilot.pause()
        return rows_of(widget), [unit.kind for unit in widget.document.units]


async def whole(source: str, width: int) -> List[Tuple[str, List[Any]]]:
    """The rows of every block drawn whole (no list, table or code mode, nothing laid out lazily)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StreamingDocument, "_enter_mode", lambda self, lines, node: False)
        patch.setattr(sm, "TABLE_UNIT_ROWS", 10**9)
        patch.setattr(sm, "LIST_UNIT_ITEMS", 10**9)
        patch.setattr(lazy_layout, "LAZY_CHARS", 10**12)
        lines, kinds = await drawn(source, width)
    assert set(kinds) <= {"block"}, kinds
    return lines


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_a_long_ordered_list_is_drawn_in_runs_with_the_rows_of_the_whole(width, stream):
    source = "Here is the list:\n\n" + ordered_list(1100) + "\nThat was all.\n"
    lines, kinds = await drawn(source, width, stream)
    if not stream:
        assert 1100 // sm.LIST_UNIT_ITEMS <= kinds.count("items") <= 1100 // sm.LIST_UNIT_ITEMS + 2  # (the last item may be a run of its own)
    else:
        assert "items" in kinds
    reference = await whole(source, width)
    assert [text for text, _ in lines] == [text for text, _ in reference]
    assert lines == reference
    texts = "\n".join(text for text, _ in lines)
    assert "   7. item 0" in texts and "1106. item 1099" in texts


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_long_bullet_list_with_nesting_and_loose_items_is_the_same_in_runs(stream):
    source = bullet_list(400) + "\n# After\n"
    lines, kinds = await drawn(source, 60, stream)
    assert kinds.count("items") >= 400 // sm.LIST_UNIT_ITEMS
    assert lines == await whole(source, 60)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_a_long_table_is_drawn_in_row_groups_with_the_rows_of_the_whole(width, stream):
    source = "A table:\n\n" + table(260, late_wide=True) + "\nAfter the table.\n"
    lines, kinds = await drawn(source, width, stream)
    assert kinds.count("rows") >= (1 if stream else -(-261 // sm.TABLE_UNIT_ROWS))
    reference = await whole(source, width)
    assert [text for text, _ in lines] == [text for text, _ in reference]
    assert lines == reference
    texts = [text for text, _ in lines]
    assert sum("name 259" in text for text in texts) == 1
    assert sum(text.lstrip().startswith(("┌", "└")) for text in texts) == 2  # one top, one bottom border


async def test_a_long_table_too_wide_for_a_grid_is_stacked_the_same_in_groups():
    wide = "| " + " | ".join(f"column{n}" for n in range(8)) + " |\n|" + "---|" * 8 + "\n"
    source = wide + "".join("| " + " | ".join(f"cell{r}x{c}" for c in range(8)) + " |\n" for r in range(120))
    lines, kinds = await drawn(source, 40)
    assert kinds.count("rows") >= 120 // sm.TABLE_UNIT_ROWS
    assert lines == await whole(source, 40)
    assert any("column3: cell119x3" in text for text, _ in lines)


async def test_a_table_ended_by_the_answer_and_one_at_the_end_of_a_stream_end_with_its_border():
    for source in (table(120), table(120).rstrip("\n")):  # no line after it; not even its line end
        for stream in (False, True):
            lines, kinds = await drawn(source, 100, stream)
            assert lines == await whole(source, 100)
            assert kinds[-1] == "rows"


async def test_a_streamed_list_is_parsed_once_per_item(monkeypatch):
    """Each frozen run is drawn from the parse that froze it (it was parsed again to be drawn)."""
    parsed: List[int] = []
    real = sm.parse_blocks

    def counting(parser: Any, text: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(len(text))
        return real(parser, text, *args, **kwargs)

    monkeypatch.setattr(sm, "parse_blocks", counting)
    source = "".join(f"- item number {n} with some words\n" for n in range(500)) + "\nThe end.\n"
    await drawn(source, 80, stream=True)
    # Taken in 397 characters at a time: each frame parses the new items (and the live one) once
    # as complete lines and once as the live tail; drawing parses nothing again.
    assert sum(parsed) < 2.6 * len(source)


async def test_a_stored_answer_with_a_long_list_and_table_in_the_middle_draws_only_what_is_near_the_view(monkeypatch):
    """Laid out lazily (>= 32 KB), a long list or table is one section (no safe boundary in it):
    found by the parser's block pass, it is cut into runs and groups, of which only those near
    the view are drawn (the table's column widths are measured once, from all its rows)."""
    from tests.tui.test_huge_answer import demo_text

    source = demo_text(40_000).replace("THE END MARK", "") + "\n" + ordered_list(600, start=1) + "\n" + table(400) + "\n" + demo_text(30_000)
    drawn_items: List[int] = []
    drawn_rows: List[int] = []
    real_list, real_table = sm.render_list, sm.table_part

    def render_list(items: Any, *args: Any, **kwargs: Any) -> Any:
        drawn_items.append(len(items))
        return real_list(items, *args, **kwargs)

    def table_part(headers: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        drawn_rows.append(len(rows))
        return real_table(headers, rows, *args, **kwargs)

    monkeypatch.setattr(sm, "render_list", render_list)
    monkeypatch.setattr(sm, "table_part", table_part)
    widget = StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=(102, 24)) as pilot:
        await pilot.pause()
        kinds = [unit.kind for unit in widget.document.units]
        assert kinds.count("items") == 600 // sm.LIST_UNIT_ITEMS
        assert kinds.count("rows") == -(-400 // sm.TABLE_UNIT_ROWS)
        assert sum(drawn_items) == 0 and sum(drawn_rows) == 0  # (the view is at the top, the end is demo text)
        monkeypatch.setattr(sm, "render_list", real_list)
        monkeypatch.setattr(sm, "table_part", real_table)
        lines = rows_of(widget)
    assert lines == await whole(source, 100)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_items_and_rows_that_use_a_link_defined_after_them_are_drawn_with_it(stream):
    """A run drawn from the parse that froze it is parsed again when a definition it uses comes later."""
    items = "".join(f"- item {n} links [the docs][ref] and [^note]\n" for n in range(400))
    rows = "| a | b |\n|---|---|\n" + "".join(f"| {n} | see [the docs][ref] |\n" for n in range(300))
    source = items + "\n" + rows + "\nThe end.[^note]\n\n[ref]: https://example.com/docs\n\n[^note]: A note.\n"
    # Streamed, the first piece freezes most runs at once (only those at the end are drawn then).
    lines, kinds = await drawn(source, 100, stream, pieces=[len(items) - 30, len(items) + len(rows) - 20])
    assert "items" in kinds and "rows" in kinds
    assert lines == await whole(source, 100)
    assert not any("[the docs]" in text for text, _ in lines)


async def test_a_table_in_row_groups_drawn_again_at_a_new_width_has_the_rows_of_the_whole():
    source = table(200) + "\nAfter.\n"
    widget = StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=(102, 24)) as pilot:
        await pilot.pause()
        await pilot.resize_terminal(42, 24)  # (the app the rows drawn whole are compared with is as wide)
        await pilot.pause()
        await pilot.pause()
        lines = rows_of(widget)
    assert lines == await whole(source, 40)


async def test_a_growing_table_is_frozen_row_by_row():
    """Streamed, a table's complete rows are frozen a few at a time: the live part (parsed and
    drawn again each frame) stays a few rows, never the whole table."""
    source = table(500) + "\nAfter.\n"
    widget = StreamingMarkdown()
    app = Column(widget)
    longest, modes = 0, set()
    async with app.run_test(size=(102, 24)) as pilot:
        await pilot.pause()
        for at in range(0, len(source), 200):
            widget.append(source[at : at + 200])
            widget._take_in(force=True)
            widget._lay_out(widget.size.width)
            longest = max(longest, len(widget.document.tail))
            modes.add(widget.document.mode)
        widget.finish()
        await pilot.pause()
        assert widget.finished
    assert "table" in modes
    assert longest < 3 * sm.TABLE_LIVE_ROWS * len("| name 499 | note *499* | 3493 |\n")


def test_a_run_of_items_is_estimated_a_row_per_line_where_it_does_not_wrap():
    """(Not drawn yet, a run's height is estimated: a long list's scroll bar and Home/End/paging
    through it go by these. Estimated as prose, each run of short items came out ~15% too tall.)"""
    run = sm.Unit("items", source="".join(f"{n}. item {n}\n" for n in range(100, 150)))
    assert run.estimate(60) == (0, 50, 0)
    assert sm.Unit("items", source="- " + "word " * 40 + "\n", final=True).estimate(60) == (0, 4, 1)
