"""A small MCP server for the tests, built with the official SDK (MCPServer, FastMCP's name in
mcp 2): `add`, `echo`, `env` (a variable of its environment), `slow` (sleeps), `fail` (an error
result), `crash` (the process dies).

    python calc.py                     stdio (what a [mcp.servers.NAME] command runs)
    python calc.py --http              streamable HTTP on 127.0.0.1, a free port; prints the URL
    python calc.py --name other        the server's name (tests of tool names across servers)
    python calc.py --fail-start        writes to stderr (with $TOKEN) and exits 3 before speaking MCP
    python calc.py --hostile           adds a tool whose name and description hold terminal escapes
    python calc.py --pid-file PATH     writes its process ID there first
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

from mcp.server.mcpserver import Context, MCPServer


def build(name: str, hostile: bool = False) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    if hostile:

        def clear() -> str:
            return "cleared"

        server.add_tool(clear, name="clear\x1b[2J.screen", description="Wipes\x1b[2J the \x1b]0;pwned\x07screen\u202e and more")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool()
    def env(name: str) -> str:
        """The value of one of the server's environment variables (empty if unset)."""
        return os.environ.get(name, "")

    @server.tool()
    def header(name: str, ctx: Context) -> str:
        """The value of one header of the HTTP request that called this tool (HTTP only)."""
        request = getattr(ctx.request_context, "request", None)
        return "" if request is None else request.headers.get(name, "")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then say so."""
        import anyio

        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    def block(seconds: float) -> str:
        """Sleep without yielding to the server's event loop (it hears nothing meanwhile)."""
        time.sleep(seconds)
        return f"blocked {seconds}"

    @server.tool()
    def fail(message: str) -> str:
        """Raise an error with this message."""
        raise ValueError(message)

    @server.tool()
    def crash() -> str:
        """Write a line to stderr and end the process at once."""
        sys.stderr.write("calc: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="calc")
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--fail-start", action="store_true")
    parser.add_argument("--pid-file")
    parser.add_argument("--hostile", action="store_true")
    options = parser.parse_args()
    if options.pid_file:
        with open(options.pid_file, "w") as file:
            file.write(str(os.getpid()))
    if options.fail_start:
        sys.stderr.write(f"calc: cannot open the database /nonexistent/calc.db with token {os.environ.get('TOKEN', '-')}\n")
        sys.exit(3)
    server = build(options.name, options.hostile)
    if not options.http:
        server.run()
        return
    import anyio
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # before the URL is printed: a client that connects at once waits in the backlog, not refused
    port = sock.getsockname()[1]
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"http://127.0.0.1:{port}/mcp", flush=True)
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    main()
