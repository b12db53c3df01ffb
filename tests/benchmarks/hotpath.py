"""The per-token hot path measured in-process, without start-up, shutdown or the server's CPU.

    python tests/benchmarks/hotpath.py [--url http://127.0.0.1:PORT] [--tokens 20000]

A real answer body is captured once per API from the fake server (a bare socket, de-chunked),
then replayed from memory in network-sized pieces through:

- `baseline`: the hand-written splitter of baseline_httpx.py, one write+flush per piece;
- `pipeline`: llmchat's framing decoder -> provider decoder -> Metrics.observe -> RawWriter,
  the loop StreamingClient.stream and OneShot._consume run, without asyncio or httpx;
- `client`: the whole StreamingClient (httpx.AsyncClient over a MockTransport that serves the
  pieces) consumed the way OneShot._consume does, into a RawWriter.

Output goes into a real pipe drained by a thread, so write syscalls cost what they cost on a
pipe. Figures are CPU-bound and far less sensitive to other load than the process timings.
Without --url a demo server is started in this process, on its own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "hi"
MODEL = "x"
PIECE = 16 * 1024  # bytes per replayed read: about what the server sends per write (256 tokens)
APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")


def _base_url(url: str, api: str, tokens: int) -> str:
    return f"{url}/o/tokens={tokens}" + ("/v1" if api.startswith("openai") else "")


def _request(api: str, url: str, tokens: int):
    from llmchat.conversation import ChatRequest, Message
    from llmchat.providers import get_provider

    provider = get_provider(api)
    request = ChatRequest(model=MODEL, messages=[Message("user", PROMPT)], base_url=_base_url(url, api, tokens))
    return provider, request


def capture(url: str, api: str, tokens: int, timeout: float = 30.0) -> bytes:
    """The de-chunked response body the server sends llmchat for `api`."""
    import json
    from urllib.parse import urlsplit

    provider, request = _request(api, url, tokens)
    spec = provider.build_request(request)
    target = urlsplit(spec.url)
    body = json.dumps(spec.json).encode()
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    raw = bytearray()
    with socket.create_connection((target.hostname, target.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            raw += data
    head_end = raw.index(b"\r\n\r\n") + 4
    rest = bytes(raw[head_end:])
    out = bytearray()
    while True:  # de-chunk
        line_end = rest.index(b"\r\n")
        size = int(rest[:line_end], 16)
        if size == 0:
            break
        out += rest[line_end + 2 : line_end + 2 + size]
        rest = rest[line_end + 2 + size + 2 :]
    return bytes(out)


def pieces(body: bytes, size: int = PIECE) -> List[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


class PipeSink:
    """A binary file object writing into a pipe that a thread drains."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "wb")
        self._read = read_fd
        self.received = 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            data = os.read(self._read, 1 << 16)
            if not data:
                break
            self.received += len(data)

    def close(self) -> int:
        self.file.close()
        self._thread.join(10)
        os.close(self._read)
        return self.received


def run_baseline(chunks: List[bytes], out) -> None:
    from baseline_httpx import _Splitter

    splitter = _Splitter()
    for chunk in chunks:
        text = splitter.feed(chunk)
        if text:
            out.write(text.encode("utf-8"))
            out.flush()
        if splitter.done:
            return


def run_pipeline(api: str, chunks: List[bytes], out) -> None:
    """StreamingClient.stream's inner loop and OneShot._consume, minus asyncio and httpx."""
    from llmchat.output import RawWriter
    from llmchat.providers import get_provider
    from llmchat.stream.events import TextDelta
    from llmchat.stream.metrics import Metrics
    from llmchat.stream.ndjson import NDJSONDecoder
    from llmchat.stream.sse import SSEDecoder

    provider = get_provider(api)
    decoder = provider.new_decoder()
    framing = SSEDecoder() if provider.framing == "sse" else NDJSONDecoder()
    metrics = Metrics()
    metrics.start()
    observe = metrics.observe
    writer = RawWriter(out, sanitize=False)
    write = writer.write
    for chunk in chunks:
        for item in framing.decode(chunk):
            for event in decoder.feed(item):
                observe(event)
                if type(event) is TextDelta:
                    write(event.text)
            if decoder.done:
                writer.close()
                return
    writer.close()


