"""ToolServers against real MCP servers built with the SDK: stdio subprocesses and one over
streamable HTTP on 127.0.0.1. Listing, calling, errors, timeouts, crashes, servers that do not
start, ${VAR} expansion and masking, and cancellation."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from llmchat.tools.config import ServerConfig
from llmchat.tools.servers import ToolServers, clean_name
from tests.tools.mcp_helpers import calc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


async def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_lists_a_stdio_servers_tools_with_descriptions_and_schemas():
    async with ToolServers([calc()]) as servers:
        assert servers.problems() == []
        tools = {tool.name: tool for tool in servers.tools}
        assert {"add", "echo", "slow", "crash", "fail"} <= set(tools)
        add = tools["add"]
        assert (add.server, add.remote_name, add.description) == ("calc", "add", "Add two integers.")
        assert add.input_schema["type"] == "object"
        assert set(add.input_schema["properties"]) == {"a", "b"} and sorted(add.input_schema["required"]) == ["a", "b"]
        (info,) = servers.servers()
        assert (info.name, info.transport, info.state, info.error) == ("calc", "stdio", "ready", None)
        assert [t.name for t in info.tools] == [t.name for t in servers.tools]


async def test_calls_a_tool_and_gets_its_text_and_structured_content():
    async with ToolServers([calc()]) as servers:
        result = await servers.call("add", {"a": 2, "b": 40})
        assert (result.text, result.is_error, result.structured) == ("42", False, {"result": 42})
        assert result.duration > 0
        echoed = await servers.call("echo", {"text": "line one\nline two"})
        assert echoed.text == "line one\nline two"


async def test_a_tool_error_bad_arguments_and_an_unknown_tool_are_error_results():
    async with ToolServers([calc()]) as servers:
        failed = await servers.call("fail", {"message": "no"})
        assert failed.is_error and "fail" in failed.text
        bad = await servers.call("add", {"a": "x"})
        assert bad.is_error
        unknown = await servers.call("nope", {})
        assert unknown.is_error and "nope" in unknown.text
        assert (await servers.call("add", {"a": 1, "b": 1})).text == "2"  # still usable


async def test_a_call_past_tool_timeout_is_an_error_result_and_the_server_goes_on():
    async with ToolServers([calc(tool_timeout=1.0)]) as servers:
        started = time.monotonic()
        result = await servers.call("slow", {"seconds": 30})
        assert result.is_error and "1 s" in result.text and "tool_timeout" in result.text
        assert time.monotonic() - started < 5
        assert (await servers.call("add", {"a": 1, "b": 2})).text == "3"
        short = await servers.call("slow", {"seconds": 30}, timeout=0.5)  # a call's own timeout
        assert short.is_error and "0.5 s" in short.text


async def test_a_crashing_server_is_one_line_with_its_stderr_and_the_others_go_on():
    lines = []
    async with ToolServers([calc("one", "--name", "one"), calc("two", "--name", "two")], on_problem=lines.append) as servers:
        crashed = await servers.call("one__crash", {})
        assert crashed.is_error
        assert len(lines) == 1 and "\n" not in lines[0]
        assert "'one'" in lines[0] and "stopped" in lines[0] and "calc: crashing on purpose" in lines[0]
        assert servers.problems() == lines
        again = await servers.call("one__add", {"a": 1, "b": 2})
        assert again.is_error and "not running" in again.text
        assert (await servers.call("two__add", {"a": 1, "b": 2})).text == "3"
        states = {info.name: info.state for info in servers.servers()}
        assert states == {"one": "stopped", "two": "ready"}


async def test_servers_that_fail_to_start_are_one_line_each_and_the_others_go_on():
    lines = []
    configs = [
        calc("broken", "--fail-start"),
        ServerConfig("missing", command="/nonexistent/llmchat-mcp-server"),
        calc(),
    ]
    async with ToolServers(configs, on_problem=lines.append) as servers:
        assert sorted(lines) == sorted(servers.problems()) and len(lines) == 2
        broken = next(line for line in lines if "'broken'" in line)
        assert "failed to start" in broken and "cannot open the database" in broken  # its stderr tail
        missing = next(line for line in lines if "'missing'" in line)
        assert "failed to start" in missing and "/nonexistent/llmchat-mcp-server" in missing
        assert all("\n" not in line for line in lines)
        assert {t.server for t in servers.tools} == {"calc"}
        assert "add" in {t.name for t in servers.tools}  # no clash: the failed servers offer nothing
        assert (await servers.call("add", {"a": 1, "b": 2})).text == "3"
        states = {info.name: info.state for info in servers.servers()}
        assert states == {"broken": "failed", "missing": "failed", "calc": "ready"}


async def test_a_server_that_does_not_answer_in_time_fails_to_start():
    silent = ServerConfig("silent", command="sleep", args=("30",))  # never says a word
    started = time.monotonic()
    async with ToolServers([silent], start_timeout=2) as servers:
        assert time.monotonic() - started < 8
        assert servers.problems() == ["mcp server 'silent': failed to start: did not start within 2 s"]
        assert servers.tools == []
        result = await servers.call("add", {"a": 1, "b": 2})
        assert result.is_error


async def test_env_variables_are_expanded_at_start_and_their_values_masked():
    secret = "s3cret-token-value-1234"
    env = {**os.environ, "CALC_TOKEN": secret}
    async with ToolServers([calc(env={"TOKEN": "${CALC_TOKEN}", "PLAIN": "x-${CALC_TOKEN}-y"})], env=env) as servers:
        result = await servers.call("env", {"name": "TOKEN"})
        assert (result.text, result.structured) == ("***", {"result": "***"})  # the server got it; nobody sees it
        assert (await servers.call("env", {"name": "PLAIN"})).text == "x-***-y"
        # The rest of llmchat's environment stays with llmchat.
        assert (await servers.call("env", {"name": "CALC_TOKEN"})).text == ""


async def test_a_secret_in_a_servers_stderr_is_masked_in_its_error_line():
    secret = "s3cret-token-value-1234"
    lines = []
    async with ToolServers(
        [calc("broken", "--fail-start", env={"TOKEN": "${CALC_TOKEN}"})],
        env={"CALC_TOKEN": secret, "PATH": os.environ["PATH"]},
        on_problem=lines.append,
    ):
        pass
    (line,) = lines
    assert "with token ***" in line and secret not in line


async def test_a_missing_variable_is_one_line_naming_it_and_the_others_go_on():
    async with ToolServers([calc("needs", env={"TOKEN": "${LLMCHAT_TEST_UNSET_VAR}"}), calc()], env={"PATH": os.environ["PATH"]}) as servers:
        (line,) = servers.problems()
        assert line == "mcp server 'needs': failed to start: env TOKEN uses ${LLMCHAT_TEST_UNSET_VAR}, but LLMCHAT_TEST_UNSET_VAR is not set"
        assert (await servers.call("add", {"a": 1, "b": 2})).text == "3"


async def test_tool_names_clash_across_servers_get_the_server_prefix():
    async with ToolServers([calc("alpha", "--name", "alpha"), calc("beta", "--name", "beta", "--hostile")]) as servers:
        names = {t.name: (t.server, t.remote_name) for t in servers.tools}
        assert names["alpha__add"] == ("alpha", "add") and names["beta__add"] == ("beta", "add")
        assert "add" not in names
        # Only beta has it: its own name, cleaned to what every API accepts.
        assert names["clear__2J_screen"] == ("beta", "clear\x1b[2J.screen")
        assert (await servers.call("clear__2J_screen", {})).text == "cleared"
        assert (await servers.call("beta__add", {"a": 1, "b": 2})).text == "3"


def test_clean_name_keeps_what_every_api_accepts():
    assert clean_name("read_file") == "read_file"
    assert clean_name("a.b c/d") == "a_b_c_d"
    assert clean_name("") == "_"
    assert len(clean_name("x" * 100)) == 64


async def test_cancelling_a_run_mid_call_stops_the_stdio_server_at_once(tmp_path):
    """The server is stuck in a tool (it does not even read its stdin): cancelling the run
    ends it within a second or so, not after a call's timeout or the SDK's 4 s escalation."""
    pid_file = tmp_path / "calc.pid"
    called = asyncio.Event()

    async def run() -> None:
        async with ToolServers([calc("calc", "--pid-file", str(pid_file))]) as servers:
            called.set()
            await servers.call("block", {"seconds": 60})

    task = asyncio.ensure_future(run())
    await asyncio.wait_for(called.wait(), 30)
    pid = int(pid_file.read_text())
    await asyncio.sleep(0.3)  # the call is on its way: the server is blocked in it
    assert alive(pid)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: not alive(pid), 1.6)  # the SDK alone would wait 2 s before SIGTERM
    assert time.monotonic() - started < 1.6


async def test_closing_stops_every_stdio_server(tmp_path):
    pids = [tmp_path / "a.pid", tmp_path / "b.pid"]
    async with ToolServers([calc("a", "--pid-file", str(pids[0])), calc("b", "--pid-file", str(pids[1]))]) as servers:
        assert servers.problems() == []
        numbers = [int(p.read_text()) for p in pids]
        assert all(alive(n) for n in numbers)
    assert await wait_until(lambda: not any(alive(n) for n in numbers), 3.0)
    assert {info.state for info in servers.servers()} == {"closed"}


# --- streamable HTTP ---------------------------------------------------------------------------


async def test_a_streamable_http_server_lists_and_calls(http_url):
    async with ToolServers([ServerConfig("web", url=http_url)]) as servers:
        assert servers.problems() == []
        assert {"add", "echo"} <= {t.name for t in servers.tools}
        assert (await servers.call("add", {"a": 20, "b": 22})).text == "42"
        (info,) = servers.servers()
        assert (info.transport, info.state, info.target) == ("http", "ready", http_url)


async def test_http_headers_expand_variables_and_their_values_are_masked(http_url):
    secret = "http-secret-token-5678"
    server = ServerConfig("web", url=http_url, headers={"Authorization": "Bearer ${WEB_TOKEN}"})
    async with ToolServers([server], env={"WEB_TOKEN": secret}) as servers:
        result = await servers.call("header", {"name": "authorization"})
        assert result.text == "Bearer ***"  # it was sent; it is not shown


async def test_an_http_server_that_is_not_there_is_one_line_and_the_others_go_on(http_url):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ToolServers([ServerConfig("gone", url=f"http://127.0.0.1:{port}/mcp"), ServerConfig("web", url=http_url)]) as servers:
        (line,) = servers.problems()
        assert line.startswith("mcp server 'gone': failed to start: ") and "\n" not in line
        assert (await servers.call("add", {"a": 1, "b": 2})).text == "3"
