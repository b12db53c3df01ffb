"""The real `llmchat` in a real terminal (tmux, 120 x 40) against the fake LLM server: type a
prompt, see the answer and the status figures, cancel a long answer with Ctrl-C (the server
sees the connection close), quit with Ctrl-Q, exit status 0.

Every wait is a bounded poll of `tmux capture-pane`. Skipped only when tmux is not installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from llmchat.demo.server import Behaviour, ServerThread

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it: .ci/run)")

WIDTH, HEIGHT = 120, 40


def llmchat_command() -> List[str]:
    """The console script installed next to this interpreter, else `python -m llmchat`."""
    script = Path(sys.executable).with_name("llmchat")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "llmchat"]


class Terminal:
    """One command in a tmux pane, on a tmux server of its own (nothing shared with the user's)."""

    def __init__(self, command: List[str], env: Dict[str, str], workdir: Path) -> None:
        self.socket = f"llmchat-e2e-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.exit_file = workdir / "exit-status"
        shell = " ".join(shlex.quote(part) for part in command) + f"; echo EXIT=$? > {shlex.quote(str(self.exit_file))}"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "e2e", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(workdir), shell)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=self.env, timeout=20)
        assert done.returncode == 0, f"tmux {args[0]} failed: {done.stderr}"
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e")

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "e2e", "-l", text)

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "e2e", key)

    def wait_for(self, predicate: Callable[[str], object], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; the screen:\n{text}")
            time.sleep(0.05)

    def exit_status(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.exit_file.exists() or not self.exit_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"llmchat did not exit; the screen:\n{self.screen()}")
            time.sleep(0.05)
        return self.exit_file.read_text().strip()

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, env=self.env, timeout=20)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(Behaviour(tokens=120, tps=400)) as srv:  # a rate, not a burst (which reads "tok/s –")
        yield srv


@pytest.fixture
def terminal_env(tmp_path: Path) -> Dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not (k.startswith(("LLMCHAT_", "TMUX")) or k.endswith("_API_KEY") or k.lower().endswith("_proxy"))}
    env.update(LLMCHAT_HOME=str(home), NO_PROXY="127.0.0.1,localhost", TERM="xterm-256color")
    return env


def status_line(text: str) -> str:
    return next((line for line in text.splitlines() if " │ " in line and "TTFT" in line), "")


def test_chat_cancel_and_quit_in_a_real_terminal(server: ServerThread, terminal_env: Dict[str, str], tmp_path: Path) -> None:
    command = llmchat_command() + ["--api", "openai-chat", "--base-url", server.base_url("openai-chat"), "-m", "e2e-model"]
    term = Terminal(command, terminal_env, tmp_path)
    try:
        term.wait_for(lambda s: "ready" in status_line(s) and "Enter sends" in s, "the first frame")

        # A whole answer, and the figures it leaves in the status bar.
        term.type("hello from tmux")
        term.wait_for(lambda s: "hello from tmux" in s, "the typed prompt")
        term.press("Enter")
        # The status bar and the transcript may be painted a frame apart: wait for both.
        screen = term.wait_for(
            lambda s: " done " in status_line(s) and "Hello from the demo model" in s and "You asked: hello from tmux" in s,
            "the answer and the status figures",
        )
        status = status_line(screen)
        assert status.startswith(" e2e-model │ done │"), status
        assert re.search(r"TTFT \d+\.\d\d s", status), status
        assert re.search(r"tok/s \d+\.\d", status), status  # exact: the server reported usage
        assert "tokens 120" in status, status
        assert server.requests[0].outcome == "complete"

        # A long, slow answer, cancelled with Ctrl-C mid-stream.
        server.server.behaviour = Behaviour(tokens=3000, tps=25)
        term.type("now a long one")
        term.press("Enter")
        term.wait_for(lambda s: " streaming " in status_line(s) and "now a long one" in s, "the long answer to stream")
        assert server.wait_for(lambda r: len(r) == 2 and r[1].tokens_sent >= 5, 10)
        term.press("C-c")
        # The note under the answer, and the state in the status bar.
        term.wait_for(lambda s: " cancelled " in status_line(s) and "cancelled" in s.replace(status_line(s), ""), "the cancel")
        assert server.wait_for(lambda r: r[1].outcome == "disconnected", 10), [r.outcome for r in server.requests]
        assert server.requests[1].tokens_sent < 3000

        # Ctrl-Q quits, with exit status 0.
        term.press("C-q")
        assert term.exit_status() == "EXIT=0"
    finally:
        term.close()


