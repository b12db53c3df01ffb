"""Helpers for the history tests: llmchat as a real subprocess, a plain sqlite3 view of the
database the runs wrote, and bounded polling."""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

WAIT = 15.0  # upper bound for anything a test waits on; never a fixed sleep


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "llmchat", *args]


def spawn(args: Sequence[str], env: Dict[str, str], **kw) -> subprocess.Popen:
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(command(*args), env=env, cwd=env["LLMCHAT_HOME"], **kw)


def reap(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def query(path: Path, sql: str, params: Sequence = ()) -> List[tuple]:
    """Read the database as any SQLite client would (no llmchat code involved)."""
    db = sqlite3.connect(str(path), timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def saved_text(path: Path, message_id: int) -> str:
    """A message's stored text: its row's content, then its pieces (a streaming answer is saved
    in pieces, one per flush), as any SQLite client reads them."""
    (content,) = query(path, "SELECT content FROM messages WHERE id = ?", (message_id,))[0]
    pieces = query(path, "SELECT content FROM message_parts WHERE message_id = ? AND kind = 'text' ORDER BY id", (message_id,))
    return content + "".join(piece for (piece,) in pieces)


def messages(path: Path, conversation_id: Optional[int] = None) -> List[dict]:
    where, params = ("WHERE conversation_id = ?", (conversation_id,)) if conversation_id is not None else ("", ())
    db = sqlite3.connect(str(path), timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(f"SELECT * FROM messages {where} ORDER BY id", params)]
    finally:
        db.close()


def poll(predicate: Callable[[], object], timeout: float = WAIT, what: str = "condition") -> object:
    """Check `predicate` until it is true (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    assert "locked" not in stderr, stderr


def read_some(proc, at_least: int = 1) -> bytes:
    """Read stdout until at least `at_least` bytes came (bounded)."""
    data = b""
    deadline = time.monotonic() + WAIT
    fd = proc.stdout.fileno()
    while len(data) < at_least:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; got {data!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, "stdout closed early"
            data += chunk
    return data


def on_a_terminal(args: Sequence[str], env: Dict[str, str]) -> bytes:
    """Everything `llmchat *args` writes to stdout when stdout is a terminal (a pty), read until
    it closes; the run must exit 0."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(command(*args), stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=env["LLMCHAT_HOME"])
    os.close(secondary)
    data = b""
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], deadline - time.monotonic())
            if not ready:
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert proc.wait(WAIT) == 0
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    return data
