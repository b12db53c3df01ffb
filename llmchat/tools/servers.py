"""`ToolServers`: starts a run's MCP servers with the official SDK (stdio or streamable HTTP),
lists their tools, calls them with a timeout, and closes them.

Imported only when a run has servers (it loads the SDK, pydantic and httpx2: 0.4-1 s). Nothing here
raises to the caller for a server's trouble: a server that cannot start, crashes or times out
is one line (`problems()`, and `on_problem` as it happens) with the tail of its stderr, and the
other servers go on; a call that fails is a `ToolResult` with `is_error`.

Each server lives in a task of its own, which enters the SDK's context managers and leaves them
(anyio needs both in one task); `aclose` asks every task to leave (cancels one still starting)
and waits. Leaving closes a stdio server's stdin and the SDK stops the process: SIGTERM to its
process group if it lingers `STOP_GRACE`, SIGKILL 2 s later. A stdio server gets the SDK's small default environment (PATH, HOME, USER, ...)
plus its `env`, never the rest of llmchat's (API keys stay here).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TextIO, cast

import anyio
import mcp.client.stdio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp import types as mcp_types
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError

from llmchat.redact import Redactor
from llmchat.sanitize import one_line
from llmchat.tools import ServerInfo, Tool, ToolResult
from llmchat.tools.config import MissingVariable, ServerConfig, expand, secret_variables

# The SDK logs transport trouble (a line that is not JSON, a pipe that broke) with tracebacks;
# with no handler, Python would print them to stderr. What matters reaches the user as one line.
logging.getLogger("mcp").addHandler(logging.NullHandler())

# When a stdio server is stopped, the SDK closes its stdin and waits this long for it to exit
# before SIGTERM (then SIGKILL 2 s later) to its process group. The SDK waits 2 s; a chat
# client stopping on Ctrl-C cannot: a server that ignores its stdin is asked to stop at once.
STOP_GRACE = 0.5
mcp.client.stdio.PROCESS_TERMINATION_TIMEOUT = min(STOP_GRACE, mcp.client.stdio.PROCESS_TERMINATION_TIMEOUT)

START_TIMEOUT = 30.0  # seconds for a server to start, answer `initialize` and list its tools
CLOSE_TIMEOUT = 10.0  # seconds to wait for every server to stop (the SDK's own waits are ~4 s)
STDERR_TAIL = 3  # lines of a server's stderr quoted when it fails
_NAME_LIMIT = 64  # OpenAI's limit on a tool name (Anthropic's is 128)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PAGES = 100  # tools/list pages at most: a server whose cursor never ends cannot hang the start


class ToolServers:
    """The MCP servers of one run. `async with ToolServers(servers) as s:` starts them all at
    once and waits until each is ready or has failed; `s.tools` and `s.call(...)` then."""

    def __init__(
        self,
        servers: Iterable[ServerConfig],
        *,
        secrets: Sequence[str] = (),
        env: Optional[Mapping[str, str]] = None,
        start_timeout: float = START_TIMEOUT,
        on_problem: Optional[Callable[[str], None]] = None,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        configs = list(servers)
        by_name = {server.name: server for server in configs}
        self._redactor = Redactor([*secrets, *secret_variables(by_name, self._env)])
        self._start_timeout = start_timeout
        self._on_problem = on_problem
        self._connections = [_Connection(server, self) for server in configs]
        self._tools: Dict[str, Tool] = {}
        self._started = False

    async def __aenter__(self) -> "ToolServers":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start every server at once; returns when each is ready or has failed."""
        if self._started:
            return
        self._started = True
        for connection in self._connections:
            connection.task = asyncio.ensure_future(connection.run())
        try:
            await asyncio.gather(*(connection.ready.wait() for connection in self._connections))
        except BaseException:
            await self.aclose()
            raise
        self._tools = {tool.name: tool for tool in _unique_names(self._connections)}

    @property
    def tools(self) -> List[Tool]:
        """Every tool of every server that started, in the config's order, names unique."""
        return list(self._tools.values())

    def tool(self, name: str) -> Optional[Tool]:
        return self._tools.get(name)

    def servers(self) -> List[ServerInfo]:
        """Each server, its state and its tools (as named for the model)."""
        return [
            ServerInfo(
                name=c.config.name,
                transport=c.config.transport,
                target=c.target(),
                state=c.state,
                error=c.error,
                tools=[t for t in self._tools.values() if t.server == c.config.name],
                tool_timeout=c.config.tool_timeout,
            )
            for c in self._connections
        ]

    def problems(self) -> List[str]:
        """One line for each server that failed to start or stopped."""
        return [c.error for c in self._connections if c.error]

    async def call(self, name: str, arguments: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None) -> ToolResult:
        """Call a tool by the name the model knows it by. Never raises for the tool's or the
        server's trouble: an unknown tool, a call past the server's `tool_timeout` (or
        `timeout`), an error from the tool or a server gone are results with `is_error`.
        Cancelling the caller abandons the call (close the servers to stop it for good)."""
        started = time.monotonic()
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(f"error: no tool named {name!r}", is_error=True)
        connection = next(c for c in self._connections if c.config.name == tool.server)
        result = await connection.call(tool, dict(arguments or {}), timeout or connection.config.tool_timeout)
        result.text = self._redactor.redact(result.text)
        if result.structured is not None and self._redactor:
            result.structured = _redact_tree(result.structured, self._redactor)
        result.duration = time.monotonic() - started
        return result

    async def aclose(self) -> None:
        """Stop every server (stdio processes included) and wait for them, at most CLOSE_TIMEOUT."""
        tasks = []
        for connection in self._connections:
            connection.close()
            if connection.task is not None:
                tasks.append(connection.task)
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)

    # --- for the connections ---

    def _problem(self, connection: "_Connection", text: str) -> None:
        line = one_line(self._redactor.redact(f"mcp server {connection.config.name!r}: {text}"), 500)
        connection.error = line
        if self._on_problem is not None:
            self._on_problem(line)


