"""StreamingMarkdown: what it shows is what Textual's own Markdown widget shows, however the
text arrives; finished parts are frozen, so the live part stays small; the app's answers use it.

Renders are compared cell by cell: each cell's character, colours and text attributes.
"""

from __future__ import annotations

import gc
import random
import re
from pathlib import Path
from typing import Any, List

import pytest
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.selection import Selection
from textual.strip import Strip
from textual.widgets import Markdown

from llmchat.tui.app import ChatApp
from llmchat.tui.session import CANCELLED
from llmchat.tui.widgets import AssistantMessage
from llmchat.tui.widgets.streaming_markdown import (
    BIG_CODE_LINES,
    CODE_UNIT_LINES,
    DRAWN,
    MAX_GROW_STEP,
    MIN_FRAME,
    StreamingDocument,
    StreamingMarkdown,
    TextQueue,
    Unit,
    _changed_lines,
)
from tests.tui.column import Follow, screen_text

DOCS = Path(__file__).parent / "markdown_docs"
WIDTH = 70


def cells(strip: Any) -> List[Any]:
    out = []
    for segment in strip:
        style = segment.style
        key = None
        if style is not None:
            key = (style.color, style.bgcolor, bool(style.bold), bool(style.italic), bool(style.underline), bool(style.strike), bool(style.dim))
        out.extend((character, key) for character in segment.text)
    return out


def text_of(lines: List[Any]) -> List[str]:
    return [line.text for line in lines]


def streaming_shapes() -> str:
    """Everything that is frozen in parts while it grows, and what follows each."""
    numbered = "".join(f"{i}. item {i} with `code` and *emphasis*\n" for i in range(1, 14))
    bullets = "".join(f"- bullet {i}\n" + ("  - nested\n" if i % 4 == 0 else "") for i in range(1, 10))
    code = "".join(f'x{i} = """a string\nthat spans lines {i}"""\n' if i % 3 == 0 else f"def f{i}(): return {i}  # c\n" for i in range(14))
    return (
        "# Shapes\n\n" + numbered + "\nA paragraph after the list.\n\n" + bullets + "* another marker\n\n"
        "```python\n" + code + "```\n\nText after the code.\n\n"
        "~~~\nunclosed " + "\nline" * 12 + "\n"
    )


def documents() -> dict:
    docs = {path.stem: path.read_text() for path in sorted(DOCS.glob("*.md"))}
    docs["shapes"] = streaming_shapes()
    return docs


class Pair(App[None]):
    """Two widgets side by side in height: the one under test and a reference."""

    def __init__(self, first: Any, second: Any) -> None:
        super().__init__()
        self.first = first
        self.second = second

    def compose(self) -> ComposeResult:
        yield self.first
        yield self.second


async def screen_cells(app: App, widget: Any) -> List[List[Any]]:
    region = widget.region
    strips = app.screen._compositor.render_strips()
    return [cells(strip.crop(region.x, region.right)) for strip in strips[region.y : region.bottom]]


async def render_like_textual(source: str, width: int, theme: str = "textual-dark") -> tuple:
    """The same source through Textual's Markdown and through StreamingMarkdown, as painted."""
    results = []
    for make in (lambda: Markdown(source), lambda: StreamingMarkdown(source)):

        class One(App[None]):
            # Ours never underlines a heading (it would read as a link): the reference neither.
            CSS = "\n".join(f"MarkdownH{n} {{ text-style: $markdown-h{n}-text-style not underline; }}" for n in range(1, 7))

            def compose(self) -> ComposeResult:
                yield make()

        app = One()
        async with app.run_test(size=(width, 400)) as pilot:
            app.theme = theme
            await pilot.pause()
            await pilot.pause()
            widget = app.screen.children[0]
            results.append(await screen_cells(app, widget))
    return tuple(results)


def without_last_margin(rows: List[List[Any]]) -> List[List[Any]]:
    """Textual's rows without the last block's bottom margin (one empty row), which ours
    leaves out so that nothing but the transcript's padding sits under an answer's last line."""
    assert rows and all(character == " " for character, _ in rows[-1])
    return rows[:-1]


def without_tables(source: str) -> str:
    """The source without what ours deliberately shows differently from Textual's Markdown
    (test_answer_view.py tests those): tables (columns as wide as their text, wrapped cells,
    alignment), code lines too long for a 40-column view (wrapped, not cropped), links (the
    URL shown after the text) and task-list boxes."""
    out = []
    in_code = False
    for line in source.splitlines(keepends=True):
        bare = line.lstrip("> ")
        if bare.startswith(("```", "~~~")):
            in_code = not in_code
        elif bare.startswith("|") and not in_code or in_code and len(line) > 30:
            continue
        if not in_code:
            line = re.sub(r"(?<!!)\[([^\]]*)\]\([^)]*\)", r"*\1*", line)
            line = re.sub(r"^(\s*(?:[-*+]|\d+\.) )\[[ xX]\] ", r"\1", line)
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize("name", sorted(documents()))
@pytest.mark.parametrize("width", [40, 100])
async def test_painted_exactly_as_textuals_markdown(name, width):
    textual, ours = await render_like_textual(without_tables(documents()[name]), width)
    textual = without_last_margin(textual)
    assert len(ours) == len(textual)
    for row, (theirs, mine) in enumerate(zip(textual, ours)):
        assert mine == theirs, f"row {row}: {''.join(c for c, _ in theirs)!r} vs {''.join(c for c, _ in mine)!r}"


