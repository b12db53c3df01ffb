"""The `[mcp]` part of the config file: which MCP servers there are and how to reach them.

    [mcp]
    tool_timeout = 60            # seconds a tool call may take (default 60); per server too

    [mcp.servers.files]          # stdio: llmchat starts the server and talks over its stdin/stdout
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"]
    env = { LOG_LEVEL = "warn" }
    cwd = "/home/me"

    [mcp.servers.github]         # streamable HTTP
    url = "https://api.example.com/mcp"
    headers = { Authorization = "Bearer ${GITHUB_TOKEN}" }

    [profiles.local]
    mcp = ["files", "github"]    # the servers this profile's runs use

`${NAME}` in an `env` or `headers` value is replaced by the environment variable NAME when the
server is started (`expand`); the values of those variables are secrets (`secret_variables`).
Imports nothing of llmchat: llmchat.config reads the table through `parse_mcp`, whose errors
are plain `ValueError`s it turns into its own one-line errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

DEFAULT_TOOL_TIMEOUT = 60.0
_SERVER_KEYS = ("command", "args", "env", "cwd", "url", "headers", "tool_timeout")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ServerConfig:
    """One [mcp.servers.NAME] table: a stdio server (`command`) or a streamable HTTP one (`url`)."""

    name: str
    command: Optional[str] = None
    args: Tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    url: Optional[str] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"


@dataclass
class McpConfig:
    servers: Dict[str, ServerConfig] = field(default_factory=dict)
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT


class MissingVariable(ValueError):
    """A `${NAME}` whose variable is not set; the message names it (never a value)."""


def parse_mcp(data: Any) -> McpConfig:
    """The `mcp` table, checked. ValueError: one line naming the key (the caller adds the file)."""
    if not isinstance(data, dict):
        raise ValueError("'mcp' must be a table ([mcp] and [mcp.servers.NAME])")
    unknown = set(data) - {"servers", "tool_timeout"}
    if unknown:
        raise ValueError(f"mcp: unknown key {sorted(unknown)[0]!r} (known: servers, tool_timeout)")
    config = McpConfig(tool_timeout=_timeout("mcp.tool_timeout", data.get("tool_timeout", DEFAULT_TOOL_TIMEOUT)))
    servers = data.get("servers", {})
    if not isinstance(servers, dict):
        raise ValueError("mcp.servers must be a table of [mcp.servers.NAME] tables")
    for name, table in servers.items():
        config.servers[name] = _parse_server(name, table, config.tool_timeout)
    return config


def _parse_server(name: str, table: Any, tool_timeout: float) -> ServerConfig:
    where = f"mcp server {name!r}"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    for key in table:
        if key not in _SERVER_KEYS:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(_SERVER_KEYS)})")
    command, url = table.get("command"), table.get("url")
    if (command is None) == (url is None):
        raise ValueError(f"{where}: give either command (a stdio server) or url (a streamable HTTP one)")
    for key in ("command", "cwd", "url"):
        if key in table and (not isinstance(table[key], str) or not table[key]):
            raise ValueError(f"{where}: {key} must be a non-empty string")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"{where}: args must be a list of strings")
    env, headers = _strings(where, "env", table.get("env", {})), _strings(where, "headers", table.get("headers", {}))
    if command is not None:
        for key in ("headers",):
            if key in table:
                raise ValueError(f"{where}: {key} is for url servers; a command server takes env")
    else:
        for key in ("args", "env", "cwd"):
            if key in table:
                raise ValueError(f"{where}: {key} is for command servers; a url server takes headers")
        if not re.match(r"https?://[^/?#\s]", str(url)):
            raise ValueError(f"{where}: url must be http:// or https:// with a host")
    timeout = _timeout(f"{where}: tool_timeout", table.get("tool_timeout", tool_timeout))
    return ServerConfig(name, command, tuple(args), env, table.get("cwd"), url, headers, timeout)


def _strings(where: str, key: str, value: Any) -> Dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f'{where}: {key} must be a table of strings ({key} = {{ NAME = "value" }})')
    return dict(value)


def _timeout(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{where} must be a positive number of seconds")
    return float(value)


def variables(server: ServerConfig) -> Iterator[Tuple[str, str]]:
    """(where, NAME) for each `${NAME}` in the server's env and headers values."""
    for key, values in (("env", server.env), ("headers", server.headers)):
        for name, value in values.items():
            for match in _VARIABLE.finditer(value):
                yield f"{key} {name}", match.group(1)


def secret_variables(servers: Mapping[str, ServerConfig], env: Mapping[str, str]) -> Iterator[str]:
    """The values of the variables the servers' `${NAME}`s read: secrets, wherever they turn up."""
    for server in servers.values():
        for _, name in variables(server):
            value = env.get(name)
            if value:
                yield value
                yield value.strip()


def expand(server: ServerConfig, values: Mapping[str, str], what: str, env: Mapping[str, str]) -> Dict[str, str]:
    """`values` (the server's env or headers) with each `${NAME}` replaced by the variable's value.
    MissingVariable names the first variable that is not set."""

    expanded: Dict[str, str] = {}
    for key, value in values.items():
        for name in _VARIABLE.findall(value):
            if name not in env:
                raise MissingVariable(f"{what} {key} uses ${{{name}}}, but {name} is not set")
        expanded[key] = _VARIABLE.sub(lambda match: env[match.group(1)], value)
    return expanded
