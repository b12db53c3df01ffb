"""Warm connections: the connection a request goes out on is opened before it is needed (while
the user types, or while the one-shot face reads its prompt), and the request uses it. Judged
by what the server sees -- how many connections, and which one carried the request -- never by
timing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from llmchat.conversation import ChatRequest, Message
from llmchat.providers import get_provider
from llmchat.stream.client import StreamingClient
from llmchat.stream.warm import WarmBackend


async def poll(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def ask(client: StreamingClient, url: str) -> list:
    request = ChatRequest(model="m", messages=[Message("user", "hi")], base_url=url)
    return [event async for event in client.stream(get_provider("openai-chat"), request)]


async def test_the_request_goes_out_on_the_connection_warm_up_opened(srv):
    url = srv.base_url("openai-chat", tokens=2)
    before = srv.server.connections
    async with StreamingClient() as client:
        assert isinstance(client._warm, WarmBackend)  # guard: httpx still lets the pool take our backend
        client.warm_up(url)
        await poll(lambda: srv.server.connections == before + 1, "the warm connection")
        assert not [r for r in srv.requests if r.connection > before]  # opened, nothing sent yet
        client.warm_up(url)  # typing on: the connection is there, no second one
        events = await ask(client, url)
        assert type(events[-1]).__name__ == "Finish"
        assert client._warm.handed_over == 1
    assert srv.server.connections == before + 1
    assert srv.requests[-1].connection == before + 1


async def test_a_warm_connection_the_server_closed_is_replaced_not_used():
    """The server hung up on the idle warm connection: the request connects anew and works."""
    seen = []

    async def serve(reader, writer):
        seen.append(len(seen) + 1)
        if len(seen) == 1:
            writer.close()  # an idle connection closed by the server
            return
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"data": [{"id": "fresh"}]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        async with StreamingClient() as client:
            client.warm_up(url)
            await poll(lambda: seen == [1], "the warm connection")
            task = client._warm._ready[next(iter(client._warm._ready))][1]
            stream = await task
            await poll(lambda: stream.get_extra_info("is_readable"), "the server's close to arrive")
            assert await client.list_models(get_provider("openai-chat"), url) == ["fresh"]
            assert client._warm.handed_over == 0
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [1, 2]


async def test_a_warm_up_that_cannot_connect_changes_nothing_for_the_request(srv):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with StreamingClient(max_retries=0) as client:
        client.warm_up(f"http://127.0.0.1:{port}/v1")
        events = await ask(client, f"http://127.0.0.1:{port}/v1")
    assert [type(e).__name__ for e in events] == ["StreamError"]
    assert events[0].message.startswith(f"cannot connect to 127.0.0.1:{port}")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "https_proxy", "ALL_PROXY"])
async def test_no_warm_up_when_a_proxy_may_carry_the_request(srv, monkeypatch, variable):
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    before = srv.server.connections
    async with StreamingClient() as client:
        client.warm_up(srv.base_url("openai-chat"))
        assert client._warm is None  # httpx's own transport, which reads the proxy variables
    assert srv.server.connections == before


def test_one_shot_connects_while_it_is_still_reading_the_prompt(srv, env):
    """stdin stays open until the server has accepted a connection: that connection was opened
    before the prompt was read, and the request goes out on it."""
    before = srv.server.connections
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmchat", "--raw", "--base-url", srv.base_url("openai-chat", tokens=2), "-m", "m"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=env["LLMCHAT_HOME"],
    )
    try:
        assert srv.wait_for(lambda _: srv.server.connections == before + 1, timeout=20), "no early connection"
        assert proc.poll() is None  # still waiting for its prompt
        out, err = proc.communicate(b"hi", timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, err) == (0, b"")
    assert out
    assert srv.server.connections == before + 1
    assert srv.requests[-1].connection == before + 1 and srv.requests[-1].outcome == "complete"


@pytest.mark.parametrize("args", [["--no-history"], []])
def test_one_shot_sends_on_the_early_connection_with_and_without_history(srv, run, args):
    before = srv.server.connections
    code, out, err = run("--raw", *args, "--base-url", srv.base_url("openai-chat", tokens=2), "-m", "m", "hi")
    assert (code, err) == (0, "")
    assert srv.server.connections == before + 1
    assert srv.requests[-1].connection == before + 1


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


async def test_a_warm_tls_connection_is_used_although_the_server_sent_session_tickets(certificate):
    """TLS 1.3 servers send session tickets after the handshake: data waiting on an idle TLS
    connection is not a sign that it was closed."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    seen = []

    async def serve(reader, writer):
        seen.append(writer.get_extra_info("ssl_object").version())
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"data": [{"id": "secure"}]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        async with StreamingClient(verify=True) as client:
            client.warm_up(url)
            await poll(lambda: seen == ["TLSv1.3"], "the TLS handshake")
            stream = await client._warm._ready[("127.0.0.1", int(url.split(":")[2].split("/")[0]))][1]
            await poll(lambda: stream.get_extra_info("is_readable"), "the session tickets")
            client.warm_up(url)  # typing on: still the same connection
            assert await client.list_models(get_provider("openai-chat"), url) == ["secure"]
            assert client._warm.handed_over == 1
    finally:
        server.close()
        await server.wait_closed()
    assert len(seen) == 1


async def test_closing_the_client_closes_a_warm_connection_nobody_used(srv):
    before = srv.server.connections
    client = StreamingClient()
    client.warm_up(srv.base_url("openai-chat"))
    await poll(lambda: srv.server.connections == before + 1, "the warm connection")
    task = next(iter(client._warm._ready.values()))[1]
    stream = await task
    await client.aclose()
    assert stream.get_extra_info("is_readable")  # closed: reading would give EOF at once
    assert not client._warm._ready
