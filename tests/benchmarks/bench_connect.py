"""Connection warm-up benchmark: time to the first token with the server one round trip away,
with and without llmchat opening the connection ahead of the request.

    python tests/benchmarks/bench_connect.py                 # 50 ms round trip, 7 runs per case
    python tests/benchmarks/bench_connect.py --rtt 100 --runs 9 --cases tui-http,oneshot-http

The network: `tc netem` needs the kernel's sch_netem, which many containers and VMs lack, so
the round trip is made by a relay process in front of the fake server that holds every byte
for half a round trip in each direction, and the first bytes on a new connection until one
round trip after it was accepted (the SYN/SYN-ACK a real network charges before connect()
returns). To the client this is a server one round trip away: a cold request reaches it 1.5
round trips after connect(), a request on a warm connection half a round trip after it is
sent. For https a TLS front (a self-signed certificate made with `openssl`, trusted through
SSL_CERT_FILE) sits behind the relay, so the TLS handshake crosses the delay too.

Cases, each run with warm-up on and off, interleaved, a fresh client per run:
  tui-*      the real ChatApp headless: type a prompt, wait a typing pause (--typing), press
             Enter; figure = Enter -> first token (the turn's Metrics, monotonic clock).
  oneshot-*  `llmchat --raw --stats -m x hi` as a process; figure = spawn -> first stdout
             byte, and request sent -> first token (its --stats TTFT) alongside.
Warm-up off: `StreamingClient.warm_up` and `stream.early.connect_early` replaced by no-ops,
everything else the same code. The relay also counts connections per run (1 expected).

Prints medians (min) per case, the gain, and PASS/FAIL: the TUI's Enter -> first token must
drop by at least 0.7 of a round trip (http) with warm-up on. Writes results_connect.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_stream import Server, _child_env, _llmchat_command  # noqa: E402

CASES = ("tui-http", "tui-https", "oneshot-http", "oneshot-https")
TARGET_GAIN_RTT = 0.7  # the TUI's Enter -> first token must drop by this many round trips


# --- the relay (its own process: `bench_connect.py --relay ...`) ----------------------------


async def relay_main(upstream_port: int, rtt: float, cert: Optional[str], key: Optional[str]) -> None:
    """Listen on a free port, delay every byte to and from 127.0.0.1:upstream_port (through a
    TLS front when `cert` is given); print the port; report connections on stdin's request."""
    loop = asyncio.get_running_loop()
    half = rtt / 2
    target_port = upstream_port
    if cert:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True)

        tls_server = await asyncio.start_server(front, "127.0.0.1", 0, ssl=context)
        target_port = tls_server.sockets[0].getsockname()[1]
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        opened = loop.time()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        # Client -> server: not before the handshake round trip plus the way there.
        await asyncio.gather(
            _delayed(reader, up_writer, half, opened + rtt + half),
            _delayed(up_reader, writer, half, 0.0),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"relay on {server.sockets[0].getsockname()[1]}", flush=True)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while await stdin.readline():  # each line asks: how many connections so far?
        print(f"connections {accepted}", flush=True)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, not_before: float) -> None:
    """Copy, each chunk delivered `delay` after it was read (and not before `not_before`),
    in order."""
    loop = asyncio.get_running_loop()
    queue: "asyncio.Queue[tuple]" = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while data := await reader.read(65536):
            await queue.put((max(loop.time() + delay, not_before), data))
    finally:
        await queue.put((loop.time() + delay, None))
        await sender