@pytest.mark.parametrize("theme", ["textual-light", "nord"])
async def test_painted_exactly_as_textuals_markdown_in_other_themes(theme):
    textual, ours = await render_like_textual(without_tables(documents()["basics"] + documents()["tables"]), 80, theme)
    assert ours == without_last_margin(textual)


def one_shot(probe: StreamingMarkdown, source: str, width: int) -> List[Any]:
    """`source` rendered at once by a mounted StreamingMarkdown (reused: a new document)."""
    probe.document = StreamingDocument()
    probe._parts, probe._pending, probe._finishing = TextQueue(), TextQueue(), False
    probe.append(source)
    probe.finish()
    probe._lay_out(width)
    return probe.rendered_lines()


def feed_in_chunks(widget: StreamingMarkdown, source: str, seed: int, width: int, check_prefix: Any = None) -> int:
    """Append `source` in random pieces, taking text in (a frame) at random points."""
    rnd = random.Random(seed)
    position = frames = 0
    while position < len(source):
        size = rnd.choice([1, 1, 2, 3, 5, 8, 13, 21, 60])
        widget.append(source[position : position + size])
        position += size
        if rnd.random() < 0.5:
            widget._take_in(force=True)
            widget._lay_out(width)
            frames += 1
            if check_prefix is not None:
                check_prefix(source[:position])
    return frames


@pytest.mark.parametrize("name", sorted(documents()))
async def test_any_chunking_ends_as_a_one_shot_render(name):
    """Random chunkings and frames: every intermediate view reads as the one-shot render of
    the text so far; the final lines are the one-shot render's, styles and all."""
    source = documents()[name]
    for seed in range(3):
        streamed = StreamingMarkdown(code_chunk=3)
        reference = StreamingMarkdown()
        app = Pair(streamed, reference)
        async with app.run_test(size=(WIDTH + 4, 60)):
            width = WIDTH

            def same_text_as_one_shot(prefix: str) -> None:
                # While it grows, the empty rows at the end (a code block's padding) wait.
                shown = "\n".join(text_of(streamed.rendered_lines())).rstrip()
                whole = "\n".join(text_of(one_shot(reference, prefix, width))).rstrip()
                assert shown == whole, f"after {prefix[-40:]!r}"

            frames = feed_in_chunks(streamed, source, seed, width, same_text_as_one_shot)
            streamed.finish()
            streamed._lay_out(width)
            assert frames >= 8
            assert streamed.source == source
            ours = [cells(line) for line in streamed.rendered_lines()]
            theirs = [cells(line) for line in one_shot(reference, source, width)]
            assert ours == theirs
            assert all(line.cell_length == width for line in streamed.rendered_lines())


async def test_line_ends_normalised_across_pieces():
    streamed, reference = StreamingMarkdown(), StreamingMarkdown()
    app = Pair(streamed, reference)
    async with app.run_test(size=(60, 30)):
        for piece in ["one\r", "\ntwo\r", "three\r\n\r", "\nfour"]:
            streamed.append(piece)
            streamed._take_in(force=True)
            streamed._lay_out(56)
        streamed.finish()
        streamed._lay_out(56)
        reference.append("one\ntwo\nthree\n\nfour")
        reference.finish()
        reference._lay_out(56)
        assert text_of(streamed.rendered_lines()) == text_of(reference.rendered_lines())
        assert streamed.source == "one\r\ntwo\rthree\r\n\r\nfour"  # what arrived, unchanged


