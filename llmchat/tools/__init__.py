"""Tools from MCP servers: what the engine offers the model, and what a call gives back.

This module is light (dataclasses only): the MCP SDK is imported by `llmchat.tools.servers`,
and only when a run has servers to start, so `--raw` and a run without tools never load it.

    from llmchat.tools.servers import ToolServers

    async with ToolServers(config.mcp, settings.mcp, secrets=settings.secrets) as servers:
        for line in servers.problems():       # a server that failed to start: one line each
            warn(line)
        servers.tools                          # [Tool]: name, description, input_schema
        result = await servers.call("add", {"a": 1, "b": 2})   # ToolResult; never raises
        result.text, result.is_error

Tool names are unique across servers: a tool keeps its own name unless another enabled server
offers one that is the same (after the cleaning below); then each of them is called
SERVER__TOOL. Names are cleaned to what every API accepts: letters, digits, `_` and `-`, at most
64 characters (anything else becomes `_`); a clash left after that gets `_2`, `_3`, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass(frozen=True)
class Tool:
    """A tool as the model sees it (`name`, `description`, `input_schema`: a JSON Schema object)
    and where it lives (`server`, and `remote_name`: its name on that server)."""

    name: str
    server: str
    remote_name: str
    description: str = ""
    input_schema: Dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class ToolResult:
    """What a call gave: `text` for the model (every content part as text, secrets masked), and
    whether it is an error (the tool failed, timed out, or its server is gone). `structured`:
    the tool's structured content, when it gave one."""

    text: str
    is_error: bool = False
    duration: float = 0.0  # seconds
    structured: Optional[Dict[str, Any]] = None


@dataclass
class ServerInfo:
    """A server as `llmchat tools` shows it. `state`: starting, ready, failed (did not start),
    stopped (crashed or went away after starting), closed. `error`: one line, when failed or
    stopped (with the tail of its stderr). `target`: the command line or the URL (credentials
    masked)."""

    name: str
    transport: str  # "stdio" or "http"
    target: str
    state: str
    error: Optional[str] = None
    tools: List[Tool] = field(default_factory=list)
    tool_timeout: float = 60.0
