"""Snapshots of llmchat's own themes on a finished answer with a heading, a list, inline code and a
code block: deterministic figures (a fake clock, no status timer) and no cursor blink."""

from __future__ import annotations

from pathlib import Path

from llmchat.tui.app import ChatApp

SIZE = (100, 30)
REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"

ANSWER = """\
## Reading a file

Use `pathlib`; it closes the file for you:

```python
from pathlib import Path

text = Path("notes.txt").read_text(encoding="utf-8")
print(len(text.splitlines()), "lines")
```

- **Large files**: iterate with `open()` instead.
- *Binary data*: use `read_bytes()`.
"""


def themed_app(settings, clock, theme: str) -> ChatApp:
    return ChatApp(settings, clock=clock, status_interval=None, theme=theme, themes_from=[REPO_THEMES])


QUESTION = "How do I read a text file?"


def test_paper_a_light_theme(snap_compare, settings_for, step_clock, ask):
    app = themed_app(settings_for(text=ANSWER), step_clock, "paper")
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: ask(pilot, QUESTION))


def test_contrast_a_high_contrast_theme(snap_compare, settings_for, step_clock, ask):
    app = themed_app(settings_for(text=ANSWER), step_clock, "contrast")
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: ask(pilot, QUESTION))
