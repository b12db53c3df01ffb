"""The one-shot face's tools, as real `llmchat` processes: the fake LLM server scripted to call
tools, the calc MCP server started by llmchat itself. Allowed calls, denial without a terminal,
the question on /dev/tty (under a real pty, answered), --max-steps, a tool that times out,
a real SIGINT mid-tool (the tool's process is gone afterwards), --json events, --verbose."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from commands import RUN_TIMEOUT, llmchat_command  # tests/commands.py

from llmchat.demo.server import ServerThread
from llmchat.exitcodes import INTERRUPTED
from tests.tools.mcp_helpers import CALC

ROOT = Path(__file__).resolve().parents[2]


def _json_checks() -> Any:
    """tests/integration/test_json_output.py's schema validator (events_of)."""
    spec = importlib.util.spec_from_file_location("json_output_checks", ROOT / "tests" / "integration" / "test_json_output.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


def write_config(home: Path, *, tool_timeout: float = 20, server_args: Tuple[str, ...] = (), profile_extra: str = "") -> Path:
    args = ", ".join(json.dumps(a) for a in (str(CALC), *server_args))
    path = home / "config.toml"
    path.write_text(
        f"""# my settings
[mcp.servers.calc]
command = {json.dumps(sys.executable)}
args = [{args}]
tool_timeout = {tool_timeout}

[profiles.p]
api = "openai-chat"
mcp = ["calc"]
{profile_extra}
[profiles.other]
api = "ollama"
""",
        encoding="utf-8",
    )
    return path


def env_for(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**env, "LLMCHAT_HOME": str(home), "NO_PROXY": "127.0.0.1"}


def args_for(srv: ServerThread, *flags: str, **options: Any) -> List[str]:
    return ["-p", "p", "--base-url", srv.base_url("openai-chat", **options), "--no-history", *flags, "go"]


def run(home: Path, args: List[str]) -> Tuple[int, str, str]:
    """llmchat with no terminal at all (a new session: /dev/tty cannot be opened)."""
    proc = subprocess.run(
        llmchat_command(*args),
        capture_output=True,
        env=env_for(home),
        timeout=RUN_TIMEOUT * 2,
        cwd=home,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


SCRIPT = 'add:{"a":1,"b":2};echo:{"text":"hi"}'


def test_allowed_tools_run_and_stdout_is_only_the_answer(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--allow-tool", "add", "--allow-tool", "echo", tools=SCRIPT))
    assert code == 0, err
    assert out == "Tool add returned 3. Tool echo returned hi."
    assert "none ran" not in err and "no terminal" not in err


def test_without_a_terminal_calls_are_denied_unless_allowed_and_stderr_says_so_once(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--allow-tool", "add", tools=SCRIPT))
    assert code == 0, err
    assert out.startswith("Tool add returned 3. Tool echo ") and out.endswith("denied by the user.")
    assert err.count("no terminal to ask on") == 1, err


def test_verbose_writes_a_line_per_call_and_result_on_stderr(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--allow-tools", "--verbose", tools=SCRIPT))
    assert code == 0, err
    assert out == "Tool add returned 3. Tool echo returned hi."
    lines = [line for line in err.splitlines() if line.startswith("llmchat: tool ")]
    assert len(lines) == 4, err
    assert 'add({"a": 1, "b": 2}) on calc: running' in lines[0] or 'add({"a": 1, "b": 2}) on calc: running' in lines[1]
    assert any(line.startswith("llmchat: tool add: done in ") and line.endswith(" s") for line in lines)


def test_max_steps_ends_the_answer_with_a_notice(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home, profile_extra="max_steps = 5\n")
    code, out, err = run(isolated_home, args_for(srv, "--allow-tools", "--max-steps", "1", tools='add:{"a":1,"b":1}', tool_rounds=3))
    assert code == 0, err
    assert "--max-steps 1" in err and "did not run" in err
    assert out == ""  # the model only ever asked for tools


def test_a_tool_past_its_timeout_is_an_error_the_model_reads(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home, tool_timeout=0.5)
    started = time.monotonic()
    code, out, err = run(isolated_home, args_for(srv, "--allow-tools", tools='slow:{"seconds":30}'))
    assert code == 0, err
    assert time.monotonic() - started < 20
    assert "did not answer within 0.5 s" in out


def test_no_tools_starts_no_server_and_keeps_the_plain_note(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--no-tools", tools=SCRIPT))
    assert code == 0, err
    assert out == "" and "none ran" in err


def test_an_unknown_mcp_server_is_a_usage_error(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--mcp", "nope", tools=SCRIPT))
    assert code == 2 and "--mcp nope" in err and out == ""


def test_json_writes_tool_results_and_per_step_metrics(srv: ServerThread, isolated_home: Path) -> None:
    checks = _json_checks()
    write_config(isolated_home)
    code, out, err = run(isolated_home, args_for(srv, "--json", "--allow-tool", "add", tools=SCRIPT))
    assert code == 0, err
    events = checks.events_of(out.encode())
    kinds = [e["type"] for e in events]
    assert kinds.count("tool_call") == 2 and kinds.count("tool_result") == 2
    assert kinds.index("tool_result") > max(i for i, k in enumerate(kinds) if k == "tool_call")
    results = {e["name"]: e for e in events if e["type"] == "tool_result"}
    assert (results["add"]["status"], results["add"]["content"], results["add"]["is_error"]) == ("done", "3", False)
    assert (results["echo"]["status"], results["echo"]["content"], results["echo"]["is_error"]) == ("denied", "denied by the user", True)
    calls = [e for e in events if e["type"] == "tool_call"]
    assert results["add"]["id"] == calls[0]["id"] and results["echo"]["id"] == calls[1]["id"]
    finish = events[-1]
    assert finish["status"] == "complete" and finish["stop_reason"] == "stop"
    assert [(s["stop_reason"], s["tool_calls"]) for s in finish["steps"]] == [("tool_calls", 2), ("stop", 0)]
    assert all(s["metrics"]["elapsed"] is not None for s in finish["steps"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigint_mid_tool_stops_at_once_and_the_tool_process_is_gone(srv: ServerThread, isolated_home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "calc.pid"
    write_config(isolated_home, server_args=("--pid-file", str(pid_file)))
    proc = subprocess.Popen(
        llmchat_command(*args_for(srv, "--allow-tools", "--verbose", tools='slow:{"seconds":60}')),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(isolated_home),
        cwd=isolated_home,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        seen = _read_until(proc.stderr.fileno(), b": running", RUN_TIMEOUT)
        pid = int(pid_file.read_text())
        assert _alive(pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        assert time.monotonic() - started < 10
        err = seen.decode() + err.decode()
        assert proc.returncode == INTERRUPTED, err
        assert "interrupted" in err
        assert "slow: error" in err  # the call ended as cancelled
        deadline = time.monotonic() + RUN_TIMEOUT
        while _alive(pid):
            assert time.monotonic() < deadline, "the tool's process outlived llmchat"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {marker!r}: {got!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the stream ended before {marker!r}: {got!r}"
            got += chunk
    return got


def _under_a_pty(home: Path, args: List[str], answers: List[str]) -> Tuple[int, str, str]:
    """llmchat with a pty as its controlling terminal (stdin and stderr on it), stdout a pipe;
    each question that appears on the terminal gets the next answer."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        llmchat_command(*args),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env_for(home),
        cwd=home,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    screen = b""
    try:
        for n, answer in enumerate(answers, 1):
            deadline = time.monotonic() + RUN_TIMEOUT
            while screen.count(b"Run it?") < n:
                left = deadline - time.monotonic()
                assert left > 0, f"no question {n}: {screen!r}"
                ready, _, _ = select.select([master], [], [], left)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # EIO: the process closed the terminal
                        chunk = b""
                    assert chunk, f"the terminal closed before question {n}: {screen!r}"
                    screen += chunk
            os.write(master, answer.encode() + b"\n")
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(RUN_TIMEOUT)
        while True:  # what is left on the terminal
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, out.decode(), screen.decode("utf-8", "replace")


def test_the_question_goes_to_the_terminal_while_stdout_is_a_pipe(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, screen = _under_a_pty(isolated_home, args_for(srv, tools='add:{"a":20,"b":22};echo:{"text":"\\u001b[2Jboo"}'), ["y", "n"])
    assert code == 0, screen
    assert out.startswith("Tool add returned 42. Tool echo ") and out.endswith("denied by the user.")
    assert "Run it?" not in out  # the question never reaches stdout
    assert "the tool add from server calc" in screen and '"a": 20' in screen and '"b": 22' in screen
    assert "\x1b[2J" not in screen  # the arguments' escape is shown as text (JSON escapes it)


def test_always_on_the_terminal_is_remembered_in_the_profile(srv: ServerThread, isolated_home: Path) -> None:
    path = write_config(isolated_home)
    before = path.read_text(encoding="utf-8")
    code, out, screen = _under_a_pty(isolated_home, args_for(srv, tools='add:{"a":1,"b":2}'), ["a"])
    assert code == 0, screen
    assert out == "Tool add returned 3."
    after = path.read_text(encoding="utf-8")
    assert after == before.replace("[profiles.p]\n", '[profiles.p]\nallow_tools = ["add"]\n')
    # The next run does not ask (no terminal at all now) and the call runs.
    code, out, err = run(isolated_home, args_for(srv, tools='add:{"a":1,"b":2}'))
    assert (code, out) == (0, "Tool add returned 3."), err
    assert "no terminal" not in err


def test_ctrl_c_at_the_question_stops_at_once(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, screen = _under_a_pty(isolated_home, args_for(srv, tools='add:{"a":1,"b":2}'), ["\x03"])
    assert code == INTERRUPTED, screen
    assert out == "" and "interrupted" in screen


def test_a_continued_conversation_sends_its_tool_steps_back(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    base = ["-p", "p", "--base-url"]
    url = srv.base_url("anthropic", tools='add:{"a":1,"b":2}')
    code, out, err = run(isolated_home, [*base, url, "--api", "anthropic", "--allow-tools", "first"])
    assert (code, out) == (0, "Tool add returned 3."), err
    # With tools: the stored step goes back as calls and results, and the API accepts them.
    plain = srv.base_url("anthropic", text="fine")
    code, out, err = run(isolated_home, [*base, plain, "--api", "anthropic", "-c", "second"])
    assert (code, out) == (0, "fine"), err
    # Without tools (Anthropic refuses tool blocks then): the steps go as text.
    code, out, err = run(isolated_home, [*base, plain, "--api", "anthropic", "--no-tools", "-c", "third"])
    assert (code, out) == (0, "fine"), err


def test_the_text_after_tool_results_starts_a_new_paragraph_on_stdout() -> None:
    from llmchat.config import Settings
    from llmchat.engine.turns import Step, Turn
    from llmchat.oneshot import OneShot
    from llmchat.stream.metrics import Metrics

    class Collect:
        def __init__(self) -> None:
            self.out: List[str] = []

        def write(self, text: str) -> None:
            self.out.append(text)

    face = OneShot(Settings(api="demo", model="m", base_url=""), "go", raw=True, stats=False, show_reasoning=False)
    face.writer = writer = Collect()
    turn = Turn("go", Metrics())
    turn.parts[:] = ["Let me ", "check."]
    face.step(turn, Step(1, 2, Metrics()))
    for piece in ("It is ", "3."):
        face.text(piece)
    assert "".join(writer.out) == "\n\nIt is 3."  # the step's text, after one break
