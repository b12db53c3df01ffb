"""Measure Textual's interval timer after a pause/resume and after a tick longer than its period:
stock `textual.timer.Timer` against the same class with the patch in timer-resume.md.

    .venv/bin/python docs/upstream/measure_timer.py [--rounds 100]

Two cases, each timed with time.perf_counter, in one headless app, interleaved round by round:
  resume     a paused timer is resumed after a quiet spell (30-70 ms), ticks, pauses in its
             callback and is resumed at once (as Textual's screen does when something is dirty
             while it paints): the gap between those two ticks. Ideal: one period.
  long tick  a running timer whose callback takes 1.5 periods: the gap between tick starts.
             Ideal: the next period boundary after the callback (25-33 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Dict, List

from textual import _time
from textual.app import App
from textual.timer import EventTargetGone, Timer

PERIOD = 1 / 60


class PatchedTimer(Timer):
    """`Timer._run` with the patch (timer-resume.md) applied, line for line."""

    async def _run(self) -> None:
        count = 0
        _repeat = self._repeat
        _interval = self._interval
        self._active  # noqa: B018 - as Textual: force instantiation in the same thread
        await self._active.wait()
        start = _time.get_time()

        while _repeat is None or count <= _repeat:
            next_timer = start + ((count + 1) * _interval)
            now = _time.get_time()
            if self._skip and next_timer < now:
                count = int((now - start) / _interval)
                next_timer = start + ((count + 1) * _interval)
            now = _time.get_time()
            wait_time = max(0, next_timer - now)
            await _time.sleep(wait_time)
            count += 1
            if not self._active.is_set():
                await self._active.wait()
                start = _time.get_time() - count * _interval
            if self._reset:
                start = _time.get_time()
                count = 0
                self._reset = False
                continue
            try:
                await self._tick(next_timer=next_timer, count=count)
            except EventTargetGone:
                break


class Bench(App[None]):
    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.results: dict = {}

    def start(self, kind: type, callback) -> Timer:
        timer = kind(self, PERIOD, callback=callback, pause=True)
        timer._start()
        return timer

    async def resume_gap(self, kind: type) -> float:
        ticks: List[float] = []
        warm = asyncio.Event()
        done = asyncio.Event()

        def tick() -> None:
            timer.pause()
            if not warm.is_set():
                warm.set()  # a first tick, long ago
                return
            ticks.append(time.perf_counter())
            if len(ticks) == 1:
                timer.resume()  # dirty again while painting
            else:
                done.set()

        timer = self.start(kind, tick)
        timer.resume()
        await warm.wait()
        await asyncio.sleep(random.uniform(0.03, 0.07))  # a quiet spell
        timer.resume()
        await done.wait()
        timer.stop()
        return ticks[1] - ticks[0]

    async def long_tick_gaps(self, kind: type, ticks_wanted: int = 12) -> List[float]:
        starts: List[float] = []
        done = asyncio.Event()

        def tick() -> None:
            starts.append(time.perf_counter())
            end = time.perf_counter() + 1.5 * PERIOD
            while time.perf_counter() < end:
                pass
            if len(starts) >= ticks_wanted:
                done.set()

        timer = self.start(kind, tick)
        timer.resume()
        await done.wait()
        timer.stop()
        return [b - a for a, b in zip(starts[2:], starts[3:])]

    async def measure(self) -> None:
        kinds = {"stock": Timer, "patched": PatchedTimer}
        resume: Dict[str, List[float]] = {name: [] for name in kinds}
        long: Dict[str, List[float]] = {name: [] for name in kinds}
        for _ in range(self.rounds):
            for name, kind in kinds.items():
                resume[name].append(await self.resume_gap(kind))
            if _ % 10 == 0:
                for name, kind in kinds.items():
                    long[name] += await self.long_tick_gaps(kind)
        self.results = {"resume": resume, "long tick": long}


def summary(values: List[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):5.1f} ms  p99 {p99:5.1f} ms  max {ms[-1]:5.1f} ms  (n={len(ms)})"


async def main(rounds: int) -> None:
    app = Bench(rounds)
    async with app.run_test():
        await app.measure()
    print(f"Textual timer, period {PERIOD * 1000:.1f} ms (Python {sys.version.split()[0]})")
    for case, by_kind in app.results.items():
        ideal = "one period (16.7 ms)" if case == "resume" else "25-33 ms (the next period boundary after a 25 ms callback)"
        print(f"{case}: gap between ticks, ideal {ideal}")
        for name, values in by_kind.items():
            print(f"  {name:8} {summary(values)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    asyncio.run(main(parser.parse_args().rounds))
