"""Drafts: what was in the prompt when the TUI quit, kept per stored conversation in the data dir
(drafts/<conversation id>.txt, 0600 in a 0700 folder) and put back in the prompt when that
conversation is opened again (`llmchat -c`, `--conversation ID`, the conversation list)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from llmchat.paths import data_dir, ensure_private_dir


def drafts_dir() -> Path:
    return data_dir() / "drafts"


def _path(conversation_id: int) -> Path:
    return drafts_dir() / f"{int(conversation_id)}.txt"


def save_draft(conversation_id: int, text: str) -> Optional[Path]:
    """Keep `text` as the conversation's draft (replacing any); the file, or None if it could
    not be written."""
    path = _path(conversation_id)
    try:
        ensure_private_dir(path.parent)  # the data dir too, if this is the first file in it
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError:
        return None
    return path


def take_draft(conversation_id: int) -> Optional[str]:
    """The conversation's draft, removed from the disk (it is in the prompt now); None if none."""
    path = _path(conversation_id)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        path.unlink()
    except OSError:
        return None
    return text or None
