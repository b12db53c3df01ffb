"""The process's standard streams as the faces find them: whether one is a terminal, and
silencing stdout once its reader is gone. Shared by the command, the one-shot face and the
subcommands; imports nothing of llmchat."""

from __future__ import annotations

import os
import sys
from typing import Any


def isatty(stream: Any) -> bool:
    """Whether `stream` is a terminal; False for a closed (None) or detached stream."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def silence_stdout() -> None:
    """The reader closed the pipe (or stdout failed): nothing more can be written, and the
    interpreter's last flush at exit must not fail about it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
