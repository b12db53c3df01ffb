"""The benchmarks' own fake server (tests/benchmarks/bench_server.py) still answers: it swaps
in its named answers for the demo server's `answer_tokens`, and when that function's
arguments changed (attachments) every request to it failed, so every benchmark section that
streams timed out. One real request through `llmchat --raw` keeps them honest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_SERVER = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_server.py"


def test_the_benchmark_server_streams_its_named_answers_to_llmchat() -> None:
    server = subprocess.Popen([sys.executable, str(BENCH_SERVER), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("demo server on http://127.0.0.1:"), line
        url = line.split()[-1]
        for prompt, expected in (("list3", "- Item 3: a short line"), ("hello", "ZZEND")):
            done = subprocess.run(
                [sys.executable, "-m", "llmchat", "--raw", "--api", "openai-chat", "--base-url", f"{url}/o/tokens=30/v1", "-m", "m", prompt],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert expected in done.stdout and done.stdout.rstrip().endswith("ZZEND"), done.stdout
    finally:
        server.kill()
        _, errors = server.communicate(timeout=10)
    assert "Traceback" not in errors, errors
