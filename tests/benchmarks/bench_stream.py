"""Streaming benchmark: llmchat against a minimal httpx reader, on the fake LLM server.

    python tests/benchmarks/bench_stream.py [--runs N] [--tokens T] [--json PATH]

Everything runs as real processes on 127.0.0.1: the fake server (`llmchat demo-server`) in one,
each client in its own, its stdout a pipe read by this script. Per run it records the time from
spawn to the first stdout byte, to stdout EOF and to exit, the exit code, the bytes written and
the peak RSS of the client process (from wait4's rusage). Cases are interleaved round by round,
with the starting case rotated, after one warm-up round that is not counted.

See README.md next to this file for what each figure means and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline_httpx.py"
DEFAULT_JSON = HERE / "results.json"
PROMPT = "hi"
MODEL = "x"

# Targets (from the issue; a 2-core machine).
TARGET_TPS = 80_000.0  # tokens/s through `llmchat --raw`, 20k-token answer
TARGET_TTFT_RATIO = 1.3  # spawn-to-first-token, llmchat --raw / minimal httpx script
TARGET_RSS_GROWTH_MB = 40.0  # peak RSS growth of llmchat from 2k to 100k tokens


# --- processes -----------------------------------------------------------------------------


def _llmchat_command() -> List[str]:
    """The installed console script next to this interpreter (no pyenv/shim wrapper), else -m."""
    script = Path(sys.executable).with_name("llmchat")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "llmchat"]


def _child_env(home: str) -> Dict[str, str]:
    """The user's environment minus what could change the outcome: keys, llmchat settings,
    proxies (loopback must stay direct), a config file in the user's home."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (
            k.startswith("LLMCHAT_")
            or k.endswith("_API_KEY")
            or k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
            or k in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "PYTHONPROFILEIMPORTTIME")
        )
    }
    env.pop("PYTHONUNBUFFERED", None)
    # With PYTHONDONTWRITEBYTECODE set (some sandboxes and CI images set it), every llmchat
    # module is compiled from source at every start, which an installed llmchat never does
    # (pip writes .pyc files; an editable install writes them on its first run, the warm-up).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["LLMCHAT_HOME"] = home  # an empty config: flags alone decide
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


class Server:
    """A fake LLM server in its own process (`argv`, e.g. `llmchat demo-server --port 0`, or
    the TUI benchmark's bench_server.py); `url` once it printed its "demo server on" line."""

    def __init__(self, argv: List[str], env: Dict[str, str], startup_timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C on the benchmark does not reach it; we stop it
        )
        self.url = self._wait_for_url(startup_timeout)

    def _wait_for_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(fd, 4096)
            if not data:
                break
            seen += data
            match = re.search(rb"demo server on (http://127\.0\.0\.1:\d+)", seen)
            if match:
                # Keep draining what it may still say, so a full pipe can never block it.
                threading.Thread(target=self._drain, args=(fd,), daemon=True).start()
                return match.group(1).decode()
        self.stop()
        raise RuntimeError(f"the demo server did not start within {timeout:g} s; it said: {seen.decode(errors='replace')!r}")

    def _drain(self, fd: int) -> None:
        try:
            while os.read(fd, 65536):
                pass
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # stdout is left to the drain thread (closing it under a blocked read is unsafe); it
        # reads EOF now that the server has exited.


@dataclass
class Run:
    first_byte: Optional[float]  # s from spawn to the first stdout byte
    last_byte: Optional[float]  # s from spawn to the last stdout byte
    exit: float  # s from spawn to the process reaped
    code: int
    nbytes: int
    rss_mb: float  # peak resident set size of the process (wait4 ru_maxrss)
    cpu_s: float  # user + system CPU time of the process
    error: str = ""


