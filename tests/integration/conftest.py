"""Integration fixtures: one fake LLM server on loopback, an isolated environment per test,
and helpers that run `python -m llmchat` as a real subprocess with real pipes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import pytest
from commands import RUN_TIMEOUT, llmchat_command  # tests/commands.py

from llmchat.demo.server import ServerThread

# Variables that would let the developer's own setup leak into a test.
_REMOVED = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_HOST",
    "NO_COLOR",
    # Traffic goes to 127.0.0.1 only, never through a proxy.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
}


@pytest.fixture(scope="session")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "cli-home"
    root.mkdir()
    return root


@pytest.fixture
def env(home: Path) -> Dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _REMOVED and not k.startswith("LLMCHAT_")}
    clean["LLMCHAT_HOME"] = str(home)
    clean["NO_PROXY"] = clean["no_proxy"] = "127.0.0.1,localhost"
    return clean


def run_llmchat(
    args: Sequence[str],
    env: Dict[str, str],
    input: bytes = b"",
    timeout: float = RUN_TIMEOUT,
) -> Tuple[int, bytes, str]:
    """Run llmchat to the end: (exit code, stdout bytes, stderr text). stdin is always a pipe."""
    proc = subprocess.run(
        llmchat_command(*args),
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=env["LLMCHAT_HOME"],
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


@pytest.fixture
def run(env: Dict[str, str]):
    """run(*args, input=b"", env=None, timeout=30) -> (exit code, stdout bytes, stderr text)."""

    def runner(*args: str, input: bytes = b"", env: Optional[Dict[str, str]] = None, timeout: float = RUN_TIMEOUT):
        return run_llmchat(args, env if env is not None else default_env, input=input, timeout=timeout)

    default_env = env
    return runner


@pytest.fixture
def write_config(home: Path):
    def write(text: str) -> Path:
        path = home / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