async def stream_and_watch(source: str, pieces: int, **widget_options: Any) -> dict:
    """Feed `source` in `pieces` roughly equal parts with a frame after each; record the
    largest live tail and the frozen units' kinds along the way."""
    widget = StreamingMarkdown(**widget_options)
    app = Pair(widget, StreamingMarkdown())
    seen = {"tail": 0, "kinds": set(), "modes": set(), "widgets": set()}
    async with app.run_test(size=(84, 40)):
        step = max(1, len(source) // pieces)
        for start in range(0, len(source), step):
            widget.append(source[start : start + step])
            widget._take_in(force=True)
            widget._lay_out(80)
            document = widget.document
            seen["tail"] = max(seen["tail"], len(document.tail))
            seen["kinds"].update(unit.kind for unit in document.units)
            seen["modes"].add(document.mode)
            seen["widgets"].add(len(list(widget.walk_children())))
        widget.finish()
        widget._lay_out(80)
        seen["final_units"] = [unit.kind for unit in widget.document.units]
        seen["lines"] = text_of(widget.rendered_lines())
    return seen


async def test_a_growing_list_is_frozen_item_by_item():
    items = "".join(f"- item number {i} with some words\n" for i in range(1, 501))
    seen = await stream_and_watch(items, pieces=250)
    assert "list" in seen["modes"]
    assert "items" in seen["kinds"]
    assert seen["tail"] < 400  # the live part: the last item or two, never the whole list
    assert seen["widgets"] == {0}  # one widget, however long
    assert seen["lines"][0].startswith("• item number 1 ") and seen["lines"][499].startswith("• item number 500 ")


@pytest.mark.parametrize("lines", [300, 2000])
async def test_a_growing_code_block_is_frozen_in_chunks_then_highlighted_whole_or_in_parts(lines):
    """Closed, a block is one block again, highlighted as a whole; a long one (more than
    BIG_CODE_LINES lines) is parts of CODE_UNIT_LINES lines (tests/tui/test_long_code.py)."""
    code = "```python\n" + "".join(f"value = compute({i})  # step {i}\n" for i in range(lines)) + "```\n"
    seen = await stream_and_watch(code, pieces=400)
    assert "code" in seen["modes"]
    assert "code" in seen["kinds"]
    assert seen["tail"] < 3000  # at most two chunks of lines live, not all the lines
    assert seen["widgets"] == {0}
    assert seen["final_units"] == (["block"] if lines <= BIG_CODE_LINES else ["code"] * (lines // CODE_UNIT_LINES))
    assert seen["lines"][2].strip() == "value = compute(0)  # step 0"  # after margin and padding
    assert seen["lines"][lines + 1].strip() == f"value = compute({lines - 1})  # step {lines - 1}"
    assert seen["lines"][lines + 2].strip() == ""  # the block's padding under it


async def test_ordered_numbers_widen_when_the_list_reaches_ten():
    items = "".join(f"{i}. item\n" for i in range(1, 13))
    streamed, reference = StreamingMarkdown(), StreamingMarkdown(items)
    app = Pair(streamed, reference)
    async with app.run_test(size=(44, 40)):
        for line in items.splitlines(keepends=True):
            streamed.append(line)
            streamed._take_in(force=True)
            streamed._lay_out(40)
        assert text_of(streamed.rendered_lines())[0].startswith("  1. item")  # already wide
        streamed.finish()
        streamed._lay_out(40)
        reference._lay_out(40)
        assert text_of(streamed.rendered_lines()) == text_of(reference.rendered_lines())


def screen_rows(app: App) -> List[str]:
    """The screen's text, without the scrollbar's column."""
    return [row[:-2] for row in screen_text(app)]


def slices_of(monkeypatch: Any, chars: int) -> None:
    """Frames take text in `chars` characters at a time, whatever it costs."""
    import llmchat.tui.widgets.streaming_markdown as module

    monkeypatch.setattr(module, "TAKE_CHUNK", chars)
    monkeypatch.setattr(module, "MIN_TAKE", chars)
    monkeypatch.setattr(module, "MAX_TAKE", chars)


async def frame(pilot: Any, widget: StreamingMarkdown, text: str) -> None:
    """Append `text`, take it in as a frame does, and let the screen lay out and paint."""
    widget.append(text)
    widget._take_in(force=True)
    widget._show()
    await pilot.pause()


@pytest.mark.parametrize("height", [5, 8, 15, 24])
async def test_the_newest_line_is_the_last_row_while_an_answer_grows(height):
    """Room for growth is kept, but above the text and out of view: the newest line is always
    the bottom row of a view that follows the answer, at any height; the room goes at the end
    without moving the text."""
    widget = StreamingMarkdown(grow_step=4)
    app = Follow(widget)
    async with app.run_test(size=(40, height)) as pilot:
        kept_room = False
        for index in range(3 * height):
            await frame(pilot, widget, f"line {index}\n\n")
            rows = screen_rows(app)
            assert rows[-1].strip() == f"line {index}", rows
            kept_room = kept_room or widget.height_shown > widget.line_count
        assert kept_room  # the speed the room buys is still had
        widget.finish()
        await pilot.pause()
        assert widget.height_shown == widget.line_count
        assert screen_rows(app)[-1].strip() == f"line {3 * height - 1}"


async def test_a_short_answer_keeps_no_room():
    widget = StreamingMarkdown(grow_step=4)
    async with Follow(widget).run_test(size=(40, 20)) as pilot:
        for index in range(5):
            await frame(pilot, widget, f"line {index}\n\n")
            assert widget.height_shown == widget.line_count == 2 * index + 1


async def room_after(pilot, widget, clock, count: int, seconds: float) -> int:
    """Rows of room once `count` paragraphs came in `seconds`."""
    clock.now += seconds
    await frame(pilot, widget, "a line\n\n" * count)
    return widget.height_shown - widget.line_count


async def test_room_grows_in_larger_steps_when_lines_arrive_fast(manual_clock):
    clock = manual_clock
    widget = StreamingMarkdown(grow_step=4, clock=clock)
    app = Follow(widget)
    async with app.run_test(size=(60, 6)) as pilot:
        assert await room_after(pilot, widget, clock, 4, 1.0) == 3  # fills the view: room for four more lines
        assert await room_after(pilot, widget, clock, 2, 1.0) == 3  # four lines a second: still steps of four
        assert await room_after(pilot, widget, clock, 20, 0.5) == MAX_GROW_STEP - 1  # 80 lines a second: the largest step
        widget.finish()
        await pilot.pause()
        assert widget.height_shown == widget.line_count


async def test_an_answer_at_200_tokens_a_second_grows_by_the_largest_step(manual_clock):
    """~16 lines a second (200 tok/s at 120 columns): each growth is a layout of the screen, so
    the room grows by the largest step (about once a second, not twice by smaller ones)."""
    clock = manual_clock
    widget = StreamingMarkdown(grow_step=4, clock=clock)
    app = Follow(widget)
    async with app.run_test(size=(60, 6)) as pilot:
        assert await room_after(pilot, widget, clock, 4, 1.0) == 3
        assert await room_after(pilot, widget, clock, 8, 1.0) == MAX_GROW_STEP - 1


async def test_at_200_tokens_a_second_frames_come_at_most_every_min_frame(manual_clock):
    """A token every 5 ms for a second, a frame asked for after each: text is taken in at most
    every MIN_FRAME (1/32 s: at 1/40 s the frames and their paints took the app over the
    bench's 30% of a core in tmux), never per token."""
    clock = manual_clock
    widget = StreamingMarkdown(clock=clock)
    async with Follow(widget).run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        start = widget.frames
        for index in range(200):
            clock.now += 0.005
            widget.append(f"w{index} ")
            widget._frame()
        frames = widget.frames - start
        assert 20 <= frames <= 1 / MIN_FRAME + 1
        assert frames <= 33, frames


async def test_text_a_reader_scrolled_back_to_stays_put_while_the_answer_grows():
    widget = StreamingMarkdown(grow_step=4)
    app = Follow(widget)
    async with app.run_test(size=(40, 8)) as pilot:
        for index in range(20):
            await frame(pilot, widget, f"line {index}\n\n")
        column = app.query_one("#column")
        column.scroll_to(y=column.max_scroll_y - 6, animate=False, immediate=True)
        await pilot.pause()
        before = screen_rows(app)
        for index in range(20, 30):
            await frame(pilot, widget, f"line {index}\n\n")
            assert screen_rows(app) == before
        column.scroll_end(animate=False, immediate=True)  # back at the end: following again
        await pilot.pause()
        await frame(pilot, widget, "line 30\n\n")
        assert screen_rows(app)[-1].strip() == "line 30"


async def test_finishing_gives_back_the_room_kept_for_growing():
    """The room reserved while the answer grew goes when it finishes, and the screen's layout
    asks again (a height Textual kept from before the finish made the transcript's scrollbar
    come and go on every frame)."""
    widget = StreamingMarkdown(grow_step=8)
    app = Follow(widget)
    async with app.run_test(size=(60, 6)) as pilot:
        widget.append("one line\n\n" * 6)
        while widget.frames == 0:
            await pilot.pause(0.01)
        await pilot.pause()
        assert widget.size.height == widget.line_count + 7 == 18
        widget.finish()
        await pilot.pause()
        assert widget.size.height == widget.line_count == 11


def test_changed_lines_are_the_span_that_differs():
    a, b, c = (Strip([Segment(t)]) for t in "abc")
    assert _changed_lines([a, b], [a, b]) is None
    assert _changed_lines([a, b], [a, c]) == (1, 2)
    assert _changed_lines([a, b], [a, b, c]) == (2, 3)
    assert _changed_lines([a, b, c], [a]) == (1, 3)
    assert _changed_lines([a, b, c], [c, b, a]) == (0, 3)
    assert _changed_lines([], [a]) == (0, 1)


async def test_new_width_and_theme_lay_out_again():
    source = documents()["basics"]
    widget = StreamingMarkdown(source)
    app = Pair(widget, StreamingMarkdown())
    async with app.run_test(size=(90, 80)) as pilot:
        await pilot.pause()
        wide = text_of(widget.rendered_lines())
        await pilot.resize_terminal(60, 80)
        await pilot.pause()
        assert widget._width == widget.size.width < 86
        assert text_of(widget.rendered_lines()) != wide
        dark = [cells(line) for line in widget.rendered_lines()]
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.pause()
        light = [cells(line) for line in widget.rendered_lines()]
        assert light != dark
        fresh = StreamingMarkdown(source)  # drawn for the first time in the light theme
        await app.mount(fresh, before=0)
        await pilot.pause()
        assert fresh._width == widget._width
        assert [cells(line) for line in fresh.rendered_lines()] == [cells(line) for line in widget.rendered_lines()]


async def test_lines_out_of_view_are_let_go_and_drawn_again(monkeypatch):
    monkeypatch.setattr(DRAWN, "budget", 50)
    DRAWN.clear()
    source = "".join(f"Paragraph {i} with a few words in it.\n\n" for i in range(300))
    widget = StreamingMarkdown(source)
    app = Pair(widget, StreamingMarkdown())
    async with app.run_test(size=(60, 40)) as pilot:
        await pilot.pause()
        assert widget.line_count == 599  # no margin under the last paragraph
        assert DRAWN.lines <= 50
        assert widget.line_text(0).startswith("Paragraph 0 ")  # drawn again from its source
        assert widget.line_text(598).startswith("Paragraph 299 ")
    DRAWN.clear()


async def test_selection_gives_the_text_as_shown():
    widget = StreamingMarkdown("Some **bold** text.\n\n- one\n- two\n\n```\ncode here\n```\n")
    app = Pair(widget, StreamingMarkdown())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        everything = widget.get_selection(Selection(None, None))
        assert everything == ("Some bold text.\n\n• one\n• two\n\n\n  code here", "\n")
        part = widget.get_selection(Selection(Offset(5, 0), Offset(5, 3)))
        assert part == ("bold text.\n\n• one\n• two", "\n")


async def test_a_link_click_opens_it():
    widget = StreamingMarkdown("[the docs](https://example.com/docs)")
    app = Pair(widget, StreamingMarkdown())
    opened = []
    async with app.run_test(size=(60, 10)) as pilot:
        app.open_url = lambda url, **kw: opened.append(url)
        await pilot.pause()
        await pilot.click(widget, offset=(3, 0))
        await pilot.pause()
    assert opened == ["https://example.com/docs"]


# --- in the app -----------------------------------------------------------------------------


async def test_cancel_keeps_what_arrived_on_screen(settings_for, srv, submit, tap, until, server_saw, settled):
    app = ChatApp(settings_for(tokens=400, tps=40))
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "long one")
        turn = app.session.last
        await until(pilot, lambda: len(turn.parts) >= 25, what="25 tokens")
        await tap(pilot, "escape")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == CANCELLED and answer.note_text == "cancelled"
        widget = answer.markdown
        assert widget.finished
        assert widget.source == turn.answer
        shown = " ".join(widget.line_text(y) for y in range(widget.line_count))
        last_word = re.findall(r"[A-Za-z0-9]+", turn.answer)[-1]
        assert last_word and last_word in shown  # the last thing that arrived is on screen
        reference = StreamingMarkdown()
        await answer.mount(reference)
        assert text_of(widget.rendered_lines()) == text_of(one_shot(reference, turn.answer, widget._width))


async def test_a_long_answer_is_one_widget_and_lands_whole(settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=3000))
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "long")
        await settled(app)
        [answer] = app.query(AssistantMessage)
        widget = answer.markdown
        await until(pilot, lambda: widget.finished and widget.line_count > 300, what="the whole answer laid out")
        assert list(widget.walk_children()) == []
        assert widget.shown_chars == len(widget.source)
        assert app.transcript.scroll_y == app.transcript.max_scroll_y  # followed to the end