def run_process(argv: Sequence[str], env: Dict[str, str], timeout: float) -> "tuple[Run, bytes]":
    """Spawn, read stdout to EOF, reap with wait4; bounded by `timeout` (then killed)."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
    killed = threading.Event()

    def _kill() -> None:
        killed.set()
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(timeout, _kill)
    watchdog.daemon = True
    watchdog.start()
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    chunks: List[bytes] = []
    first = last = None
    try:
        while True:
            data = os.read(fd, 1 << 16)  # EOF only when the process closes stdout: at exit
            if not data:
                break
            last = time.perf_counter() - t0
            if first is None:
                first = last
            chunks.append(data)
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    finally:
        watchdog.cancel()
        proc.stdout.close()
        if proc.returncode is None:
            _kill()
            proc.wait()
    err.seek(0)
    stderr = err.read().decode("utf-8", "replace").strip()
    err.close()
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KiB on Linux
    rss = usage.ru_maxrss * scale / (1024 * 1024)
    out = b"".join(chunks)
    error = ""
    if killed.is_set():
        error = f"killed after {timeout:g} s"
    elif proc.returncode != 0:
        error = f"exit {proc.returncode}: {stderr[-300:]}"
    cpu = usage.ru_utime + usage.ru_stime
    return Run(first, last, ended, proc.returncode, len(out), rss, cpu, error), out


# --- cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    argv: List[str]
    tokens: int
    group: str  # "throughput" | "first_token" | "rss"
    is_llmchat: bool
    runs: List[Run] = field(default_factory=list)
    mismatches: int = 0
    reference_bytes: Optional[int] = None  # length of the expected output

    def ok_runs(self) -> List[Run]:
        return [r for r in self.runs if not r.error]


def build_cases(url: str, llmchat: List[str], tokens: int) -> List[Case]:
    def opts(n: int) -> str:
        return f"{url}/o/tokens={n}"

    def chat(base: str, *extra: str) -> List[str]:
        return llmchat + list(extra) + ["--base-url", base, "-m", MODEL, PROMPT]

    base = [sys.executable, str(BASELINE)]
    cases = [
        Case("base_sync", "baseline httpx (sync iter_raw)", base + [opts(tokens) + "/v1", PROMPT], tokens, "throughput", False),
        Case("base_async", "baseline httpx (async aiter_raw)", base + [opts(tokens) + "/v1", PROMPT, "--async"], tokens, "throughput", False),
        Case("raw_chat", "llmchat --raw (openai-chat)", chat(opts(tokens) + "/v1", "--raw"), tokens, "throughput", True),
        Case("pipe_chat", "llmchat, no --raw, to a pipe", chat(opts(tokens) + "/v1"), tokens, "throughput", True),
        Case(
            "raw_responses",
            "llmchat --raw --api openai-responses",
            chat(opts(tokens) + "/v1", "--raw", "--api", "openai-responses"),
            tokens,
            "throughput",
            True,
        ),
        Case("raw_anthropic", "llmchat --raw --api anthropic", chat(opts(tokens), "--raw", "--api", "anthropic"), tokens, "throughput", True),
        Case("raw_ollama", "llmchat --raw --api ollama", chat(opts(tokens), "--raw", "--api", "ollama"), tokens, "throughput", True),
        Case("ft_base_sync", "baseline httpx (sync), 1 token", base + [opts(1) + "/v1", PROMPT], 1, "first_token", False),
        Case("ft_base_async", "baseline httpx (async), 1 token", base + [opts(1) + "/v1", PROMPT, "--async"], 1, "first_token", False),
        Case("ft_raw_chat", "llmchat --raw, 1 token", chat(opts(1) + "/v1", "--raw"), 1, "first_token", True),
        Case("ft_pipe_chat", "llmchat to a pipe, 1 token", chat(opts(1) + "/v1"), 1, "first_token", True),
        Case("rss_2k", "llmchat --raw, 2,000 tokens", chat(opts(2000) + "/v1", "--raw"), 2000, "rss", True),
        Case("rss_100k", "llmchat --raw, 100,000 tokens", chat(opts(100_000) + "/v1", "--raw"), 100_000, "rss", True),
        Case("rss_base_100k", "baseline httpx (sync), 100,000 tokens", base + [opts(100_000) + "/v1", PROMPT], 100_000, "rss", False),
    ]
    return cases


# --- server ceiling ------------------------------------------------------------------------


def server_ceiling(url: str, tokens: int, timeout: float) -> float:
    """Seconds for a bare socket (no HTTP library, no parsing) to read the whole 20k answer:
    how fast the fake server can send, i.e. the ceiling any client here can reach."""
    host, port = url.rsplit("//", 1)[1].split(":")
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True, "stream_options": {"include_usage": True}}
    ).encode()
    head = (
        f"POST /o/tokens={tokens}/v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        received = 0
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            received += len(data)
    elapsed = time.perf_counter() - t0
    if received < tokens:
        raise RuntimeError(f"server ceiling: only {received} bytes received")
    return elapsed


# --- imports -------------------------------------------------------------------------------


BLOCKED = {"trio", "httpx._main"}  # what llmchat.cli marks absent


def import_check(argv: List[str], env: Dict[str, str], timeout: float) -> dict:
    """Run once with -X importtime (stdout a pipe): which of textual / rich get imported, by whom,
    and the import time of the heaviest top-level imports."""
    if argv[0] == sys.executable:  # python script.py ... or python -m llmchat ...
        command = [sys.executable, "-X", "importtime"] + list(argv[1:])
    else:  # the console script
        command = [sys.executable, "-X", "importtime", "-m", "llmchat"] + list(argv[1:])
    proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    rows = []  # (depth, name, self_us, cumulative_us)
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        # "import time:  <self us> | <cumulative us> | <2 spaces per level><module>"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:") :].split("|", 2)
        if len(fields) != 3:
            continue
        try:
            self_us, cumulative = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        name = fields[2].strip()
        depth = (len(fields[2]) - len(fields[2].lstrip(" ")) - 1) // 2
        rows.append((depth, name, self_us, cumulative))
    # An import that llmchat blocks (sys.modules[name] = None) is still logged by -X importtime,
    # at a few microseconds, though none of its code runs: a module under 20 us with no children
    # is such an attempt, not a load.
    rows = [r for r in rows if not (r[3] < 20 and r[1] in BLOCKED)]
    modules = {name for _, name, _, _ in rows}

    def chain(prefix: str) -> List[str]:
        """The first module of `prefix` and the imports that pulled it in, innermost first."""
        for i, (depth, name, _, _) in enumerate(rows):
            if name == prefix or name.startswith(prefix + "."):
                path = [name]
                for later_depth, later_name, _, _ in rows[i + 1 :]:
                    if later_depth < depth:
                        path.append(later_name)
                        depth = later_depth
                return path
        return []

    heaviest = sorted((r for r in rows if r[0] == 0), key=lambda r: -r[3])[:8]
    return {
        "command": command,
        "exit": proc.returncode,
        "modules": len(modules),
        "total_ms": round(sum(r[3] for r in rows if r[0] == 0) / 1000, 1),
        "textual": any(m == "textual" or m.startswith("textual.") for m in modules),
        "rich": any(m == "rich" or m.startswith("rich.") for m in modules),
        "rich_via": chain("rich"),
        "textual_via": chain("textual"),
        "trio": "trio" in modules,
        "trio_via": chain("trio"),
        "heaviest_top_level": [{"module": r[1], "cumulative_ms": round(r[3] / 1000, 1)} for r in heaviest],
    }


# --- statistics and report -----------------------------------------------------------------


def _med(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def summarise(case: Case) -> dict:
    ok = case.ok_runs()
    firsts = [r.first_byte for r in ok if r.first_byte is not None]
    exits = [r.exit for r in ok]
    stream_tps = [case.tokens / (r.exit - r.first_byte) for r in ok if r.first_byte is not None and r.exit > r.first_byte]
    total_tps = [case.tokens / r.exit for r in ok if r.exit > 0]
    body_tps = [
        case.tokens / (r.last_byte - r.first_byte) for r in ok if r.first_byte is not None and r.last_byte is not None and r.last_byte > r.first_byte
    ]
    tails = [r.exit - r.last_byte for r in ok if r.last_byte is not None]
    rss = [r.rss_mb for r in ok]
    cpu = [r.cpu_s for r in ok]
    return {
        "label": case.label,
        "argv": case.argv,
        "tokens": case.tokens,
        "group": case.group,
        "runs": len(case.runs),
        "failed_runs": len(case.runs) - len(ok),
        "errors": sorted({r.error for r in case.runs if r.error}),
        "first_byte_s": {"median": _med(firsts), "min": min(firsts, default=None)},
        "exit_s": {"median": _med(exits), "min": min(exits, default=None)},
        "tokens_per_s_stream": {"median": _med(stream_tps), "best": max(stream_tps, default=None)},
        "tokens_per_s_total": {"median": _med(total_tps), "best": max(total_tps, default=None)},
        "tokens_per_s_first_to_last_byte": {"median": _med(body_tps), "best": max(body_tps, default=None)},
        "last_byte_to_exit_s": {"median": _med(tails), "min": min(tails, default=None)},
        "rss_mb": {"median": _med(rss), "max": max(rss, default=None)},
        "cpu_s": {"median": _med(cpu), "min": min(cpu, default=None)},
        "bytes": sorted({r.nbytes for r in ok}),
        "reference_bytes": case.reference_bytes,
        "output_mismatches": case.mismatches,
        "raw_runs": [asdict(r) for r in case.runs],
    }


def _f(value: Optional[float], fmt: str) -> str:
    """`value` formatted, or "-" as wide as the format asks."""
    if value is not None:
        return format(value, fmt)
    width = "".join(ch for ch in fmt.split(".")[0].split(",")[0] if ch.isdigit())
    return "-".rjust(int(width)) if width else "-"


def _ms(value: Optional[float]) -> Optional[float]:
    return value * 1000 if value is not None else None


def _via(path: List[str], prefix: str, keep: int = 5) -> str:
    """`rich.console <- httpx._main <- httpx <- ...`: from the outermost module of `prefix`."""
    inside = [i for i, name in enumerate(path) if name == prefix or name.startswith(prefix + ".")]
    return " <- ".join(path[inside[-1] if inside else 0 :][:keep])


def print_table(summaries: Dict[str, dict], extra: dict) -> None:
    print()
    print(
        f"{'case':<40} {'1st byte ms':>15} {'exit ms':>15} {'CPU ms':>7} {'tail':>5} {'tok/s stream':>13} {'tok/s total':>12} {'x base':>7} {'RSS MB':>7}  check"
    )
    print("-" * 146)
    base_exit = {
        "throughput": summaries["base_sync"]["exit_s"]["median"],
        "first_token": summaries["ft_base_sync"]["exit_s"]["median"],
        "rss": summaries["rss_base_100k"]["exit_s"]["median"],
    }
    base_first = {
        "throughput": summaries["base_sync"]["first_byte_s"]["median"],
        "first_token": summaries["ft_base_sync"]["first_byte_s"]["median"],
        "rss": None,
    }
    group = None
    for s in summaries.values():
        if s["group"] != group:
            group = s["group"]
            title = {
                "throughput": f"throughput: {s['tokens']:,}-token answer, as fast as the server sends",
                "first_token": "spawn to first token: 1-token answer",
                "rss": "peak RSS against answer length",
            }[group]
            print(f"[{title}]")
        fb, ex = s["first_byte_s"], s["exit_s"]
        ratio_base = base_first[group] if group == "first_token" else base_exit[group]
        ratio_of = fb["median"] if group == "first_token" else ex["median"]
        ratio = ratio_of / ratio_base if ratio_of and ratio_base else None
        stream_tps = s["tokens_per_s_stream"]["median"] if s["tokens"] > 1 else None
        total_tps = s["tokens_per_s_total"]["median"] if s["tokens"] > 1 else None
        check = s.get("check", "")
        print(
            f"{s['label']:<40} "
            f"{_f(_ms(fb['median']), '7.1f')} ({_f(_ms(fb['min']), '5.1f')}) "
            f"{_f(_ms(ex['median']), '7.1f')} ({_f(_ms(ex['min']), '5.1f')}) "
            f"{_f(_ms(s['cpu_s']['median']), '7.0f')} {_f(_ms(s['last_byte_to_exit_s']['median']), '5.0f')} "
            f"{_f(stream_tps, '13,.0f')} {_f(total_tps, '12,.0f')} {_f(ratio, '7.2f')} {_f(s['rss_mb']['max'], '7.1f')}  {check}"
        )
    print("-" * 146)
    print("medians (min) over the counted runs. tok/s stream = tokens / (exit - first byte); tok/s total = tokens / (exit - spawn);")
    print(
        "CPU = user+sys ms of the client process; tail = ms from the last stdout byte to exit (shutdown); x base = exit time / the sync baseline's in the same section"
    )
    print("(spawn-to-first-byte / the baseline's for the 1-token rows); RSS = the largest peak RSS of the process over its runs.")
    ceiling = extra.get("server_ceiling")
    if ceiling:
        print(
            f"server ceiling (bare socket, no parsing, {ceiling['tokens']:,} tokens): {ceiling['median_s'] * 1000:.1f} ms = {ceiling['tokens_per_s']:,.0f} tok/s"
        )
    for name, imp in extra.get("imports", {}).items():
        print(f"imports, {name}: {imp['modules']} modules, {imp['total_ms']:.0f} ms under -X importtime; textual={'yes' if imp['textual'] else 'no'}")
        print(f"    rich={'yes (' + _via(imp['rich_via'], 'rich') + ')' if imp['rich'] else 'no'}")
        print(f"    trio={'yes (' + _via(imp['trio_via'], 'trio') + ')' if imp['trio'] else 'no'}")
    load = extra.get("load")
    if load:
        print(
            f"load average (1 min) before/after: {load['before']:.2f} / {load['after']:.2f} on {os.cpu_count()} CPUs (other work on the machine skews wall times; CPU ms less so)"
        )


def evaluate(summaries: Dict[str, dict], extra: dict) -> List[dict]:
    """Pass/fail against the targets; also writes a short `check` note into each summary."""
    targets = []

    def record(name: str, passed: Optional[bool], measured: str, target: str) -> None:
        targets.append({"target": name, "pass": passed, "measured": measured, "wanted": target})

    # 1. Throughput.
    for key in ("raw_chat", "pipe_chat", "raw_responses", "raw_anthropic", "raw_ollama"):
        s = summaries[key]
        tps = s["tokens_per_s_stream"]["median"]
        passed = tps is not None and tps >= TARGET_TPS and not s["failed_runs"]
        s["check"] = f"{'PASS' if passed else 'FAIL'} >= {TARGET_TPS:,.0f} tok/s"
        if key == "raw_chat":
            record("throughput: llmchat --raw, 20k tokens (tok/s stream, median)", passed, f"{_f(tps, ',.0f')} tok/s", f">= {TARGET_TPS:,.0f}")
    # 2. Spawn to first token.
    base = summaries["ft_base_sync"]["first_byte_s"]["median"]
    for key in ("ft_raw_chat", "ft_pipe_chat"):
        s = summaries[key]
        mine = s["first_byte_s"]["median"]
        ratio = mine / base if mine and base else None
        passed = ratio is not None and ratio <= TARGET_TTFT_RATIO and not s["failed_runs"]
        s["check"] = f"{'PASS' if passed else 'FAIL'} <= {TARGET_TTFT_RATIO}x baseline"
        if key == "ft_raw_chat":
            record(
                "spawn-to-first-token: llmchat --raw / baseline (median)",
                passed,
                f"{_f(ratio, '.2f')}x ({_f(mine and mine * 1000, '.0f')} ms vs {_f(base and base * 1000, '.0f')} ms)",
                f"<= {TARGET_TTFT_RATIO}x",
            )
    # 3. Memory flat in answer length.
    r2, r20, r100 = (summaries[k]["rss_mb"]["max"] for k in ("rss_2k", "raw_chat", "rss_100k"))
    growth = r100 - r2 if r100 is not None and r2 is not None else None
    passed = growth is not None and growth < TARGET_RSS_GROWTH_MB
    summaries["rss_100k"]["check"] = f"{'PASS' if passed else 'FAIL'} growth {_f(growth, '+.1f')} MB vs 2k (< {TARGET_RSS_GROWTH_MB:g})"
    summaries["rss_2k"]["check"] = "reference for growth"
    record(
        "peak RSS growth, llmchat --raw 2k -> 100k tokens",
        passed,
        f"2k {_f(r2, '.1f')} / 20k {_f(r20, '.1f')} / 100k {_f(r100, '.1f')} MB, growth {_f(growth, '+.1f')} MB",
        f"< {TARGET_RSS_GROWTH_MB:g} MB",
    )
    # 4. Imports.
    imports = extra.get("imports", {})
    raw = imports.get("--raw to a pipe")
    if raw:
        record("--raw does not import textual", not raw["textual"], "textual imported" if raw["textual"] else "not imported", "not imported")
    for name, imp in imports.items():
        if name.startswith("baseline"):
            continue  # for comparison only
        record(
            f"rich not imported ({name})",
            not imp["rich"],
            ("imported: " + _via(imp["rich_via"], "rich")) if imp["rich"] else "not imported",
            "not imported",
        )
    # 5. Correctness.
    wrong = {k: s["output_mismatches"] for k, s in summaries.items() if s["output_mismatches"] or s["failed_runs"]}
    ref = summaries["base_sync"]["reference_bytes"]
    record(
        "stdout byte-identical to the baseline, every run, every API (and clean exits)",
        not wrong,
        f"all identical ({_f(ref, ',')} bytes at 20k)" if not wrong else f"mismatched or failed runs: {wrong}",
        "identical",
    )
    return targets


# --- main ----------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs per case (default 5), after one warm-up round")
    parser.add_argument("--tokens", type=int, default=20_000, help="answer length for the throughput cases (default 20000)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a client process is killed (default 60)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON.name} here)")
    parser.add_argument("--no-warmup", action="store_true", help="count the first round too")
    parser.add_argument("--no-hotpath", action="store_true", help="skip the in-process hot-path section (hotpath.py)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not hasattr(os, "wait4"):
        print("this benchmark needs os.wait4 (Linux or macOS)", file=sys.stderr)
        return 2

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through `finally`: the server is stopped

    signal.signal(signal.SIGTERM, _terminate)
    llmchat = _llmchat_command()
    home = tempfile.TemporaryDirectory(prefix="llmchat-bench-")
    env = _child_env(home.name)
    server: Optional[Server] = None
    started = time.time()
    load_before = _load()
    try:
        server = Server(llmchat + ["demo-server", "--host", "127.0.0.1", "--port", "0", "--tokens", str(args.tokens)], env)
        print(
            f"fake server {server.url} (pid {server.proc.pid}); client: {' '.join(llmchat)}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
        )
        cases = build_cases(server.url, llmchat, args.tokens)
        by_key = {c.key: c for c in cases}
        # The reference answers: the baseline's stdout for each answer length.
        references: Dict[int, bytes] = {}
        for n in sorted({c.tokens for c in cases}):
            url = f"{server.url}/o/tokens={n}/v1"
            run, out = run_process([sys.executable, str(BASELINE), url, PROMPT], env, args.timeout)
            if run.error or not out:
                raise RuntimeError(f"the baseline failed to read a {n}-token answer: {run.error or 'no output'}")
            references[n] = out

        rounds = args.runs + (0 if args.no_warmup else 1)
        for round_no in range(rounds):
            counted = args.no_warmup or round_no > 0
            shift = round_no % len(cases)
            order = cases[shift:] + cases[:shift]
            print(f"round {round_no + 1}/{rounds}{'' if counted else ' (warm-up)'} ...", end="", flush=True)
            for case in order:
                run, out = run_process(case.argv, env, args.timeout)
                if counted:
                    case.runs.append(run)
                    ref = references[case.tokens]
                    if not run.error and out != ref:
                        case.mismatches += 1
                        if case.mismatches == 1:
                            _show_difference(case, out, ref)
                print(" " + ("." if not run.error else "x"), end="", flush=True)
            print()
        for case in cases:
            case.reference_bytes = len(references[case.tokens])

        ceiling_runs = sorted(server_ceiling(server.url, args.tokens, args.timeout) for _ in range(max(3, args.runs)))
        ceiling = {"tokens": args.tokens, "median_s": statistics.median(ceiling_runs), "min_s": ceiling_runs[0]}
        ceiling["tokens_per_s"] = args.tokens / ceiling["median_s"]

        imports = {
            "--raw to a pipe": import_check(by_key["ft_raw_chat"].argv, env, args.timeout),
            "no --raw, to a pipe": import_check(by_key["ft_pipe_chat"].argv, env, args.timeout),
            "baseline httpx": import_check(by_key["ft_base_sync"].argv, env, args.timeout),
        }
        hot = None
        if not args.no_hotpath:
            print("in-process hot path ...", flush=True)
            sys.path.insert(0, str(HERE))
            import hotpath

            hot = hotpath.measure(server.url, args.tokens, repeat=max(5, args.runs))
        extra = {"server_ceiling": ceiling, "imports": imports, "hotpath": hot, "load": {"before": load_before, "after": _load()}}
        summaries = {c.key: summarise(c) for c in cases}
        targets = evaluate(summaries, extra)
        print_table(summaries, extra)
        if hot:
            print()
            hotpath.print_results(hot)
        print()
        for t in targets:
            print(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['measured']} (wanted {t['wanted']})")
        results = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
            "runs": args.runs,
            "warmup": not args.no_warmup,
            "server_url": server.url,
            "client_command": llmchat,
            "targets": targets,
            "cases": summaries,
            **extra,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
        return 0 if all(t["pass"] for t in targets) else 1
    finally:
        if server is not None:
            server.stop()
        home.cleanup()


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def _show_difference(case: Case, out: bytes, ref: bytes) -> None:
    at = next((i for i, (a, b) in enumerate(zip(out, ref)) if a != b), min(len(out), len(ref)))
    print(
        f"\n  {case.label}: stdout differs from the baseline at byte {at} "
        f"({len(out)} bytes vs {len(ref)}): {out[max(0, at - 20) : at + 20]!r} vs {ref[max(0, at - 20) : at + 20]!r}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
