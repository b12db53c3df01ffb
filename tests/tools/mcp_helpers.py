"""The SDK-built test MCP server (tests/mcp_servers/calc.py) as a stdio server config. Tests
import these from here (`from tests.tools.mcp_helpers import CALC, calc`), not from a conftest:
which `conftest` module a bare `import conftest` finds depends on which directories pytest
collected first."""

from __future__ import annotations

import sys
from pathlib import Path

from llmchat.tools.config import ServerConfig

CALC = Path(__file__).resolve().parents[1] / "mcp_servers" / "calc.py"


def calc(name: str = "calc", *args: str, **kw) -> ServerConfig:
    """A stdio server config that runs calc.py (its server name `name` unless args say)."""
    return ServerConfig(name, command=sys.executable, args=(str(CALC), *args), **kw)