class Relay:
    def __init__(self, upstream: str, rtt: float, cert: Optional[str] = None, key: Optional[str] = None) -> None:
        port = int(upstream.rsplit(":", 1)[1])
        argv = [sys.executable, str(Path(__file__).resolve()), "--relay", str(port), "--rtt", str(rtt * 1000)]
        if cert:
            argv += ["--cert", cert, "--key", str(key)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self._line(10.0)
        match = re.match(r"relay on (\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"the relay did not start: {line!r}")
        self.port = int(match.group(1))

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else ""

    def connections(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return int(self._line(10.0).split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


# --- the cases ------------------------------------------------------------------------------


def self_signed(folder: str) -> "tuple[str, str]":
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
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
            key,
            "-out",
            cert,
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
    return cert, key


def tui_once(url: str, warm: bool, typing: float) -> "tuple[float, float]":
    """Enter -> first token in the real app, headless; and request sent -> first token."""
    from textual import events

    from llmchat.config import Settings
    from llmchat.stream.client import StreamingClient
    from llmchat.tui.app import ChatApp

    original = StreamingClient.warm_up
    if not warm:
        StreamingClient.warm_up = lambda self, url, early=None: None  # type: ignore[method-assign]
    result: Dict[str, float] = {}

    async def drive() -> None:
        app = ChatApp(Settings(api="openai-chat", model="x", base_url=url), status_interval=None)
        async with app.run_test(size=(100, 30)) as pilot:
            while app.session is None:
                await pilot.pause(0.01)
            await pilot.press("h", "i")
            await asyncio.sleep(typing)  # the user still typing: what warm-up has to work with
            before = app.worker
            key = events.Key("enter", "\r")  # posted as a terminal would; Pilot.press waits for an idle CPU
            key.set_sender(app)
            enter = time.monotonic()
            app.post_message(key)
            while app.worker is before:
                await asyncio.sleep(0.005)
            worker = app.worker
            assert worker is not None
            await worker.wait()
            metrics = app.session.turns[-1].metrics
            assert metrics.first_at is not None and metrics.sent_at is not None, app.session.turns[-1].error
            result["ttft"] = metrics.first_at - enter
            result["network"] = metrics.first_at - metrics.sent_at

    try:
        asyncio.run(drive())
    finally:
        StreamingClient.warm_up = original  # type: ignore[method-assign]
    return result["ttft"], result["network"]


_COLD = (
    "import sys, llmchat.stream.early as early\n"
    "early.connect_early = lambda *args, **kw: None\n"
    "from llmchat.cli import main\n"
    "sys.argv[0] = 'llmchat'\n"
    "raise SystemExit(main())\n"
)


def oneshot_once(url: str, warm: bool, env: Dict[str, str]) -> "tuple[float, Optional[float]]":
    """Spawn -> first stdout byte; and request sent -> first token, from --stats' TTFT."""
    args = ["--raw", "--stats", "--base-url", url, "-m", "x", "hi"]
    argv = _llmchat_command() + args if warm else [sys.executable, "-c", _COLD, *args]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    first_byte = time.perf_counter() - started
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0 or not first:
        raise RuntimeError(f"llmchat failed (exit {proc.returncode}): {err.decode(errors='replace')[-300:]}")
    ttft = re.search(r"TTFT (\d+(?:\.\d+)?) ms", err.decode(errors="replace"))
    return first_byte, float(ttft.group(1)) / 1000 if ttft else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=float, default=50.0, help="round trip in ms (default 50)")
    parser.add_argument("--runs", type=int, default=7, help="runs per case and variant (default 7)")
    parser.add_argument("--typing", type=float, default=0.5, help="seconds between the first key and Enter (default 0.5)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"any of {','.join(CASES)}")
    parser.add_argument("--json", default=str(HERE / "results_connect.json"))
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)  # internal: run the relay
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rtt = args.rtt / 1000
    if args.relay is not None:
        asyncio.run(relay_main(args.relay, rtt, args.cert, args.key))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    home = tempfile.mkdtemp(prefix="bench-connect-")
    env = _child_env(home)
    os.environ.update({"LLMCHAT_HOME": home, "NO_PROXY": "127.0.0.1,localhost"})
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ.pop(name, None)
    cert, key = self_signed(home) if any(c.endswith("https") for c in cases) else (None, None)
    if cert:
        env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"] = cert
    server = Server(_llmchat_command() + ["demo-server", "--port", "0", "--tokens", "1"], env)
    relays: Dict[str, Relay] = {}
    results: Dict[str, Any] = {"rtt_ms": args.rtt, "runs": args.runs, "typing_s": args.typing, "cases": {}}
    print(f"load average before: {os.getloadavg()[0]:.2f}; round trip {args.rtt:g} ms (userspace relay), {args.runs} runs per variant", flush=True)
    try:
        relays["http"] = Relay(server.url, rtt)
        if cert:
            relays["https"] = Relay(server.url, rtt, cert, key)
        for case in cases:
            face, scheme = case.split("-")
            relay = relays[scheme]
            url = f"{scheme}://127.0.0.1:{relay.port}/v1"
            figures: Dict[str, List[float]] = {"warm": [], "cold": []}
            network: Dict[str, List[float]] = {"warm": [], "cold": []}
            connections: Dict[str, List[int]] = {"warm": [], "cold": []}
            for run in range(args.runs + 1):  # the first round warms caches and is not counted
                order = ("warm", "cold") if run % 2 else ("cold", "warm")
                for variant in order:
                    before = relay.connections()
                    if face == "tui":
                        value, sent_to_first = tui_once(url, variant == "warm", args.typing)
                    else:
                        value, sent_to_first = oneshot_once(url, variant == "warm", env)
                    if run:
                        figures[variant].append(value)
                        if sent_to_first is not None:
                            network[variant].append(sent_to_first)
                        connections[variant].append(relay.connections() - before)
            entry = {
                v: {"median_ms": statistics.median(f) * 1000, "min_ms": min(f) * 1000, "all_ms": [x * 1000 for x in f], "connections": connections[v]}
                for v, f in figures.items()
            }
            for variant, values in network.items():
                if values:
                    entry[variant]["sent_to_first_median_ms"] = statistics.median(values) * 1000
            gain = entry["cold"]["median_ms"] - entry["warm"]["median_ms"]
            entry["gain_ms"] = gain
            entry["gain_rtt"] = gain / args.rtt
            results["cases"][case] = entry
            what = "Enter -> first token" if face == "tui" else "spawn -> first byte"
            print(
                f"{case:<14} {what}: warm-up on {entry['warm']['median_ms']:7.1f} ms ({entry['warm']['min_ms']:.1f}), "
                f"off {entry['cold']['median_ms']:7.1f} ms ({entry['cold']['min_ms']:.1f}); gain {gain:6.1f} ms = {gain / args.rtt:.2f} RTT; "
                f"connections per run {sorted(set(connections['warm'] + connections['cold']))}"
                + (
                    f"; request sent -> first token: on {entry['warm']['sent_to_first_median_ms']:.1f} ms, off {entry['cold']['sent_to_first_median_ms']:.1f} ms"
                    if network["warm"]
                    else ""
                ),
                flush=True,
            )
    finally:
        for relay in relays.values():
            relay.stop()
        server.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    ok = True
    if "tui-http" in results["cases"]:
        gain = results["cases"]["tui-http"]["gain_rtt"]
        ok = gain >= TARGET_GAIN_RTT
        print(
            f"{'PASS' if ok else 'FAIL'}: the TUI's Enter -> first token drops by {gain:.2f} round trips with warm-up (target >= {TARGET_GAIN_RTT})"
        )
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
