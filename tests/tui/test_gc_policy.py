"""The app's GC policy (llmchat/tui/gc_policy.py): begin/end nest and are counted, full collections
are held off the way this interpreter's collector allows (both ways tested here), the collector
is as it was afterwards, start-up freezes no widget, and removed widgets are freed."""

from __future__ import annotations

import contextlib
import gc
import sys
import sysconfig
import weakref
from typing import Any, Iterator, List

import pytest
from textual.app import App

from llmchat.tui import gc_policy
from llmchat.tui.app import ChatApp
from llmchat.tui.gc_policy import NO_FULL_COLLECTIONS, GCPolicy, collector
from llmchat.tui.widgets import AssistantMessage, UserMessage


def full_collections() -> int:
    return gc.get_stats()[-1]["collections"]


@pytest.fixture
def collector_state() -> Iterator[None]:
    """Whatever a test does to the collector is undone (and start-up may freeze again)."""
    thresholds, enabled, frozen = gc.get_threshold(), gc.isenabled(), gc_policy._frozen
    gc_policy._frozen = False
    yield
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()
    gc.unfreeze()
    gc_policy._frozen = frozen


class Host(App[None]):
    manage_gc = True


def survivors(count: int) -> List[Any]:
    """`count` new objects the collector tracks, kept alive (they reach the oldest generation)."""
    return [[index] for index in range(count)]


def test_this_interpreters_collector_is_recognised():
    kind = collector()
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if sys.implementation.name == "cpython" and sys.version_info < (3, 13) and not free_threaded:
        assert kind == "generational"  # this machine: CPython 3.11
    assert kind in ("generational", "incremental")
    assert gc.get_threshold()[2] != 12345  # the check put the thresholds back


async def test_begin_and_end_nest_by_reason(collector_state):
    app = Host()
    async with app.run_test():
        policy = GCPolicy(app, strategy="generational")
        before = gc.get_threshold()
        # The counts start from nothing: whether a full collection is due at the last end must
        # not depend on what earlier tests left in the middle generation's count.
        gc.collect()
        policy.begin("answer")
        policy.begin("answer")
        policy.begin("scroll")
        assert policy.holds == {"answer": 2, "scroll": 1} and policy.holding
        assert gc.get_threshold() == (before[0], before[1], NO_FULL_COLLECTIONS)
        assert not policy.end("never begun")
        assert policy.end("answer") and policy.end("scroll")
        assert policy.holding  # one answer still holds
        collected = full_collections()
        assert policy.end("answer")
        assert not policy.holding and not policy.holds
        assert gc.get_threshold() == before
        assert full_collections() == collected  # none came due meanwhile: none made
        assert not policy.end("answer")  # an extra end changes nothing
        assert gc.get_threshold() == before
        policy.begin("answer")
        kept = survivors(300_000)  # enough for the collector to want a full collection
        assert full_collections() == collected
        assert policy.end("answer")
        assert full_collections() == collected + 1  # the one that came due, made at the end
        assert gc.get_count()[2] < before[2]  # not left due (the next allocation would run it)
        del kept


@pytest.mark.parametrize("strategy", ["generational", "incremental"])
async def test_no_full_collections_while_held_either_way(collector_state, until, strategy):
    """Both ways, on this interpreter: many survivors would bring a full collection (checked
    first, unheld); held, none comes, and the young generation is still collected."""
    app = Host()
    async with app.run_test() as pilot:
        gc.collect()
        collected = full_collections()
        kept = survivors(300_000)
        assert full_collections() > collected  # unheld: they bring full collections
        del kept
        policy = GCPolicy(app, strategy=strategy)
        policy.begin("answer")
        if strategy == "incremental":
            assert not gc.isenabled()
            await until(pilot, lambda: policy.young_collections >= 2, what="young collections while paused")
        collected, young = full_collections(), gc.get_stats()[0]["collections"]
        kept = survivors(300_000)
        await pilot.pause()
        assert full_collections() == collected
        if strategy == "incremental":
            await until(pilot, lambda: gc.get_stats()[0]["collections"] > young, what="a young collection")
            assert gc.get_count()[0] < 50_000  # the young generation is not left to grow
            # Paused, a hold this long ends with a full collection (the counts cannot say one is due).
            await until(pilot, lambda: policy.young_collections >= gc_policy.YOUNG_PER_FULL, what="a long hold")
            assert full_collections() == collected
        del kept
        policy.end("answer")
        assert gc.isenabled() and gc.get_threshold()[2] != NO_FULL_COLLECTIONS
        assert full_collections() == collected + 1


async def test_a_paused_collector_stays_as_the_user_left_it(collector_state):
    app = Host()
    async with app.run_test():
        gc.disable()
        policy = GCPolicy(app, strategy="incremental")
        policy.begin("answer")
        policy.end("answer")
        assert not gc.isenabled()  # it was off before: still off


