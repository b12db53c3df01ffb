"""Every test gets its own config and data directories and no real API keys."""

from __future__ import annotations

import pytest

_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_HOST",
    "LLMCHAT_PROFILE",
    "LLMCHAT_API",
    "LLMCHAT_MODEL",
    "LLMCHAT_BASE_URL",
    "LLMCHAT_SYSTEM",
    "LLMCHAT_TIMEOUT",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "llmchat-home"
    home.mkdir()
    monkeypatch.setenv("LLMCHAT_HOME", str(home))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return home