async def test_headless_apps_leave_the_garbage_collector_alone(settings_for, submit, settled):
    before = gc.get_freeze_count()
    app = ChatApp(settings_for(tokens=20))
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause(0.7)  # past the delay after which a terminal app collects
    assert gc.get_freeze_count() == before


def fresh_rows(app: App, widget: StreamingMarkdown) -> List[Strip]:
    """The screen as painted with nothing kept: every line of the widget drawn again."""
    widget._strips.clear()
    widget.refresh()
    return list(app.screen._compositor.render_strips())


async def test_lines_the_text_moves_past_are_not_drawn_again_and_paint_right(recorded):
    """A new line moves the text up a row in the room kept above it: every row on screen is
    painted again, but the lines are the same and are not drawn again (only new or changed
    ones are). What is painted is what drawing every line afresh paints, cell for cell, as
    paragraphs grow, lists and code blocks freeze in parts and numbers widen."""
    import llmchat.tui.widgets.streaming_markdown as module

    drawn = recorded(module, "_offsets", 1)  # the lines drawn
    widget = StreamingMarkdown(grow_step=4, code_chunk=4)
    app = Follow(widget)
    source = streaming_shapes() + "".join(f"Paragraph {i} grows word by word here.\n\n" for i in range(30))
    async with app.run_test(size=(50, 16)) as pilot:
        at = 0
        while at < len(source):
            piece = source[at : at + 23]
            at += len(piece)
            await frame(pilot, widget, piece)
            painted = list(app.screen._compositor.render_strips())
            await pilot.pause()
            assert fresh_rows(app, widget) == painted, at
        while widget._above < 2:  # until the next paragraph lands in the room
            await frame(pilot, widget, "more\n\n")
        room, tail_start = widget._above, widget._tail_start
        drawn.clear()
        await frame(pilot, widget, "the end\n\n")
        assert widget._above < room
        # Only the lines of the tail (frozen now) and the new one; not every row on screen.
        assert drawn and min(drawn) >= tail_start, (drawn, tail_start)
        assert screen_rows(app)[-1].strip() == "the end"


