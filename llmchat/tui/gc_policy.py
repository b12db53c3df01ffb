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
- At the last `end`, the collector is as it was and what the answers left is collected at once,
  outside any stream (the answer ends its hold `GC_DELAY` after its last frames).

Headless apps (tests, many apps in one process) leave the collector alone unless they ask
(`ChatApp.manage_gc = True`, as the benchmark does); begin/end are still counted.
"""

from __future__ import annotations

import gc
import sys
import sysconfig
from collections import Counter
from typing import Any, Optional, Tuple

GC_DELAY = 0.5  # seconds after an answer's end before it ends its hold
NO_FULL_COLLECTIONS = 1 << 30  # as the oldest generation's threshold: never reached
YOUNG_PERIOD = 0.25  # seconds between young collections while automatic collection is paused

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

    def end(self, reason: str) -> bool:
        """A `begin(reason)` ends (False if none was open: nothing changes). At the last end,
        the collector is as it was and what was left is collected now."""
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
        self.holds.clear()
        self._release(collect=False)

    def _hold(self) -> None:
        if self.strategy == "generational":
            threshold = gc.get_threshold()
            self._saved = ("threshold", threshold)
            gc.set_threshold(threshold[0], threshold[1], NO_FULL_COLLECTIONS)
        else:
            self._saved = ("enabled", gc.isenabled())
            gc.disable()
            self._young_timer = self._app.set_interval(YOUNG_PERIOD, self._collect_young, name="gc_young")

    def _collect_young(self) -> None:
        gc.collect(0)
        self.young_collections += 1

    def _release(self, collect: bool) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        kind, value = saved
        if kind == "threshold":
            gc.set_threshold(*value)
        else:
            if self._young_timer is not None:
                self._young_timer.stop()
                self._young_timer = None
            if value:
                gc.enable()
        if collect:
            gc.collect()
