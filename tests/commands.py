"""How tests run llmchat as a process, shared by every test folder (import as `commands`)."""

from __future__ import annotations

import sys

RUN_TIMEOUT = 30.0  # seconds a llmchat run may take before a test gives up on it


def llmchat_command(*args: str) -> list:
    return [sys.executable, "-m", "llmchat", *args]
