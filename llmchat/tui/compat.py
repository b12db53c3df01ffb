"""The one place llmchat reaches into Textual's private code. Nothing else in llmchat imports a
`textual._` module or touches an underscored attribute of a Textual object.

Verified against textual 8.2.8 (pinned exactly in pyproject.toml while any of this remains).
Each use below has a feature check, run once at import, that the private names exist with the
shape this code relies on (`AVAILABLE[name]`: names, signatures, and the names a function's code
uses -- never its source, which costs milliseconds to read at every start; the tests read it), and a fallback to Textual's stock behaviour when
they do not -- slower or less smooth, never wrong. tests/tui/test_compat.py checks each name in
the installed Textual, runs a real app to see that Textual's own code paths pick ours up, and
runs it again with every check failed to see the same answer rendered.

- "alt_enter": `textual._xterm_parser.XTermParser._sequence_to_key_events` and the name
  `XTermParser` in `textual.drivers.linux_driver`. Terminals without the kitty keyboard protocol
  (xterm, GNOME Terminal, tmux 3.3 -- checked) send Alt+Enter as ESC CR; Textual's parser keeps
  the Alt of ESC + a letter but drops it for keys it maps by table (Enter, Tab, Backspace), so
  Alt+Enter arrived as Enter and sent the prompt the user wanted to break. `AltEnterParser`
  reports it as alt+enter; `install_alt_enter` points the driver's name at it (process-wide,
  done by the TUI's entry point only). Fallback: Alt+Enter is Enter (Ctrl+J still breaks a line).
  For upstream: `_sequence_to_key_events` should prefix "alt+" to table-mapped keys.

- "frame_pacer": `textual.timer.Timer._run` (the coroutine its task runs), `Timer._tick(next_timer=,
  count=)`, `Timer._interval`, `Timer._active` (the pause event), `Timer._start`,
  `textual._time.get_time/sleep`, and `MessagePump._timers` (the set `set_interval` adds to).
  Textual's interval timer, resumed after a pause, ticks at once and then skips its next period:
  the screen's paint after that came 17-33 ms late, the largest part of arrival -> screen time
  at the 99th percentile of a streamed answer. `FramePacer` paints at once when the last paint
  was at least a period ago, else a period after it. Fallback: Textual's `Timer`.
  Written up for upstream: docs/upstream/timer-resume.md.

- "update_timer": the `Screen._update_timer` property and the name-mangled `Screen.__update_timer`
  it caches in, and `Screen._on_timer_update` (the paint). `PacedScreen` builds the update timer
  as a `FramePacer` and times each paint (the streaming answer spaces its frames by that time).
  Fallback: Textual's update timer; paints untimed (the answer then assumes they cost nothing).

- "cropping_compositor": `textual._compositor.Compositor._get_renders(crop)`, its
  `visible_widgets`, and `Screen._compositor`. For a partial update Textual renders every widget
  whose clip (its container's area: the whole screen for top-level widgets) overlaps the update
  for all its visible lines, then keeps the updated lines: a frame of a streaming answer rendered
  the footer, status bar and prompt in full, ~40% of the frame. `CroppingCompositor` renders only
  the widgets and lines inside the update; what is painted is the same. Fallback: Textual's
  `Compositor`. Written up for upstream: docs/upstream/compositor-partial-renders.md.

- "terminal_scroll": `Compositor.render_update(full, screen_stack, simplify)` and its
  `_dirty_regions`, `ChopsUpdate` (what a partial update is), `CompositorUpdate.render_segments`,
  `Screen._compositor_refresh`, and `Widget._repaint_regions`. While an answer streams with its
  newest line on the last row, each new line moves every row of the answer on screen up one: the
  compositor composed and wrote all of them again (~40 rows of 120 columns at 120 x 40, most of
  a frame's work in tmux, a dozen times a second), where a terminal can move rows itself.
  `PacedScreen.scroll_rows(widget, rows)` takes a widget's word that all its rows on screen moved;
  the next update then first scrolls those rows of the terminal (DECSTBM, SU or SD, then the whole
  screen as the scroll region again, all inside the update's synchronized output) and paints only
  the rows the scroll exposed and what changed (`ScrolledUpdate`). Only when every other widget in
  those rows is an ancestor of it (borders and backgrounds, the same on every row) or a scroll bar
  (painted again); in the main screen, not inline. Fallback: the rows are painted again.

- "get_style": `Widget._get_style`, the style lookup Textual's own visuals pass to Content
  (`.name` -> the component class's style, from the widget or an ancestor). The answer renders
  Content itself (markdown_render.py) and must resolve such spans the same way. Fallback: the
  same lookup written with public API (`get_visual_style(name, partial=True)`, `Style.parse`).

- "canvas_strips": `StripRenderable._strips`, what `Canvas.render` returns (the table keylines).
  Fallback: render the renderable with a Rich console into lines (the public way, slower).

- "quiet_virtual_size": `Widget.virtual_size` is a `Reactive(Size(0, 0), layout=True)`. Textual
  lays the whole screen out again whenever a widget's virtual size changes, right after the
  layout that changed it; for our containers that second layout finds nothing new, yet it is a
  full reflow each time an answer grows. `quiet_virtual_size()` is the same reactive with
  layout=False. Fallback: a copy of Textual's own (stock behaviour).

- "styles_cache_clear": `textual._styles_cache.StylesCache.get_inner_outer`, an instance method
  under `functools.lru_cache(1024)` that keeps the StylesCache (every line painted) of the last
  ~1,000 widgets alive after they are removed: scrolling a long conversation grew the process by
  ~0.6 MB a page. `release_removed_widgets` empties that cache. Fallback: nothing (that memory
  stays until the cache turns over).

- "lazy_strip_caches": `textual.strip.Strip`'s slots and its `__init__`, which gives every strip
  seven `FIFOCache`s (each with its dict) for the seven methods that cache (`divide`, `crop`,
  `apply_style`, `apply_filter`, `adjust_cell_length`, `crop_extend`, `apply_offsets`; the check:
  each slot is named in `__slots__`, `__init__` and its one method only). Most strips never use
  one, yet each made the strip nine objects the collector tracks: paging a long conversation
  ran a young collection every few lines drawn (one in most PageUp frames, 4-15 ms, the most
  of PageUp's p99), and a full one walked ~17,600 caches for ~2,500 live lines. `_lazy_init`
  leaves the slots None; each method makes its cache when first called where it may use it.
  Installed with `install_acyclic_strips`. Fallback: Textual's eager caches.

- "tall_styles_cache": `textual._styles_cache.StylesCache` (`set_dirty(*regions)`, its `_cache`
  dict of painted lines and `_dirty_lines` set, which `render` reads as "paint again"), and
  `Widget._styles_cache`. Textual marks a whole widget dirty at each change of its size by adding
  every line number it spans to the set, kept until those lines are painted, which most of a
  huge answer's never are: ~60 bytes a line, ~100 MB for a 12 MB answer after Ctrl+Home.
  `use_tall_styles_cache(widget)` gives a widget that may be that tall (a long answer, its stored
  answer, its turn) a `TallStylesCache`, which drops the cached lines of a region taller than the
  cache instead (the same lines painted again); `forget_painted_lines(widget)` empties it (a
  long answer's lines moved while it painted them). Fallback: Textual's cache; a refresh.

- "tall_regions": `textual._spatial_map.SpatialMap.insert(regions_and_values)` (tuples of
  region, offset, fixed, overlay, value), `get_values_in_region(region)`, and its `total_region`.
  Textual finds what is in view through a spatial map per arrangement, a grid of cells 20 rows
  high, each listing what covers it: a widget 500,000 rows tall (a 12 MB answer) was listed in
  25,000 cells of each map it is in, 0.7 s and 70 MB at the opening of such an answer.
  `install_tall_regions` (process-wide, when streaming_markdown is imported) keeps regions over
  TALL_REGION rows in a short list of their own, added to what a query finds when they overlap
  it. Fallback: Textual's grid.

- "painted_rows": a widget's `_styles_cache` (its `_cache` of painted rows by row, `_dirty_lines`,
  `_width`), `Widget._size`, `Widget._size_updated(size, virtual_size, container_size, layout)`
  and `Widget._repaint_regions`. Textual empties a widget's cache of painted rows at every new
  size and on every full refresh: while an answer streams, each new line moved the text up a row
  (a refresh) or changed the answer's height (a new size), and every row of it and of the box
  around it on screen was drawn and styled again. `painted_rows(widget)` gives the cache to move
  rows in (streaming_markdown's `_moved`); `RowsKeptOnResize` (a mixin) keeps the rows over a new
  height at the same width; `repaint_waiting(widget)` says whether a part of it waits to be
  painted. Fallback: rows drawn again (Textual's behaviour).

Public methods patched (no check needed: no private name): "acyclic_strips". Textual's
`Strip.divide(cuts)` caches `[self]` in the strip's own cache when the cuts are its length, and
`Strip.crop_extend` caches `self` when nothing is cropped or extended: every line the compositor
paints that way is a reference cycle (with seven FIFO caches), freed only by a full collection.
Scrolling a long conversation made ~1,800 objects a page that only a full collection frees (60 %
of them such lines); `install_acyclic_strips` returns `self` uncached instead (the same strips).
For upstream: return self before caching, as `crop` and `adjust_cell_length` already do.

No longer used: `textual._resolve.resolve` (table column widths), replaced by llmchat's own
sizing when tables learned to show every character at any width (markdown_render.py).

Rich: none. Where a segment's style metadata is read, the public `Style.meta` is used (it
unmarshals the metadata, ~0.2 us more a segment than testing the private `_meta` first).

Elsewhere, one override of a documented-but-underscored hook: `ChatApp._handle_exception`,
Textual's only hook for an exception no handler or worker caught (it writes the crash log; see
llmchat/crash.py). Its guard is tests/tui/test_crash.py.
"""

