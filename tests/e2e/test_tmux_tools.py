"""A tool call in a real terminal (tmux, 120 x 40): the real `llmchat`, a profile in a config file
that enables the calc MCP server (tests/mcp_servers/calc.py, a real stdio process), the fake LLM
server scripted to call `add`. The question appears, the user answers it with a key, the call
runs, its block and the model's answer with the result are shown; nothing the model put in the
arguments reaches the terminal as an escape sequence.

Every wait is a bounded poll of `tmux capture-pane`. Skipped only when tmux is not installed.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import pytest
from test_tmux import Terminal, llmchat_command, status_line, terminal_env  # noqa: F401  (a fixture)

from llmchat.demo.server import ServerThread

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it: .ci/run)")

CALC = Path(__file__).resolve().parents[1] / "mcp_servers" / "calc.py"
# The model's arguments carry an OSC that would set the window title: shown escaped, never sent.
SCRIPT = 'add:{"a":2,"b":40};echo:{"text":"hi\\u001b]0;pwned\\u0007 there"}'


def write_config(home: Path, base_url: str) -> None:
    (home / "config.toml").write_text(
        f"""default = "tools"

[profiles.tools]
api = "openai-chat"
base_url = "{base_url}"
model = "e2e-model"
mcp = ["calc"]

[mcp.servers.calc]
command = "{sys.executable}"
args = ["{CALC}"]
""",
        encoding="utf-8",
    )


def answer(term: Terminal, key: str, predicate: Callable[[str], object], what: str, timeout: float = 20.0) -> str:
    """Press `key` until `predicate` holds: the question ignores allowing keys for half a second
    after it appears (so an Enter meant for the prompt allows nothing), and a key pressed in
    that time is dropped, not kept."""
    deadline = time.monotonic() + timeout
    while True:
        term.press(key)
        try:
            return term.wait_for(predicate, what, timeout=0.3)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_the_question_is_answered_with_keys_and_the_calls_run(terminal_env: Dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    with ServerThread() as srv:
        write_config(Path(terminal_env["LLMCHAT_HOME"]), srv.base_url("openai-chat", tools=SCRIPT))
        env = dict(terminal_env, OPENAI_API_KEY="sk-e2e")
        term = Terminal(llmchat_command(), env, tmp_path)
        try:
            term.wait_for(lambda s: "ready" in status_line(s) and "Enter sends" in s, "the first frame", timeout=30)
            term.type("add two and forty")
            term.press("Enter")
            first = term.wait_for(lambda s: "Run this tool? (1 of 2)" in s and "on server calc" in s, "the first question", timeout=30)
            assert '"a": 2' in first and '"b": 40' in first
            assert "allow add?" in first
            assert "a always (this profile)" in first  # remembered in the profile's table
            second = answer(term, "o", lambda s: "Run this tool? (2 of 2)" in s, "the second question")  # allow once
            assert "\\u001b]0;pwned\\u0007" in second  # escaped, on screen as text
            term.press("d")  # deny: at once, armed or not
            done = term.wait_for(
                lambda s: " done " in status_line(s) and "Tool add returned 42." in s and "Tool echo returned Error: denied by the user." in s,
                "the blocks and the answer",
            )
            assert "▶ add ✓ done" in done and "calc → 42" in done
            assert "▶ echo ⊘ denied" in done
            assert "Run this tool?" not in done
            assert "pwned" not in term.tmux("display-message", "-p", "-t", "e2e", "#{pane_title}")  # the title was never set
            term.press("C-q")
            assert term.exit_status() == "EXIT=0"
        finally:
            term.close()