async def test_a_frame_taking_text_in_slices_draws_the_tail_once(monkeypatch):
    """However many slices a frame takes in, the live tail is drawn once, at its end (drawn
    after each slice, it cost most of a fast answer's frames)."""
    import llmchat.tui.widgets.streaming_markdown as module

    slices_of(monkeypatch, 64)
    monkeypatch.setattr(module, "TAKE_WORK", 10.0)
    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(50, 16)) as pilot:
        await frame(pilot, widget, "# Start\n\n" + "".join(f"Line {i}\n\n" for i in range(10)))  # more than the view
        await pilot.pause()
        tails: List[int] = []
        tail_boxes = widget.document.tail_boxes

        def counting(*args: Any) -> Any:
            tails.append(1)
            return tail_boxes(*args)

        widget.document.tail_boxes = counting  # type: ignore[method-assign]
        widget.append("".join(f"Paragraph {i} with some words.\n\n" for i in range(40)))
        widget._next_frame = 0.0
        widget._frame()
        assert widget.backlog == 0 and widget.frames > 1
        assert len(tails) == 1
        await pilot.pause()
        assert screen_rows(app)[-1].strip() == "Paragraph 39 with some words."


async def test_a_backlogs_quiet_frames_leave_the_status_bar_alone(monkeypatch):
    """`on_frame` (the status bar's figures) runs only before a frame that paints: called on a
    backlog's quiet frames too, the bar changed between the answer's paints, a paint of its own."""
    import llmchat.tui.widgets.streaming_markdown as module

    slices_of(monkeypatch, 64)
    monkeypatch.setattr(module, "TAKE_WORK", 0.0)  # one slice a frame: a backlog
    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(50, 16)) as pilot:
        await frame(pilot, widget, "# Start\n\n" + "".join(f"Line {i}\n\n" for i in range(10)))  # more than the view
        await pilot.pause()
        calls: List[int] = []
        widget.on_frame = lambda: calls.append(widget.frames)
        widget.append("".join(f"Paragraph {i} with some words.\n\n" for i in range(40)))
        widget._painted_at = module.time.perf_counter()  # just painted: the next frames are quiet
        widget._next_frame = 0.0
        widget._due()
        assert widget.backlog > 0 and calls == []
        widget._painted_at = -1e9  # a paint is due
        widget._next_frame = 0.0
        widget._due()
        assert len(calls) == 1
        await pilot.pause()


