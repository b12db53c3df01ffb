"""Drafts: what was in the prompt when the TUI quit, kept per stored conversation in the data dir
(drafts/<conversation id>.txt, 0600 in a 0700 folder) and put back in the prompt when that
conversation is opened again (`llmchat -c`, `--conversation ID`, the conversation list).

The chips waiting above the prompt are kept with it (drafts/<conversation id>.attach.json: the
paths and URLs they were taken from, and the folder a relative path was relative to), and taken
again from there when the conversation is opened: the file as it is then."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Sequence

from llmchat.paths import data_dir, ensure_private_dir, write_private


def drafts_dir() -> Path:
    return data_dir() / "drafts"


def _path(conversation_id: int) -> Path:
    return drafts_dir() / f"{int(conversation_id)}.txt"


def _sources_path(conversation_id: int) -> Path:
    return drafts_dir() / f"{int(conversation_id)}.attach.json"


def save_draft(conversation_id: int, text: str) -> Optional[Path]:
    """Keep `text` as the conversation's draft (replacing any); the file, or None if it could
    not be written."""
    return _write(_path(conversation_id), text)


def save_draft_attachments(conversation_id: int, sources: Sequence[str], cwd: str) -> Optional[Path]:
    """Keep the paths and URLs of the chips waiting to be sent (`cwd`: what a relative path is
    relative to); the file, or None if it could not be written."""
    return _write(_sources_path(conversation_id), json.dumps({"cwd": cwd, "sources": list(sources)}))


def take_draft_attachments(conversation_id: int, cwd: str) -> List[str]:
    """The kept chips' sources, removed from the disk: a relative path as it was typed when
    `cwd` is the folder it was relative to, else made absolute. Empty if none (or unreadable)."""
    path = _sources_path(conversation_id)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
        base, sources = str(kept["cwd"]), [str(source) for source in kept["sources"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if base == cwd:
        return sources
    return [s if "://" in s or s.startswith("~") or os.path.isabs(s) else os.path.join(base, s) for s in sources]


def _write(path: Path, text: str) -> Optional[Path]:
    try:
        ensure_private_dir(path.parent)  # the data dir too, if this is the first file in it
        write_private(path, text)
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
