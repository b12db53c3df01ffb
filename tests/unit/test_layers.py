"""The one-way flow, checked on the source: the streaming client imports no face, no UI
library and no provider; a provider imports no face or UI library and no other provider."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

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


# --- history, tui, and the import graph --------------------------------------------------------


@pytest.mark.parametrize("path", sorted((PACKAGE / "history").glob("*.py")), ids=lambda p: p.name)
def test_history_imports_no_settings_no_face_and_no_provider(path: Path) -> None:
    """The store finds its file through llmchat.paths, never through the settings."""
    assert forbidden(imported_modules(path), UI + ("llmchat.config", "llmchat.providers", "llmchat.demo")) == []


def test_only_the_tui_and_the_command_import_the_tui() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "tui" not in p.relative_to(PACKAGE).parts[:-1] and p.name != "cli.py"]
    assert outside, "no modules found"
    offenders = {str(p.relative_to(PACKAGE)): forbidden(imported_modules(p), ("llmchat.tui", "textual")) for p in outside}
    assert {path: names for path, names in offenders.items() if names} == {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_edges(name: str) -> Tuple[Set[str], Set[str]]:
    """The llmchat modules `name` imports as it loads (its top level and class bodies), and those
    it imports later, inside functions. `from package import module` is an edge to the module,
    `from package import name` an edge to the package; `if TYPE_CHECKING:` blocks never run."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    at_load: Set[str] = set()
    lazy: Set[str] = set()

    def targets(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            (lazy if in_function else at_load).update(t for t in targets(node) if t in MODULES and t != name)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return at_load, lazy


EDGES = {name: import_edges(name) for name in MODULES}


def reachable(start: str) -> Dict[str, List[str]]:
    """Every module `start` loads through load-time imports, with the chain that gets there."""
    paths: Dict[str, List[str]] = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in sorted(EDGES[current][0]):
            if target not in paths:
                paths[target] = paths[current] + [target]
                todo.append(target)
    return paths


def test_the_graph_sees_the_imports() -> None:
    assert "llmchat.history.store" in EDGES["llmchat.history"][0]
    assert "llmchat.history.schema" in EDGES["llmchat.history.store"][0]  # from llmchat.history import schema
    assert "llmchat.oneshot" in EDGES["llmchat.cli"][1]  # inside chat()


def test_no_import_cycle_among_llmchat_modules() -> None:
    cycles = []
    for name in sorted(MODULES):
        for target in sorted(EDGES[name][0]):
            back = reachable(target)
            if name in back:
                cycles.append(" -> ".join([name] + back[name]))
    assert cycles == []


def test_no_lazy_import_closes_a_cycle() -> None:
    """Importing inside a function hides a cycle from the loader, not from the design: a module
    that imports another lazily must not be imported by it (or by what it loads) in turn."""
    cycles = []
    for name in sorted(MODULES):
        for target in sorted(EDGES[name][1]):
            back = reachable(target)
            if name in back:
                cycles.append(f"{name} (lazily) -> " + " -> ".join(back[name]))
    assert cycles == []


@pytest.mark.parametrize("name", ["llmchat.paths", "llmchat.options", "llmchat.terminal", "llmchat.exits"])
def test_the_shared_bottom_modules_load_nothing_of_llmchat(name: str) -> None:
    """What the settings, the history, the command and the subcommands all read sits below them."""
    assert reachable(name).keys() - {name, "llmchat"} == set()


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_imports_no_face_and_no_ui_library(path: Path) -> None:
    """The engine runs under every face and is the Python API: it knows no face, no UI library
    and no command line."""
    assert forbidden(imported_modules(path), UI + ("llmchat.subcommands",)) == []
