"""Every package llmchat imports is declared in pyproject.toml: an undeclared one works here only
because something else happened to install it (markdown-it-py came with Textual)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def declared() -> Set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, requirement
        names.add(normalise(match.group(1)))
    return names


def third_party_imports() -> Dict[str, str]:
    """Each top-level module llmchat imports from outside itself and the standard library, with
    a file that imports it (imports inside functions and version checks included)."""
    found: Dict[str, str] = {}
    for path in sorted((ROOT / "llmchat").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top != "llmchat" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_what_llmchat_imports() -> None:
    imports = third_party_imports()
    assert {"httpx", "textual", "rich", "typer", "markdown_it"} <= set(imports)
    assert "os" not in imports and "llmchat" not in imports


def test_every_imported_package_is_declared() -> None:
    distributions = packages_distributions()
    wanted = declared()
    missing = []
    for module, where in sorted(third_party_imports().items()):
        # Not installed here (tomli on 3.11+): its distribution has the module's name.
        names = {normalise(d) for d in distributions.get(module, [module])}
        if not names & wanted:
            missing.append(f"{module} ({', '.join(sorted(names))}), imported by {where}")
    assert missing == []
