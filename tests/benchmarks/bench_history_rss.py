"""Peak memory of a one-shot run with a huge answer, history on and off.

    python tests/benchmarks/bench_history_rss.py              # 256 MiB
    python tests/benchmarks/bench_history_rss.py --mib 1024   # 1 GiB (and SQLite's 1e9-byte limit)

The demo server sends at most a few MB/s of 6-character tokens on a loaded 2-core machine
(~1 min per 4 MB), so this script serves the answer itself: an OpenAI Chat Completions SSE
stream on 127.0.0.1 whose deltas are 64 KiB each, generated as they are sent. `llmchat --raw`
reads it with stdout on /dev/null in a fresh process; its peak RSS comes from `os.wait4`. With
history on, the stored text is then checked to be whole (length and the last bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DELTA = 64 * 1024


def serve(sock: socket.socket, total: int) -> None:
    piece = ("word " * (DELTA // 5))[:DELTA]
    event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": piece}}]}).encode() + b"\n\n"
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            try:
                for _ in range(total // DELTA):
                    conn.sendall(event)
                conn.sendall(finish)
            except OSError:
                pass


def run(url: str, home: Path, history: bool) -> tuple:
    env = dict(os.environ, LLMCHAT_HOME=str(home), NO_PROXY="127.0.0.1")
    args = [sys.executable, "-m", "llmchat", "--raw", "--base-url", url, "-m", "big", "a big answer"]
    if not history:
        args.insert(3, "--no-history")
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, time.monotonic() - started, err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="answer size in MiB (default 256)")
    options = parser.parse_args()
    total = options.mib * 1024 * 1024
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    threading.Thread(target=serve, args=(sock, total), daemon=True).start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        for history in (False, True):
            home = Path(tmp) / ("on" if history else "off")
            code, peak, took, err = run(url, home, history)
            line = f"{options.mib} MiB answer, history {'on ' if history else 'off'}: exit {code}, peak RSS {peak:.0f} MB, {took:.1f} s"
            if history:
                db = sqlite3.connect(str(home / "data" / "history.db"))
                (mid, status, content) = db.execute("SELECT id, status, length(content) FROM messages WHERE role = 'assistant'").fetchone()
                pieces, stored = db.execute(
                    "SELECT count(*), coalesce(sum(length(content)), 0) FROM message_parts WHERE message_id = ?", (mid,)
                ).fetchone()
                db.close()
                line += f"; stored {status}, {(content + stored) / 2**20:.0f} MiB in {pieces or 1} piece(s)"
            print(line + (f"\n  stderr: {err.strip()}" if err.strip() else ""), flush=True)
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
