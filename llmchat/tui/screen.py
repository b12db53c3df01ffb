"""The app's main screen: Textual's `Screen` with two changes to how it paints.

Both come from measuring an answer streamed at 200 tokens/s (tests/benchmarks/bench_tui.py) and
both use Textual internals, checked against textual 8.2 (tests/tui/test_screen.py compares the
results with Textual's own code, so a Textual release that changes them fails there first).

1. Its paints are paced by `FramePacer`, not Textual's `Timer`. The screen paints on an interval
   timer that is paused while nothing is dirty and resumed when something is. Textual's timer,
   resumed after a pause, ticks at once and then skips its next period: the paint after that
   comes one to two periods (17-33 ms) later, even when the last one was long ago. An answer
   that paints every 25 ms hit that on most frames (and after every slower frame), and it was
   the largest part of the arrival -> screen time at the 99th percentile. `FramePacer` paints
   at once when the last paint was at least a period ago, else a period after it.

2. Its compositor (`CroppingCompositor`) renders, for a partial update, only the widgets and the
   lines inside the area being updated. Textual's asks every widget whose *clip* (its container's
   area: the whole screen for top-level widgets) overlaps that area for all its visible lines,
   then keeps the updated lines: a frame of a streaming answer rendered the footer, status bar,
   prompt and every container in full, about 40% of the frame's time. What is painted is the same.
"""

from __future__ import annotations

import math
import time
from typing import Iterable, Optional, Tuple

from textual import _time
from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import UPDATE_PERIOD, Screen
from textual.strip import Strip
from textual.timer import EventTargetGone, Timer

PAINT_COST_WEIGHT = 0.25  # of the newest paint in the moving average of paint_cost
PAINT_COST_CAP = 0.1  # seconds: a longer paint counts as this long


def next_paint_delay(last: float, now: float, period: float) -> float:
    """Seconds to wait before painting: none if the last paint was at least `period` ago."""
    return max(0.0, last + period - now)


class FramePacer(Timer):
    """A paused-and-resumed interval timer that ticks at once when resumed after a quiet spell,
    and never more often than once per interval."""

    async def _run(self) -> None:
        period = self._interval
        last = -math.inf
        while True:
            await self._active.wait()
            delay = next_paint_delay(last, _time.get_time(), period)
            if delay:
                await _time.sleep(delay)
                await self._active.wait()
            last = _time.get_time()
            try:
                await self._tick(next_timer=last, count=0)
            except EventTargetGone:
                break


class CroppingCompositor(Compositor):
    def _get_renders(self, crop: Optional[Region] = None) -> Iterable[Tuple[Region, Region, list[Strip]]]:
        """What Textual's `_get_renders` yields, for the widgets inside `crop` and the lines
        inside it: each widget's clip is narrowed to the crop's lines, so the compositor places
        the lines where it would have (it zips them with the rows of region & clip)."""
        intersection = Region.intersection
        for widget, (region, clip) in self.visible_widgets.items():
            if crop is not None:
                if not crop.overlaps(intersection(region, clip)):
                    continue
                top = max(clip.y, crop.y)
                clip = Region(clip.x, top, clip.width, min(clip.bottom, crop.bottom) - top)
            x, y, width, height = intersection(region, clip)
            if width and height:
                yield region, clip, widget.render_lines(Region(x - region.x, y - region.y, width, height))


class ChatScreen(Screen):
    def __init__(self, name: Optional[str] = None, id: Optional[str] = None, classes: Optional[str] = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._compositor = CroppingCompositor()
        # Seconds a paint (with its layout, if any) takes, a moving average: a streaming answer
        # spaces its frames by it, so that an answer arriving as fast as the network allows is
        # painted in fewer, larger frames instead of one layout of the screen every 25 ms.
        self.paint_cost = 0.0

    def _on_timer_update(self) -> None:
        started = time.perf_counter()
        super()._on_timer_update()
        took = min(time.perf_counter() - started, PAINT_COST_CAP)  # one stall does not linger
        self.paint_cost += PAINT_COST_WEIGHT * (took - self.paint_cost)

    @property
    def _update_timer(self) -> Timer:  # Screen's, with the FramePacer in place of its Timer
        timer = self._Screen__update_timer  # type: ignore[has-type]  # Screen's private (name-mangled) timer: mypy cannot see it
        if timer is None:
            timer = FramePacer(self, UPDATE_PERIOD, name="screen_update", callback=self._on_timer_update, pause=True)
            timer._start()
            self._timers.add(timer)
            self._Screen__update_timer = timer
        return timer
