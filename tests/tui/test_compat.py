"""Guard tests for llmchat's Textual internals (tui/compat.py): each private name still there with
the shape compat relies on, Textual's own code paths using ours (the timer in Textual's own slot,
the renders Textual asks for), and with every feature check failed the app running on stock
Textual and painting the same answer. Alt+Enter sent as ESC CR is reported as alt+enter, through
the parser the Linux driver really builds."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from textual.drivers import linux_driver

from llmchat.tui import compat


def keys(parser_class, data: str, expected: int = 1) -> list:
    """What the parser makes of `data`, read at once. A lone ESC waits for more input (its
    timeout), so the parser is ticked in a bounded poll until `expected` keys are out."""
    parser = parser_class()
    events = list(parser.feed(data))
    deadline = time.monotonic() + 2.0
    while len([e for e in events if hasattr(e, "key")]) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
        events += parser.tick()
    return [event.key for event in events if hasattr(event, "key")]


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(linux_driver, "XTermParser", linux_driver.XTermParser)  # undone after the test
    assert compat.install_alt_enter()
    return compat.parser_in_use()


def test_the_driver_builds_the_patched_parser(installed):
    assert installed is compat.AltEnterParser
    assert linux_driver.XTermParser is compat.AltEnterParser


@pytest.mark.parametrize(
    "data, expected",
    [
        ("\x1b\r", ["alt+enter"]),
        ("a\x1b\rb", ["a", "alt+enter", "b"]),
        ("\r", ["enter"]),
        ("\x1bx", ["alt+x"]),
        ("\x1b[13;3u", ["alt+enter"]),  # the kitty protocol, as before
        ("\x1b[13;2u", ["shift+enter"]),
        ("\t", ["tab"]),
    ],
)
def test_escape_cr_is_alt_enter_and_nothing_else_changes(installed, data, expected):
    assert keys(installed, data, len(expected)) == expected


def test_stock_textual_still_drops_the_alt_the_patch_exists_for():
    """The day Textual reports ESC CR as alt+enter itself, this fails: remove the patch."""
    from textual._xterm_parser import XTermParser

    assert keys(XTermParser, "\x1b\r") == ["enter"]


# --- the private names, in the installed Textual ---------------------------------------------------


def test_the_installed_textual_is_the_one_compat_was_verified_against():
    """pyproject.toml pins it; a different one means checking every use below again."""
    import importlib.metadata

    assert importlib.metadata.version("textual") == compat.VERIFIED_TEXTUAL


def test_every_private_name_exists_with_the_expected_shape():
    import inspect

    from textual import _time
    from textual import strip as strip_module
    from textual._compositor import Compositor
    from textual._styles_cache import StylesCache
    from textual._xterm_parser import XTermParser
    from textual.message_pump import MessagePump
    from textual.reactive import Reactive
    from textual.screen import Screen
    from textual.strip import Strip, StripRenderable
    from textual.timer import Timer
    from textual.widget import Widget

    def params(function) -> list:
        return list(inspect.signature(function).parameters)

    assert params(XTermParser._sequence_to_key_events)[:3] == ["self", "sequence", "alt"]
    assert inspect.iscoroutinefunction(Timer._run) and "self._run()" in inspect.getsource(Timer._run_timer)
    assert params(Timer._tick) == ["self", "next_timer", "count"]
    assert callable(Timer._start) and "self._timers.add(timer)" in inspect.getsource(MessagePump.set_interval)
    assert callable(_time.get_time) and inspect.iscoroutinefunction(_time.sleep)
    assert params(Compositor._get_renders) == ["self", "crop"]
    # terminal_scroll: the top screen's updates come from render_update and are written as their
    # render_segments; a partial one moves the cursor to each line it paints (the scroll region
    # set before it homes the cursor), and nothing else in Textual sets a scroll region.
    from textual._compositor import ChopsUpdate
    from textual.app import App

    assert "self._compositor.render_update(" in inspect.getsource(Screen._compositor_refresh)
    assert "renderable.render_segments(console)" in inspect.getsource(App._display)
    assert "move_to(x, y)" in inspect.getsource(ChopsUpdate.render_segments)
    assert isinstance(Compositor.__dict__["visible_widgets"], property)
    assert isinstance(Screen.__dict__["_update_timer"], property)
    assert "self.__update_timer" in inspect.getsource(Screen.__init__)
    assert callable(Screen.__dict__["_on_timer_update"])
    assert params(Widget._get_style) == ["self", "style"]
    assert "self._strips = strips" in inspect.getsource(StripRenderable.__init__)
    stock = Widget.__dict__["virtual_size"]
    assert isinstance(stock, Reactive) and stock._layout is True
    assert callable(StylesCache.get_inner_outer.cache_clear)
    render_source = inspect.getsource(StylesCache.render)
    assert "self._dirty_lines.__contains__" in render_source and "y not in self._cache" in render_source
    # Each cache slot of a strip is filled by its __init__ and read by its one method only.
    strip_source = inspect.getsource(strip_module)
    init_source = inspect.getsource(compat._STOCK_STRIP["__init__"])
    for slot, size, method in compat._STRIP_CACHES:
        assert strip_source.count(slot) == 4 and inspect.getsource(compat._STOCK_STRIP[method]).count(f"self.{slot}") == 2
        assert f"self.{slot}" in init_source and f"FIFOCache({size})" in init_source
    assert set(Strip.__slots__) == compat._STRIP_SLOTS and Strip.__init__ is compat._lazy_init
    # ... and compat's own checks agree: every use is on.
    assert compat.AVAILABLE == dict.fromkeys(compat.AVAILABLE, True)
    assert set(compat.AVAILABLE) == {
        "alt_enter",
        "frame_pacer",
        "cropping_compositor",
        "update_timer",
        "get_style",
        "canvas_strips",
        "quiet_virtual_size",
        "styles_cache_clear",
        "lazy_strip_caches",
        "tall_styles_cache",
        "tall_regions",
        "painted_rows",
        "terminal_scroll",
    }


def test_the_checks_at_import_read_no_source():
    """Reading a function's source costs milliseconds at every start (compat's import went from 9
    to 27 ms with four checks that did): the checks at import use names, signatures and the names a
    function's code uses, and the tests above read the source. In a fresh interpreter where
    `inspect.getsource` fails, every check still passes."""
    probe = (
        "import inspect\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('source read at import')\n"
        "inspect.getsource = inspect.getsourcelines = refuse\n"
        "from llmchat.tui import compat\n"
        "print(sorted(name for name, ok in compat.AVAILABLE.items() if not ok))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- Textual's own paths pick ours up --------------------------------------------------------------


async def test_textual_paints_through_our_compositor_and_pacer(settings_for, submit, settled, monkeypatch):
    """Not by asking our screen: the timer Textual stored in its own slot is a FramePacer and it
    ticks, and the partial updates Textual asks its compositor for go through our renders."""
    from textual._compositor import Compositor
    from textual.screen import Screen

    from llmchat.tui.app import ChatApp

    ticks = []
    crops = []
    tick, renders = compat.FramePacer._tick, compat.CroppingCompositor._get_renders

    async def counted_tick(self, **kwargs):
        ticks.append(self)
        await tick(self, **kwargs)

    def counted_renders(self, crop=None):
        crops.append(crop)
        return renders(self, crop)

    monkeypatch.setattr(compat.FramePacer, "_tick", counted_tick)
    monkeypatch.setattr(compat.CroppingCompositor, "_get_renders", counted_renders)
    app = ChatApp(settings_for(tokens=200))
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        screen = app.screen
        timer = screen.__dict__["_Screen__update_timer"]  # where Textual's Screen keeps it
        assert type(timer) is compat.FramePacer
        assert Screen._update_timer.fget is not None and screen._update_timer is timer
        assert isinstance(screen.__dict__["_compositor"], compat.CroppingCompositor)
        assert type(screen._compositor) is not Compositor
    assert ticks and all(t is timer for t in ticks)
    assert any(crop is not None for crop in crops)  # partial updates, cropped by us


# --- the fallbacks: stock Textual, the same answer ---------------------------------------------------


async def answer_lines(app, settings, submit, settled) -> list:
    """The text of the answer to "hi" as the app paints it, line by line."""
    from textual.geometry import Region

    from llmchat.tui.widgets import AssistantMessage

    async with app.run_test(size=(100, 60)) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        markdown = app.query(AssistantMessage).last().markdown
        width, height = markdown.size
        assert height > 20
        lines = [strip.text for strip in markdown.render_lines(Region(0, 0, width, height))]
        screen = app.screen
        return [lines, type(screen.__dict__["_Screen__update_timer"]), type(screen._compositor)]


async def test_with_every_check_failed_the_app_runs_on_stock_textual_and_paints_the_same(settings_for, submit, settled, monkeypatch):
    from textual._compositor import Compositor
    from textual.timer import Timer

    from llmchat.tui.app import ChatApp

    settings = settings_for(tokens=400)
    ours, pacer, compositor = await answer_lines(ChatApp(settings), settings, submit, settled)
    assert (pacer, compositor) == (compat.FramePacer, compat.CroppingCompositor)
    for name in compat.AVAILABLE:
        monkeypatch.setitem(compat.AVAILABLE, name, False)
    stock, pacer, compositor = await answer_lines(ChatApp(settings), settings, submit, settled)
    assert (pacer, compositor) == (Timer, Compositor)
    assert stock == ours
    assert any("┌" in line for line in ours)  # the table (canvas_strips) ...
    assert any("count_tokens" in line for line in ours)  # ... the code block, the headings
    assert not compat.install_alt_enter()


def test_the_canvas_fallback_draws_the_same_lines():
    from rich.style import Style
    from textual.canvas import Canvas, Rectangle
    from textual.color import Color
    from textual.geometry import Offset

    canvas = Canvas(20, 7)
    rectangles = [Rectangle(Offset(0, 0), 10, 4, Color.parse("red"), "thin"), Rectangle(Offset(9, 0), 11, 7, Color.parse("blue"), "heavy")]
    rendered = canvas.render(rectangles, Style(bgcolor="black"))
    ours = compat.canvas_strips(rendered, 20)
    compat.AVAILABLE["canvas_strips"] = False
    try:
        public = compat.canvas_strips(rendered, 20)
    finally:
        compat.AVAILABLE["canvas_strips"] = True
    assert [list(strip) for strip in public] == [list(strip) for strip in ours]
    assert [strip.cell_length for strip in public] == [20] * 7


async def test_the_style_lookup_fallback_resolves_as_textual_does(settings_for):
    from textual.style import Style

    from llmchat.tui.app import ChatApp
    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    app = ChatApp(settings_for(tokens=5))
    async with app.run_test():
        widget = StreamingMarkdown()
        await app.transcript.mount(widget)
        textual_own = compat.style_getter(widget)
        compat.AVAILABLE["get_style"] = False
        try:
            public = compat.style_getter(widget)
        finally:
            compat.AVAILABLE["get_style"] = True
        assert textual_own == widget._get_style and public != textual_own
        names = [f".{name}" for name in sorted(StreamingMarkdown.COMPONENT_CLASSES)] + ["bold red", "italic $accent", "not a style"]
        assert len(names) > 5
        for name in names:
            assert public(name) == textual_own(name), name
        style = Style(bold=True)
        assert public(style) is style


@pytest.mark.parametrize("make, repaints", [(compat.quiet_virtual_size, True), (compat.still_virtual_size, False)])
def test_the_virtual_size_asks_for_no_layout_and_falls_back_to_textuals_own(make, repaints):
    """quiet: no layout for a new virtual size; still: no paint either. Their fallback is
    Textual's own reactive (a copy: Textual's is left as it is)."""
    from textual.widget import Widget

    ours = make()
    assert ours._layout is False and ours._repaint is repaints and ours._default == Widget.virtual_size._default  # type: ignore[attr-defined]
    compat.AVAILABLE["quiet_virtual_size"] = False
    try:
        stock = make()
    finally:
        compat.AVAILABLE["quiet_virtual_size"] = True
    assert stock._layout is True and stock is not Widget.__dict__["virtual_size"]


def test_a_tall_styles_cache_drops_the_lines_of_a_tall_dirty_region_instead_of_listing_them():
    """What Textual's render reads as "paint again" is a line in the dirty set or not in the cache:
    a region taller than the cache drops its cached lines (nothing listed), a short one is listed."""
    from textual.geometry import Region
    from textual.strip import Strip

    cache = compat.TallStylesCache()
    cache._cache.update({y: Strip.blank(10) for y in range(5)})
    cache.set_dirty(Region(0, 2, 10, 500_000))
    assert sorted(cache._cache) == [0, 1] and not cache._dirty_lines
    cache.set_dirty(Region(0, 0, 10, 1))
    assert cache._dirty_lines == {0}
    cache.set_dirty()
    assert not cache._cache and not cache._dirty_lines
