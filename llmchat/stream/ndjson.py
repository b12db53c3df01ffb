"""Incremental NDJSON decoder (Ollama's stream): bytes in, JSON values out.

Lines end at LF; a CR before it is dropped; blank lines are skipped. A line split across reads
is held until its LF arrives; a final line without LF is parsed at `flush()`.
"""

from __future__ import annotations

import json
from typing import Any, List


class NDJSONError(ValueError):
    """A line that is not valid JSON."""


class NDJSONDecoder:
    def __init__(self) -> None:
        self._pending = b""

    def decode(self, chunk: bytes) -> List[Any]:
        if not chunk:
            return []
        if self._pending:
            chunk = self._pending + chunk
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        return [_parse(line) for line in lines if line.strip()]

    def flush(self) -> List[Any]:
        line, self._pending = self._pending, b""
        return [_parse(line)] if line.strip() else []


def _parse(line: bytes) -> Any:
    try:
        # json.loads accepts bytes (UTF-8) and ignores surrounding whitespace, CR included.
        return json.loads(line)
    except ValueError as exc:
        shown = line[:80].decode("utf-8", "replace")
        raise NDJSONError(f"invalid JSON line in stream: {shown!r}") from exc
