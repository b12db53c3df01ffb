"""The README's Tools section names every key of the TUI's tool question (screens/approve.py)."""

from __future__ import annotations

import re
from pathlib import Path

from llmchat.tui.screens.approve import ApproveTool

README = Path(__file__).resolve().parents[2] / "README.md"


def _tools_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Tools (MCP)")
    return text[start : text.index("\n## ", start)]


def test_the_readme_names_the_keys_of_the_tool_question() -> None:
    section = _tools_section()
    names = {"enter": "Enter", "escape": "Esc"}
    for binding in ApproveTool.BINDINGS:
        if binding.show is False:  # scrolling: the usual keys
            continue
        for key in binding.key.split(","):
            shown = names.get(key, f"`{key}`")
            assert shown in section, f"the README's Tools section does not name {shown} ({binding.description})"
    assert re.search(r"Ctrl\+C cancels", section)
