"""Finished code blocks' highlighting is kept on disk (markdown_render.highlight_code): a
conversation reopened draws the code it shows without building a Pygments lexer (~30-50 ms of
its first frame), exactly as Pygments highlights it; a block still streaming is never kept;
what is written holds no code."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.tui.app import HIGHLIGHTS, ChatApp
from llmchat.tui.widgets import markdown_render
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

CODE = 'import asyncio\n\n\nasync def count(stream) -> int:\n    """Count."""\n    total = 0\n    return total'
SECRET = "hunter2_password_value"


class Flags:
    """What highlight_code reads of a Painter."""

    def __init__(self, dark: bool = True, ansi: bool = False) -> None:
        self.dark = dark
        self.ansi = ansi


def painter(dark: bool = True, ansi: bool = False) -> Any:
    return Flags(dark, ansi)


@pytest.fixture(autouse=True)
def nothing_kept() -> Iterator[None]:
    markdown_render.keep_highlights_in(None)
    yield
    markdown_render.keep_highlights_in(None)


def spans(content: Any) -> List[Any]:
    return [(span.start, span.end, span.style) for span in content.spans]


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    return tmp_path / "kept"


def pygments_calls(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    calls: List[str] = []
    real = markdown_render._pygments_highlight

    def counted(code: str, lexer: str, ansi: bool, dark: bool) -> Any:
        calls.append(code)
        return real(code, lexer, ansi, dark)

    monkeypatch.setattr(markdown_render, "_pygments_highlight", counted)
    return calls


@pytest.mark.parametrize("lexer", ["python", "", "no-such-language"])
def test_kept_highlighting_is_pygments_own(kept: Path, monkeypatch: pytest.MonkeyPatch, lexer: str) -> None:
    from textual.widgets.markdown import MarkdownFence

    code = CODE.replace("total = 0", f"total = 0  # {SECRET}") + "\r\n\tx = 1\n"
    markdown_render.keep_highlights_in(kept)
    first = markdown_render.highlight_code(code, lexer, painter(), keep=True)
    assert markdown_render.save_highlights() == 1
    files = list(kept.iterdir())
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600
    assert SECRET not in files[0].read_text() and "asyncio" not in files[0].read_text()  # spans only, no code

    markdown_render.keep_highlights_in(kept)  # as a new run: nothing in memory
    calls = pygments_calls(monkeypatch)
    again = markdown_render.highlight_code(code, lexer, painter(), keep=True)
    assert calls == []  # read from the folder
    expected = MarkdownFence.highlight(code, lexer, dark=True)
    assert again.plain == first.plain == expected.plain
    assert spans(again) == spans(first) == spans(expected)
    # Another theme kind is another highlighting: not taken from the folder.
    markdown_render.highlight_code(code, lexer, painter(dark=False, ansi=True), keep=True)
    assert calls == [code]


@pytest.mark.parametrize("ansi", [False, True])
@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("lexer", ["python", "", "no-such-language"])
def test_highlighting_is_textuals_markdown_fences(ansi: bool, dark: bool, lexer: str) -> None:
    """Drawn without Textual's Markdown widgets (their import is 13-21 ms), the highlighting is
    still exactly what its MarkdownFence makes, in every theme kind."""
    from textual.widgets.markdown import MarkdownFence

    code = CODE + "\r\n\tx = 1\n"
    ours = markdown_render._pygments_highlight(code, lexer, ansi, dark)
    theirs = MarkdownFence.highlight(code, lexer, ansi=ansi, dark=dark)
    assert ours.plain == theirs.plain
    assert [(span.start, span.end, str(span.style)) for span in ours.spans] == [(span.start, span.end, str(span.style)) for span in theirs.spans]


def test_highlighting_a_block_imports_no_markdown_widgets() -> None:
    script = f"""
