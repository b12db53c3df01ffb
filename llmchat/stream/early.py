"""A TCP connection to the server opened in a thread, before the event loop runs.

The one-shot face spends tens of milliseconds (hundreds under load) reading the prompt and the
history and importing httpx before its request can go out; a server one round trip away needs
that round trip again to accept a connection. Connecting in a thread meanwhile takes the round
trip off the time to the first token: `StreamingClient.warm_up(url, early)` hands the socket to
the request. Standard library only, so that starting it costs the command nothing.
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

_PROXY_VARIABLES = ("all_proxy", "http_proxy", "https_proxy")


@dataclass
class EarlyConnection:
    """A connection on its way to `host`:`port`; `socket` holds it (or the error) once made."""

    host: str
    port: int
    socket: "Future[socket.socket]"

    def close(self) -> None:
        """Close the socket if nobody took it (also when the connect is still on its way)."""

        def close_it(done: "Future[socket.socket]") -> None:
            if done.exception() is None:
                done.result().close()

        self.socket.add_done_callback(close_it)


def proxies_configured() -> bool:
    """Requests may go through a proxy: then a connection to the server itself is not the one
    a request would use, and none is opened early."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)


def connect_early(url: str, timeout: float) -> Optional[EarlyConnection]:
    """Start connecting to the host of `url` in a daemon thread; None when it would not be
    the connection a request uses (a proxy is configured, not http or https)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or proxies_configured():
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname if parts.hostname.isascii() else parts.hostname.encode("idna").decode("ascii")
    early = EarlyConnection(host, port, Future())

    def connect() -> None:
        try:
            # bytes: a str host costs an import of the idna codec (~1.5 ms), even when ASCII.
            sock = socket.create_connection((host.encode("ascii"), port), timeout=timeout)  # type: ignore[arg-type]  # typeshed: str only
        except BaseException as exc:  # told to whoever takes it, who then connects as usual
            early.socket.set_exception(exc)
        else:
            early.socket.set_result(sock)

    threading.Thread(target=connect, name="llmchat-connect", daemon=True).start()
    return early
