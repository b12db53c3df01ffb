"""Every llmchat theme is readable: each character of text on the screen -- answers, the
placeholder, key hints, the status bar, the conversation list -- meets WCAG 2 contrast 4.5:1
against the colour behind it (AA), and the `contrast` theme meets 7:1 (AAA).

The colours are the ones Textual really renders from the theme files: the app runs headless
with the theme, and each screen is composed by Textual exactly as for a terminal (its
compositor's full update, as `App.export_screenshot` does), so every derived colour (`$text-muted`
as `auto 60%`, a placeholder's alpha, the footer's key colour) is blended by Textual itself. Only
the contrast formula is ours: WCAG 2's relative luminance, transcribed below.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
from rich.console import Console

from llmchat.tui.app import ChatApp

REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"
THEMES = sorted(path.stem for path in REPO_THEMES.glob("*.toml"))
BAR = {name: 7.0 if name == "contrast" else 4.5 for name in THEMES}
SIZE = (100, 30)

ANSWER = """\
## A heading

Some text with `inline code`, **bold**, *italic* and a [link](http://example.com).

```python
def f(x):
    return x + 1  # a comment
```

- a list item
> a quote
"""


def relative_luminance(rgb: Tuple[int, int, int]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Tuple[int, int, int], b: Tuple[int, int, int]) -> float:
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def is_text(char: str) -> bool:
    """Box drawing and block elements are borders, scrollbars and bars, not text."""
    return not char.isspace() and not 0x2500 <= ord(char) <= 0x259F


def low_contrast(app: ChatApp, bar: float) -> List[str]:
    """Every run of text of the top screen below `bar`, with its colours and ratio.

    A modal screen shows the screen below it dimmed, on purpose: only the cells of the top
    screen's own widgets are text to read."""
    composed = app.screen._compositor.render_update(full=True)  # what export_screenshot prints
    console = Console(width=SIZE[0], height=SIZE[1], force_terminal=True, color_system="truecolor", file=None)
    regions = [child.region for child in app.screen.children if child.display]
    found = []
    for y, line in enumerate(console.render_lines(composed, console.options, pad=False)):
        x = 0
        for segment in line:
            start, x = x, x + segment.cell_length
            if not any(region.contains(start, y) for region in regions):
                continue
            text = "".join(char for char in segment.text if is_text(char))
            style = segment.style
            if not text or style is None or style.color is None or style.bgcolor is None:
                continue
            fg, bg = style.color.get_truecolor(), style.bgcolor.get_truecolor()
            if style.reverse:
                fg, bg = bg, fg
            ratio = contrast_ratio(tuple(fg), tuple(bg))
            if ratio < bar:
                found.append(f"line {y}: {segment.text.strip()[:40]!r} {fg.hex} on {bg.hex}: {ratio:.2f}:1")
    return found


@pytest.fixture
def themed(settings_for):
    def make(theme: str, **options) -> ChatApp:
        return ChatApp(settings_for(**options), status_interval=None, theme=theme, themes_from=[REPO_THEMES])

    return make


def test_the_shipped_themes_are_the_ones_checked():
    assert THEMES == ["contrast", "dusk", "ember", "paper"]


@pytest.mark.parametrize("theme", THEMES)
async def test_every_text_on_the_start_screen_is_readable(themed, theme):
    """The welcome note, the prompt's placeholder (and the cursor on it), the status bar and the
    footer's key hints."""
    app = themed(theme)
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.cursor_blink = False  # the cursor, on the placeholder's first letter, is checked too
        await pilot.pause()
        assert "Enter sends" in app.prompt.placeholder  # the placeholder is on screen
        problems = low_contrast(app, BAR[theme])
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("theme", THEMES)
async def test_every_text_of_a_finished_answer_is_readable(themed, ask, theme):
    """The question, the answer's Markdown (heading, code, quote, link), its figures and notes."""
    app = themed(theme, text=ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "How do I add one?")
        problems = low_contrast(app, BAR[theme])
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("theme", THEMES)
async def test_every_text_of_the_conversation_list_is_readable(themed, ask, theme):
    app = themed(theme, text="An answer.")
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "A stored question")
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.screen is not app.get_default_screen()
        problems = low_contrast(app, BAR[theme])
        assert not problems, "\n".join(problems)
