"""Reference links and footnotes (issue 9, "Never hide or garble answer content"): an answer is
parsed a block (a lazily laid-out section) at a time, yet `[text][label]`, `[label][]`, `[label]`
and `[^label]` read as in a parse of the whole text, wherever their definitions are: before or
after them, in another block or section, arriving while the answer streams."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, List

from textual.selection import Selection

from llmchat.history import COMPLETE, HistoryStore
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import lazy_layout
from llmchat.tui.widgets.markdown_render import Definitions, make_parser, parse_blocks
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown, Unit
from tests.tui.column import Column, screen_text

WIDTH = 80
TEXT = """# Title

See [the docs][docs] and [another] here, with a note.[^1]

Second paragraph, [Docs][] again.

[docs]: https://example.com/docs
[another]: https://example.org/x

[^1]: The footnote text.
"""
RESOLVED = "See the docs https://example.com/docs and another https://example.org/x"


def lines_of(widget: StreamingMarkdown) -> List[str]:
    return [line.text.rstrip() for line in widget.rendered_lines()]


def links_in(widget: StreamingMarkdown) -> List[str]:
    """The targets of the links drawn (their OSC 8 hyperlinks), in order, each once a run."""
    out: List[str] = []
    for line in widget.rendered_lines():
        for segment in line:
            link = segment.style.link if segment.style is not None else None
            if link and (not out or out[-1] != link):
                out.append(link)
    return out


def streamed(widget: StreamingMarkdown, text: str, step: int = 7) -> None:
    """`text` appended `step` characters at a time, a frame after each."""
    for start in range(0, len(text), step):
        widget.append(text[start : start + step])
        widget._take_in(force=True)
        widget._lay_out(widget.size.width or WIDTH)  # (as a frame: at the width it is laid out at)


def check_resolved(lines: List[str]) -> None:
    joined = " ".join(" ".join(lines).split())  # (as wrapped at any width)
    assert RESOLVED in joined
    assert "here, with a note.[1]" in joined
    assert "Second paragraph, Docs https://example.com/docs again." in joined
    assert "[docs]" not in joined and "[another]" not in joined and "[^1]" not in joined
    # The note is listed once, with its text (not also as an empty entry where it is used).
    assert [line.strip() for line in lines if line.lstrip().startswith("[1]")] == ["[1] The footnote text."]
    assert sum(1 for line in lines if line.strip().startswith("────")) == 1


async def test_shown_whole_definitions_after_their_use_serve_it():
    widget = StreamingMarkdown(TEXT)
    async with Column(widget).run_test(size=(WIDTH, 30)) as pilot:
        await pilot.pause()
        check_resolved(lines_of(widget))
        assert links_in(widget) == ["https://example.com/docs", "https://example.org/x", "https://example.com/docs"]
        assert any(RESOLVED in row for row in screen_text(pilot.app))
        # Copying gives the source; a selection the text as shown.
        assert widget.source == TEXT
        selected = widget.get_selection(Selection(None, None))
        assert selected is not None and RESOLVED in selected[0].replace("\n", " ")


async def test_streamed_reads_as_shown_whole():
    widget, whole = StreamingMarkdown(), StreamingMarkdown(TEXT)
    async with Column(widget).run_test(size=(WIDTH, 30)) as pilot:
        await pilot.app.query_one("#column").mount(whole)
        streamed(widget, TEXT)
        widget.finish()
        await pilot.pause()
        widget._lay_out(WIDTH)
        whole._lay_out(WIDTH)
        check_resolved(lines_of(widget))
        assert lines_of(widget) == lines_of(whole)
        assert any(RESOLVED in row for row in screen_text(pilot.app))


async def test_a_definition_arriving_while_streaming_redraws_only_the_blocks_using_it(monkeypatch, until):
    head = "See [docs] here.\n\nSecond paragraph.\n\n" + "".join(f"Paragraph {n}.\n\n" for n in range(8))
    widget = StreamingMarkdown()
    drawn: List[int] = []
    draw = StreamingMarkdown._draw

    def counting(self: StreamingMarkdown, index: int, keep: bool = True) -> Any:
        drawn.append(index)
        return draw(self, index, keep)

    def rows() -> List[str]:
        return [row.strip() for row in screen_text(pilot.app)]

    async with Column(widget).run_test(size=(WIDTH, 40)) as pilot:
        for start in range(0, len(head), 11):  # its own frames take it in
            widget.append(head[start : start + 11])
            await pilot.pause()
        await until(pilot, lambda: "Paragraph 6." in rows(), what="the head")
        assert widget.document.units[0].source.startswith("See [docs] here.")
        assert "See [docs] here." in rows()
        monkeypatch.setattr(StreamingMarkdown, "_draw", counting)
        widget.append("[docs]: https://example.com/docs\n\nThe end.\n")
        await until(pilot, lambda: "See docs https://example.com/docs here." in rows(), what="the link")
        assert drawn.count(0) == 1  # drawn again once...
        assert not [index for index in drawn if 1 <= index < 9]  # ...and no unit that does not use it (9 on: new)
        assert "Paragraph 7." in rows() and "The end." in rows()
        widget.finish()
        await pilot.pause()
        assert widget.line_text(0).rstrip() == "See docs https://example.com/docs here."


async def test_a_definition_sections_away_in_a_lazily_laid_out_answer():
    filler = "".join(f"Paragraph {n} " + "with some words " * 8 + "\n\n" for n in range(400))
    text = (
        "[top]: https://example.com/top\n\nUse of [far] and a note[^n].\n\n"
        + filler
        + "At the end, [top] again.\n\n[far]: https://example.com/far\n\n[^n]: The note.\n"
    )
    assert len(text) >= lazy_layout.LAZY_CHARS
    widget = StreamingMarkdown(text)
    async with Column(widget).run_test(size=(WIDTH, 30)) as pilot:
        await pilot.pause()
        assert sum(1 for unit in widget.document.units if unit.kind == "section") > 5  # laid out lazily
        lines = lines_of(widget)
        assert "Use of far https://example.com/far and a note[n]." in lines
        assert "At the end, top https://example.com/top again." in lines
        assert [line for line in lines if line.startswith("[n]")] == ["[n] The note."]
        assert not any("[far]" in line or "[top]" in line or "[^n]" in line for line in lines)


async def test_a_reopened_answer_resolves_its_references(settings_for, until):
    with HistoryStore.open() as store:
        writer = store.begin_turn(None, "refs", model="m", api="openai-chat", base_url="http://127.0.0.1:9/v1")
        writer.append(TEXT.rstrip("\n"))  # (a definition on the last line, without a line end)
        writer.finish(COMPLETE, stop_reason="stop")
        cid = writer.conversation_id
    app = ChatApp(replace(settings_for(), conversation_id=cid))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("See the docs https://example.com/docs" in row for row in screen_text(app)), what="the links")
        assert any("[1] The footnote text." in row for row in screen_text(app))
        assert not any("[^1]" in row or "[docs]" in row for row in screen_text(app))


async def test_unknown_labels_and_code_stay_as_written():
    text = (
        "Unknown [nothing][nope], [alone] and [^zz].\n\n"
        "Code `[docs][docs]` and `[^1]`.\n\n"
        "```\n[docs][docs] [^1]\n[code]: https://example.com/code\n```\n\n"
        "Not defined by the code block: [code].\n\n"
        "[docs]: https://example.com/docs\n\n[^1]: A note.\n"
    )
    for whole in (True, False):
        widget = StreamingMarkdown(text if whole else "")
        async with Column(widget).run_test(size=(WIDTH, 30)) as pilot:
            if not whole:
                streamed(widget, text, step=3)
                widget.finish()
            await pilot.pause()
            widget._lay_out(WIDTH)
            lines = lines_of(widget)
            assert "Unknown [nothing][nope], [alone] and [^zz]." in lines
            assert "Code [docs][docs] and [^1]." in lines
            assert "  [docs][docs] [^1]" in lines
            assert "  [code]: https://example.com/code" in lines
            assert "Not defined by the code block: [code]." in lines
            assert links_in(widget) == []


def test_a_definition_in_a_code_block_of_a_section_defines_nothing():
    text = "Intro.\n\n```\n[x]: https://example.com/x\n```\n\nOutside: [y].\n\n[y]: https://example.com/y\n"
    definitions = Definitions()
    lazy_layout.learn_definitions(text, [(0, len(text))], definitions)
    assert list(definitions.links) == ["Y"]
    assert definitions.take_new() == ["Y"]


def test_a_units_parse_uses_the_answers_definitions():
    definitions = Definitions()
    parse_blocks(make_parser(), "[a]: https://example.com/a\n\n[^n]: note\n", definitions, learn=True)
    assert sorted(definitions.take_new()) == ["A", "^n"]
    unit = Unit("block", source="A [a] and [^n].\n", definitions=definitions)
    [node] = parse_blocks(make_parser(), unit.source, definitions)
    assert node.content is not None and node.content.plain == "A a https://example.com/a and [n]."
    [alone] = parse_blocks(make_parser(), unit.source)
    assert alone.content is not None and alone.content.plain == "A [a] and [^n]."


async def test_a_block_drawn_again_taller_moves_what_follows_it(until):
    url = "https://example.com/" + "long/" * 9
    widget = StreamingMarkdown()

    def rows() -> List[str]:
        return [row.strip() for row in screen_text(pilot.app) if row.strip()]

    async with Column(widget).run_test(size=(WIDTH, 30)) as pilot:
        widget.append("See [docs] here.\n\nSecond paragraph.\n\nThird paragraph.\n\n")
        await until(pilot, lambda: "Third paragraph." in rows(), what="the head")
        widget.append(f"[docs]: {url}\n\nThe end.\n")
        await until(pilot, lambda: "The end." in rows() and "See [docs] here." not in rows(), what="the link")
        shown = rows()
        # The link's line wrapped in two: the blocks under it moved down a row, none drawn over.
        assert " ".join(shown[:-3]) == f"See docs {url} here." and len(shown) == 5
        assert shown[-3:] == ["Second paragraph.", "Third paragraph.", "The end."]


async def test_what_the_view_shows_stays_put_when_a_block_above_it_is_drawn_again_taller(until):
    url = "https://example.com/" + "long/" * 9
    widget = StreamingMarkdown()

    def rows() -> List[str]:
        return [row.strip() for row in screen_text(pilot.app)]

    async with Column(widget).run_test(size=(WIDTH, 12)) as pilot:
        widget.append("See [docs] here.\n\n" + "".join(f"Paragraph {n}.\n\n" for n in range(40)))
        await until(pilot, lambda: len(widget.document.units) >= 40, what="the head")
        column = pilot.app.query_one("#column")
        column.scroll_to(y=30, animate=False)
        await until(pilot, lambda: "Paragraph 14." in rows(), what="the scroll")
        before = rows()
        widget.append(f"[docs]: {url}\n\nThe end.\n")
        await until(pilot, lambda: "here." in widget.line_text(1), what="the link")
        await pilot.pause()
        assert rows() == before


async def test_a_definition_in_a_long_backlog_laid_out_lazily_serves_the_blocks_drawn_before(until):
    widget = StreamingMarkdown()

    def rows() -> List[str]:
        return [row.strip() for row in screen_text(pilot.app)]

    async with Column(widget).run_test(size=(WIDTH, 20)) as pilot:
        widget.append("See [docs] here.\n\nSecond paragraph.\n\n")
        await until(pilot, lambda: "See [docs] here." in rows(), what="the head")
        filler = "".join(f"Paragraph {n} " + "with some words " * 8 + "\n\n" for n in range(400))
        widget.append(filler + "[docs]: https://example.com/docs\n")
        widget.finish()  # (a backlog this long is laid out lazily, in sections)
        await until(pilot, lambda: widget.finished, what="the end")
        assert any(unit.kind == "section" for unit in widget.document.units)
        await until(pilot, lambda: "See docs https://example.com/docs here." in rows(), what="the link")
        assert widget.line_text(0).rstrip() == "See docs https://example.com/docs here."
