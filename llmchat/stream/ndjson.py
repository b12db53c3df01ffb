"""Incremental NDJSON decoder (Ollama's stream): bytes in, JSON values out.

Lines end at LF; a CR before it is dropped; blank lines are skipped. A line split across reads
is held until its LF arrives; a final line without LF is parsed at `flush()`.
"""

from __future__ import annotations

import json
from typing import Any, List


class NDJSONError(ValueError):
    """A line that is not valid JSON, or one longer than the decoder's limit."""


MAX_LINE = 16 * 1024 * 1024  # bytes in one line; no real answer chunk comes near it


class NDJSONDecoder:
    """Cost is linear in the input however it is cut: an unfinished line is kept in pieces and
    joined once, at its LF. A line longer than `max_line` raises NDJSONError."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._pending: List[bytes] = []
        self._pending_size = 0

    def decode(self, chunk: bytes) -> List[Any]:
        if not chunk:
            return []
        if b"\n" not in chunk:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size > self.max_line:
                self._too_long()
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending.clear()
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        self._pending_size = len(tail)
        if self._pending_size > self.max_line:
            self._too_long()
        return [_parse(line) for line in lines if line.strip()]

    def flush(self) -> List[Any]:
        line = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return [_parse(line)] if line.strip() else []

    def _too_long(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        mb = self.max_line / (1024 * 1024)
        raise NDJSONError(f"the server sent a line longer than {mb:g} MB; stopped reading")


def _parse(line: bytes) -> Any:
    try:
        # json.loads accepts bytes (UTF-8) and ignores surrounding whitespace, CR included.
        return json.loads(line)
    except RecursionError:
        raise NDJSONError("the server sent JSON nested too deeply to read") from None
    except ValueError as exc:
        shown = line[:80].decode("utf-8", "replace")
        raise NDJSONError(f"invalid JSON line in stream: {shown!r}") from exc
