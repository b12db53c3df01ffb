"""The TUI's garbage-collection policy: one object the app owns (`ChatApp.gc_policy`), with an
explicit `begin(reason)` / `end(reason)` around what must stay smooth (an answer streaming), as
Textual's own `App.PAUSE_GC_ON_SCROLL` does around a scroll.

Why: a full (oldest-generation) collection walks every object the process tracks -- ~100k once
Textual, Rich and Pygments are loaded -- and took 60-80 ms here, long enough to hold a frame past
the 50 ms the streaming latency allows. So:

- `start_up()`, called as the app composes (before any of its widgets exist), moves what is
  alive then -- the imports, the app object, its screen -- out of the collector (`gc.freeze`),
  once per process. Nothing is frozen after that: a widget is a web of references (parent,
  children, message queue), so a frozen widget removed later (an answer cleared by "New
  conversation", a turn scrolled far away, the footer's keys when the bindings change) would
  never be freed -- the collector never looks at frozen objects again.
- Between the first `begin` and the last `end` there are no full collections. How depends on the
  interpreter's collector (`collector()`, checked once):
  - "generational" (CPython up to 3.13 with the GIL): the oldest generation's threshold is set out
    of reach; the young generations are still collected as usual, and they free most garbage.
  - anything else -- CPython's incremental collector (3.14 builds that have it), whose
    `set_threshold` ignores the third threshold (so the above would do nothing), or a
    free-threaded build (one generation): automatic collection is paused (`gc.disable`) and the
    young generation is collected every `YOUNG_PERIOD` seconds instead (`gc.collect(0)`: bounded
    by what was made since the last one, ~1 ms).
- The user's keys and clicks hold full collections off too (`input()`, from the app's input
  events): from the first until `IDLE_AFTER` seconds after the last. Even with start-up frozen,
  a full collection took 60-90 ms once an answer and the conversation list had been shown (40-60k
  objects), 100-300 ms on a loaded machine, and one falling between a key and its frame was most
  of the keys that missed the 50 ms (bench_tui.py, `locked`). So full collections happen at idle
  moments: nothing streaming, no key for a while.
- At the last `end`, the collector is as it was and, if a full collection came due meanwhile
  (generational: the oldest generation's count reached its threshold; paused: the hold lasted
  `YOUNG_PER_FULL` young collections), it runs at once: outside any stream,
  after the keys (the answer ends its hold `GC_DELAY` after its last frames). Not collecting
  would leave it due, and the collector would run it at the next allocation -- likely the next
  key. A hold that lasts `OVERDUE` seconds with a collection due (keys that never pause, an
  endless stream) collects anyway, at the next moment no key came for `OVERDUE_QUIET` seconds,
  so garbage never grows without bound.

Headless apps (tests, many apps in one process) leave the collector alone unless they ask
(`ChatApp.manage_gc = True`, as the benchmark does); begin/end are still counted, input is not
(a test would wait IDLE_AFTER for its hold to end).
"""

from __future__ import annotations

import gc
import sys
import sysconfig
import time
from collections import Counter
from typing import Any, Optional, Tuple

IDLE_AFTER = 1.0  # seconds after the last key or click before input ends its hold
GC_DELAY = IDLE_AFTER  # seconds after an answer's end before it ends its hold (its last frames painted, the user reading)
INPUT = "input"  # the reason input holds full collections off
OVERDUE = 30.0  # seconds a hold may keep a due full collection waiting ...
OVERDUE_QUIET = 0.25  # ... then it runs at the first pause in the keys this long
NO_FULL_COLLECTIONS = 1 << 30  # as the oldest generation's threshold: never reached
YOUNG_PERIOD = 0.25  # seconds between young collections while automatic collection is paused
YOUNG_PER_FULL = 8  # paused: a hold this many young collections long (2 s) ends with a full one

_frozen = False  # start_up froze what was alive (once per process: the collector is the process's)


def collector() -> str:
    """'generational' when the collector honours a third threshold (full collections can be held
    off by it), else 'incremental' (or free-threaded): automatic collection must be paused."""
    if sys.implementation.name != "cpython" or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "incremental"
    saved = gc.get_threshold()
    if len(saved) < 3:
        return "incremental"
    try:
        gc.set_threshold(saved[0], saved[1], 12345)
        honoured = gc.get_threshold()[2] == 12345  # the incremental collector ignores (and reports 0)
    finally:
        gc.set_threshold(*saved)
    return "generational" if honoured else "incremental"


def collect_and_freeze() -> None:
    """Collect what is garbage now, then keep what is left out of later full collections.
    (The benchmark's sessions; the app itself freezes only at start-up.)"""
    gc.collect()
    gc.freeze()


