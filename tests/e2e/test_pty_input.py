"""The real `llmchat` TUI in a real pseudo-terminal, typed at byte by byte the way a terminal
sends keys, against the fake LLM server: what the server receives is the oracle.

Keys typed the moment the process starts are kept; a control key and a letter that arrive in
one read are both applied; text typed with zero-width joiners is sent byte for byte; after the
app quits, the terminal is restored and then one line says how to continue the conversation."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Callable, Dict, List

import pytest
from test_tmux import server, terminal_env  # noqa: F401  (the tmux test's fixtures: its fake server and environment)

from llmchat.demo.server import ServerThread

WAIT = 30.0  # the upper bound of every wait (a loaded 2-core machine starts the app slowly)


class Pty:
    """`python -m llmchat ARGS` on a 100 x 30 pseudo-terminal; what it writes is collected."""

    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.master = master
        self.output = bytearray()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmchat", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=env["LLMCHAT_HOME"],
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child has closed the terminal
                return
            if not data:
                return
            self.output += data

    def wait_for_key_mode(self) -> None:
        """Until llmchat has switched the terminal from line editing to keys (what a terminal
        sends before that is the kernel's to edit: Enter becomes a new line, Ctrl+U erases).
        On Linux the master side reads the terminal's settings."""
        self.wait_for(lambda: not termios.tcgetattr(self.master)[3] & termios.ICANON, "the terminal in key mode")

    @property
    def first_frame(self) -> bool:
        return b"\x1b[?1049h" in self.output  # the app has taken the screen

    def write(self, data: bytes) -> None:
        """One write: the app reads it in one read when it is waiting for input."""
        os.write(self.master, data)

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the terminal got {bytes(self.output[-600:])!r}")
            time.sleep(0.02)

    def quit(self) -> int:
        """Ctrl+Q, and the exit status."""
        self.write(b"\x11")
        return self.proc.wait(timeout=WAIT)

    def close(self) -> None:
        if self.proc.poll() is None:  # a failed test: nothing more to see
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        os.close(self.master)


def sent(server: ServerThread) -> List[str]:
    return [r.body["messages"][-1]["content"] for r in server.requests]


CASES = {
    # name: (what is typed, in one write each, then Enter; what the server must receive)
    "letters at once": ([b"hello world"], "hello world"),
    "ctrl+u and a letter in one read": ([b"abc", b"\x15K"], "K"),
    "ctrl+w and letters in one read": ([b"one two", b"\x17three"], "one three"),
    "ctrl+j and a letter in one read": ([b"a", b"\nb"], "a\nb"),
    "zero-width joiners": (["family 👨\u200d👩\u200d👧 and 🏳️\u200d🌈 done".encode()], "family 👨\u200d👩\u200d👧 and 🏳️\u200d🌈 done"),
    "alt+enter as ESC CR": ([b"a\x1b\rb"], "a\nb"),
    "alt+enter and shift+enter in the kitty protocol": ([b"a\x1b[13;3ub\x1b[13;2uc"], "a\nb\nc"),
    "a word joiner and a non-joiner": (["a\u2060b \u0645\u200c\u0627".encode()], "a\u2060b \u0645\u200c\u0627"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_keys_typed_as_the_app_starts_reach_the_server_exactly(server, terminal_env, case):
    """Everything is typed as soon as llmchat reads keys (a few ms after it starts), long
    before its first frame: while Textual is still being imported."""
    chunks, expected = CASES[case]
    term = Pty(["--base-url", server.base_url("openai-chat"), "-m", "m"], terminal_env)
    try:
        term.wait_for_key_mode()
        for chunk in chunks:
            term.write(chunk)
        term.write(b"\r")
        assert not term.first_frame  # typed during the start-up, not after it
        term.wait_for(lambda: server.requests and server.requests[0].outcome, "the prompt at the server")
        assert sent(server) == [expected]
        assert term.quit() == 0
    finally:
        term.close()


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "no-history"])
def test_after_quitting_one_line_says_how_to_continue_once_the_terminal_is_restored(server, terminal_env, stored):
    history = [] if stored else ["--no-history"]
    term = Pty([*history, "--base-url", server.base_url("openai-chat"), "-m", "m"], terminal_env)
    try:
        term.wait_for_key_mode()
        term.write(b"remember me\r")
        term.wait_for(lambda: server.requests and server.requests[0].outcome == "complete", "the answer")
        assert term.quit() == 0
    finally:
        term.close()
    output = bytes(term.output)
    if not stored:  # nothing to continue: no line
        assert b"continues it" not in output
        return
    line = b"Conversation 1 is saved: `llmchat -c` continues it."
    assert output.count(line) == 1
    restored = output.rindex(b"\x1b[?1049l")  # the alternate screen left: the terminal is the user's again
    assert output.index(line) > restored
    assert output[restored:].replace(b"\r\n", b"\n").count(b"\n") <= 2  # that line and nothing more
