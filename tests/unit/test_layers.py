"""The one-way flow, checked on the source: the streaming client imports no face, no UI
library and no provider; a provider imports no face or UI library and no other provider."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "llmchat"


def imported_modules(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def forbidden(names: set, prefixes: tuple) -> list:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


UI = ("textual", "rich", "typer", "llmchat.tui", "llmchat.output", "llmchat.cli", "llmchat.oneshot")


@pytest.mark.parametrize("path", sorted((PACKAGE / "stream").glob("*.py")), ids=lambda p: p.name)
def test_stream_imports_no_face_and_no_provider(path: Path) -> None:
    assert forbidden(imported_modules(path), UI + ("llmchat.providers", "llmchat.demo", "llmchat.config")) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "providers").glob("*.py")), ids=lambda p: p.name)
def test_a_provider_knows_only_its_own_wire_format(path: Path) -> None:
    names = imported_modules(path)
    assert forbidden(names, UI + ("httpx", "llmchat.demo", "llmchat.config")) == []
    if path.name not in ("__init__.py", "base.py"):
        others = {f"llmchat.providers.{p.stem}" for p in (PACKAGE / "providers").glob("*.py")} - {
            f"llmchat.providers.{path.stem}",
            "llmchat.providers.base",
            "llmchat.providers.__init__",
        }
        assert sorted(names & others) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_imports_no_face_and_no_ui_library(path: Path) -> None:
    """The engine runs under every face and is the Python API: it knows no face, no UI library
    and no command line."""
    assert forbidden(imported_modules(path), UI + ("llmchat.subcommands",)) == []
