"""The transcript: the scrolling column of messages, whose cost does not grow with its length.

A reopened conversation may hold a thousand turns. Only the stored turns near the view are
widgets (a window of `TurnView`s); the others are two `Spacer`s, above and below the window,
each as tall as the turns it stands for: their measured heights once shown at this width, an
estimate from their text before that. Scrolling by any means (keys, mouse wheel, scrollbar)
moves the window with the view: turns coming within a page or so of it are mounted, turns
several pages away are removed (and freed), so a conversation opens at its end and can be read
back to its start without "show more" buttons, and the number of live widgets stays bounded.

Estimates are never exact, and a width change changes every height. So the transcript keeps
the view still the way browsers do (CSS `overflow-anchor`): when a layout moves the first
widget in view (a turn above it was shown and its estimate was wrong), the scroll position
moves by as much in the same layout -- before anything is painted -- and the view does not jump.
This happens in `arrange`, where Textual's own follow-the-end anchoring adjusts the position too.

Answers sent in this session come after the lower spacer, as live widgets (the app mounts them).

Removed turns are freed: `release_removed_widgets` (llmchat/tui/compat.py) empties the Textual
cache that would keep what they painted alive; tests/tui/test_long_conversation.py guards it.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from time import monotonic, perf_counter
from typing import Any, Awaitable, Dict, List, Optional, Sequence, Set, Tuple

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.layout import DockArrangeResult, WidgetPlacement
from textual.widget import Widget

from llmchat.tui.compat import install_acyclic_strips, quiet_virtual_size, release_removed_widgets, use_tall_styles_cache
from llmchat.tui.widgets.messages import UserMessage
from llmchat.tui.widgets.streaming_markdown import DRAWN

install_acyclic_strips()  # the lines scrolled past are freed at once, not by a full collection

NEAR_PAGES = 1.0  # turns within this many pages of the view are mounted
FAR_PAGES = 3.0  # mounted turns further than this many pages from the view are removed
# While the view moves among stored turns, no full collections (gc_policy.py): one took 60-130 ms
# here, every ~6 pages, the spikes in PageUp's p99. The hold ends once the view has been still
# for SCROLL_QUIET seconds (the policy then collects). A long scroll is collected on its way,
# or what the turns removed left would pile up (the keys hold collections off too, as long as
# they come: 1.6 million objects after 30 s of PageUp, a 4 s collection, RSS 60 -> 150 MB):
# SCROLL_COLLECT_EVERY seconds after the last collection (one costs 60-250 ms however little it
# frees: what is alive dominates, and the key that comes meanwhile waits for it; every 10 s was
# 1.6 % of PageUps 200-350 ms late; 30 s of scrolling leaves ~15 MB to collect), at the first
# moment the view has been still for SCROLL_GAP seconds (its frame and the turns it brought
# painted), or after SCROLL_COLLECT_LATE seconds after the next paint (keys that never pause).
SCROLL_QUIET = 0.5
SCROLL_COLLECT_EVERY = 30.0
SCROLL_GAP = 0.03
SCROLL_COLLECT_LATE = 60.0
# The turns a move mounted are drawn ahead, in the gaps after the frames (`_draw_ahead`): a
# PageUp onto a page of turns whose lines were never drawn paid 55-75 ms for drawing them in its
# own frame (p99), one onto drawn lines ~20 ms. DRAW_AHEAD_LINES lines of a widget at a time, for
# at most DRAW_AHEAD_SLICE seconds (a key that comes meanwhile waits no longer), and only turns up
# to DRAW_AHEAD_PAGES pages tall (a taller answer draws the part in view itself: its lazy layout).
DRAW_AHEAD_SLICE = 0.003
DRAW_AHEAD_LINES = 4
DRAW_AHEAD_PAGES = 3
# Not while an answer streams: drawing ahead in the gaps between its frames delayed its end by
# 30-60 ms (a message sent right after a long conversation opened). Checked again this often.
DRAW_AHEAD_WAIT = 0.1
ANSWER = "answer"  # the reason an answer holds full collections off (messages.py, gc_policy.py)


@dataclass(eq=False)
class StoredTurn:
    """One stored turn as the transcript shows it: the prompt, and the stored answer (a history
    `StoredMessage`) or None."""

    prompt: str
    answer: Any = None
    prompt_message: Any = None  # the stored prompt (its place among its siblings), when known


def estimate_height(turn: StoredTurn, width: int) -> int:
    """Lines a turn will take at a transcript `width`, before it is laid out: the wrapped
    source lines, plus the margins, borders and the figures line. Only a first guess; the
    transcript measures each turn it shows and keeps the view still when a guess was wrong."""
    text_width = max(10, width - 12)  # margins, border, padding

    def lines(text: str) -> int:
        return sum(1 + len(line) // text_width for line in text.split("\n"))

    height = 1 + lines(turn.prompt)  # margin above, then the text
    answer = turn.answer
    if answer is not None:
        height += 2 + (lines(answer.content) if answer.content else 0)  # margin, figures line
    return height


class Spacer(Widget):
    """Blank lines standing for turns that are not widgets now. The widget itself is a marker
    of no height: the transcript's `arrange` moves what comes after it down by `lines` (a
    placement thousands of lines tall would cost a layout ~1 ms per 1,000 lines, in the
    arrangement's spatial map of 20-line cells)."""

    DEFAULT_CSS = """
    Spacer {
        height: 0;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def set_lines(self, lines: int) -> None:
        if lines != self.lines:
            self.lines = lines
            parent = self.parent
            if isinstance(parent, Widget):
                parent.refresh(layout=True)


def attached_lines(prompt: Any) -> List[str]:
    """A stored prompt's attachments, a line each (name, kind, size)."""
    metas = getattr(prompt, "attachments", None)
    if not metas:
        return []
    from llmchat.tui.widgets.attachments import describe

    return [describe(meta) for meta in metas]


