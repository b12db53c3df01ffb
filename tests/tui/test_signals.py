"""The real TUI in a pseudo-terminal, stopped by SIGTERM or SIGHUP while an answer streams: the
terminal gets its state back (main screen, mouse reporting off, cursor shown) and the partial
answer is stored `cancelled`, as the one-shot face stores it.

The app runs as a real subprocess against the fake LLM server on loopback; every wait is a
bounded poll.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from llmchat.demo.server import ServerThread

WAIT = 20.0
MOUSE_MODES = ("1000", "1003", "1006")  # what Textual's Linux driver turns on


@pytest.fixture(scope="module")
def srv():
    with ServerThread() as server:
        yield server


class PtyReader:
    """Drains the terminal side of a pty in a thread (a full pty would block the app)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self.data += chunk

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.data)

    def join(self) -> None:
        self._thread.join(timeout=WAIT)


def poll(predicate: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + WAIT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assistant_rows(db: Path) -> List[tuple]:
    if not db.exists():
        return []
    connection = sqlite3.connect(str(db), timeout=10)
    try:
        # A streaming answer is saved in pieces: its text is the row's content, then its pieces.
        return connection.execute(
            "SELECT status, content || coalesce((SELECT group_concat(p.content, '') FROM (SELECT content"
            " FROM message_parts WHERE message_id = messages.id AND kind = 'text' ORDER BY id) p), '')"
            " FROM messages WHERE role = 'assistant' ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        connection.close()


def tui_env(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMCHAT_", "OPENAI_", "ANTHROPIC_"))}
    env.update(LLMCHAT_HOME=str(home), TERM="xterm-256color", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_COLOR"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_answer_restores_the_terminal_and_stores_the_answer_cancelled(srv, isolated_home, signum):
    url = srv.base_url("openai-chat", tokens=5000, tps=40)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmchat", "--base-url", url, "-m", "slow-model"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=tui_env(isolated_home),
        cwd=str(isolated_home),
        start_new_session=True,
    )
    os.close(slave)
    reader = PtyReader(master)
    db = isolated_home / "data" / "history.db"
    try:
        poll(lambda: b"\x1b[?1049h" in reader.snapshot() and b"slow-model" in reader.snapshot(), "the TUI to start")
        os.write(master, b"hello\r")
        poll(
            lambda: any(status == "streaming" and len(content) > 20 for status, content in assistant_rows(db)),
            "a partial answer to be saved while it streams",
        )
        before = len(reader.snapshot())
        proc.send_signal(signum)
        code = proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()
        os.close(master)

    after = reader.snapshot()[before:]
    assert code == 128 + signum
    assert b"\x1b[?1049l" in after, after[-400:]
    for mode in MOUSE_MODES:
        assert f"\x1b[?{mode}l".encode() in after, (mode, after[-400:])
    assert b"\x1b[?25h" in after, after[-400:]
    assert b"Traceback" not in after
    [(status, content)] = assistant_rows(db)
    assert status == "cancelled"
    assert len(content) > 20
