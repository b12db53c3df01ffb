"""A good theme file and a writer, shared by the theme loader's unit tests and the TUI's."""

from __future__ import annotations

from pathlib import Path

REPO_THEMES = Path(__file__).resolve().parents[1] / "themes"

GOOD = """\
# a comment
name = "harbour"
dark = false
primary = "#2B62A6"
background = "#F6F3EA"
panel = "rgb(223, 216, 198)"
text_alpha = 0.9

[variables]
border-blurred = "#C8C0AA"
input-selection-background = "#2B62A6 25%"
block-cursor-text-style = "bold underline"
link-color = "auto 87%"
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path