def count_drawn_rows(widget: StreamingMarkdown) -> List[int]:
    """The rows `widget.render_line` draws from now on, in order."""
    drawn: List[int] = []
    render_line = widget.render_line

    def counting(y: int) -> Any:
        drawn.append(y)
        return render_line(y)

    widget.render_line = counting  # type: ignore[method-assign]
    return drawn


async def test_rows_the_text_moves_through_are_not_drawn_again_and_paint_right():
    """When a new line moves the text up a row within the room kept for growth, every row on
    screen changes but no line does: Textual's cached rows move with the text and only the
    changed lines are drawn again. What is painted is what a repaint of everything paints, at
    every frame, growing lines, new paragraphs and the room's steps included."""
    widget = StreamingMarkdown(grow_step=4)
    app = Follow(widget)
    drawn = count_drawn_rows(widget)
    async with app.run_test(size=(40, 16)) as pilot:
        for index in range(40):
            words = " ".join(f"w{index}x{n}" for n in range(index % 7 + 1))
            await frame(pilot, widget, words + ("\n\n" if index % 3 == 2 else " "))
            painted = screen_rows(app)
            widget.refresh()  # a repaint of everything, for reference
            await pilot.pause()
            assert screen_rows(app) == painted, index
        room = widget._above
        assert room > 1  # the next line lands in the room: the text moves up, the height stays
        drawn.clear()
        await frame(pilot, widget, "\n\nthe end\n\n")
        assert widget._above < room and widget.size.height == widget.height_shown
        # The paragraph it ends (frozen now) and the new one, not the whole view (16 rows).
        assert len(drawn) <= 8, drawn
        assert screen_rows(app)[-1].strip() == "the end"


async def test_a_quiet_frame_before_a_waiting_paint_paints_no_row_out_of_place():
    """A frame marks the line it changed for painting; before the screen paints it, a backlog's
    quiet frame freezes that paragraph and starts two more (the text moves up in the room kept
    above it). The paint that follows shows the text as it is then, every row in its place:
    painting only the marked row, the rest from before, showed the text a row off there until
    the next frame that paints (the row cache moved with the text made that worse)."""
    widget = StreamingMarkdown(grow_step=12)
    app = Follow(widget)
    async with app.run_test(size=(40, 12)) as pilot:
        for index in range(30):
            await frame(pilot, widget, f"line {index}\n\n")
        await frame(pilot, widget, "last")
        while widget._above < 5:  # room above the text, out of view, for what comes
            await frame(pilot, widget, "\n\nlast")
        widget.append(" word")
        widget._take_in(force=True)
        widget._show()  # the last line changed: only its row waits to be painted
        widget.append("\n\nnew one\n\nnew two")
        widget._take_in(force=True)
        widget._lay_out_quietly(widget.size.width, with_tail=False)  # a backlog's frame: no paint of its own
        await pilot.pause()
        painted = list(app.screen._compositor.render_strips())
        fresh = fresh_rows(app, widget)
        assert painted == fresh
        assert screen_rows(app)[-1].strip() == "new two"


async def test_a_sibling_mounted_after_a_growing_answer_does_not_draw_its_lines_again():
    """A widget mounted after the answer (as the figures line is shown under it) takes
    `:last-child` from it: no style of the answer depends on its place among its siblings, so
    its lines are kept, not let go and drawn again (a long code block highlighted again)."""
    from textual.widgets import Static

    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(60, 20)) as pilot:
        await frame(pilot, widget, "```python\n" + "".join(f"x{i} = {i}\n" for i in range(40)) + "```\n\nafter\n\n")
        await pilot.pause()
        token, painter = widget._token, widget._painter
        assert "last-child" in widget.pseudo_classes
        column = app.query_one("#column")
        await column.mount(Static("figures"))
        column.add_class("-done")  # the answer's state changed: its styles are worked out again
        await pilot.pause()
        await frame(pilot, widget, "more")
        assert "last-child" not in widget.pseudo_classes and widget._fingerprint is not None
        assert widget._token is token and widget._painter is painter


async def test_the_box_around_a_short_growing_answer_keeps_its_painted_rows():
    """While an answer is shorter than the view, each new line is a new height for it and its
    box (a layout): the box's rows (its border and background) are the same at any height and
    stay painted, not drawn again each time. What is painted is what a repaint of everything
    paints."""
    message = AssistantMessage()
    app = Follow(message)
    async with app.run_test(size=(40, 30)) as pilot:
        widget = message.markdown
        await frame(pilot, widget, "first\n\n")
        drawn: List[int] = []
        cache = message._styles_cache
        render_line = cache.render_line

        def counting(styles: Any, y: int, *args: Any) -> Any:
            drawn.append(y)
            return render_line(styles, y, *args)

        cache.render_line = counting  # type: ignore[method-assign]
        for index in range(8):
            await frame(pilot, widget, f"line {index}\n\n")
            painted = list(app.screen._compositor.render_strips())
            assert [row.strip() for row in screen_rows(app) if row.strip()][-1].endswith(f" line {index}")
            assert fresh_rows(app, widget) == painted, index
            message.refresh()
            await pilot.pause()
            assert list(app.screen._compositor.render_strips()) == painted, index
        # Grown 16 rows: the new ones only (and those the reference repaints drew), not every row each time.
        assert message.size.height == 17
        drawn.clear()
        await frame(pilot, widget, "one more\n\n")
        assert len(drawn) <= 2, drawn


