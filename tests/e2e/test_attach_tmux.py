"""Attachments in the real TUI in a real terminal (tmux): `@` and Tab attach a file, a path
pasted the way a terminal pastes a dropped file (bracketed, quoted) is offered and Enter attaches
it, and the demo server's answer says what it received."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator

import pytest

from llmchat.demo.server import ServerThread
from tests.attachment_samples import pdf, png
from tests.e2e.test_tmux import Terminal, llmchat_command, status_line, terminal_env  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(__import__("shutil").which("tmux") is None, reason="tmux is not installed (CI installs it: .ci/run)")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


def test_at_completion_and_a_dropped_path_attach_files_in_a_real_terminal(server: ServerThread, terminal_env: Dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "Screen Shots").mkdir(parents=True)
    (work / "report.pdf").write_bytes(pdf(3))
    dropped = work / "Screen Shots" / "shot 1.png"
    dropped.write_bytes(png(800, 600))
    command = llmchat_command() + ["--api", "openai-chat", "--base-url", server.base_url("openai-chat"), "-m", "e2e-model", "--no-history"]
    term = Terminal(command, terminal_env, work)
    try:
        term.wait_for(lambda s: "ready" in status_line(s) and "Enter sends" in s, "the first frame")
        term.type("Compare @rep")
        term.wait_for(lambda s: "report.pdf" in s, "the menu")
        term.press("Tab")
        term.wait_for(lambda s: "+ report.pdf · PDF, 3 pages" in s, "the chip")
        term.type(" with ")
        term.tmux("set-buffer", "-b", "drop", f"'{dropped}' ")
        term.tmux("paste-buffer", "-p", "-d", "-b", "drop", "-t", "e2e")  # bracketed, as a terminal pastes a drop
        term.wait_for(lambda s: "Attach the pasted file shot 1.png?" in s, "the offer")
        term.press("Enter")
        term.wait_for(lambda s: "shot 1.png · PNG image, 800x600" in s, "the second chip")
        term.wait_for(lambda s: "Compare report.pdf with shot 1.png" in s, "the prompt with its mentions")
        term.press("Enter")
        screen = term.wait_for(lambda s: " done " in status_line(s) and "I received" in s, "the answer")
        words = " ".join(screen.replace("▊", " ").split())
        assert "1 PDF of 3 pages" in words and "1 image, PNG, 800x600" in words, screen
        assert "+ report.pdf · PDF, 3 pages" in screen  # listed under the message
        body = server.requests[0].body["messages"][-1]["content"]
        assert sorted(part["type"] for part in body) == ["file", "image_url", "text"]
        term.press("C-q")
        assert term.exit_status() == "EXIT=0"
    finally:
        term.close()
