"""The app's main screen: Textual's `Screen` with two changes to how it paints, both from
measuring an answer streamed at 200 tokens/s (tests/benchmarks/bench_tui.py), both Textual
internals and so both in llmchat/tui/compat.py (with their feature checks and fallbacks):

1. Its paints are paced by a `FramePacer`, not Textual's `Timer`: resumed after a quiet spell it
   paints at once, where Textual's timer could paint one to two periods (17-33 ms) late.
2. Its compositor (`CroppingCompositor`) renders, for a partial update, only the widgets and the
   lines inside the area being updated, where Textual's renders every widget whose container
   overlaps it in full (the footer, status bar and prompt on every frame of an answer).

And it keeps `paint_cost`, a moving average of what a paint takes: a streaming answer spaces its
frames by it, so that an answer arriving as fast as the network allows is painted in fewer,
larger frames instead of one layout of the screen every 25 ms.
"""

from __future__ import annotations

from llmchat.tui.compat import PacedScreen

PAINT_COST_WEIGHT = 0.25  # of the newest paint in the moving average of paint_cost
PAINT_COST_CAP = 0.1  # seconds: a longer paint counts as this long


class ChatScreen(PacedScreen):
    paint_cost = 0.0  # seconds (see above)

    def painted(self, seconds: float) -> None:
        took = min(seconds, PAINT_COST_CAP)  # one stall does not linger
        self.paint_cost += PAINT_COST_WEIGHT * (took - self.paint_cost)
