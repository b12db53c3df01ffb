"""Warm connections: the TCP (and TLS) connection a request will need, opened before it is sent.

httpx opens a connection when a request is sent: on a server one round trip away the request
waits a round trip for TCP and another for TLS. `WarmBackend` is the network backend of the
client's connection pool: `preconnect` opens a connection in the background (or adopts one a
thread opened, see early.py), and when the pool next asks to connect to that host and port it
gets that connection, already open, instead of a new one. Nothing is sent on it until the real
request, so the server sees one connection and one request.

It never delays or breaks the request: a warm connection that failed, that the server closed,
or that is older than `MAX_AGE` is dropped and the pool connects as it would have; one still
opening is waited for (it started earlier than a new one would).

httpx 0.29 has no public way to give its pool a network backend. httpcore's
`AsyncConnectionPool(network_backend=...)` is public, so `warm_transport` builds httpx's own
`AsyncHTTPTransport` and replaces its pool (the private `_pool`) with one built the same way
plus the backend, and `_adopt` wraps a thread's socket in httpcore's `AnyIOStream` (private
too). Both are feature-checked: without them there is no warm-up and httpx runs as shipped.
Guard test: tests/integration/test_warm.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any, Dict, Optional, Tuple

import httpcore
import httpx

from llmchat.stream.early import EarlyConnection

MAX_AGE = 20.0  # seconds a warm connection is kept: servers close idle ones, some after 30 s

Key = Tuple[str, int]


class _Opened(httpcore.AsyncNetworkStream):
    """A connection whose TLS is already up: the pool's `start_tls` gets it as it is."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> httpcore.AsyncNetworkStream:
        return self._stream

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class WarmBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend, plus connections opened ahead of the request (one per host
    and port: one request at a time goes out)."""

    def __init__(self, ssl_context: ssl.SSLContext, clock: Any = time.monotonic) -> None:
        self.pool: Optional[httpcore.AsyncConnectionPool] = None  # the pool this backend serves
        self._inner = httpcore.AnyIOBackend()
        self._ssl_context = ssl_context
        self._clock = clock
        self._ready: Dict[Key, Tuple[float, "asyncio.Task[httpcore.AsyncNetworkStream]"]] = {}
        self.handed_over = 0  # connections a request got warm (tests, the benchmark)

    def holds(self, scheme: str, host: str, port: int) -> bool:
        """A connection to host:port is ready for the next request or on its way: a young
        warm one still open or opening, or an idle one in the pool (kept alive after a request)."""
        entry = self._ready.get((host, port))
        if entry is not None and self._clock() - entry[0] < MAX_AGE:
            task = entry[1]
            if not task.done() or task.cancelled() or task.exception() is not None:
                return True  # opening; or failed, and not tried again before MAX_AGE
            if _usable(task.result()):
                return True
        origin = httpcore.Origin(scheme.encode("ascii"), host.encode("ascii"), port)
        connections = self.pool.connections if self.pool is not None else []
        return any(c.can_handle_request(origin) and c.is_idle() and not c.has_expired() for c in connections)

    def preconnect(self, scheme: str, host: str, port: int, timeout: Optional[float], early: Optional[EarlyConnection] = None) -> None:
        """Open a connection to host:port in the background (TLS too for https), adopting
        `early`'s socket when it has one, unless one is ready already (see `holds`)."""
        tls = scheme == "https"
        if self.holds(scheme, host, port):
            if early is not None:
                early.close()
            return
        self._drop(self._ready.pop((host, port), None))
        task = asyncio.ensure_future(self._open(host, port, tls, timeout, early))
        task.add_done_callback(_retrieve)
        self._ready[(host, port)] = (self._clock(), task)

    async def _open(self, host: str, port: int, tls: bool, timeout: Optional[float], early: Optional[EarlyConnection]) -> httpcore.AsyncNetworkStream:
        stream = None
        if early is not None:
            if (early.host, early.port) == (host, port):
                stream = await self._adopt(early)
            else:
                early.close()
        if stream is None:
            stream = await self._inner.connect_tcp(host, port, timeout=timeout)
        if not tls:
            return stream
        self._ssl_context.set_alpn_protocols(["http/1.1"])  # what the pool asks for (no HTTP/2)
        return _Opened(await stream.start_tls(self._ssl_context, server_hostname=host, timeout=timeout))

    async def _adopt(self, early: EarlyConnection) -> Optional[httpcore.AsyncNetworkStream]:
        """The thread's socket as an httpcore stream; None (socket closed) if it failed or
        this httpcore cannot wrap one."""
        try:
            sock = await asyncio.wrap_future(early.socket)
        except (OSError, asyncio.CancelledError):
            return None
        try:
            import anyio
            from httpcore._backends.anyio import AnyIOStream  # private: see the module's docstring

            return AnyIOStream(await anyio.abc.SocketStream.from_socket(sock))
        except (ImportError, AttributeError, TypeError, ValueError, OSError):
            sock.close()
            return None

    async def connect_tcp(
        self, host: str, port: int, timeout: Optional[float] = None, local_address: Optional[str] = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        entry = self._ready.pop((host, port), None)
        if entry is not None and local_address is None and not socket_options:
            opened_at, task = entry
            try:
                stream = await task
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError):
                stream = None
            if stream is not None:
                if self._clock() - opened_at < MAX_AGE and _usable(stream):
                    self.handed_over += 1
                    return stream
                await stream.aclose()  # too old, or the server closed it
        else:
            self._drop(entry)
        return await self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address, socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: Optional[float] = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def aclose(self) -> None:
        """Close every warm connection nobody took."""
        tasks = [task for _, task in self._ready.values()]
        self._ready.clear()
        for task in tasks:
            task.cancel()  # no effect on a finished one
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, httpcore.AsyncNetworkStream):
                await result.aclose()

    def _drop(self, entry: Optional[Tuple[float, "asyncio.Task[httpcore.AsyncNetworkStream]"]]) -> None:
        if entry is None:
            return
        task = entry[1]
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            asyncio.ensure_future(task.result().aclose()).add_done_callback(_retrieve)


def _usable(stream: httpcore.AsyncNetworkStream) -> bool:
    """Not closed by the server. A plain connection must have nothing to read (EOF is
    readable too); a TLS one may hold the session tickets TLS 1.3 servers send after the
    handshake, so there the question is whether the server's FIN arrived."""
    if not isinstance(stream, _Opened):
        return not stream.get_extra_info("is_readable")
    sock = stream.get_extra_info("socket")
    if sock is None:
        return False
    if hasattr(socket, "TCP_INFO"):  # Linux: the TCP state itself
        try:
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_ESTABLISHED
        except OSError:
            pass
    try:  # elsewhere: EOF with nothing before it
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


_TCP_ESTABLISHED = 1


def _retrieve(task: "asyncio.Future[Any]") -> None:
    """A failed warm-up is nobody's error: the request connects as usual."""
    if not task.cancelled():
        task.exception()


def warm_transport(verify: bool, trust_env: bool = True) -> Tuple[Optional[httpx.AsyncHTTPTransport], Optional[WarmBackend]]:
    """httpx's default transport with a `WarmBackend` under its pool; (None, None) when this
    httpx does not build its transport the way this expects (then httpx makes its own)."""
    ssl_context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=trust_env)
    stock = getattr(transport, "_pool", None)
    if type(stock) is not httpcore.AsyncConnectionPool:
        return None, None
    limits = httpx.Limits()  # httpx's defaults, as the transport it replaces had
    backend = WarmBackend(ssl_context)
    backend.pool = transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport, backend