from __future__ import annotations

import copy
import inspect
import time
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, cast

from textual import events
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarCorner
from textual.strip import Strip
from textual.timer import EventTargetGone, Timer
from textual.widget import Widget

VERIFIED_TEXTUAL = "8.2.8"

# What the installed Textual offers, by use (see the docstring); set at import by the checks
# below. Tests set an entry to False to run the fallback.
AVAILABLE: Dict[str, bool] = {}


def _parameters(function: Any) -> List[str]:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return []


def _uses(function: Any) -> Set[str]:
    """The global and attribute names `function`'s code (and code nested in it) uses: what a check
    can learn of a function's body in microseconds, where `inspect.getsource` costs milliseconds."""
    function = getattr(function, "__func__", None) or getattr(function, "fget", None) or function
    code = getattr(function, "__code__", None)
    names: Set[str] = set()
    stack = [code] if code is not None else []
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    return names


def _check(name: str, test: Callable[[], bool]) -> None:
    try:
        AVAILABLE[name] = bool(test())
    except Exception:  # pragma: no cover - another Textual: stock behaviour
        AVAILABLE[name] = False


# --- alt_enter ---------------------------------------------------------------------------------

try:
    from textual._xterm_parser import XTermParser
    from textual.drivers import linux_driver
except ImportError:  # pragma: no cover - another Textual (or Windows): stock behaviour
    XTermParser = object  # type: ignore[assignment,misc]
    linux_driver = None  # type: ignore[assignment]

