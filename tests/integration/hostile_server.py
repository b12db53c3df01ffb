"""A hostile HTTP server on loopback: answers every request with the exact bytes it was given,
so a test can send what no well-behaved server (nor the fake LLM server) would -- control
sequences in a reason phrase, an HTML title, a JSON error, a stream's error event."""

from __future__ import annotations

import socket
import threading
from typing import List


class HostileServer:
    """`with HostileServer(response) as server:` -- `server.url` answers every request with
    `response` (raw HTTP bytes) and closes the connection. `requests` holds what came in."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: List[bytes] = []
        self._closing = False
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "HostileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Closing the socket does not wake a thread blocked in accept() (Linux): every test
        # waited the whole join timeout, 5 s. A connection of our own wakes it to see `_closing`.
        self._closing = True
        try:
            socket.create_connection(self._sock.getsockname(), timeout=5).close()
        except OSError:
            pass
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._closing:
                conn.close()
                return
            with conn:
                data = b""
                conn.settimeout(5)
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
                    while len(body) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        body += chunk
                    self.requests.append(head + b"\r\n\r\n" + body)
                    conn.settimeout(60)  # sendall's timeout bounds the whole send: a long answer needs room
                    conn.sendall(self.response)
                except OSError:
                    pass


def http(status_line: str | bytes, content_type: str, body: bytes) -> bytes:
    """A whole response: the status line as given (bytes: exactly those bytes), one body."""
    line = status_line if isinstance(status_line, bytes) else status_line.encode()
    return line + f"\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
