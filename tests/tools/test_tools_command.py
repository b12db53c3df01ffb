"""`llmchat tools`, as a real subprocess against real MCP servers: the listing, one server, the
JSON's keys, failures, sanitised output and masked secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from commands import RUN_TIMEOUT, llmchat_command  # tests/commands.py

from tests.tools.mcp_helpers import CALC

SECRET = "calc-secret-token-4321"


def config(home, extra: str = "") -> None:
    python, calc = json.dumps(sys.executable), json.dumps(str(CALC))
    text = f"""
[mcp.servers.calc]
command = {python}
args = [{calc}]
env = {{ TOKEN = "${{CALC_TOKEN}}" }}
tool_timeout = 20

[profiles.local]
api = "ollama"
mcp = ["calc"]
{extra}"""
    (home / "config.toml").write_text(text, encoding="utf-8")


def run(home, *args: str, env_extra=None):
    env = {**os.environ, "LLMCHAT_HOME": str(home), "CALC_TOKEN": SECRET, **(env_extra or {})}
    proc = subprocess.run(llmchat_command("tools", *args), capture_output=True, env=env, timeout=RUN_TIMEOUT * 2, cwd=home)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_lists_each_server_its_state_and_its_tools_with_descriptions(isolated_home):
    config(isolated_home)
    code, out, err = run(isolated_home)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("calc  ready  stdio: ") and lines[0].endswith("(profiles: local)")
    assert any(line.split() == ["add", "Add", "two", "integers."] for line in lines)
    assert any(line.split()[0] == "slow" for line in lines[1:])


def test_json_has_stable_keys(isolated_home):
    config(isolated_home)
    code, out, err = run(isolated_home, "--json")
    assert (code, err) == (0, "")
    (server,) = json.loads(out)
    assert list(server) == ["name", "transport", "target", "state", "error", "tool_timeout", "profiles", "tools"]
    assert (server["name"], server["transport"], server["state"], server["error"]) == ("calc", "stdio", "ready", None)
    assert (server["tool_timeout"], server["profiles"]) == (20.0, ["local"])
    add = next(t for t in server["tools"] if t["name"] == "add")
    assert list(add) == ["name", "remote_name", "description", "input_schema"]
    assert add["description"] == "Add two integers." and set(add["input_schema"]["properties"]) == {"a", "b"}


def test_one_server_shows_whole_descriptions_and_parameters(isolated_home):
    config(isolated_home, f'\n[mcp.servers.other]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(CALC))}, "--fail-start"]\n')
    code, out, err = run(isolated_home, "calc")
    assert (code, err) == (0, "")
    assert out.startswith("calc  ready") and "other" not in out
    assert "  add\n      Add two integers.\n      - a (integer)\n      - b (integer)\n" in out
    code, out, err = run(isolated_home, "calc", "--json")
    assert code == 0 and json.loads(out)["name"] == "calc"  # one object, not an array


def test_a_server_that_fails_is_shown_with_its_line_and_the_exit_code_is_1(isolated_home):
    extra = f'\n[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(CALC))}, "--fail-start"]\nenv = {{ TOKEN = "${{CALC_TOKEN}}" }}\n'
    config(isolated_home, extra)
    code, out, err = run(isolated_home)
    assert code == 1
    assert "calc  ready" in out and "broken  failed" in out
    assert "mcp server 'broken': failed to start: " in out and "cannot open the database" in out
    assert "with token ***" in out and SECRET not in out + err  # its stderr quoted, the secret masked
    code, out, err = run(isolated_home, "--json")
    assert code == 1
    broken = next(s for s in json.loads(out) if s["name"] == "broken")
    assert broken["state"] == "failed" and "***" in broken["error"] and broken["tools"] == []


def test_a_missing_variable_names_it(isolated_home):
    config(isolated_home)
    env = {k: v for k, v in os.environ.items() if k != "CALC_TOKEN"}
    proc = subprocess.run(llmchat_command("tools"), capture_output=True, env={**env, "LLMCHAT_HOME": str(isolated_home)}, timeout=RUN_TIMEOUT)
    assert proc.returncode == 1
    assert "mcp server 'calc': failed to start: env TOKEN uses ${CALC_TOKEN}, but CALC_TOKEN is not set" in proc.stdout.decode()


def test_hostile_tool_names_and_descriptions_cannot_reach_the_terminal_as_controls(isolated_home):
    config(isolated_home, f'\n[mcp.servers.evil]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(CALC))}, "--hostile"]\n')
    code, out, err = run(isolated_home, "evil")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "clear__2J_screen" in out and "Wipes the screen and more" in out
    code, out, err = run(isolated_home, "evil", "--json")  # a pipe: JSON escapes them, as JSON does
    tool = next(t for t in json.loads(out)["tools"] if t["name"] == "clear__2J_screen")
    assert tool["remote_name"] == "clear\x1b[2J.screen" and "\x1b" not in out


def test_an_unknown_server_is_a_usage_error(isolated_home):
    config(isolated_home)
    code, out, err = run(isolated_home, "nope")
    assert (code, out) == (2, "")
    assert err == f"error: no mcp server 'nope' in {isolated_home / 'config.toml'} (servers: calc)\n"


def test_no_servers_says_how_to_add_one(isolated_home):
    code, out, err = run(isolated_home)
    assert code == 0 and out.startswith("No MCP servers in ") and "[mcp.servers." in out
    code, out, err = run(isolated_home, "--json")
    assert (code, out) == (0, "[]\n")


def test_a_wrong_mcp_table_is_a_usage_error_naming_the_file(isolated_home):
    (isolated_home / "config.toml").write_text('[mcp.servers.x]\nargs = ["a"]\n')
    code, out, err = run(isolated_home)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {isolated_home / 'config.toml'}: mcp server 'x': give either command") and err.count("\n") == 1


def test_ctrl_c_while_servers_start_stops_them_and_exits_130(isolated_home, tmp_path):
    import signal
    import time

    from test_servers import alive

    pid_file = tmp_path / "calc.pid"
    python, calc = json.dumps(sys.executable), json.dumps(str(CALC))
    (isolated_home / "config.toml").write_text(
        f'[mcp.servers.calc]\ncommand = {python}\nargs = [{calc}, "--pid-file", {json.dumps(str(pid_file))}]\n'
        '\n[mcp.servers.stuck]\ncommand = "sleep"\nargs = ["60"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "LLMCHAT_HOME": str(isolated_home)}
    proc = subprocess.Popen(llmchat_command("tools"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        time.sleep(0.5)  # calc is up; `stuck` keeps the listing waiting
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        deadline = time.monotonic() + 3
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
        assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
