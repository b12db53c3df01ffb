"""A long code block (a model printing a whole file) is drawn in parts: a finished block of more
than BIG_CODE_LINES lines stays in units of CODE_UNIT_LINES lines, each highlighted on its own
and drawn only near the view. Drawn whole, a block of 20,000 lines held the app ~30 s when it
ended and again when its conversation was opened. The rows are those of the block drawn whole."""

from __future__ import annotations

from typing import List

import pytest

from llmchat.tui.widgets import lazy_layout
from llmchat.tui.widgets import streaming_markdown as sm
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from tests.tui.column import Column, drained
from tests.tui.test_huge_answer import demo_text

SIZE = (70, 24)


def code(lines: int, name: str = "x") -> str:
    return "".join(f"{name}_{n} = {n} * 2  # line {n} of a long file, with a comment wider than the view at seventy columns\n" for n in range(lines))


def rows(widget: StreamingMarkdown) -> List[str]:
    return [line.text.rstrip() for line in widget.rendered_lines()]


async def drawn_rows(source: str, stream: bool = False) -> List[str]:
    widget = StreamingMarkdown() if stream else StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if stream:
            for at in range(0, len(source), 997):
                widget.append(source[at : at + 997])
            widget.finish()
            await drained(pilot, widget)
        await pilot.pause()
        kinds = [unit.kind for unit in widget.document.units]
        return rows(widget), kinds


async def whole_rows(source: str, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    with monkeypatch.context() as patch:
        patch.setattr(sm, "BIG_CODE_LINES", 10**9)
        patch.setattr(lazy_layout, "LAZY_CHARS", 10**12)
        lines, kinds = await drawn_rows(source)
    assert "code" not in kinds
    return lines


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_long_code_block_is_drawn_in_parts_with_the_rows_of_the_whole(monkeypatch, stream):
    source = "Here is the file:\n\n```python\n" + code(1000) + "```\n\nThat was all of it.\n"
    lines, kinds = await drawn_rows(source, stream=stream)
    assert kinds.count("code") == 1000 // sm.CODE_UNIT_LINES
    assert lines == await whole_rows(source, monkeypatch)
    assert "x_999 = 999 * 2" in "\n".join(lines)


async def test_a_long_code_block_left_open_is_drawn_in_parts_too(monkeypatch):
    source = "Cut off in the middle of the file:\n\n~~~\n" + code(700, "y")
    lines, kinds = await drawn_rows(source)
    assert kinds.count("code") == 7
    assert lines == await whole_rows(source, monkeypatch)


async def test_a_stored_answer_with_a_long_code_block_in_the_middle_draws_only_what_is_near_the_view(monkeypatch):
    """Laid out lazily (>= 32 KB), the block is in a section of its own: cut into parts, of
    which only those near the view are highlighted and drawn."""
    source = demo_text(40_000).replace("THE END MARK", "") + "```python title=big.py\n" + code(3000) + "```\n\n" + demo_text(40_000)
    highlighted = []
    real = sm.highlight_code
    monkeypatch.setattr(sm, "highlight_code", lambda text, *args, **kwargs: highlighted.append(text) or real(text, *args, **kwargs))
    widget = StreamingMarkdown(source)
    app = Column(widget)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        parts = [unit for unit in widget.document.units if unit.kind == "code"]
        assert len(parts) == 3000 // sm.CODE_UNIT_LINES
        assert {unit.language for unit in parts} == {"python title=big.py"}  # (the info string, as the block drawn whole is highlighted)
        assert sum(len(text) for text in highlighted) < 2 * len(
            code(sm.CODE_UNIT_LINES)
        )  # (at most a part or two: the top's demo answer holds one block)
        lines = rows(widget)
    monkeypatch.setattr(sm, "highlight_code", real)
    assert lines == await whole_rows(source, monkeypatch)


def test_long_fences_finds_the_long_blocks_that_open_in_column_0():
    text = (
        "Intro.\n\n"
        "```python  title=a.py\n" + code(5) + "```\n\n"  # short
        "~~~~ text\n" + code(12, "t") + "~~~~\n\n"  # long, tildes
        "   ```\n" + code(12, "i") + "   ```\n\n"  # indented: inside whatever is above it, left as it is
        "<pre>\n```\n" + code(12, "h") + "```\n</pre>\n\n"  # in an HTML block
        "```js\n" + code(12, "u")  # long, never closed
    )
    found = list(lazy_layout.long_fences(text, 0, len(text), 10))
    assert [(info.strip(), text[start:end].split("\n")[0]) for _, start, end, _, info in found] == [
        ("text", "t_0 = 0 * 2  # line 0 of a long file, with a comment wider than the view at seventy columns"),
        ("js", "u_0 = 0 * 2  # line 0 of a long file, with a comment wider than the view at seventy columns"),
    ]
    (opened, start, end, closed, _), (opened2, start2, end2, closed2, _) = found
    assert text[opened:start] == "~~~~ text\n" and text[start:end] == code(12, "t") and text[end:closed] == "~~~~\n"
    assert text[start2:end2] == code(12, "u") and end2 == closed2 == len(text)
