"""Incremental Server-Sent Events decoder: raw bytes in, events out.

Implements the WHATWG HTML standard's "event stream interpretation" exactly:

- one leading U+FEFF BOM is stripped; invalid UTF-8 becomes U+FFFD;
- lines end at CRLF, LF or CR only (never at U+2028, U+2029 or U+0085), and a CRLF or a
  multi-byte character may be split across two reads;
- a line starting with ":" is a comment; field names are case-sensitive; one space after the
  colon is removed; unknown fields are ignored;
- several `data` lines are joined with LF; a blank line dispatches; nothing is dispatched when
  the data buffer is empty; `id` containing NULL is ignored; `retry` must be ASCII digits;
- an event not terminated by a blank line when the stream ends is discarded.

It works on bytes and splits lines before decoding: CR and LF never occur inside a UTF-8
multi-byte sequence, so decoding each field on its own gives the same text as decoding the whole
stream, and the hot path stays in C (bytes.split, bytes.decode). No I/O, no asyncio.
"""

from __future__ import annotations

from typing import List, Optional

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event. `type` defaults to "message"."""

    __slots__ = ("type", "data", "last_event_id")

    def __init__(self, type: str, data: str, last_event_id: str = "") -> None:
        self.type = type
        self.data = data
        self.last_event_id = last_event_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.type, self.data, self.last_event_id) == (
            other.type,
            other.data,
            other.last_event_id,
        )

    def __repr__(self) -> str:
        return f"ServerSentEvent(type={self.type!r}, data={self.data!r}, last_event_id={self.last_event_id!r})"


class SSEError(ValueError):
    """The stream broke a limit the decoder keeps (an event larger than `max_event` bytes)."""


MAX_EVENT = 16 * 1024 * 1024  # bytes in one event; no real answer chunk comes near it


class SSEDecoder:
    """Feed it bytes as they arrive with `decode()`; call `flush()` at end of stream.

    Cost is linear in the input however it is cut: an unfinished line is kept as a list of
    pieces and joined once, when its line ending arrives. An event (or an unfinished line)
    larger than `max_event` bytes raises SSEError instead of growing without limit.
    """

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self.max_event = max_event
        self._pending: List[bytes] = []  # the bytes after the last line ending, in pieces
        self._pending_size = 0
        self._skip_lf = False  # the previous read ended with CR: a leading LF belongs to it
        self._at_start = True  # the BOM check is still to be made
        self._data: List[bytes] = []
        self._event_type = b""
        self._last_event_id = ""
        self.retry: Optional[int] = None  # reconnection time in ms, when the server set one

    @property
    def last_event_id(self) -> str:
        return self._last_event_id

    def decode(self, chunk: bytes) -> List[ServerSentEvent]:
        if not chunk:
            return []
        if self._at_start:
            if self._pending:
                chunk = b"".join(self._pending) + chunk  # at most two bytes held
                self._pending.clear()
                self._pending_size = 0
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._pending.append(chunk)  # maybe the start of a BOM: wait for more
                self._pending_size = len(chunk)
                return []
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
                if not chunk:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            # A CR at the very end is a complete line ending already; remember to drop the LF
            # that may start the next read.
            self._skip_lf = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:  # the line goes on: hold the piece, join it once at its end
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size > self.max_event:
                self._too_large()
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
        events: List[ServerSentEvent] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the common line: field "data", one space removed
                data.append(line[6:])
                continue
            if not line:
                if data:
                    events.append(self._dispatch())
                else:
                    self._event_type = b""
                continue
            if line[0] == 0x3A:  # ":" comment
                continue
            colon = line.find(b":")
            if colon == -1:
                name = line
                value = b""
            else:
                name = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                self._event_type = value
            elif name == b"id":
                if b"\x00" not in value:
                    self._last_event_id = value.decode("utf-8", "replace")
            elif name == b"retry":
                if value.isdigit():  # bytes.isdigit: ASCII digits only, and False when empty
                    self.retry = int(value)
        if data and sum(map(len, data)) + self._pending_size > self.max_event:
            self._too_large()  # many data lines and no blank line to end the event
        if self._pending_size > self.max_event:
            self._too_large()
        return events

    def _too_large(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._data.clear()
        mb = self.max_event / (1024 * 1024)
        raise SSEError(f"the server sent an event larger than {mb:g} MB; stopped reading")

    def flush(self) -> List[ServerSentEvent]:
        """End of stream: an event not yet terminated by a blank line is discarded."""
        self._pending.clear()
        self._pending_size = 0
        self._data.clear()
        self._event_type = b""
        self._skip_lf = False
        return []

    def _dispatch(self) -> ServerSentEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        data.clear()  # cleared in place: decode() holds a reference to this list
        event_type = self._event_type
        self._event_type = b""
        return ServerSentEvent(
            event_type.decode("utf-8", "replace") if event_type else "message",
            raw.decode("utf-8", "replace"),
            self._last_event_id,
        )