async def test_a_backlog_that_outgrows_the_view_is_laid_out_before_more_is_taken_in(monkeypatch):
    """Text arriving faster than frames take it in, while the answer is shorter than the view:
    the frame stops taking it in once the answer outgrows its container, and paints, so the
    screen lays it out (a scrollbar comes, the answer is narrower) before more is drawn at the
    old width; the rest follows at the new width."""
    import llmchat.tui.widgets.streaming_markdown as module

    slices_of(monkeypatch, 64)
    monkeypatch.setattr(module, "TAKE_WORK", 10.0)
    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(50, 16)) as pilot:
        await frame(pilot, widget, "# Start\n\n")
        await pilot.pause()
        wide = widget._width
        widget.append("".join(f"Paragraph {i} with some words.\n\n" for i in range(40)))
        widget._next_frame = 0.0
        widget._frame()
        assert widget.backlog > 0  # stopped once the answer no longer fits
        assert widget.line_count < 16 + 8 and widget._painted_height == widget.height_shown > 14
        for _ in range(200):
            await pilot.pause(0.01)
            if not widget.backlog:
                break
        await pilot.pause()
        assert widget._width < wide  # the scrollbar came
        assert screen_rows(app)[-1].strip() == "Paragraph 39 with some words."


@pytest.mark.parametrize("scrolled", [False, True])
async def test_a_new_width_draws_each_unit_once(monkeypatch, scrolled):
    """A new width (a scrollbar comes, the terminal is resized) draws each unit of the answer
    once. Finding where the view is asks the screen for regions, which Textual arranges again
    when its map is stale (as after any scroll): from inside the layout, that laid the answer
    out a second time, every unit drawn twice."""
    drawn: List[Any] = []
    render = Unit.render

    def counted(self: Unit, width: int, painter: Any) -> Any:
        drawn.append((id(self), width))
        return render(self, width, painter)

    monkeypatch.setattr(Unit, "render", counted)
    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(60, 12)) as pilot:
        await frame(pilot, widget, "".join(f"Paragraph {i} with some words to wrap.\n\n" for i in range(30)))
        widget.finish()
        await pilot.pause()
        if scrolled:
            app.query_one("#column").scroll_to(y=20, animate=False)
            await pilot.pause()
        drawn.clear()
        await pilot.resize_terminal(30, 12)
        await pilot.pause()
        assert widget._width < 30
        assert len(drawn) == len(widget.document.units) == len(set(drawn)), drawn


async def test_finish_takes_what_waits_in_at_once_not_a_frame_period_later(manual_clock, until, monkeypatch):
    """Once the answer is finished no more text comes: what waits (more than finish() takes in
    at once) is taken in from the next tick, not when the next frame would have been due (the
    clock here never gets there)."""
    import llmchat.tui.widgets.streaming_markdown as module

    monkeypatch.setattr(module, "FINISH_WORK", module.TAKE_WORK)  # at once: a frame's worth
    widget = StreamingMarkdown(clock=manual_clock)
    app = Follow(widget)
    async with app.run_test(size=(60, 20)) as pilot:
        await frame(pilot, widget, "first\n\n")
        widget.append("".join(f"- item {i} with some words\n" for i in range(300)))
        assert widget.backlog > 2048 and widget._next_frame > manual_clock()
        widget.finish()
        await until(pilot, lambda: widget.finished, what="the answer finished")
        assert widget.backlog == 0 and "item 299 with some words" in widget.line_text(widget.line_count - 1), widget.line_text(widget.line_count - 1)


async def test_a_layout_that_grows_a_short_answer_is_painted_once(until):
    """While an answer is shorter than the view each new line is a new height (a layout, which
    paints the answer and its box). Nothing asks for a second paint of them a tick later: Textual
    sets their virtual size in that layout, which asked for a repaint (the same rows again,
    ~25 paints an answer at 200 tok/s). (The wait after the paint is for one that must not come.)"""
    message = AssistantMessage()
    app = Follow(message)
    async with app.run_test(size=(40, 30)) as pilot:
        widget = message.markdown
        await frame(pilot, widget, "first\n\n")
        await pilot.pause(0.1)
        paints: List[float] = []
        display = app._display

        def counted(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None:
                paints.append(widget.height_shown)

        app._display = counted  # type: ignore[method-assign]
        height = widget.height_shown
        await frame(pilot, widget, "second\n\n")
        assert widget.height_shown > height
        await until(pilot, lambda: paints, what="the paint")
        await pilot.pause(0.1)
        assert paints == [widget.height_shown], paints


async def test_a_frames_slices_are_sized_by_what_the_last_ones_cost():
    """A frame takes text in slices of about TAKE_WORK seconds' worth at the cost per character
    of the last slices: many characters when they were cheap, few when they were dear (a fixed
    size made a fast code block's frames five times TAKE_WORK, and a larger one the flood's)."""
    import llmchat.tui.widgets.streaming_markdown as module

    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(60, 16)) as pilot:
        await frame(pilot, widget, "# Start\n\n" + "".join(f"Line {i}\n\n" for i in range(20)))
        await pilot.pause()
        limits: List[Any] = []
        take_in = widget._take_in

        def recording(force: bool = False, limit: Any = None) -> int:
            limits.append(limit)
            return take_in(force, limit)

        widget._take_in = recording  # type: ignore[method-assign]
        paragraphs = "".join(f"Paragraph {i} with some words.\n\n" for i in range(2000))
        widget.append(paragraphs)
        widget._slice_cost = (module.TAKE_WORK, 10_000.0)  # cheap: 10,000 characters a frame
        widget._next_frame = 0.0
        widget._frame()
        assert limits[0] == 10_000
        limits.clear()
        widget._slice_cost = (module.TAKE_WORK, 3_000.0)  # dear
        widget._next_frame = 0.0
        widget._frame()
        assert limits[0] == 3_000
        # What a slice cost is learnt, the last slices weighing most.
        widget._slice_cost = (module.TAKE_WORK, 3_000.0)
        for _ in range(8):
            widget._learn_cost(module.TAKE_WORK / 2, 3_000)  # 6,000 characters in TAKE_WORK
        assert 5_900 <= widget._slice(module.TAKE_WORK) <= 6_000
        assert widget._slice(1.0) == module.MAX_TAKE and widget._slice(0.0) == module.MIN_TAKE
        widget._pending.skip()


