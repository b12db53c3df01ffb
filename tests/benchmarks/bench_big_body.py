"""How long a request carrying a big attachment stalls the event loop that sends it.

A 10 ms ticker runs on the loop while `StreamingClient.stream` sends a request with a 10 MB PDF
(about 13.4 MB of base64 in the JSON body) to the fake server (its own process, so its reading
of the body costs this process nothing) and reads the answer. The figure is the ticker's
largest lateness: how long the loop could not run anything else (in the TUI: no key, no frame).
Also the time from the call to the first event, and a small request's for comparison.

    python tests/benchmarks/bench_big_body.py            # 5 runs per API
    python tests/benchmarks/bench_big_body.py --runs 9 --mb 20

The attachment is encoded before the request (`attachments.prepare`, as both faces do, off the
loop); what is measured is building the request, serialising the body and sending it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tempfile  # noqa: E402

from bench_stream import Server, _child_env  # noqa: E402

from llmchat.attachments import from_bytes, prepare  # noqa: E402
from llmchat.conversation import ChatRequest, Message  # noqa: E402
from llmchat.providers import provider_class  # noqa: E402
from llmchat.stream.client import StreamingClient  # noqa: E402

APIS = ("openai-chat", "openai-responses", "anthropic")
TICK = 0.010


def big_pdf(megabytes: float) -> bytes:
    """A PDF header and `megabytes` of incompressible bytes: what matters here is the size."""
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Page >>\nendobj\n" + os.urandom(int(megabytes * 1024 * 1024))


async def one(client: StreamingClient, api: str, url: str, message: Message) -> Tuple[float, float]:
    """(largest ticker lateness, seconds from the call to the first event)."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            worst = max(worst, loop.time() - due)

    provider = provider_class(api)()
    base = url + "/o/tokens=5" + ("/v1" if api.startswith("openai") else "")
    request = ChatRequest(model="m", messages=[message], base_url=base, max_tokens=16)
    task = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 2)  # the ticker is running
    started = time.perf_counter()
    first = None
    async for event in client.stream(provider, request):
        if first is None:
            first = time.perf_counter() - started
        if type(event).__name__ == "StreamError":
            raise RuntimeError(f"{api}: {event}")
    stop.set()
    await task
    return worst, first or 0.0


async def run(url: str, runs: int, megabytes: float) -> Dict[str, Dict[str, List[float]]]:
    pdf = from_bytes("big.pdf", big_pdf(megabytes))
    prepare([pdf], APIS)  # as the faces do, in a worker thread, for the run's API
    big = Message("user", "summarise", (pdf,))
    small = Message("user", "hi")
    out: Dict[str, Dict[str, List[float]]] = {}
    async with StreamingClient() as client:
        for api in APIS:
            await one(client, api, url, small)  # warm: connection, imports
            figures: Dict[str, List[float]] = {"stall": [], "first": [], "small_stall": [], "small_first": []}
            for _ in range(runs):
                stall, first = await one(client, api, url, big)
                figures["stall"].append(stall)
                figures["first"].append(first)
                stall, first = await one(client, api, url, small)
                figures["small_stall"].append(stall)
                figures["small_first"].append(first)
            out[api] = figures
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=float, default=10.0, help="the PDF's size in MB (default 10)")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-big-body-")
    server = Server([sys.executable, "-m", "llmchat", "demo-server", "--port", "0"], _child_env(home))
    try:
        results = asyncio.run(run(server.url, args.runs, args.mb))
    finally:
        server.stop()
    print(f"{args.mb:g} MB PDF, {args.runs} runs; medians [max], ms")
    print(f"{'api':18} {'loop stall':>18} {'to 1st event':>18} {'small: stall':>18} {'small: 1st event':>18}")
    for api, f in results.items():
        cells = [f"{statistics.median(v) * 1e3:7.1f} [{max(v) * 1e3:6.1f}]" for v in (f["stall"], f["first"], f["small_stall"], f["small_first"])]
        print(f"{api:18} " + " ".join(f"{c:>18}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
