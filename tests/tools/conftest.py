"""MCP fixtures: the SDK-built test server (tests/mcp_servers/calc.py) as a stdio command, and
the same server over streamable HTTP on 127.0.0.1 (a free port), started as a real process."""

from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest

from tests.tools.mcp_helpers import CALC


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """calc.py over streamable HTTP; its URL (it prints it once it listens)."""
    proc = subprocess.Popen([sys.executable, str(CALC), "--http"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # bounded: the process prints it or ends
        assert url.startswith("http://127.0.0.1:"), (url, proc.poll())
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
