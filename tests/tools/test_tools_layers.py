"""The MCP SDK is loaded only by runs that use tools: not by `import llmchat`, not by the
settings, not by `llmchat --raw` (with or without an [mcp] table in the config)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from commands import RUN_TIMEOUT  # tests/commands.py

TOOLS = Path(__file__).resolve().parents[2] / "llmchat" / "tools"

CHECK = """
import sys
from llmchat.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "mcp" or m.startswith(("mcp.", "mcp_types", "httpx2", "pydantic")))
sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
sys.exit(code)
"""


def imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.partition(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(TOOLS.glob("*.py")), ids=lambda p: p.name)
def test_the_tools_package_imports_no_face_or_ui_library(path):
    assert imports(path) & {"textual", "rich", "typer"} == set()
    names = {n for n in imports(path)}
    if path.name != "servers.py":  # the light modules: what the config and the engine load first
        assert names & {"mcp", "mcp_types", "anyio", "httpx2", "pydantic"} == set()


@pytest.mark.parametrize("with_mcp_table", [False, True])
def test_llmchat_raw_does_not_import_the_mcp_sdk(isolated_home, with_mcp_table):
    """Without servers: none in the config, or a profile's turned off with --no-tools (a run
    whose profile enables them loads the SDK: it starts them)."""
    if with_mcp_table:
        (isolated_home / "config.toml").write_text('[mcp.servers.calc]\ncommand = "calc"\n\n[profiles.p]\napi = "demo"\nmcp = ["calc"]\n')
    args = ["--raw", "--api", "demo", "hello"] + (["-p", "p", "--no-tools"] if with_mcp_table else [])
    proc = subprocess.run([sys.executable, "-c", CHECK, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout  # the demo model answered
    assert "LOADED=\n" in proc.stderr


def test_the_check_would_see_the_sdk(isolated_home):
    """The check above is not blind: `llmchat tools` (it starts servers) does load it."""
    (isolated_home / "config.toml").write_text('[mcp.servers.calc]\ncommand = "/nonexistent/calc"\n')
    proc = subprocess.run([sys.executable, "-c", CHECK, "tools"], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert "LOADED=mcp" in proc.stderr or ",mcp," in proc.stderr, proc.stderr
