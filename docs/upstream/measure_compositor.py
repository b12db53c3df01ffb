"""Measure a partial screen update as a streaming answer makes them: Textual's stock
`Compositor._get_renders` against the patch in compositor-partial-renders.md, on llmchat's own
screen (a 400-token answer in the transcript, prompt, status bar and footer below it).

    .venv/bin/python docs/upstream/measure_compositor.py [--rounds 300]

For each round the answer's last lines are marked dirty (as a growing answer does), and the
update is rendered the way `Compositor.render_partial_update` does (`_render_chops`), once with
each `_get_renders`, interleaved; the two updates are compared (the same strips where the update writes).
Reported: time per update, and the widgets and lines rendered for it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual._compositor import Compositor  # noqa: E402
from textual.geometry import Region  # noqa: E402

from llmchat.config import Settings  # noqa: E402
from llmchat.demo.server import ServerThread  # noqa: E402
from llmchat.tui.app import ChatApp  # noqa: E402
from llmchat.tui.compat import CroppingCompositor  # noqa: E402
from llmchat.tui.widgets import AssistantMessage  # noqa: E402


def counting(get_renders: Any, counts: Dict[str, int]) -> Any:
    def renders(self: Compositor, crop: Any = None) -> Any:
        for region, clip, strips in get_renders(self, crop):
            counts["widgets"] += 1
            counts["lines"] += len(strips)
            yield region, clip, strips

    return renders


def written(compositor: Compositor, crop: Region, chops: Any) -> Dict[Any, Any]:
    """What a partial update of `crop` writes: the rows of the crop, the cuts that meet it."""
    out = {}
    for y in crop.line_range:
        cuts = compositor.cuts[y]
        for index, cut in enumerate(cuts[:-1]):
            if cut < crop.right and cuts[index + 1] > crop.x:
                out[(y, cut)] = chops[y][cut]
    return out


async def main(rounds: int) -> None:
    with ServerThread() as server:
        settings = Settings(api="openai-chat", base_url=server.base_url("openai-chat", tokens=400), model="m")
        app = ChatApp(settings)
        async with app.run_test(size=(120, 40)) as pilot:
            app.prompt.load_text("hi")
            await pilot.press("enter")
            while app.worker is None or not app.worker.is_finished:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            compositor = app.screen._compositor
            answer = app.query(AssistantMessage).last().markdown
            region = answer.content_region.intersection(compositor.size.region)
            crop = Region(region.x, region.bottom - 3, region.width, 3)  # the answer's last lines
            rows = set(crop.line_range)
            tail = Region(0, answer.size.height - 3, answer.size.width, 3)  # the same lines, in the answer
            variants = {"stock": Compositor._get_renders, "patched": CroppingCompositor._get_renders}
            times: Dict[str, List[float]] = {name: [] for name in variants}
            counts = {name: {"widgets": 0, "lines": 0} for name in variants}
            for _ in range(rounds):
                chops = {}
                for name, get_renders in variants.items():
                    answer.refresh(tail)  # its last lines are new each frame, as while it streams
                    compositor._get_renders = types.MethodType(counting(get_renders, counts[name]), compositor)  # type: ignore[method-assign]
                    started = time.perf_counter()
                    chops[name] = compositor._render_chops(crop, rows.__contains__)
                    times[name].append(time.perf_counter() - started)
                    del compositor._get_renders
                assert written(compositor, crop, chops["stock"]) == written(compositor, crop, chops["patched"])
    print(f"Partial update of {crop.height} lines x {crop.width} cells at the answer's end, screen 120 x 40 (Python {sys.version.split()[0]})")
    for name in variants:
        ms = sorted(t * 1000 for t in times[name])
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        per = {key: value / rounds for key, value in counts[name].items()}
        print(
            f"  {name:8} median {statistics.median(ms):6.3f} ms  p99 {p99:6.3f} ms   "
            f"widgets rendered {per['widgets']:.0f}, lines rendered {per['lines']:.0f}  (n={rounds}, same chops)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(main(parser.parse_args().rounds))