NARROW = (40, 15)
DECORATION = set("▊█▌▐▎▍▏▕▁▂▃▄▅▆▇ ")


def narrow_chat(srv: ServerThread, prompt: str, env: Dict[str, str], workdir: Path) -> Terminal:
    """llmchat at 40x15 against `srv`, `prompt` sent."""
    command = llmchat_command() + ["--api", "openai-chat", "--base-url", srv.base_url("openai-chat"), "-m", "e2e-model"]
    term = Terminal(command, env, workdir)
    term.tmux("resize-window", "-t", "e2e", "-x", str(NARROW[0]), "-y", str(NARROW[1]))
    term.wait_for(lambda s: "ready" in s, "the first frame")
    term.type(prompt)
    term.press("Enter")
    return term


def transcript_rows(screen: str) -> List[str]:
    """The rows above the prompt box (its top border is the first row of ▔)."""
    rows = screen.splitlines()
    end = next((i for i, row in enumerate(rows) if "▔▔▔" in row), len(rows))
    return rows[:end]


def test_a_table_is_readable_at_40_columns(terminal_env: Dict[str, str], tmp_path: Path) -> None:
    table = "| Name | Notes | Value |\n|:--|:--:|--:|\n| alpha | wraps inside its cell | 1 |\n| beta | short | 22 |\n"
    with ServerThread(Behaviour(text=table)) as srv:
        term = narrow_chat(srv, "table", terminal_env, tmp_path)
        try:
            screen = term.wait_for(lambda s: " done" in s and "beta" in s, "the table")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the final layout may follow "done": two equal captures
                time.sleep(0.2)
                again, screen = screen, term.screen()
                if again == screen:
                    break
            term.press("PageUp")  # the table is taller than the transcript's eight rows
            above = term.wait_for(lambda s: s != screen, "the transcript scrolled up")
            text = "\n".join(transcript_rows(above) + transcript_rows(screen))
            for word in ("Name", "Notes", "Value", "alpha", "wraps", "inside", "its", "cell", "beta", "short", "22"):
                assert word in text, text
            assert "…" not in text, text
            term.press("C-q")
            assert term.exit_status() == "EXIT=0"
        finally:
            term.close()


def test_no_more_than_one_blank_row_under_streaming_text(terminal_env: Dict[str, str], tmp_path: Path) -> None:
    """Captured every 50 ms while a long answer streams at 40x15: the newest text is on the
    transcript's last row or the one above it (its padding)."""
    with ServerThread(Behaviour(tokens=600, tps=120)) as srv:
        term = narrow_chat(srv, "stream", terminal_env, tmp_path)
        try:
            term.wait_for(lambda s: "streaming" in s, "the answer to stream")
            gaps = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                screen = term.screen()
                if "streaming" not in screen:
                    break
                rows = transcript_rows(screen)
                filled = [i for i, row in enumerate(rows) if not set(row) <= DECORATION]
                answered = any(row.startswith(" █ ") and row[3:].strip() for row in rows)  # the answer's border, then text
                if filled and answered:
                    gaps.append((len(rows) - 1 - filled[-1], screen))
                time.sleep(0.05)
            assert len(gaps) >= 10
            worst = max(gaps, key=lambda gap: gap[0])
            assert worst[0] <= 1, worst[1]
            term.press("C-q")
            assert term.exit_status() == "EXIT=0"
        finally:
            term.close()
