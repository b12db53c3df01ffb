"""Every test gets its own config and data directories and no real API keys."""

from __future__ import annotations

import pytest

from llmchat.options import SETTING_ENVS

_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_HOST",
    "NO_COLOR",
    *SETTING_ENVS.values(),  # LLMCHAT_MODEL, LLMCHAT_TIMEOUT, ...: every setting's variable
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "llmchat-home"
    home.mkdir()
    monkeypatch.setenv("LLMCHAT_HOME", str(home))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return home