class _Connection:
    """One server: its task, its session while it runs, its state and stderr."""

    def __init__(self, config: ServerConfig, owner: ToolServers) -> None:
        self.config = config
        self.owner = owner
        self.state = "starting"
        self.error: Optional[str] = None
        self.remote_tools: List[Any] = []  # mcp_types.Tool
        self.session: Optional[ClientSession] = None
        self.task: Optional["asyncio.Future[None]"] = None
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()
        self.stderr: Optional[TextIO] = None
        self.scope: Optional[anyio.CancelScope] = None

    def close(self) -> None:
        """A ready server leaves its contexts as they expect; one still starting is cancelled
        (the SDK stops its process all the same: its shutdown is shielded)."""
        self.stop.set()
        if self.state == "starting" and self.scope is not None:
            self.scope.cancel()

    def target(self) -> str:
        if self.config.command is not None:
            return one_line(shlex.join([self.config.command, *self.config.args]))
        from llmchat.config import redact_url

        return redact_url(self.config.url or "")[1:-1]

    async def run(self) -> None:
        try:
            with anyio.CancelScope() as self.scope:
                await self._run()
        except Exception as exc:
            leaf = _innermost(exc)
            if self.state in ("failed", "stopped") or self.stop.is_set():
                pass  # said already, or trouble while closing: nobody waits for it any more
            elif isinstance(leaf, MissingVariable):
                self._fail(str(leaf), stderr=False)
            elif isinstance(leaf, TimeoutError) and self.state == "starting":
                self._fail(f"did not start within {self.owner._start_timeout:g} s")
            else:
                self._fail(_describe(leaf, self.config.transport))
        finally:
            self.session = None
            if self.state in ("starting", "ready"):
                self.state = "closed"
            if self.stderr is not None:
                self.stderr.close()
                self.stderr = None
            self.ready.set()

    async def _run(self) -> None:
        if self.stop.is_set():
            return
        async with AsyncExitStack() as stack:
            session = await self._connect(stack)
            with anyio.fail_after(self.owner._start_timeout):
                await session.initialize()
                self.remote_tools = await _list_tools(session)
            self.session = session
            self.state = "ready"
            self.ready.set()
            await self.stop.wait()
            self.session = None

    async def _connect(self, stack: AsyncExitStack) -> ClientSession:
        env = self.owner._env
        config = self.config
        if config.command is not None:
            values = expand(config, config.env, "env", env)
            if self.stderr is None:  # kept past the connection: its tail explains a failure
                self.stderr = cast(TextIO, tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))
            parameters = StdioServerParameters(command=config.command, args=list(config.args), env=values, cwd=config.cwd)
            read, write = await stack.enter_async_context(stdio_client(parameters, errlog=self.stderr))
        else:
            headers = expand(config, config.headers, "headers", env)
            client = await stack.enter_async_context(create_mcp_http_client(headers=headers))
            read, write = await stack.enter_async_context(streamable_http_client(config.url or "", http_client=client))
        return await stack.enter_async_context(ClientSession(read, write))

    def _fail(self, reason: str, stderr: bool = True) -> None:
        starting = self.state == "starting"
        self.state = "failed" if starting else "stopped"
        tail = self._stderr_tail() if stderr else ""
        what = "failed to start" if starting else "stopped"
        self.owner._problem(self, f"{what}: {reason}" + (f" (stderr: {tail})" if tail else ""))

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        try:
            self.stderr.flush()
            self.stderr.seek(0)
            lines = [line.strip() for line in self.stderr.read()[-8192:].splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return " | ".join(lines[-STDERR_TAIL:])

    async def call(self, tool: Tool, arguments: Dict[str, Any], timeout: float) -> ToolResult:
        session = self.session
        if session is None:
            return ToolResult(f"error: the tool's server is not running ({self.error or self.state})", is_error=True)
        try:
            with anyio.fail_after(timeout + 1.0):  # the SDK's own timeout comes first
                result = await session.call_tool(tool.remote_name, arguments, read_timeout_seconds=timeout)
        except TimeoutError:
            return _timed_out(timeout)
        except MCPError as exc:
            if exc.code == mcp_types.REQUEST_TIMEOUT:
                return _timed_out(timeout)
            if self._gone():
                self.session = None
                self._fail("it ended during a call to " + repr(tool.remote_name))
                return ToolResult(f"error: {self.error}", is_error=True)
            return ToolResult(f"error: {one_line(exc.message)}", is_error=True)
        except Exception as exc:  # a reply the SDK could not read, a broken pipe: the server is unusable
            self.session = None
            self._fail(_describe(exc, self.config.transport))
            return ToolResult(f"error: {self.error}", is_error=True)
        return _result(result)

    def _gone(self) -> bool:
        """Whether the connection ended (the process exited, the HTTP session went away)."""
        session = self.session
        if session is None:
            return True
        dispatcher = getattr(session, "_dispatcher", None)
        read = getattr(dispatcher, "_read_stream", None)
        stats = getattr(read, "statistics", None)
        if callable(stats):
            try:
                return stats().open_send_streams == 0
            except Exception:
                return False
        return False


async def _list_tools(session: ClientSession) -> List[Any]:
    tools: List[Any] = []
    cursor = None
    for _ in range(_PAGES):
        page = await session.list_tools(params=mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _redact_tree(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {redactor.redact(str(k)): _redact_tree(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_tree(v, redactor) for v in value]
    return value


def _timed_out(timeout: float) -> ToolResult:
    return ToolResult(f"error: the tool did not answer within {timeout:g} s (tool_timeout)", is_error=True)


def _result(result: Any) -> ToolResult:
    """A CallToolResult as text: text parts as they are, the others described."""
    parts: List[str] = []
    for part in result.content or ():
        kind = getattr(part, "type", "")
        if kind == "text":
            parts.append(part.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {part.mime_type}, {len(part.data) * 3 // 4} bytes]")
        elif kind == "resource":
            resource = part.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource: {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {part.uri}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    structured = result.structured_content if isinstance(result.structured_content, dict) else None
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return ToolResult("\n".join(parts), is_error=bool(result.is_error), structured=structured)


def _innermost(exc: BaseException) -> BaseException:
    """The first exception inside exception groups (anyio's task groups wrap what they raise)."""
    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _describe(exc: BaseException, transport: str) -> str:
    """One line for what went wrong: the innermost of exception groups, its type if its text is
    empty."""
    exc = _innermost(exc)
    if isinstance(exc, MCPError) and exc.code == mcp_types.CONNECTION_CLOSED and transport == "stdio":
        text = "the process ended or closed its output"
    elif isinstance(exc, MCPError):
        text = exc.message
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc)
    return one_line(text) or exc.__class__.__name__


def clean_name(name: str) -> str:
    """A tool name every API accepts: [A-Za-z0-9_-], 1 to 64 characters."""
    return (_UNSAFE.sub("_", name) or "_")[:_NAME_LIMIT]


def _unique_names(connections: Sequence[_Connection]) -> List[Tool]:
    """Every ready server's tools, named as the module's docstring (llmchat.tools) says."""
    ready = [c for c in connections if c.state == "ready"]
    counts = Counter(clean_name(t.name) for c in ready for t in c.remote_tools)
    taken: set = set()
    tools = []
    for connection in ready:
        for remote in connection.remote_tools:
            name = clean_name(remote.name)
            if counts[name] > 1:
                name = clean_name(f"{connection.config.name}__{remote.name}")
            base, n = name, 2
            while name in taken:
                suffix = f"_{n}"
                name = base[: _NAME_LIMIT - len(suffix)] + suffix
                n += 1
            taken.add(name)
            schema = remote.input_schema if isinstance(remote.input_schema, dict) else {"type": "object", "properties": {}}
            tools.append(Tool(name, connection.config.name, remote.name, remote.description or "", schema))
    return tools
