"""The app's screen (llmchat/tui/screen.py, its Textual internals in compat.py): paints paced by FramePacer, partial updates rendered
only where they change, and the same screen as Textual's own code draws."""

from __future__ import annotations

import gc
import time
import types

from textual._compositor import Compositor
from textual.app import App
from textual.geometry import Region

from llmchat.tui.app import ChatApp
from llmchat.tui.compat import CroppingCompositor, FramePacer, next_paint_delay
from llmchat.tui.gc_policy import NO_FULL_COLLECTIONS
from llmchat.tui.screen import ChatScreen
from llmchat.tui.session import STREAMING


def test_a_paint_waits_only_for_the_rest_of_a_period_since_the_last():
    assert next_paint_delay(last=10.0, now=10.5, period=0.1) == 0.0  # quiet for a while: at once
    assert next_paint_delay(last=10.0, now=10.1, period=0.1) == 0.0
    assert abs(next_paint_delay(last=10.0, now=10.03, period=0.1) - 0.07) < 1e-9


async def test_the_app_runs_on_the_chat_screen(settings_for):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test():
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        assert isinstance(screen._compositor, CroppingCompositor)
        assert isinstance(screen._update_timer, FramePacer)


def visible_chops(compositor: Compositor, crop: Region, chops) -> dict:
    """The parts of the chops a partial update of `crop` writes: rows of the crop, cuts whose
    columns meet it."""
    out = {}
    for y in crop.line_range:
        cuts = compositor.cuts[y]
        for index, cut in enumerate(cuts[:-1]):
            if cut < crop.right and cuts[index + 1] > crop.x:
                out[(y, cut)] = chops[y][cut]
    return out


async def test_partial_updates_draw_what_textuals_compositor_draws(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=400))
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        compositor = app.screen._compositor
        width, height = compositor.size
        crops = [Region(0, y, width, rows) for y in range(0, height, 3) for rows in (1, 5)]
        crops += [Region(5, 3, 20, 7), Region(60, 20, 40, 10), Region(0, 0, width, height)]
        for crop in crops:
            crop = crop.intersection(compositor.size.region)
            rows = set(crop.line_range)
            ours = visible_chops(compositor, crop, compositor._render_chops(crop, rows.__contains__))
            compositor._get_renders = types.MethodType(Compositor._get_renders, compositor)
            try:
                theirs = visible_chops(compositor, crop, compositor._render_chops(crop, rows.__contains__))
            finally:
                del compositor._get_renders
            assert ours == theirs, crop


class PacedApp(App[None]):
    """An app with one FramePacer that records its ticks and pauses after each, as the screen's
    update timer does."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self.period = period
        self.ticks: list = []

    def on_mount(self) -> None:
        self.pacer = FramePacer(self, self.period, callback=self.tick, pause=True)
        self.pacer._start()

    def tick(self) -> None:
        self.ticks.append(time.monotonic())
        self.pacer.pause()


async def test_the_pacer_paints_at_once_after_a_quiet_spell_and_never_faster_than_its_period(until):
    period = 0.3
    app = PacedApp(period)
    async with app.run_test() as pilot:
        resumed = time.monotonic()
        app.pacer.resume()
        await until(pilot, lambda: len(app.ticks) == 1, what="the first tick")
        assert app.ticks[0] - resumed < period / 2  # nothing painted lately: at once
        app.pacer.resume()  # again, straight after a tick
        await until(pilot, lambda: len(app.ticks) == 2, what="the second tick")
        gap = app.ticks[1] - app.ticks[0]
        assert gap >= period - 0.01  # at most once a period ...
        assert gap < period * 1.6  # ... and not a period later than that (Textual's Timer can be)
        await pilot.pause(period * 1.5)  # quiet again
        resumed = time.monotonic()
        app.pacer.resume()
        await until(pilot, lambda: len(app.ticks) == 3, what="the third tick")
        assert app.ticks[2] - resumed < period / 2


async def test_the_status_bar_follows_the_answers_frames(settings_for, submit, settled, until):
    """While text arrives, the status figures are refreshed with the answer's frames (in the same
    paint) and keep moving."""
    app = ChatApp(settings_for(tokens=120, tps=60))
    async with app.run_test() as pilot:
        await submit(pilot, "hi")
        status = app.status
        seen = set()

        def moved() -> bool:
            if status.state == STREAMING and status.tokens is not None:
                seen.add(status.tokens)
            return len(seen) >= 4

        await until(pilot, moved, timeout=10, what="the token count to move while streaming")
        await settled(app)
        assert "tokens 120" in status.figures


async def test_a_managed_collector_makes_no_full_collections_while_an_answer_streams(settings_for, submit, settled, until):
    thresholds = gc.get_threshold()
    app = ChatApp(settings_for(tokens=60, tps=60))
    app.manage_gc = True  # as in a real terminal
    try:
        async with app.run_test() as pilot:
            await submit(pilot, "hi")
            if app.gc_policy.strategy == "generational":  # this interpreter (gc_policy.collector)
                assert gc.get_threshold() == (thresholds[0], thresholds[1], NO_FULL_COLLECTIONS)
            else:
                assert not gc.isenabled()
            await settled(app)
            await until(pilot, lambda: gc.get_threshold() == thresholds and gc.isenabled(), what="full collections back after the answer")
    finally:
        gc.set_threshold(*thresholds)
        gc.enable()
        gc.unfreeze()