_check(
    "alt_enter",
    lambda: (
        _parameters(getattr(XTermParser, "_sequence_to_key_events", None))[:3] == ["self", "sequence", "alt"]
        and getattr(linux_driver, "XTermParser", None) is XTermParser
    ),
)


class AltEnterParser(XTermParser):
    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if alt and sequence == "\r":
            yield events.Key("alt+enter", None)
            return
        yield from super()._sequence_to_key_events(sequence, alt=alt)


def install_alt_enter() -> bool:
    """Make the Linux driver report ESC CR as alt+enter; False (stock Textual) when this
    Textual does not have what the patch relies on."""
    if not AVAILABLE["alt_enter"]:
        return False
    linux_driver.XTermParser = AltEnterParser  # type: ignore[misc]
    return True


def parser_in_use() -> Any:
    """The parser class the Linux driver builds (for the guard test)."""
    return getattr(linux_driver, "XTermParser", None)


# --- frame_pacer -------------------------------------------------------------------------------

try:
    from textual import _time
except ImportError:  # pragma: no cover
    _time = None  # type: ignore[assignment]


def _timer_has_what_the_pacer_needs() -> bool:
    timer = Timer(cast(Any, _CheckTarget()), 1.0, pause=True)
    return (
        inspect.iscoroutinefunction(getattr(Timer, "_run", None))
        and "_run" in _uses(Timer._run_timer)  # the task runs _run
        and _parameters(Timer._tick) == ["self", "next_timer", "count"]
        and callable(getattr(Timer, "_start", None))
        and timer._interval == 1.0
        and not timer._active.is_set()
        and callable(getattr(_time, "get_time", None))
        and inspect.iscoroutinefunction(getattr(_time, "sleep", None))
    )


class _CheckTarget:
    """Something a Timer can hold a weak reference to, for the check (nothing is started)."""


_check("frame_pacer", _timer_has_what_the_pacer_needs)


def next_paint_delay(last: float, now: float, period: float) -> float:
    """Seconds to wait before painting: none if the last paint was at least `period` ago."""
    return max(0.0, last + period - now)


class FramePacer(Timer):
    """A paused-and-resumed interval timer that ticks at once when resumed after a quiet spell,
    and never more often than once per interval."""

    async def _run(self) -> None:
        period = self._interval
        last = float("-inf")
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


def interval_timer(target: Any, interval: float, callback: Callable[[], Any], *, name: Optional[str] = None, pause: bool = False) -> Timer:
    """A started interval timer on `target` (a message pump): a FramePacer where this Textual
    allows, else Textual's own (`set_interval`)."""
    add = getattr(getattr(target, "_timers", None), "add", None)  # set_interval's: stopped with `target`
    if not AVAILABLE["frame_pacer"] or not callable(add):
        return target.set_interval(interval, callback, name=name, pause=pause)
    timer = FramePacer(target, interval, name=name, callback=callback, pause=pause)
    timer._start()
    add(timer)
    return timer


# --- cropping_compositor -------------------------------------------------------------------------

try:
    from textual._compositor import Compositor
except ImportError:  # pragma: no cover
    Compositor = object  # type: ignore[assignment,misc]

_check(
    "cropping_compositor",
    lambda: (
        _parameters(Compositor._get_renders) == ["self", "crop"]
        and isinstance(Compositor.__dict__.get("visible_widgets"), property)
        and _parameters(Widget.render_lines) == ["self", "crop"]
    ),
)