class TurnView(Vertical):
    """A stored turn in the transcript: the prompt and the answer."""

    # Not scrollable: the size of a turn just shown needs no second layout of the screen (nor
    # do its prompt's, its answer's or their lines': each sets the same, see compat.py).
    virtual_size = quiet_virtual_size()

    DEFAULT_CSS = """
    TurnView {
        height: auto;
    }
    """

    def __init__(self, index: int, turn: StoredTurn) -> None:
        super().__init__()
        use_tall_styles_cache(self)  # as tall as its answer: megabytes of Markdown, maybe
        self.index = index
        self.turn = turn

    def compose(self) -> ComposeResult:
        from llmchat.tui.widgets.stored import StoredAnswer

        asked = self.turn.prompt_message
        yield UserMessage(self.turn.prompt, attached_lines(asked))
        if asked is not None and asked.sibling_count > 1:
            from llmchat.tui.widgets.siblings import SiblingSwitcher

            yield SiblingSwitcher(asked.id, asked.sibling_index, asked.sibling_count, classes="-prompt")
        if self.turn.answer is not None:
            yield StoredAnswer(self.turn.answer)


class Transcript(VerticalScroll):
    """The scrolling column of messages: the note at the top, the stored turns of a reopened
    conversation (a window of them as widgets), then this session's messages."""

    virtual_size = quiet_virtual_size()
    # The prompt keeps the focus: the transcript scrolls with keys bound on the app, the wheel
    # and the scrollbar, and text in it can be selected, none of which needs focus.
    can_focus = False

    def __init__(self, *children: Widget, **kwargs: Any) -> None:
        super().__init__(*children, **kwargs)
        self._turns: List[StoredTurn] = []
        self._heights: List[int] = []  # per stored turn at `_width`: as last laid out, or estimated
        self._width = 0
        self._views: List[TurnView] = []  # the window, in order: turns _lo .. _lo + len - 1
        self._lo = 0
        self._above = Spacer()
        self._below = Spacer()
        self._placed: List[Tuple[Widget, Region]] = []  # the last arrangement, in order
        self._arranged: Optional[DockArrangeResult] = None  # the last arrangement, spacers made room
        self._base: Optional[DockArrangeResult] = None  # Textual's arrangement it was made from
        self._base_lines = (0, 0)  # and the spacers' lines then
        self._area = Size(0, 0)  # the scrollable area at the last arrangement
        self._move_pending = False
        # Turns a move mounted, not yet laid out with everything in them: never the turn the view
        # keeps still by (a key may scroll onto them before; their heights are not theirs yet).
        self._fresh: Set[TurnView] = set()
        self._mounted: Set[TurnView] = set()  # of those, the ones mounted whole: fresh until the next arrangement
        self._gc_hold: Any = None  # the app's GC policy while scrolling holds it
        self._gc_since = 0.0
        self._gc_timer: Any = None
        self._gap_timer: Any = None  # a collection in the next gap between moves
        self._ahead: List[Tuple[Widget, int]] = []  # widgets of newly mounted turns whose lines are drawn ahead, from that line
        self._ahead_pending = False
        self.drawn_ahead = 0  # lines drawn ahead (tests)
        self.scroll_collections = 0  # made while scrolling (tests)

    # --- what it shows ---

    @property
    def stored_turns(self) -> int:
        return len(self._turns)

    @property
    def window(self) -> Tuple[int, int]:
        """The stored turns that are widgets now: first index, one past the last."""
        return self._lo, self._lo + len(self._views)

    @property
    def turns(self) -> List[StoredTurn]:
        """The stored turns shown, oldest first (widgets or not)."""
        return list(self._turns)

    def view_of(self, index: int) -> Optional[TurnView]:
        """The widget of stored turn `index`, if it is one now."""
        lo, hi = self.window
        return self._views[index - lo] if lo <= index < hi else None

    def reveal(self, index: int) -> None:
        """Make stored turn `index` a widget (the window grows to it; scrolling trims it later)."""
        lo, hi = self.window
        if 0 <= index < len(self._turns) and not lo <= index < hi:
            self._show_window(min(lo, index), max(hi, index + 1))

    async def show_turns(self, turns: Sequence[StoredTurn]) -> None:
        """Everything but the first child (the note at the top) gives way to `turns`, shown
        from the end: only as many as fill the view and a page more are mounted now."""
        keep = self.children[:1]
        with self.app.batch_update():
            await self.remove_children([child for child in self.children if child not in keep])
            # Textual keeps the list of displayed children until it is next asked for it, which
            # nothing may do for a while: the removed widgets would stay alive until then.
            _ = self.displayed_children
            release_removed_widgets()
            # The lines the removed answers drew are kept in a cache shared by all answers
            # (streaming_markdown.DRAWN, up to ~20 MB): nothing left can use them.
            DRAWN.clear()
            self._turns = list(turns)
            width = self._content_width()
            gutter = 0 if self.show_vertical_scrollbar or self.styles.overflow_y != "auto" else self.styles.scrollbar_size_vertical
            # Estimated for the width they will have: with a scrollbar when they will scroll
            # (1,000 turns estimated again at the next move, for a width 2 cells narrower,
            # cost as much as estimating them here).
            self._width = max(1, width - gutter)
            self._heights = [estimate_height(turn, self._width) for turn in self._turns]
            if gutter and sum(self._heights) <= self._page():
                self._width = width  # no scrollbar after all (a few turns)
                self._heights = [estimate_height(turn, width) for turn in self._turns]
            self._placed = []
            self._fresh.clear()
            self._mounted.clear()
            self._ahead.clear()
            self._arranged = self._base = None
            self._above, self._below = Spacer(), Spacer()
            if not self._turns:
                self._views, self._lo = [], 0
                return
            # Only the turns that fill the view: the first frame waits for them (each drawn,
            # its Markdown and its code highlighted); the page above comes with the move after it.
            lines = self._page()
            lo = len(self._turns)
            while lo > 0 and lines > 0:
                lo -= 1
                lines -= self._heights[lo]
            self._lo = lo
            if self._width < width:
                # It will scroll: the scrollbar is there from the first layout, so the answers
                # are laid out (every block drawn) once at their width, not first a scrollbar wider.
                self.show_vertical_scrollbar = True
            self._views = [TurnView(index, self._turns[index]) for index in range(lo, len(self._turns))]
            self._above.set_lines(sum(self._heights[:lo]))
            await self.mount_all([self._above, *self._views, self._below])

    def _content_width(self) -> int:
        width = self._area.width  # (the compositor's region of the transcript may be a full
        return width if width > 0 else max(1, self.app.size.width - 2)  # layout away: not asked)

    def _page(self) -> int:
        height = self._area.height
        return height if height > 0 else max(1, self.app.size.height)

    # --- moving the window with the view ---

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._turns:
            self._hold_gc()
        self._schedule_move(soon=not self._covers_view())

    def _hold_gc(self) -> None:
        """No full collection while the view moves (see SCROLL_QUIET)."""
        policy = getattr(self.app, "gc_policy", None)
        if policy is None:
            return
        now = monotonic()
        if self._gc_hold is None:
            policy.begin("scroll")
            self._gc_hold, self._gc_since = policy, now
        elif now - self._gc_since > SCROLL_COLLECT_LATE:
            self._gc_since = now
            self.call_after_refresh(self._collect_now)  # after this move is painted, not before
        elif now - self._gc_since > SCROLL_COLLECT_EVERY:
            if self._gap_timer is None:
                self._gap_timer = self.set_timer(SCROLL_GAP, self._collect_in_gap)
            else:
                self._gap_timer.reset()
        if self._gc_timer is None:
            self._gc_timer = self.set_timer(SCROLL_QUIET, self._release_gc)
        else:
            self._gc_timer.reset()

    def _collect_in_gap(self) -> None:
        self._gap_timer = None
        if self._move_pending:  # turns are being shown: after them
            self._gap_timer = self.set_timer(SCROLL_GAP, self._collect_in_gap)
            return
        self._collect_now()

    def _collect_now(self) -> None:
        """A long scroll: what the turns removed so far left is collected (the hold goes on,
        whatever else holds collections off: the keys, an answer streaming)."""
        policy = self._gc_hold
        if policy is not None and policy.enabled:
            self._gc_since = monotonic()
            gc.collect()
            self.scroll_collections += 1

    def _release_gc(self) -> None:
        policy, self._gc_hold = self._gc_hold, None
        if self._gap_timer is not None:
            self._gap_timer.stop()
            self._gap_timer = None
        if self._gc_timer is not None:
            self._gc_timer.stop()
            self._gc_timer = None
        if policy is not None:
            policy.end("scroll")

    def on_unmount(self) -> None:
        self._release_gc()

    def _covers_view(self) -> bool:
        """Whether the turns that are widgets now fill the view at the current position (as the
        last layout placed them): then moving the window can wait until this frame is painted."""
        placed = dict(self._placed)
        if not self._views or self._above not in placed:
            return False
        first, last = placed.get(self._views[0]), placed.get(self._views[-1])
        if first is None or last is None:
            return False
        top = self.scroll_y
        return first.y <= top and (top + self._page() <= last.bottom or self._views[-1].index == len(self._turns) - 1)

    def _schedule_move(self, soon: bool = False) -> None:
        """Move the window: before the next frame if the view is (or may be) in a spacer, else
        after it, so a page of what is mounted already is painted without waiting for turns to
        be mounted or removed (that frame is what a key or the wheel waits for)."""
        if not self._turns or self._move_pending:
            return
        self._move_pending = True
        if soon:
            self.call_later(self._move_window)
        else:
            self.call_after_refresh(self._move_window)

    def _move_window(self) -> None:
        """Mount the turns near the view, remove those far from it, and size the spacers."""
        self._move_pending = False
        if not self._turns or not self.is_attached or self._above not in self.children:
            return
        width = self._content_width()
        if width != self._width:  # every height was for another width
            self._width = width
            self._heights = [estimate_height(turn, width) for turn in self._turns]
        # Where things are is where the last layout put them: the shown turns' heights are
        # their heights there (so a turn is never taken for far away when an estimate said so).
        placed = dict(self._placed)
        if self._above not in placed:
            return  # not laid out yet: the layout calls again
        for view in self._views:
            region = placed.get(view)
            if region is None:
                return  # just mounted: the layout that places it calls again
            self._heights[view.index] = region.height
        base = placed[self._above].y
        page = self._page()
        ends = list(accumulate(self._heights))  # the bottom of each turn, from the first's top
        top = self.scroll_y - base

        def turns_in(start: float, end: float) -> Tuple[int, int]:
            first = bisect_right(ends, start)
            last = bisect_right(ends, end)
            return min(first, len(ends) - 1), min(len(ends), max(last + 1, first + 1))

        near = turns_in(top - NEAR_PAGES * page, top + (1 + NEAR_PAGES) * page)
        far = turns_in(top - FAR_PAGES * page, top + (1 + FAR_PAGES) * page)
        lo, hi = self.window
        kept = (max(lo, far[0]), min(hi, far[1]))
        if kept[0] >= kept[1] or kept[1] < near[0] or kept[0] > near[1]:
            new = near  # a jump (Ctrl+Home, the scrollbar): nothing shown now is kept
        else:
            new = (min(kept[0], near[0]), max(kept[1], near[1]))
        if new == (lo, hi):
            return
        self._show_window(*new)

    def _show_window(self, new_lo: int, new_hi: int) -> None:
        gone = [view for view in self._views if not new_lo <= view.index < new_hi]
        kept = [view for view in self._views if new_lo <= view.index < new_hi]
        first = kept[0].index if kept else new_hi
        last = kept[-1].index + 1 if kept else new_hi
        above = [TurnView(index, self._turns[index]) for index in range(new_lo, first)]
        below = [TurnView(index, self._turns[index]) for index in range(last, new_hi)]
        # No frame until every new turn is mounted with everything in it: a turn is mounted a
        # level at a time (the turn, its answer, the answer's Markdown), and each level painted
        # on its own was a layout of the screen (three or four per page instead of one).
        batch = self.app.batch_update()
        batch.__enter__()
        waits: List[Awaitable[Any]] = []
        try:
            if gone:
                going: Set[Widget] = set()
                for view in gone:
                    # What Textual painted for them (every line, each with its caches) is let go
                    # of now, by reference counting: the widgets themselves are a web of
                    # references only a full collection frees, and that walks what they hold.
                    for widget in view.walk_children(Widget, with_self=True):
                        widget.refresh()
                        going.add(widget)
                if self._ahead:
                    self._ahead = [item for item in self._ahead if item[0] not in going]
                waits.append(self.remove_children(gone))
                self.call_after_refresh(release_removed_widgets)
            if above:
                waits.append(self.mount_all(above, after=self._above))
            if below:
                waits.append(self.mount_all(below, before=self._below))
            self._views = above + kept + below
            self._lo = new_lo
            self._above.set_lines(sum(self._heights[:new_lo]))
            self._below.set_lines(sum(self._heights[new_hi:]))
            self._fresh.update(above + below)
            self._fresh.difference_update(gone)
        except BaseException:
            batch.__exit__(None, None, None)
            raise
        self.app.call_next(self._end_batch, batch, waits, above + below)

    async def _end_batch(self, batch: Any, waits: List[Awaitable[Any]], new: Sequence[TurnView] = ()) -> None:
        try:
            for wait in waits:
                await wait
        finally:
            batch.__exit__(None, None, None)
            self._mounted.update(view for view in new if view in self._fresh)
        # The screen was told of the layout these mounts need while the batch held frames back,
        # and is not told again: it would lay them out (and draw their Markdown, 50-80 ms a page)
        # only when something else wakes it, the next key, whose frame then paid for it. Now it
        # does in the gap after this move, and the next key paints lines already drawn.
        if self.is_attached:
            self.screen.check_idle()

    # --- drawing ahead ---

    def _draw_ahead_soon(self, views: Set[TurnView], placed: List[Tuple[Widget, Region]]) -> None:
        """Once the frame this layout (`placed`) is for is painted, draw the lines of `views`
        (just laid out whole) in the gaps that follow, nearest the view first, so the key that
        scrolls onto them paints lines already drawn."""
        limit = DRAW_AHEAD_PAGES * self._page()
        top = self.scroll_y
        bottom = top + self._page()
        where = dict(placed)

        def distance(view: TurnView) -> float:
            region = where.get(view)
            return 0.0 if region is None else max(0.0, region.y - bottom, top - region.bottom)

        for view in sorted(views, key=distance):
            if self._heights[view.index] <= limit:
                self._ahead.extend((widget, 0) for widget in view.walk_children(Widget, with_self=True))
        if self._ahead and not self._ahead_pending:
            self._ahead_pending = True
            self.call_after_refresh(self._draw_ahead)

    def _draw_ahead(self) -> None:
        """Draw the lines of `_ahead` (Textual keeps the lines it draws until the widget
        changes), DRAW_AHEAD_LINES of a widget at a time, for at most DRAW_AHEAD_SLICE seconds;
        then keys and frames come first."""
        self._ahead_pending = False
        ahead = self._ahead
        policy = getattr(self.app, "gc_policy", None)
        if ahead and policy is not None and policy.holds[ANSWER]:
            # An answer is streaming (a message sent right after the conversation opened):
            # its frames come first, these lines once it ended (its hold ends a moment after).
            self._ahead_pending = True
            self.set_timer(DRAW_AHEAD_WAIT, self._draw_ahead)
            return
        started = perf_counter()
        while ahead:
            widget, y = ahead[0]
            width, height = widget.outer_size
            if not widget.is_attached or not widget.display or y >= height or not width:
                ahead.pop(0)
                continue
            lines = min(DRAW_AHEAD_LINES, height - y)
            widget.render_lines(Region(0, y, width, lines))
            ahead[0] = (widget, y + lines)
            self.drawn_ahead += lines
            if perf_counter() - started >= DRAW_AHEAD_SLICE:
                break
        if ahead:
            self._ahead_pending = True
            self.set_timer(0.001, self._draw_ahead)  # (a timer, not call_later: input comes first)
        elif self._gc_hold is not None:
            self._gc_hold.collect_young()  # in this gap, not in the next key's frame

    # --- keeping the view still ---

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        base = super().arrange(size, optimal)  # Textual's, cached until the children change
        lines = (self._above.lines, self._below.lines)
        if base is self._base and lines == self._base_lines and self._arranged is not None:
            return self._arranged  # nothing moved
        self._base, self._base_lines = base, lines
        self._area = size  # the scrollable area: what a page is (never asked of the compositor here)
        arrangement = self._arranged = self._make_room(base, *lines)
        placed = [(placement.widget, placement.region) for placement in arrangement.placements]
        # (Anchored to the end, Textual's compositor sets the position after this anyway.)
        self._keep_view_still(placed)
        self._placed = placed
        if self._mounted:  # laid out whole now: their heights are theirs
            self._fresh -= self._mounted
            self._draw_ahead_soon(self._mounted, placed)
            self._mounted.clear()
        if self._turns:
            self._schedule_move()  # heights may be known now, and the spacers may be off
        return arrangement

    def _make_room(self, base: DockArrangeResult, above: int, below: int) -> DockArrangeResult:
        """`base` with what follows each spacer moved down by its lines. The lower spacer's own
        (empty) placement moves to the end of its lines, so the arrangement reaches that far."""
        if not above and not below:
            return base
        placements: List[WidgetPlacement] = []
        shift = 0
        for placement in base.placements:
            widget = placement.widget
            if widget is self._above:
                placements.append(placement)
                shift = above
                continue
            if widget is self._below:
                shift += below
            if shift and not placement.fixed and not placement.absolute:
                x, y, width, height = placement.region
                placement = placement._replace(region=Region(x, y + shift, width, height))
            placements.append(placement)
        return DockArrangeResult(placements, base.widgets, base.scroll_spacing)

    def _keep_view_still(self, placed: List[Tuple[Widget, Region]]) -> None:
        """If the first widget that was in view moved, move the view with it. A turn a move
        mounted and that was not laid out whole yet is passed over: it grows by its own lines
        (a key scrolled onto it before its layout, right after the move began)."""
        top = self.scroll_y
        bottom = top + max(1, self._page())
        now: Dict[Widget, Region] = dict(placed)
        fresh = self._fresh
        for widget, region in self._placed:
            if region.bottom <= top or isinstance(widget, Spacer) or widget not in now or widget in fresh:
                continue
            if region.y >= bottom:
                return  # nothing but a spacer was in view: no reference to keep
            shift = now[widget].y - region.y
            if shift:
                # Set as Textual's compositor sets it for anchoring: no watcher, no repaint of
                # its own (this layout paints the view from the new position).
                y = max(0.0, top + shift)
                self.set_reactive(Widget.scroll_y, y)
                self.set_reactive(Widget.scroll_target_y, y)
                self.vertical_scrollbar.position = y
            return