class GCPolicy:
    """The app's garbage-collection policy (see above). `strategy` is `collector()` unless given."""

    def __init__(self, app: Any, strategy: Optional[str] = None) -> None:
        self._app = app
        self.strategy = strategy or collector()
        self.holds: Counter[str] = Counter()  # reason -> begins not yet ended
        self._saved: Optional[Tuple[Any, ...]] = None  # what the collector was before the hold
        self._young_timer: Any = None
        self.young_collections = 0  # made by the policy while paused (tests, the benchmark)
        self.idle_collections = 0  # full collections the policy made when holds ended (tests)
        self._input_timer: Any = None  # ends the input hold IDLE_AFTER after the last key
        self._last_input = 0.0  # time.monotonic() of the last key or click
        self._held_since = 0.0  # when the hold began (time.monotonic())
        self._closed = False  # close() was called

    @property
    def enabled(self) -> bool:
        """Whether the app runs the policy: in a real terminal, or when it asks (`manage_gc`)."""
        manage = getattr(self._app, "manage_gc", None)
        return not self._app.is_headless if manage is None else bool(manage)

    @property
    def holding(self) -> bool:
        """Full collections are held off now."""
        return self._saved is not None

    def start_up(self) -> None:
        """Keep what is alive now (imports, the app) out of every later full collection (once)."""
        global _frozen
        if self.enabled and not _frozen:
            _frozen = True
            gc.freeze()

    def begin(self, reason: str) -> None:
        """Something that must stay smooth starts: no full collections until every begin ended."""
        self.holds[reason] += 1
        if self._saved is None and self.enabled:
            self._hold()

    def input(self) -> None:
        """A key or a click: no full collection until IDLE_AFTER seconds after the last one."""
        self._last_input = time.monotonic()
        if self._input_timer is not None:
            self._input_timer.reset()
            return
        if not self.enabled or self._closed:
            return  # headless: counting the holds would only make tests wait for the timer
        self.begin(INPUT)
        self._input_timer = self._app.set_timer(IDLE_AFTER, self._input_ended, name="gc_input")

    def _input_ended(self) -> None:
        self._input_timer = None
        self.end(INPUT)

    def end(self, reason: str) -> bool:
        """A `begin(reason)` ends (False if none was open: nothing changes). At the last end,
        the collector is as it was, and a full collection that came due meanwhile runs now."""
        if self.holds[reason] <= 0:
            return False
        self.holds[reason] -= 1
        if not self.holds[reason]:
            del self.holds[reason]
        if not self.holds:
            self._release(collect=True)
        return True

    def close(self) -> None:
        """The app is closing: every hold ends, the collector is as it was (nothing collected)."""
        self._closed = True  # a key seen while the app closes begins no hold (none would end it)
        self.holds.clear()
        if self._input_timer is not None:
            self._input_timer.stop()
            self._input_timer = None
        self._release(collect=False)

    def collect_young(self) -> bool:
        """A gap while held (generational: the view still between two keys): the young and
        middle generations are collected now (~3-5 ms), so the allocations of the next frame do
        not bring a middle-generation collection (4-20 ms) into it. False when nothing ran."""
        if self._saved is None or self._saved[0] != "threshold" or not self.enabled:
            return False
        gc.collect(1)
        return True

    def _hold(self) -> None:
        self._held_since = time.monotonic()
        if self.strategy == "generational":
            threshold = gc.get_threshold()
            self._saved = ("threshold", threshold)
            gc.set_threshold(threshold[0], threshold[1], NO_FULL_COLLECTIONS)
            # Checks, while held, that a due collection does not wait for ever (OVERDUE).
            self._young_timer = self._app.set_interval(YOUNG_PERIOD, self._check_overdue, name="gc_overdue")
        else:
            self._saved = ("enabled", gc.isenabled())
            gc.disable()
            self._young_timer = self._app.set_interval(YOUNG_PERIOD, self._collect_young, name="gc_young")

    def _collect_young(self) -> None:
        gc.collect(0)
        self.young_collections += 1
        self._check_overdue()

    def _due(self) -> bool:
        """A full collection is due: generational, the collector would have made one by now
        without the hold (as many middle-generation collections as the third threshold); paused
        (whose counts say nothing of that), the hold lasted YOUNG_PER_FULL young collections."""
        saved = self._saved
        if saved is None:
            return False
        if saved[0] == "threshold":
            return gc.get_count()[2] >= max(1, saved[1][2])
        return self.young_collections >= YOUNG_PER_FULL

    def _check_overdue(self) -> None:
        now = time.monotonic()
        if now - self._held_since >= OVERDUE and now - self._last_input >= OVERDUE_QUIET and self._due():
            self._full_collection()
            self._held_since = now

    def _full_collection(self) -> None:
        gc.collect()
        self.idle_collections += 1
        if self._saved is not None and self._saved[0] == "enabled":
            self.young_collections = 0

    def _release(self, collect: bool) -> None:
        due = collect and self._due()
        saved, self._saved = self._saved, None
        if saved is None:
            return
        if self._young_timer is not None:
            self._young_timer.stop()
            self._young_timer = None
        kind, value = saved
        if kind == "threshold":
            gc.set_threshold(*value)
        elif value:
            gc.enable()
        self.young_collections = 0
        if due:
            gc.collect()
            self.idle_collections += 1