import sys
from llmchat.tui.widgets import markdown_render
content = markdown_render._pygments_highlight({CODE!r}, "python", False, True)
assert content.spans
print("textual.widgets._markdown" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_kept_highlighting_needs_no_pygments(kept: Path) -> None:
    """A new process draws a kept block without importing Pygments or Textual's Markdown."""
    markdown_render.keep_highlights_in(kept)
    markdown_render.highlight_code(CODE, "python", painter(), keep=True)
    markdown_render.save_highlights()
    script = f"""
import sys
from pathlib import Path
from llmchat.tui.widgets import markdown_render
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

class Flags:
    dark, ansi = True, False

markdown_render.keep_highlights_in(Path({str(kept)!r}))
content = markdown_render.highlight_code({CODE!r}, "python", Flags(), keep=True)
assert content.plain == {CODE!r}, content.plain
print(len(content.spans), sorted(name for name in sys.modules if name.startswith(("pygments", "textual.widgets._markdown"))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    count, modules = done.stdout.split(" ", 1)
    assert int(count) > 5 and modules.strip() == "[]"


def test_a_block_still_streaming_is_not_kept(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An open fence (its closing line not come yet) changes every frame: drawn, never kept."""
    markdown_render.keep_highlights_in(kept)
    parser = markdown_render.make_parser()
    open_fence = markdown_render.parse_blocks(parser, "```python\nx = 1\ny = 2\n")[0]
    closed_fence = markdown_render.parse_blocks(parser, "```python\nx = 1\ny = 2\n```\n")[0]
    indented = markdown_render.parse_blocks(parser, "text\n\n    x = 1\n")[-1]
    assert not markdown_render.fence_closed(open_fence)
    assert markdown_render.fence_closed(closed_fence)
    assert not markdown_render.fence_closed(indented)  # (no closing line to tell)
    # Streamed text mostly ends inside a line: the code's last line is partial.
    for partial in ("```python\nx = 1", "```python\nx = 1\n\ny = ", "```\n", "```"):
        assert not markdown_render.fence_closed(markdown_render.parse_blocks(parser, partial)[0]), partial
    for closed in ("```\n```", "```python\nx = 1\n```", "~~~\n\nx\n~~~~\nafter"):
        assert markdown_render.fence_closed(markdown_render.parse_blocks(parser, closed)[0]), closed
    markdown_render.highlight_code(open_fence.code, "python", painter(), keep=markdown_render.fence_closed(open_fence))
    assert markdown_render.save_highlights() == 0
    markdown_render.highlight_code(closed_fence.code, "python", painter(), keep=markdown_render.fence_closed(closed_fence))
    assert markdown_render.save_highlights() == 1


def test_the_kept_files_are_bounded(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown_render, "KEPT_FILES", 3)
    markdown_render.keep_highlights_in(kept)
    for n in range(5):
        markdown_render.highlight_code(f"x = {n}", "python", painter(), keep=True)
        markdown_render.save_highlights()
    assert len(list(kept.iterdir())) == 3
    # Something unreadable in the folder is a miss, highlighted again.
    for path in kept.iterdir():
        path.write_text("not json")
    markdown_render.keep_highlights_in(kept)
    assert markdown_render.highlight_code("x = 4", "python", painter(), keep=True).plain == "x = 4"


def test_what_waits_to_be_kept_is_bounded_too(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long session highlights more blocks than the folder keeps: only the newest wait for the save."""
    monkeypatch.setattr(markdown_render, "KEPT_FILES", 3)
    markdown_render.keep_highlights_in(kept)
    for n in range(5):
        markdown_render.highlight_code(f"x = {n}", "python", painter(), keep=True)
    assert markdown_render.save_highlights() == 3
    markdown_render.keep_highlights_in(kept)
    assert markdown_render.highlight_code("x = 4", "python", painter(), keep=True).plain == "x = 4"
    assert markdown_render.save_highlights() == 0  # (read from the folder: nothing new to write)


def seed(answers: List[str], base_url: str) -> int:
    with HistoryStore.open() as store:
        cid = None
        for n, answer in enumerate(answers):
            writer = store.begin_turn(cid, f"question {n}", model="m", api="openai-chat", base_url=base_url)
            cid = writer.conversation_id
            writer.append(answer)
            writer.finish(COMPLETE, stop_reason="stop")
    assert cid is not None
    return cid


async def test_a_reopened_conversation_draws_its_code_from_what_was_kept(settings_for: Any, until: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = f"Here:\n\n```python\n{CODE}\n```\n\nThat is all."
    settings = settings_for()
    cid = seed([answer], settings.base_url)
    calls = pygments_calls(monkeypatch)
    screens: List[Any] = []
    for _ in range(2):
        app = ChatApp(replace(settings, conversation_id=cid))
        async with app.run_test(size=(80, 30)) as pilot:
            await until(pilot, lambda: "count" in app.export_screenshot() and "That" in app.export_screenshot(), what="the answer drawn")
            shown = app.transcript.query_one(StreamingMarkdown)
            screens.append([[(segment.text, str(segment.style)) for segment in shown.render_line(y)] for y in range(shown.size.height)])
    folder = default_path().parent / HIGHLIGHTS
    assert len(list(folder.iterdir())) == 1
    assert calls == [CODE]  # the first open only
    assert screens[0] == screens[1]
    code_line = next(line for line in screens[1] if "count" in "".join(text for text, _ in line))
    assert len({style for _, style in code_line}) >= 3  # drawn highlighted