@pytest.mark.parametrize("wrapped", [False, True])
async def test_a_backlogs_quiet_slices_draw_only_the_code_chunks_that_are_shown(monkeypatch, wrapped):
    """A long code block arriving faster than frames take it in: the chunks frozen by a
    backlog's quiet slices are not drawn (their heights come from their lines) unless painted:
    most scroll past unseen between two paints, and the whole block is drawn again when it
    closes. What is painted is what drawing every line afresh paints, the newest line last, lines
    that wrap (their height guessed wrong) included."""
    import llmchat.tui.widgets.streaming_markdown as module

    slices_of(monkeypatch, 1000)
    monkeypatch.setattr(module, "TAKE_WORK", 0.0)  # one slice a frame
    drawn: List[str] = []
    render = Unit.render

    def counted(self: Unit, width: int, painter: Any) -> Any:
        drawn.append(self.kind)
        return render(self, width, painter)

    monkeypatch.setattr(Unit, "render", counted)
    widget = StreamingMarkdown()
    app = Follow(widget)
    async with app.run_test(size=(60, 16)) as pilot:
        await frame(pilot, widget, "# Start\n\n" + "".join(f"Line {i}\n\n" for i in range(20)))
        await pilot.pause()
        comment = "a line of code" + (" that is too long for the view, so it wraps" * 2 if wrapped else "")
        widget.append("```python\n" + "".join(f"value_{i} = {i}  # {comment}\n" for i in range(1200)))
        quiet = 0
        while widget.backlog:
            # Nine quiet frames (painted just now), then one that paints.
            paints = quiet % 10 == 9
            widget._painted_at = -1e9 if paints else module.time.perf_counter()
            widget._next_frame = 0.0
            widget._frame()
            quiet += 1
            if paints:
                await pilot.pause()  # the screen paints it
        chunks = sum(1 for unit in widget.document.units if unit.kind == "code")
        assert widget.frames > 30 and chunks > 50
        assert drawn.count("code") < chunks / 2, (drawn.count("code"), chunks)
        widget.append("last = 0\n")
        widget._painted_at = -1e9  # a paint is due
        widget._next_frame = 0.0
        widget._frame()
        await pilot.pause()
        await pilot.pause()
        assert screen_rows(app)[-1].strip() == "last = 0"
        painted_rows = list(app.screen._compositor.render_strips())
        assert fresh_rows(app, widget) == painted_rows


async def test_finish_takes_in_at_once_what_costs_little_and_the_rest_in_frames():
    """finish() with text waiting: at once when taking it in costs about FINISH_WORK or less
    at the slices' cost per character (a fast answer's last KB in slices took frames, paints and
    layouts between them, 0.2-0.4 s); more, in frames first."""
    import llmchat.tui.widgets.streaming_markdown as module

    rest = "".join(f"- item {i} with some words\n" for i in range(300))  # ~8 KB
    for cost, at_once in ((module.FINISH_WORK / 20_000, True), (module.FINISH_WORK / 4_000, False)):
        widget = StreamingMarkdown()
        app = Follow(widget)
        async with app.run_test(size=(60, 20)) as pilot:
            await frame(pilot, widget, "first\n\n")
            widget._next_frame = float("inf")  # no frame comes by itself
            widget.append(rest)
            widget._slice_cost = (cost, 1.0)
            widget.finish()
            assert widget.finished is at_once and (widget.backlog == 0) is at_once
            for _ in range(100):
                if widget.finished:
                    break
                widget._next_frame = 0.0
                widget._frame()
                await pilot.pause()
            await pilot.pause()
            assert "item 299 with some words" in widget.line_text(widget.line_count - 1)


async def test_a_frame_that_takes_all_that_waits_paints_only_the_lines_that_changed():
    """A frame at an ordinary pace takes in all that waits and paints: only the lines that
    changed are drawn again, not every row on screen (a quiet layout of its slice before the
    paint left no record of what changed, and the paint was of every row, every frame)."""
    widget = StreamingMarkdown(grow_step=4)
    app = Follow(widget)
    drawn = count_drawn_rows(widget)
    async with app.run_test(size=(40, 16)) as pilot:
        await frame(pilot, widget, "".join(f"Paragraph {i} with words.\n\n" for i in range(30)) + "the last")
        await pilot.pause()
        for word in ("one", "two", "three"):
            drawn.clear()
            widget.append(f" {word}")
            widget._next_frame = 0.0
            widget._frame()
            assert widget.backlog == 0
            await pilot.pause()
            assert screen_rows(app)[-1].strip().endswith(word)
            assert 1 <= len(drawn) <= 2, drawn
