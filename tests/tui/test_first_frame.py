"""A conversation opened at start-up draws its first frame roughly and the next one finely
(markdown_render.draw_roughly): no linkify and no new Pygments lexer in the frame the user
waits for, then every answer drawn roughly is drawn again with its links and colours, the
same lines as if it had been drawn finely at once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, List, Tuple

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import markdown_render
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from tests.tui.test_markdown_render_highlights import pygments_calls, seed

CODE = "import asyncio\n\n\nasync def count(stream) -> int:\n    total = 0\n    return total"
LONG_LINK = "Read https://example.com/" + "a-long-path/" * 6 + "end.html before you go on with the rest of it."
ANSWER = f"See www.example.com for more.\n\n```python\n{CODE}\n```\n\n{LONG_LINK}\n\nThat is all."


def lines(widget: StreamingMarkdown) -> List[List[Tuple[str, str]]]:
    return [[(segment.text, str(segment.style)) for segment in widget.render_line(y)] for y in range(widget.size.height)]


def styles_on(rows: List[List[Tuple[str, str]]], text: str) -> set:
    row = next(row for row in rows if text in "".join(piece for piece, _ in row))
    return {style for piece, style in row if piece.strip()}


async def open_and_settle(app: ChatApp, pilot: Any, until: Any) -> List[List[Tuple[str, str]]]:
    await until(pilot, lambda: "That" in app.export_screenshot() and not markdown_render.drawing_roughly(), what="the answer drawn finely")
    await pilot.pause()
    return lines(app.transcript.query_one(StreamingMarkdown))


async def test_the_first_frame_is_drawn_roughly_then_finely(settings_for: Any, until: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for()
    cid = seed([ANSWER], settings.base_url)
    monkeypatch.setattr(markdown_render, "_lexers_ready", set())  # as in a new process
    compiled = pygments_calls(monkeypatch)  # the code Pygments highlighted
    first: List[Any] = []
    real_finely = ChatApp._draw_finely

    def finely(self: ChatApp) -> None:
        widget = self.transcript.query_one(StreamingMarkdown)
        first.append((markdown_render.drawing_roughly(), widget.drawn_roughly, list(compiled), lines(widget)))
        real_finely(self)

    monkeypatch.setattr(ChatApp, "_draw_finely", finely)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=(80, 30)) as pilot:
        shown = await open_and_settle(app, pilot, until)
    [(rough, drawn_roughly, compiled_before, rough_lines)] = first
    assert rough and drawn_roughly
    assert compiled_before == []  # no lexer built for the first frame
    assert styles_on(rough_lines, "async def count") == styles_on(rough_lines, "total = 0")  # plain
    assert compiled == [CODE]  # once, after it
    assert len(styles_on(shown, "async def count")) >= 3  # highlighted now
    assert styles_on(shown, "www.example.com") != styles_on(rough_lines, "www.example.com")  # a link now

    # Drawn finely at once (rough drawing turned off): the same lines.
    monkeypatch.setattr("llmchat.tui.app.draw_roughly", lambda: None)
    first.clear()
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=(80, 30)) as pilot:
        assert await open_and_settle(app, pilot, until) == shown
    assert first and not first[0][1]  # (nothing was drawn roughly)


async def test_rough_drawing_ends_with_the_app(settings_for: Any, until: Any) -> None:
    """An app that quits before its first frame's end leaves no rough drawing behind (the next
    app in the process, a test's, would draw without links)."""
    settings = settings_for()
    cid = seed([ANSWER], settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=(80, 30)) as pilot:
        await until(pilot, lambda: app.session is not None, what="the app to start")
        app.exit()
    assert not markdown_render.drawing_roughly()
    [paragraph] = markdown_render.parse_blocks(markdown_render.make_parser(), "see www.example.com")
    assert paragraph.content is not None and any("link" in str(span.style) for span in paragraph.content.spans)


def test_a_rough_parse_has_no_links_and_counts() -> None:
    parser = markdown_render.make_parser()
    before = markdown_render.rough_draws()
    markdown_render.draw_roughly()
    try:
        [rough] = markdown_render.parse_blocks(parser, "go to www.example.com now")
        plain = markdown_render.highlight_code("x = 1", "a-lexer-never-used", Flags())
    finally:
        markdown_render.draw_finely()
    [fine] = markdown_render.parse_blocks(parser, "go to www.example.com now")
    assert markdown_render.rough_draws() == before + 2
    assert rough.content is not None and fine.content is not None
    assert rough.content.plain == fine.content.plain
    assert not any("link" in str(span.style) for span in rough.content.spans)
    assert any("link" in str(span.style) for span in fine.content.spans)
    assert plain.plain == "x = 1" and all(span.style == "$text" for span in plain.spans)


class Flags:
    dark = True
    ansi = False


@pytest.mark.parametrize(
    "text",
    [
        "See README.md, setup.py and example.com (bare names: never links).",
        "A **bold** example.org, `code.py` and a [link](/docs/x.html) here.",
        "| name | file |\n|---|---|\n| a | main.rs |\n",
        "Some text. More text.\n\n- item.one\n- item two",
    ],
)
def test_text_with_nothing_to_link_is_parsed_as_with_linkify(text: str) -> None:
    """Parsed without linkify (nothing in it could be a link shown: see `_LINK_HINT`), the
    blocks are those linkify would give."""
    parser = markdown_render.make_parser()
    shown = markdown_render.parse_blocks(parser, text)
    assert not parser.options["linkify"]
    parser.options["linkify"] = True
    linked = markdown_render.build_nodes(parser.parse(text, {}))

    def contents(nodes: List[Any]) -> List[Any]:
        out = []
        for node in nodes:
            if node.content is not None:
                out.append((node.content.plain, [(span.start, span.end, str(span.style)) for span in node.content.spans]))
            out.extend(contents(node.children))
        return out

    assert contents(shown) == contents(linked)


async def test_a_long_list_drawn_roughly_gets_its_links(settings_for: Any, until: Any) -> None:
    """A long list is kept in runs whose parse is kept for their first drawing: a parse made for
    the rough first frame (no links) is not, so the runs in view end with their links."""
    settings = settings_for()
    items = "\n".join(f"- item {n} at www.example{n}.com" for n in range(120))
    cid = seed([f"The list:\n\n{items}\n\nThat is all."], settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=(80, 30)) as pilot:
        shown = await open_and_settle(app, pilot, until)
    for n in (0, 60, 119):  # (every run: the widget's rows, on screen or not)
        row = next(row for row in shown if f"www.example{n}.com" in "".join(piece for piece, _ in row))
        assert any(f"www.example{n}.com" in piece and "link" in style for piece, style in row), n


async def test_the_app_imports_ahead_what_its_first_keys_need(settings_for: Any, until: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Typing opens a connection, which imported anyio's asyncio backend on the event loop
    (20-60 ms under the first keys): the app imports IMPORT_AHEAD in a thread once it is up;
    a name that cannot be imported is passed over."""
    import sys

    (tmp_path / "llmchat_probe_imported_ahead.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("llmchat.tui.app.IMPORT_AHEAD", ("no_such_module_llmchat", "llmchat_probe_imported_ahead"))
    monkeypatch.delitem(sys.modules, "llmchat_probe_imported_ahead", raising=False)
    app = ChatApp(settings_for())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "llmchat_probe_imported_ahead" in sys.modules, what="the import")
    monkeypatch.delitem(sys.modules, "llmchat_probe_imported_ahead")