try:
    from textual._compositor import ChopsUpdate, CompositorUpdate
except ImportError:  # pragma: no cover
    ChopsUpdate = CompositorUpdate = object  # type: ignore[assignment,misc]

_check(
    "terminal_scroll",
    lambda: (
        _parameters(Compositor.render_update) == ["self", "full", "screen_stack", "simplify"]
        and _parameters(CompositorUpdate.render_segments) == ["self", "console"]
        and issubclass(ChopsUpdate, CompositorUpdate)
        and isinstance(Compositor()._dirty_regions, set)
        and callable(Screen.__dict__.get("_compositor_refresh"))
        and isinstance(Widget()._repaint_regions, set)
    ),
)


def _rows_unlike_moved(widget: Widget, at: Region, area: Region, rows: int) -> List[Region]:
    """The rows of `area` (a part of `widget`, which is at `at` and stays there) that the
    terminal would show wrong once it moved them `rows` rows: those whose line differs from the
    line it moves there (a scroll bar's is the same but around its thumb). Only `widget`'s own
    changes since its last paint are not seen: they wait to be painted, and are."""
    lines = widget.render_lines(Region(area.x - at.x, area.y - at.y, area.width, area.height))
    unlike = []
    for index, line in enumerate(lines):
        source = index + rows
        if not 0 <= source < len(lines) or lines[source] != line:
            unlike.append(Region(area.x, area.y + index, area.width, 1))
    return unlike


class ScrolledUpdate(CompositorUpdate):
    """A partial update that first moves rows `top` to `bottom` (excluded) of the terminal
    `rows` rows up (down when negative): the scroll region set to them, scrolled, and set back
    to the whole screen (which also moves the cursor home: the update moves it to each line)."""

    def __init__(self, top: int, bottom: int, rows: int, update: Any) -> None:
        self.top, self.bottom, self.rows, self.update = top, bottom, rows, update

    def render_segments(self, console: Any) -> str:
        scroll = f"\x1b[{self.rows}S" if self.rows > 0 else f"\x1b[{-self.rows}T"
        return f"\x1b[{self.top + 1};{self.bottom}r{scroll}\x1b[r" + self.update.render_segments(console)


class CroppingCompositor(Compositor):
    scroll: Optional[Tuple[int, int, int]] = None  # rows moved before the next update (top, bottom, rows)

    def render_update(self, full: bool = False, screen_stack: Any = None, simplify: bool = False) -> Any:
        scroll, self.scroll = self.scroll, None
        update = super().render_update(full, screen_stack, simplify)
        if scroll is None or not isinstance(update, ChopsUpdate):
            return update  # (nothing, or the whole screen painted)
        return ScrolledUpdate(*scroll, update)

    def _get_renders(self, crop: Optional[Region] = None) -> Iterable[Tuple[Region, Region, List[Strip]]]:
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


# --- update_timer: the screen ------------------------------------------------------------------

_check(
    "update_timer",
    lambda: (
        isinstance(Screen.__dict__.get("_update_timer"), property)
        and "_Screen__update_timer" in _uses(Screen.__init__)
        and callable(Screen.__dict__.get("_on_timer_update"))
    ),
)


_SCREEN_TIMER = "_Screen__update_timer"  # where Screen._update_timer caches its timer (name-mangled)


