"""History fixtures: the fake LLM server on loopback, an isolated LLMCHAT_HOME per test, and
`run` for llmchat as a real subprocess (helpers in history_helpers.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import pytest
from history_helpers import command

from llmchat.demo.server import ServerThread

_REMOVED = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_HOST",
    "NO_COLOR",
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
def home(isolated_home: Path) -> Path:
    return isolated_home  # tests/conftest.py: LLMCHAT_HOME for this test, in-process too


@pytest.fixture
def db_path(home: Path) -> Path:
    return home / "data" / "history.db"


@pytest.fixture
def env(home: Path) -> Dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _REMOVED and not k.startswith("LLMCHAT_")}
    clean["LLMCHAT_HOME"] = str(home)
    clean["NO_PROXY"] = clean["no_proxy"] = "127.0.0.1,localhost"
    return clean


@pytest.fixture
def run(env: Dict[str, str]) -> Callable[..., Tuple[int, bytes, str]]:
    """run(*args, input=b"", env=None) -> (exit code, stdout bytes, stderr text)."""

    def runner(*args: str, input: bytes = b"", env: Optional[Dict[str, str]] = None, timeout: float = 30.0):
        use = env if env is not None else default_env
        proc = subprocess.run(
            command(*args),
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=use,
            cwd=use["LLMCHAT_HOME"],
            timeout=timeout,
        )
        return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")

    default_env = env
    return runner


@pytest.fixture
def write_config(home: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = home / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