def run_client(api: str, chunks: List[bytes], out) -> None:
    """The whole StreamingClient over an in-memory transport, consumed like OneShot._consume."""
    import httpx

    from llmchat.output import RawWriter
    from llmchat.stream.client import StreamingClient
    from llmchat.stream.events import Finish, ReasoningDelta, StreamError, TextDelta
    from llmchat.stream.metrics import Metrics

    ctype = "application/x-ndjson" if api == "ollama" else "text/event-stream; charset=utf-8"

    class Replay(httpx.AsyncByteStream):
        async def __aiter__(self):
            for chunk in chunks:
                await asyncio.sleep(0)  # a network read gives the event loop a turn
                yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": ctype}, stream=Replay())

    provider, request = _request(api, "http://127.0.0.1:9", 0)

    async def main() -> None:
        client = StreamingClient(transport=httpx.MockTransport(handler))
        metrics = Metrics()
        writer = RawWriter(out, sanitize=False)
        write = writer.write
        events = client.stream(provider, request, metrics)
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    write(event.text)
                elif kind is ReasoningDelta:
                    pass
                elif kind is Finish or kind is StreamError:
                    last = event
        finally:
            await events.aclose()
            writer.close()
            await client.aclose()
        if type(last) is not Finish:
            raise RuntimeError(f"the replayed stream did not finish: {last!r}")

    asyncio.run(main())


def timed(fn: Callable[..., None], *args, repeat: int) -> Dict[str, float]:
    """Wall and CPU seconds per call (median and min over `repeat`), output bytes checked."""
    walls, cpus, sizes = [], [], set()
    for _ in range(repeat):
        sink = PipeSink()
        c0, t0 = time.process_time(), time.perf_counter()
        fn(*args, sink.file)
        sink.file.flush()
        t1, c1 = time.perf_counter(), time.process_time()
        sizes.add(sink.close())
        walls.append(t1 - t0)
        cpus.append(c1 - c0)
    return {"wall_median": statistics.median(walls), "wall_min": min(walls), "cpu_median": statistics.median(cpus), "bytes": sorted(sizes)}


def measure(url: str, tokens: int, repeat: int = 7, apis=APIS) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    bodies = {api: capture(url, api, tokens) for api in apis}
    chat = pieces(bodies["openai-chat"])
    results["baseline splitter (openai-chat)"] = timed(run_baseline, chat, repeat=repeat)
    for api in apis:
        results[f"pipeline {api}"] = timed(run_pipeline, api, pieces(bodies[api]), repeat=repeat)
    results["client openai-chat (httpx MockTransport)"] = timed(run_client, "openai-chat", chat, repeat=repeat)
    for r in results.values():
        r["tokens"] = tokens
        r["tokens_per_s"] = tokens / r["wall_median"]
    return results


def print_results(results: Dict[str, dict]) -> None:
    base = results["baseline splitter (openai-chat)"]["wall_median"]
    print(
        f"{'in-process hot path (' + str(PIECE // 1024) + ' KiB reads, into a pipe)':<52} {'wall ms':>8} {'min':>7} {'CPU ms':>7} {'tok/s':>11} {'x base':>7}  bytes"
    )
    for name, r in results.items():
        print(
            f"{name:<52} {r['wall_median'] * 1000:8.1f} {r['wall_min'] * 1000:7.1f} {r['cpu_median'] * 1000:7.1f} "
            f"{r['tokens_per_s']:11,.0f} {r['wall_median'] / base:7.2f}  {','.join(map(str, r['bytes']))}"
        )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running demo server (default: start one on a thread)")
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.url:
        print_results(measure(args.url.rstrip("/"), args.tokens, args.repeat))
        return 0
    from llmchat.demo.server import ServerThread

    with ServerThread() as server:
        print_results(measure(server.url, args.tokens, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