class PacedScreen(Screen):
    """Textual's Screen, its paints paced by a FramePacer and drawn by a CroppingCompositor
    where this Textual allows (see above); `painted(seconds)` is told how long each paint took."""

    def __init__(self, name: Optional[str] = None, id: Optional[str] = None, classes: Optional[str] = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if AVAILABLE["cropping_compositor"] and type(getattr(self, "_compositor", None)) is Compositor:
            self._compositor = CroppingCompositor()

    def painted(self, seconds: float) -> None:
        """A paint (with its layout, if any) took `seconds`."""

    _scroll_hint: Optional[Tuple[Widget, Region, Region, int]] = None

    def scroll_rows(self, widget: Widget, rows: int) -> Optional[Tuple[int, int]]:
        """`widget`'s rows on screen all moved `rows` rows up (down when negative) since they
        were painted, and any other change to them is marked as such (`refresh` of the rows).
        When the terminal can move them (see the docstring), the next update does, and paints
        the rows the move exposed and those marked: returned, the rows of `widget` on screen
        (first, end; its own rows, its border and padding counted), where the widget marks the
        rows that changed. None: the widget paints all of them."""
        compositor = self._compositor
        if not AVAILABLE["terminal_scroll"] or not isinstance(compositor, CroppingCompositor):
            return None
        if self._scroll_hint is not None or compositor.scroll is not None:
            return None  # (two moves before one update: paint them)
        if self.app.screen is not self or self.app.is_inline:
            return None
        placed = compositor.visible_widgets.get(widget)
        if placed is None:
            return None
        region = placed[0]
        visible = region.intersection(placed[1])
        if not rows or abs(rows) >= visible.height:
            return None
        self._scroll_hint = (widget, region, visible, rows)
        # What waits to be painted moved with the rest: paint it where it is now, too.
        waiting = widget._repaint_regions
        waiting.update([area.translate((0, -rows)) for area in waiting])
        first = visible.y - region.y
        return first, first + visible.height

    def _compositor_refresh(self) -> None:
        hint, self._scroll_hint = self._scroll_hint, None
        if hint is not None:
            self._prepare_scroll(*hint)
        super()._compositor_refresh()

    def _prepare_scroll(self, widget: Widget, region: Region, visible: Region, rows: int) -> None:
        """Scroll the rows `widget` (at `region`) showed in `visible` by `rows` before the next
        update, and mark what the scroll cannot move for painting: the rows it exposes, the
        scroll bars in those rows, and where each row waiting to be painted moves to (it was not
        painted yet: the terminal's row there is not the one that moved). When another widget is
        in those rows, or `widget` is no longer where it was, paint all of them instead."""
        compositor = cast(CroppingCompositor, self._compositor)
        dirty: Set[Region] = compositor._dirty_regions
        width = self.size.width
        band = Region(0, visible.y, width, visible.height)
        placed = compositor.visible_widgets.get(widget)
        moves = self.app.screen is self and placed is not None and placed[0] == region and placed[0].intersection(placed[1]) == visible
        bars: List[Region] = []
        if moves:
            ancestors = set(widget.ancestors_with_self)
            for other, (at, clip) in compositor.visible_widgets.items():
                area = at.intersection(clip).intersection(band)
                if not area or other in ancestors:
                    continue
                if isinstance(other, (ScrollBar, ScrollBarCorner)) and other.parent in ancestors:
                    bars.extend(_rows_unlike_moved(other, at, area, rows))
                    continue
                moves = False  # (a notice, a tooltip, a widget beside it: it would move too)
                break
        if not moves or self.size.region in dirty:
            dirty.add(band)
            return
        waiting = [area for area in (dirty_region.intersection(band) for dirty_region in dirty) if area]
        dirty.update(area for area in (waits.translate((0, -rows)).intersection(band) for waits in waiting) if area)
        dirty.update(bars)
        if rows > 0:
            dirty.add(Region(0, band.bottom - rows, width, rows))
        else:
            dirty.add(Region(0, band.y, width, -rows))
        compositor.scroll = (band.y, band.bottom, rows)

    def _on_timer_update(self) -> None:
        if not AVAILABLE["update_timer"]:
            super()._on_timer_update()
            return
        started = time.perf_counter()
        super()._on_timer_update()
        self.painted(time.perf_counter() - started)

    @property
    def _update_timer(self) -> Timer:  # Screen's, with a FramePacer in place of its Timer
        if not (AVAILABLE["update_timer"] and AVAILABLE["frame_pacer"]):
            return super()._update_timer
        timer: Optional[Timer] = getattr(self, _SCREEN_TIMER)
        if timer is None:
            from textual.screen import UPDATE_PERIOD

            timer = interval_timer(self, UPDATE_PERIOD, self._on_timer_update, name="screen_update", pause=True)
            setattr(self, _SCREEN_TIMER, timer)
        return timer


def screen_parts(screen: Screen) -> Tuple[Any, Any]:
    """The compositor and the update timer Textual uses for `screen` (for the guard tests)."""
    return getattr(screen, "_compositor", None), getattr(screen, "_update_timer", None)


# --- get_style ---------------------------------------------------------------------------------

_check("get_style", lambda: _parameters(getattr(Widget, "_get_style", None)) == ["self", "style"])


def style_getter(widget: Widget) -> Callable[[Any], Any]:
    """How Textual's visuals resolve a style named in Content (".name" -> a component class of
    the widget or an ancestor; else parsed) for `widget`."""
    if AVAILABLE["get_style"]:
        return widget._get_style
    from textual.style import NULL_STYLE
    from textual.style import Style as VisualStyle

    def get_style(style: Any) -> Any:
        if isinstance(style, VisualStyle):
            return style
        if style.startswith("."):
            for node in widget.ancestors_with_self:
                if not isinstance(node, Widget):
                    break  # past the widgets (the screen's app): no style
                try:
                    return node.get_visual_style(style[1:], partial=True)
                except KeyError:
                    continue
            else:
                raise KeyError(f"No matching component class found for '{style}'")
            return NULL_STYLE
        try:
            return VisualStyle.parse(style)
        except Exception:
            return NULL_STYLE

    return get_style


# --- canvas_strips ---------------------------------------------------------------------------------


def _strip_renderable_keeps_strips() -> bool:
    from textual.strip import StripRenderable

    strips = [Strip.blank(1)]
    return StripRenderable(strips, 1)._strips is strips


_check("canvas_strips", _strip_renderable_keeps_strips)


def canvas_strips(renderable: Any, width: int) -> List[Strip]:
    """The lines of what `Canvas.render` returned, `width` cells each."""
    strips = getattr(renderable, "_strips", None) if AVAILABLE["canvas_strips"] else None
    if isinstance(strips, list):
        return list(strips)
    from rich.console import Console

    console = Console(width=width, color_system="truecolor", force_terminal=True, legacy_windows=False)
    lines = console.render_lines(renderable, console.options.update_width(width), pad=False)
    return [Strip(line).extend_cell_length(width) for line in lines]


# --- quiet_virtual_size --------------------------------------------------------------------------

_STOCK_VIRTUAL_SIZE = Widget.__dict__.get("virtual_size")
_check(
    "quiet_virtual_size",
    lambda: isinstance(_STOCK_VIRTUAL_SIZE, Reactive) and _STOCK_VIRTUAL_SIZE._default == Size(0, 0) and _STOCK_VIRTUAL_SIZE._layout is True,
)


def quiet_virtual_size() -> Any:
    """A widget's `virtual_size` whose change asks for no second layout (class attribute)."""
    if AVAILABLE["quiet_virtual_size"]:
        return Reactive(Size(0, 0), layout=False)
    return copy.copy(_STOCK_VIRTUAL_SIZE)


# --- styles_cache_clear --------------------------------------------------------------------------

try:
    from textual._styles_cache import StylesCache
except ImportError:  # pragma: no cover
    StylesCache = None  # type: ignore[assignment,misc]

_check("styles_cache_clear", lambda: callable(getattr(getattr(StylesCache, "get_inner_outer", None), "cache_clear", None)))


def release_removed_widgets() -> None:
    """Let go of what Textual's `get_inner_outer` cache holds of removed widgets (see above)."""
    if AVAILABLE["styles_cache_clear"]:
        StylesCache.get_inner_outer.cache_clear()


# --- tall_styles_cache, tall_regions -------------------------------------------------------------

try:
    from textual._spatial_map import SpatialMap
except ImportError:  # pragma: no cover
    SpatialMap = None  # type: ignore[assignment,misc]


def _styles_cache_as_known() -> bool:
    cache = StylesCache()
    return (
        _parameters(StylesCache.set_dirty) == ["self", "regions"]
        and isinstance(cache._cache, dict)
        and isinstance(cache._dirty_lines, set)
        and {"_dirty_lines", "__contains__", "_cache"} <= _uses(StylesCache.render)
        and isinstance(getattr(Widget(), "_styles_cache", None), StylesCache)
    )


def _spatial_map_as_known() -> bool:
    return (
        _parameters(SpatialMap.insert) == ["self", "regions_and_values"]
        and _parameters(SpatialMap.get_values_in_region) == ["self", "region"]
        and isinstance(SpatialMap().total_region, Region)
    )


_check("tall_styles_cache", _styles_cache_as_known)
_check("tall_regions", _spatial_map_as_known)
_StylesCacheBase: Any = StylesCache if StylesCache is not None else object


def use_tall_styles_cache(widget: Widget) -> None:
    """Give `widget`, which may be hundreds of thousands of lines tall, a `TallStylesCache`."""
    if AVAILABLE["tall_styles_cache"]:
        widget._styles_cache = TallStylesCache()


def forget_painted_lines(widget: Widget) -> None:
    """Empty Textual's cache of `widget`'s painted lines: each is rendered again when next
    painted (the lines of a long answer moved while it was painting them). Fallback: a refresh
    (the same, and a paint more)."""
    if AVAILABLE["tall_styles_cache"]:
        widget._styles_cache.clear()
    else:
        widget.refresh()


class TallStylesCache(_StylesCacheBase):
    """Textual's cache of a widget's painted lines, for a widget that may be hundreds of
    thousands of lines tall (a huge answer, and the containers around it): a region marked
    dirty drops the cached lines in it, instead of adding every line number it spans to a set
    (Textual marks the whole widget dirty at each change of its size: ~60 bytes a line, 100 MB
    for a 12 MB answer, kept until those lines are painted, which most never are)."""

    def set_dirty(self, *regions: Region) -> None:
        cache = self._cache
        for region in regions:
            if region.height > len(cache):
                start, end = region.y, region.bottom
                for y in [y for y in cache if start <= y < end]:
                    del cache[y]
            else:
                self._dirty_lines.update(region.line_range)
        if not regions:
            self.clear()


# A region taller than this many rows is kept aside in a spatial map, not in its grid's cells.
TALL_REGION = 2_000


def install_tall_regions() -> None:
    """Tall regions are kept aside in Textual's spatial maps (see the docstring), in the order
    they came, after the grid's: they are the few tall widgets of a vertical layout, which do
    not overlap each other. Process-wide, idempotent."""
    if not AVAILABLE["tall_regions"] or getattr(SpatialMap, "_tall_regions_installed", False):
        return
    grid_insert = SpatialMap.insert
    grid_values = SpatialMap.get_values_in_region

    def insert(self: Any, regions_and_values: Iterable[Tuple[Region, Any, bool, bool, Any]]) -> None:
        short = []
        tall: Optional[List[Tuple[Region, Any]]] = None
        for item in regions_and_values:
            region, offset, fixed, overlay, value = item
            if fixed or overlay or region.height <= TALL_REGION:
                short.append(item)
                continue
            if tall is None:
                tall = self.__dict__.setdefault("_tall", [])
            tall.append((region + offset, value))
            self.total_region = self.total_region.union(region)
        grid_insert(self, short)

    def get_values_in_region(self: Any, region: Region) -> List[Any]:
        values = grid_values(self, region)
        tall = self.__dict__.get("_tall")
        if tall:
            values.extend(value for area, value in tall if area.overlaps(region) and value not in values)
        return values

    SpatialMap.insert = insert  # type: ignore[method-assign]
    SpatialMap.get_values_in_region = get_values_in_region  # type: ignore[method-assign]
    SpatialMap._tall_regions_installed = True  # type: ignore[attr-defined]


# --- painted_rows --------------------------------------------------------------------------------


def _painted_rows_as_known() -> bool:
    widget = Widget()
    cache = widget._styles_cache
    return (
        isinstance(cache._cache, dict)
        and isinstance(cache._dirty_lines, set)
        and hasattr(cache, "_width")
        and isinstance(widget._size, Size)
        and isinstance(widget._repaint_regions, set)
        and _parameters(Widget._size_updated) == ["self", "size", "virtual_size", "container_size", "layout"]
    )


_check("painted_rows", _painted_rows_as_known)


def painted_rows(widget: Widget) -> Optional[Tuple[Dict[int, Strip], Set[int]]]:
    """Textual's rows painted for `widget` (by row) and the rows marked to be painted again;
    None where this Textual is not the one checked."""
    if not AVAILABLE["painted_rows"]:
        return None
    cache = widget._styles_cache
    return cache._cache, cache._dirty_lines


def repaint_waiting(widget: Widget) -> bool:
    """A part of `widget` was refreshed and waits to be painted."""
    return bool(AVAILABLE["painted_rows"] and widget._repaint_regions)


class RowsKeptOnResize:
    """For a Widget whose rows do not depend on its height (no top or bottom border or padding;
    the lines that changed marked as such), as a growing answer and the box around it: when
    only its height changes (a layout a line while an answer is shorter than the view), the
    rows Textual painted and cached for it stay, while `rows_kept_on_resize()` says so."""

    def rows_kept_on_resize(self) -> bool:
        return True

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        resize = super()._size_updated  # type: ignore[misc]
        widget = cast(Widget, self)
        old = widget._size if AVAILABLE["painted_rows"] else None
        if old is None or size.width != old.width or size.height == old.height or not self.rows_kept_on_resize():
            return bool(resize(size, virtual_size, container_size, layout))
        cache = widget._styles_cache
        lines, dirty = cache._cache, cache._dirty_lines
        kept = {y: strip for y, strip in lines.items() if y < size.height}, set(dirty)
        resized = bool(resize(size, virtual_size, container_size, layout))
        if widget._styles_cache is cache and not lines and cache._width == size.width:
            lines.update(kept[0])
            dirty.clear()
            dirty.update(kept[1])
        return resized


# --- acyclic_strips ------------------------------------------------------------------------------

_stock_divide = Strip.divide
_stock_crop_extend = Strip.crop_extend


def _divide(self: Strip, cuts: Iterable[int]) -> Any:
    cuts = list(cuts)
    length = self.cell_length
    if [cut for cut in cuts if cut <= length] == [length]:
        return [self]  # what Textual returns, not kept in self's cache (a cycle)
    return _stock_divide(self, cuts)


def _crop_extend(self: Strip, start: int, end: int, style: Any) -> Strip:
    if start <= 0 and end == self.cell_length:
        return self  # (idem)
    return _stock_crop_extend(self, start, end, style)


def install_acyclic_strips() -> None:
    """Strips never cache themselves, and make their caches when first used (see the
    docstring); process-wide, idempotent."""
    if AVAILABLE["lazy_strip_caches"]:
        Strip.__init__ = _lazy_init  # type: ignore[method-assign]
        for name, method in _LAZY_METHODS.items():
            setattr(Strip, name, method)
    else:
        Strip.divide = _divide  # type: ignore[method-assign]
        Strip.crop_extend = _crop_extend  # type: ignore[method-assign]


# --- lazy_strip_caches ---------------------------------------------------------------------------

# Each cache slot of a Strip, its size, and the one method that reads and fills it.
_STRIP_CACHES = (
    ("_divide_cache", 4, "divide"),
    ("_crop_cache", 16, "crop"),
    ("_style_cache", 16, "apply_style"),
    ("_filter_cache", 4, "apply_filter"),
    ("_line_length_cache", 4, "adjust_cell_length"),
    ("_crop_extend_cache", 4, "crop_extend"),
    ("_offsets_cache", 4, "apply_offsets"),
)
_STOCK_STRIP = {name: Strip.__dict__[name] for name in ("__init__", *(method for _, _, method in _STRIP_CACHES)) if name in Strip.__dict__}
_STRIP_SLOTS = {"_segments", "_cell_length", "_render_cache", "_link_ids", "_cell_count"} | {slot for slot, _, _ in _STRIP_CACHES}


def _strip_caches_as_known() -> bool:
    from textual.cache import FIFOCache

    init = _STOCK_STRIP["__init__"]
    if set(Strip.__slots__) != _STRIP_SLOTS or _parameters(init) != ["self", "segments", "cell_length"]:
        return False
    strip = Strip.__new__(Strip)
    init(strip, [], 0)
    for slot, size, _ in _STRIP_CACHES:
        cache = getattr(strip, slot)
        if not isinstance(cache, FIFOCache) or getattr(cache, "_maxsize", None) != size:
            return False
    # Each slot is used by `__init__` and else only by its one method (the test reads the source).
    users = {slot: {name for name, value in Strip.__dict__.items() if slot in _uses(_STOCK_STRIP.get(name, value))} for slot, _, _ in _STRIP_CACHES}
    return all(users[slot] == {"__init__", method} for slot, _, method in _STRIP_CACHES)


def _lazy_init(self: Strip, segments: Iterable[Any], cell_length: Optional[int] = None) -> None:
    """Textual's `Strip.__init__`, but for the caches: none until a method needs its own."""
    self._segments = list(segments)
    self._cell_length = cell_length
    self._divide_cache = self._crop_cache = self._style_cache = self._filter_cache = None  # type: ignore[assignment]
    self._line_length_cache = self._crop_extend_cache = self._offsets_cache = None  # type: ignore[assignment]
    self._render_cache = None
    self._link_ids = None
    self._cell_count = None


def _lazy(slot: str, size: int, method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` with its cache made before the first call that may use it."""
    from textual.cache import FIFOCache

    get = Strip.__dict__[slot].__get__
    put = Strip.__dict__[slot].__set__

    def with_cache(self: Strip, *args: Any) -> Any:
        if get(self) is None:
            put(self, FIFOCache(size))
        return method(self, *args)

    with_cache.__name__ = method.__name__
    with_cache.__doc__ = method.__doc__
    return with_cache


_check("lazy_strip_caches", _strip_caches_as_known)
_LAZY_METHODS: Dict[str, Callable[..., Any]] = {}
if AVAILABLE["lazy_strip_caches"]:
    _LAZY_METHODS = {method: _lazy(slot, size, _STOCK_STRIP[method]) for slot, size, method in _STRIP_CACHES}
    _lazy_divide, _lazy_crop_extend = _LAZY_METHODS["divide"], _LAZY_METHODS["crop_extend"]
    _lazy_crop, _lazy_adjust = _LAZY_METHODS["crop"], _LAZY_METHODS["adjust_cell_length"]

    # Where Textual returns the strip itself, so do these, before any cache is made: uncached
    # where Textual would cache it (divide, crop_extend: the cycles above), and as Textual does
    # where it would not (crop, adjust_cell_length: no cache made for nothing).
    def _divide_lazily(self: Strip, cuts: Iterable[int]) -> Any:
        cuts = list(cuts)
        length = self.cell_length
        if [cut for cut in cuts if cut <= length] == [length]:
            return [self]
        return _lazy_divide(self, cuts)

    def _crop_extend_lazily(self: Strip, start: int, end: int, style: Any) -> Strip:
        if start <= 0 and end == self.cell_length:
            return self
        return _lazy_crop_extend(self, start, end, style)

    def _crop_lazily(self: Strip, start: int, end: Optional[int] = None) -> Strip:
        if start <= 0 and (end is None or end >= self.cell_length):
            return self
        return _lazy_crop(self, start, end)

    def _adjust_cell_length_lazily(self: Strip, cell_length: int, style: Any = None) -> Strip:
        if self.cell_length == cell_length:
            return self
        return _lazy_adjust(self, cell_length, style)

    _LAZY_METHODS.update(divide=_divide_lazily, crop_extend=_crop_extend_lazily, crop=_crop_lazily, adjust_cell_length=_adjust_cell_length_lazily)


# --- still_virtual_size (small11) ----------------------------------------------------------------


def still_virtual_size() -> Any:
    """`quiet_virtual_size`, asking for no repaint either: for a widget that is not scrollable,
    whose rows never depend on its virtual size (a growing answer and its box). Textual sets it
    in each layout that resizes the widget; its repaint was a second paint of the widget a tick
    after that layout's own (the same rows: ~25 paints an answer at 200 tok/s)."""
    if AVAILABLE["quiet_virtual_size"]:
        return Reactive(Size(0, 0), layout=False, repaint=False)
    return quiet_virtual_size()