async def test_headless_apps_leave_the_collector_alone_but_count(collector_state):
    app = App[None]()
    async with app.run_test():
        policy = GCPolicy(app)
        before = gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()
        policy.start_up()
        policy.begin("answer")
        assert policy.holds == {"answer": 1} and not policy.holding
        assert (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()) == before
        assert policy.end("answer")


async def test_start_up_freezes_what_was_there_before_the_widgets_and_no_widget(collector_state, settings_for):
    app = ChatApp(settings_for(tokens=5))
    app.manage_gc = True
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 10_000  # the imports, at least
        tracked = {id(thing) for thing in gc.get_objects()}  # frozen objects are not listed
        widgets = [widget for widget in app.query("*") if widget is not app._intro]  # made in __init__, kept for good
        assert len(widgets) > 5
        frozen = [type(widget).__name__ for widget in widgets if id(widget) not in tracked]
        assert frozen == []


async def test_fifty_answers_then_a_new_conversation_are_all_freed(collector_state, settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=8))
    app.manage_gc = True
    thresholds = gc.get_threshold()
    refs: List[weakref.ref] = []
    async with app.run_test(size=(100, 30)) as pilot:
        for index in range(50):
            await submit(pilot, f"question {index}")
            await settled(app)
            answer = app.query(AssistantMessage).last()
            refs += [weakref.ref(answer), weakref.ref(answer.markdown), weakref.ref(app.query(UserMessage).last())]
        del answer
        await app.new_conversation()
        await pilot.pause()
        assert "answer" not in app.gc_policy.holds  # removed: their holds ended
        await until(pilot, lambda: not app.gc_policy.holds, what="the keys' hold to end")
        assert gc.get_threshold() == thresholds

        def freed() -> bool:
            gc.collect()
            return all(ref() is None for ref in refs)

        # What the app still holds of removed widgets (messages they sent that wait in a queue,
        # the screen's map of the last layout) goes at its next turns, later on a busy machine.
        with contextlib.suppress(AssertionError):
            await until(pilot, freed, what="the removed widgets to be freed")
        alive = [type(ref()).__name__ for ref in refs if ref() is not None]
        assert alive == []


async def test_keys_hold_full_collections_off_until_they_pause(collector_state, settings_for, until, monkeypatch):
    """Typing makes garbage that would bring full collections (60-300 ms each, between a key and
    its frame: issue 11's 50 ms); none comes while the keys go on, the one that came due runs
    once they paused IDLE_AFTER, and the collector is as it was."""
    monkeypatch.setattr(gc_policy, "IDLE_AFTER", 0.3)
    app = ChatApp(settings_for(tokens=5))
    app.manage_gc = True
    thresholds = gc.get_threshold()
    async with app.run_test() as pilot:
        await pilot.pause()
        policy = app.gc_policy
        assert not policy.holding
        collected = full_collections()
        kept = []
        for key in "typing":
            await pilot.press(key)
            assert policy.holds == {gc_policy.INPUT: 1} and policy.holding
            kept.append(survivors(60_000))  # what a key's work leaves, many times over
        assert app.prompt.text == "typing"
        assert full_collections() == collected  # none between the keys
        await until(pilot, lambda: not policy.holding, what="the keys to pause")
        assert gc.get_threshold() == thresholds
        assert full_collections() == collected + 1 and policy.idle_collections == 1  # the due one, now
        del kept


async def test_a_hold_that_never_ends_still_collects_when_a_pause_comes(collector_state, until, monkeypatch):
    """Keys that never pause for IDLE_AFTER (or an endless answer) do not keep garbage for ever:
    once a collection was due for OVERDUE, it runs in the first short pause."""
    monkeypatch.setattr(gc_policy, "OVERDUE", 0.5)
    app = Host()
    async with app.run_test() as pilot:
        policy = GCPolicy(app, strategy="generational")
        policy.begin("answer")
        collected = full_collections()
        kept = survivors(300_000)
        await until(pilot, lambda: policy.idle_collections == 1, what="the overdue collection")
        assert full_collections() == collected + 1 and policy.holding  # still held afterwards
        del kept
        policy.end("answer")


@pytest.mark.parametrize("strategy", ["generational", "incremental"])
async def test_young_generations_are_collected_in_a_gap_only_while_held(collector_state, strategy):
    """`collect_young`: while held (generational), the young and middle generations are
    collected at once -- in a gap between two keys' frames, not in the next one -- and never a
    full collection; unheld, or paused (incremental: the policy's own young collections), nothing."""
    app = Host()
    async with app.run_test():
        policy = GCPolicy(app, strategy=strategy)
        assert not policy.collect_young()  # not held
        policy.begin("scroll")
        generations: List[int] = []

        def seen(phase: str, info: dict) -> None:
            if phase == "start":
                generations.append(info["generation"])

        gc.callbacks.append(seen)
        try:
            ran = policy.collect_young()
        finally:
            gc.callbacks.remove(seen)
            policy.end("scroll")
        if strategy == "generational":
            assert ran and generations == [1]
        else:
            assert not ran and not generations
