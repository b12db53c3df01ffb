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


# --- tables and code at any width -------------------------------------------------------------

TABLES = {
    "long cell": (
        "| Name | Description | Value |\n|:-----|:-----------:|------:|\n"
        "| alpha | A rather long description that will need to wrap inside the cell when the view is narrow | 1 |\n"
        "| beta | short | 22222222 |\n"
    ),
    "ten columns": "| "
    + " | ".join(f"c{i}" for i in range(1, 11))
    + " |\n|"
    + "---|" * 10
    + "\n| "
    + " | ".join(["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])
    + " |\n",
    "long words": "| path | note |\n|---|---|\n| /usr/local/share/a-very-long-directory-name/file.txt | ok |\n",
    "small": "| a | b |\n|---|---|\n| 1 | 2 |\n",
}


def source_cells(table: str) -> List[List[str]]:
    rows = [line.strip().strip("|").split("|") for line in table.strip().splitlines()]
    return [[cell.strip() for cell in row] for index, row in enumerate(rows) if index != 1]


def shown_cells(lines: List[str]) -> List[List[str]]:
    """The table's cells as painted, each cell's rows joined: from the grid (rows between
    keylines, cells between `│`), or from the stacked form ("header: text" between rules)."""
    rows: List[List[str]] = []
    if lines[0].lstrip().startswith("┌"):
        current: List[List[str]] = []
        for line in lines:
            text = line.strip()
            if text.startswith(("┌", "├", "└")):
                if current:
                    rows.append([" ".join(part) for part in current])
                current = []
            elif text.startswith("│"):
                fragments = [fragment.strip() for fragment in text.strip("│").split("│")]
                if not current:
                    current = [[] for _ in fragments]
                for index, fragment in enumerate(fragments):
                    if fragment:
                        current[index].append(fragment)
        return rows
    row: List[str] = []
    for line in lines:
        if line.strip().startswith("─"):
            if row:
                rows.append(row)
            row = []
        elif line.strip():
            row.append(line.strip())
    return rows


def squeezed(text: str) -> str:
    return "".join(text.split())


async def painted_lines(source: str, width: int) -> List[str]:
    return [strip.text for strip, _ in await painted_widget_lines(source, width)]


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("width", [40, 60, 80, 120])
async def test_every_table_cell_is_shown_whole_at_every_width(name, width):
    """No cell ends in `…` or is left blank: its text wraps in its column, or, when no grid
    fits without cutting words, the table is shown row by row."""
    lines = [line for line in await painted_lines(TABLES[name], width) if line.strip()]
    assert all(len(line) <= width for line in lines)
    assert not any("…" in line for line in lines)
    header, *body = source_cells(TABLES[name])
    shown = shown_cells(lines)
    if lines[0].lstrip().startswith("┌"):
        assert [[squeezed(cell) for cell in row] for row in shown] == [[squeezed(cell) for cell in row] for row in [header, *body]]
    else:
        # A row's lines, joined: "header: text" for each cell in turn (long text wraps).
        assert [squeezed("".join(row)) for row in shown] == [squeezed("".join(f"{h}: {c}" for h, c in zip(header, row))) for row in body]


async def test_a_small_table_is_as_wide_as_its_text_and_its_columns_are_aligned():
    source = "| left | centre | right |\n|:-----|:------:|------:|\n| a | b | c |\n| longer text | x | 12345 |\n"
    lines = [line for line in await painted_lines(source, 100) if line.strip()]
    assert len(lines[0].strip()) < 60  # not stretched to the view
    rows = [[cell for cell in line.strip().strip("│").split("│")] for line in lines if line.strip().startswith("│")]
    left, centre, right = zip(*rows)
    assert all(cell[1:].startswith(cell.strip()) for cell in left)
    assert all(cell[:-1].endswith(cell.strip()) for cell in right)
    assert all(abs(len(cell) - len(cell.lstrip()) - (len(cell) - len(cell.rstrip()))) <= 1 for cell in centre)


async def test_a_tables_keylines_join_around_rows_of_every_height():
    """The keylines are drawn from one small canvas and repeated per row (a canvas the height
    of the table cost ~0.5 ms a row): rows one and three lines high, aligned columns."""
    source = "| Name | Notes | N |\n|:-----|:-----:|--:|\n| a | short | 1 |\n| bb | a longer note that wraps over two or three lines here | 22 |\n| ccc | x | 333 |\n"
    lines = [line.rstrip() for line in await painted_lines(source, 40) if line.strip()]
    assert lines == [
        "┌──────┬─────────────────────┬─────┐",
        "│ Name │        Notes        │   N │",
        "├──────┼─────────────────────┼─────┤",
        "│ a    │        short        │   1 │",
        "├──────┼─────────────────────┼─────┤",
        "│ bb   │ a longer note that  │  22 │",
        "│      │ wraps over two or   │     │",
        "│      │ three lines here    │     │",
        "├──────┼─────────────────────┼─────┤",
        "│ ccc  │          x          │ 333 │",
        "└──────┴─────────────────────┴─────┘",
    ]


CODE = 'def f():\n    return "a very long string that goes on and on, well past the edge of any narrow view"  # and a comment\n'


@pytest.mark.parametrize("width", [40, 60, 80])
async def test_a_code_line_wider_than_the_view_wraps_with_a_continuation_marker(width):
    from llmchat.tui.widgets.markdown_render import CONTINUED

    lines = await painted_lines(f"```python\n{CODE}```\n", width)
    body = [line for line in lines if line.strip()]
    assert all(len(line) <= width for line in lines)
    assert any(line.lstrip().startswith(CONTINUED.strip()) for line in body)  # marked, not cut
    # The rows, markers and padding taken off, are the code again.
    code_lines: List[str] = []
    for line in body:
        if line.startswith(CONTINUED):
            code_lines[-1] += line[len(CONTINUED) :]  # a full row: nothing to strip
        else:
            code_lines.append(line[2:])
    assert [line.rstrip() for line in code_lines] == CODE.rstrip("\n").split("\n")


async def test_copying_a_wrapped_code_block_copies_the_exact_code(settings_for, submit, settled):
    """The copy comes from the answer's source, not from the wrapped rows on screen."""
    from llmchat.tui.codeblocks import code_blocks

    answer = f"Here:\n\n```python\n{CODE}```\n"
    app = ChatApp(settings_for(text=answer))
    async with app.run_test(size=(40, 15)) as pilot:
        await submit(pilot, "code please")
        await settled(app)
        await pilot.pause()
        assert [block.code for block in code_blocks(app.session.last.answer)] == [CODE.rstrip("\n")]
        app.action_copy_answer()
        assert app.clipboard == answer


# --- links, headings, footnotes, task lists ---------------------------------------------------


async def painted_widget_lines(source: str, width: int) -> List[Any]:
    """`source` in a StreamingMarkdown `width` columns wide: each line as painted, with the
    console that writes it to a terminal."""
    from textual.app import App, ComposeResult

    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield StreamingMarkdown(source)

    app = One()
    async with app.run_test(size=(width, 60)) as pilot:
        await pilot.pause()
        widget = app.query_one(StreamingMarkdown)
        return [(widget.render_line(y), app.console) for y in range(widget.line_count)]


@pytest.mark.parametrize("width", [40, 80])
async def test_a_markdown_link_shows_where_it_goes_and_is_a_hyperlink_llmchat_writes(width):
    url = "https://example.com/docs/guide"
    lines = await painted_widget_lines(f"Read [the guide]({url}) first.", width)
    text = " ".join(strip.text.strip() for strip, _ in lines)
    assert f"the guide {url}" in text  # where it goes, in any terminal
    assert any(url == strip.text.strip() or url in strip.text.split() for strip, _ in lines)  # one unbroken word
    written = "".join(strip.render(console) for strip, console in lines)
    assert f";{url}\x1b\\" in written and "\x1b]8;;\x1b\\" in written  # OSC 8 open and close


async def test_a_file_name_is_text_but_addresses_with_a_scheme_or_www_are_links():
    # linkify took `README.md` and `setup.py` for domains (.md and .py are top-level domains) and
    # showed "README.md http://README.md".
    source = "See README.md and setup.py, then https://example.com/a, www.example.org and me@example.net."
    lines = await painted_widget_lines(source, 100)
    text = " ".join(strip.text.strip() for strip, _ in lines)
    assert "README.md and setup.py," in text and "http://README.md" not in text and "http://setup.py" not in text
    links = {segment.style.link for strip, _ in lines for segment in strip if segment.style is not None and segment.style.link}
    assert links == {"https://example.com/a", "http://www.example.org", "mailto:me@example.net"}


async def test_a_hyperlink_the_model_sends_never_reaches_the_terminal(settings_for, submit, settled):
    evil = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\ and [fine](https://ok.example/)"
    app = ChatApp(settings_for(text=evil))
    async with app.run_test(size=(80, 20)) as pilot:
        await submit(pilot, "links")
        await settled(app)
        await pilot.pause()
        widget = app.session.last.view.markdown
        links = {
            segment.style.link
            for y in range(widget.line_count)
            for segment in widget.render_line(y)
            if segment.style is not None and segment.style.link
        }
        assert links == {"https://ok.example/"}


async def test_headings_are_not_styled_like_links():
    source = "".join(f"{'#' * n} Heading {n}\n\n" for n in range(1, 7)) + "A [link](https://example.com/).\n"
    lines = await painted_widget_lines(source, 60)
    underlined = {
        segment.text.strip()
        for strip, _ in lines
        for segment in strip
        if segment.style is not None and segment.style.underline and segment.text.strip()
    }
    assert "link" in underlined and not any("Heading" in text for text in underlined)


async def test_task_lists_and_footnotes_render():
    source = "- [ ] to do\n- [x] done\n\nA claim[^1].\n\n[^1]: The source, *cited*.\n"
    lines = [strip.text.rstrip() for strip, _ in await painted_widget_lines(source, 60)]
    assert "• ☐ to do" in lines and "• ☑ done" in lines
    assert "[1] The source, cited." in lines


async def test_a_list_items_first_block_starts_on_its_bullets_row():
    """A list item that opens with a quote, a heading or a code block shows it beside its bullet
    (and numbers likewise). Textual kept that block's top margin, which left the bullet alone on
    a row above it: the demo answer's "- > Block quotes, too." did."""
    source = "- > Block quotes, too.\n- ## A heading\n- plain\n\n1. > quoted\n2. ```\n   code\n   ```\n"
    lines = [line.rstrip() for line in await painted_lines(source, 40)]
    assert "• ▌ Block quotes, too." in lines
    assert "• A heading" in lines
    assert "• plain" in lines
    assert " 1. ▌ quoted" in lines  # numbers are right-aligned to the widest
    code = next(index for index, line in enumerate(lines) if line.strip() == "code")
    assert lines[code - 1].strip() == "2."  # beside the code block's top padding row
    assert not any(line.strip() == "•" for line in lines)
