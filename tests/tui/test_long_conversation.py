"""Long conversations: a reopened conversation opens at its end, every turn can be scrolled back
to with the keys and the mouse wheel without "show more" buttons, only the turns near the view
are widgets, the view never jumps when turns are shown above it, the prompt keeps the focus,
and widgets that leave the transcript are freed (none kept alive by the GC policy)."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import sys
import weakref
from dataclasses import replace
from typing import Any, Dict, List, Set

import pytest
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import events
from textual.strip import Strip

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.tui import gc_policy
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets import transcript as transcript_module
from llmchat.tui.widgets.stored import StoredAnswer
from llmchat.tui.widgets.streaming_markdown import DRAWN
from llmchat.tui.widgets.transcript import TurnView

SIZE = (100, 30)
MAX_VIEWS = 16  # turns mounted at once, at most, in a 30-line terminal (the window is ~7 pages)


def answer_text(n: int) -> str:
    """Answers of different lengths, some with code and a table (the demo answer cut short)."""
    return f"answer {n}: " + "".join(answer_tokens(f"q{n}", 20 + (n * 37) % 300))


def seed_long(turns: int, base_url: str) -> int:
    """A stored conversation of `turns` finished turns, "question N" / "answer N: ..."; its ID."""
    with HistoryStore.open() as store:
        cid = None
        for n in range(1, turns + 1):
            writer = store.begin_turn(cid, f"question {n}", model="m", api="openai-chat", base_url=base_url)
            cid = writer.conversation_id
            writer.append(answer_text(n))
            writer.finish(COMPLETE, stop_reason="stop")
    assert cid is not None
    return cid


def views(app: ChatApp) -> List[TurnView]:
    return list(app.transcript.query(TurnView))


def in_view(app: ChatApp) -> Set[int]:
    """The stored turns with at least one line on screen in the transcript."""
    area = app.transcript.scrollable_content_region
    return {view.index for view in views(app) if view.region.overlaps(area)}


def at_end(transcript: Any) -> bool:
    return transcript.scroll_y == transcript.max_scroll_y


async def open_long(pilot: Any, until: Any, turns: int) -> None:
    app = pilot.app
    await until(pilot, lambda: app.session is not None, what="the app to start")
    await until(pilot, lambda: at_end(app.transcript) and turns - 1 in in_view(app), what="the conversation's end in view")


async def wheel_up(pilot: Any, tap: Any) -> None:
    """One notch of the mouse wheel over the transcript, as the terminal reports it."""
    app = pilot.app
    region = app.transcript.region
    x, y = region.x + region.width // 2, region.y + region.height // 2
    app.post_message(events.MouseScrollUp(None, x, y, 0, -1, 0, False, False, False, screen_x=x, screen_y=y))
    await pilot.pause()


async def page_up(pilot: Any, tap: Any) -> None:
    await tap(pilot, "pageup")


SCROLLERS = {"keys": (page_up, 100), "mouse wheel": (wheel_up, 20)}


async def test_a_long_conversation_opens_at_its_end_with_few_widgets(settings_for, until):
    settings = settings_for(tokens=5)
    cid = seed_long(300, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 300)
        assert 299 in in_view(app)  # the last turn (index 299) is on screen
        assert len(views(app)) <= MAX_VIEWS
        assert app.transcript.stored_turns == 300
        assert len(app.session.turns) == 300  # all of it is the context
        assert app.prompt.has_focus
        assert not app.query("Button")  # no "show more" button


async def test_each_turn_is_estimated_once_at_open_for_the_width_it_will_have(settings_for, until, recorded):
    """Opening estimates each turn's height once, for the width the turns will have (with the
    scrollbar when they will scroll). The estimates were made for the width without it, and
    the first move, 2 cells narrower, made them all again (1,000 turns: ~10 ms before the
    first frame)."""
    estimated = recorded(transcript_module, "estimate_height", 1)  # the widths
    settings = settings_for(tokens=5)
    cid = seed_long(60, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 60)
        await pilot.pause()
        transcript = app.transcript
        assert transcript.show_vertical_scrollbar and transcript._width == transcript.scrollable_content_region.width
        assert len(estimated) == 60 and set(estimated) == {transcript._width}
    estimated.clear()
    app = ChatApp(replace(settings, conversation_id=seed_long(1, settings.base_url)))
    async with app.run_test(size=SIZE) as pilot:  # one short turn: no scrollbar
        await open_long(pilot, until, 1)
        await pilot.pause()
        transcript = app.transcript
        assert not transcript.show_vertical_scrollbar and transcript._width == transcript.scrollable_content_region.width
        assert estimated[-1] == transcript._width  # (estimated again: a turn is cheap)


async def test_the_first_frame_waits_only_for_the_turns_that_fill_the_view(settings_for, until, tap, monkeypatch):
    """Opening mounts (and draws) just the turns that fill the view; the page above comes with
    the move after the first frame (two pages were mounted and drawn before it), and a PageUp
    then shows what was just above the view. (A PageUp while that move's turns are mounted but
    not yet laid out kept the view still by one of them, whose height was not its own yet: the
    view stayed at its top and skipped what was below; the keys case of
    test_scrolling_back_reaches_every_turn... caught it.)"""
    shown: List[Any] = []
    show_turns = transcript_module.Transcript.show_turns

    async def recorded(self: Any, turns: Any) -> None:
        await show_turns(self, turns)
        lo, hi = self.window
        shown.append((lo, hi, list(self._heights), self._page()))

    monkeypatch.setattr(transcript_module.Transcript, "show_turns", recorded)
    settings = settings_for(tokens=5)
    cid = seed_long(60, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 60)
        [(lo, hi, heights, page)] = shown
        assert hi == 60 and sum(heights[lo + 1 :]) < page <= sum(heights[lo:])  # just enough to fill it
        transcript = app.transcript
        top = min(in_view(app))
        await tap(pilot, "pageup")
        await until(pilot, lambda: not transcript._fresh, what="the turns of the move laid out")
        await pilot.pause()
        assert top - 1 in in_view(app)  # the turn just above what was in view
        assert transcript.window[0] < lo


async def test_the_conversation_is_read_while_the_engine_starts(settings_for, until, monkeypatch):
    """The store's thread reads the conversation while the engine starts on the event loop
    (its client's import): the open waited for one, then the other."""
    from llmchat.engine import Engine
    from llmchat.tui.chat_history import ChatHistory

    started: List[str] = []
    load, start = ChatHistory.load, Engine.start

    def loading(self: Any, *args: Any) -> Any:
        started.append("load")
        return load(self, *args)

    async def starting(self: Any) -> None:
        started.append("engine")
        for _ in range(500):  # a bounded wait for the load to begin meanwhile (5 s)
            if "load" in started:
                break
            await asyncio.sleep(0.01)
        await start(self)
        started.append("engine started")

    monkeypatch.setattr(ChatHistory, "load", loading)
    monkeypatch.setattr(Engine, "start", starting)
    settings = settings_for(tokens=5)
    cid = seed_long(5, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 5)
        assert started.index("load") < started.index("engine started")
        assert app.transcript.stored_turns == 5 and len(app.session.turns) == 5


@pytest.mark.parametrize("how", SCROLLERS)
async def test_scrolling_back_reaches_every_turn_with_few_widgets_and_the_prompt_focused(settings_for, until, tap, how):
    scroll_up, turns = SCROLLERS[how]
    settings = settings_for(tokens=5)
    cid = seed_long(turns, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, turns)
        transcript = app.transcript
        seen = set(in_view(app))
        most = len(views(app))
        steps = 0
        while transcript.scroll_y > 0 or transcript.window[0] > 0:
            await scroll_up(pilot, tap)
            await pilot.pause()
            seen |= in_view(app)
            most = max(most, len(views(app)))
            steps += 1
            assert steps < 5000, "the top was never reached"
        assert seen == set(range(turns))
        assert most <= MAX_VIEWS
        # At the top: the note about the conversation, then its first question.
        first = app.query_one(TurnView)
        assert first.index == 0 and first.query_one(UserMessage).text == "question 1"
        assert app.prompt.has_focus
        await pilot.click("#transcript")  # a click to select text does not take the focus either
        await pilot.press("h", "i")
        assert app.prompt.text == "hi" and app.prompt.has_focus


@pytest.mark.parametrize("estimate", [1, 400], ids=["estimates too small", "estimates too large"])
async def test_turns_shown_above_the_view_never_move_it(settings_for, until, tap, monkeypatch, estimate):
    """Each Ctrl+Up moves what is on screen down by exactly three lines, also when it brings
    older turns into the transcript whose estimated heights were wrong."""
    monkeypatch.setattr(transcript_module, "estimate_height", lambda turn, width: estimate)
    settings = settings_for(tokens=5)
    cid = seed_long(40, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 40)
        transcript = app.transcript
        first_window = transcript.window
        moved = 0
        for _ in range(150):
            if transcript.scroll_y < 3:
                break
            before: Dict[int, int] = {view.index: view.region.y for view in views(app) if view.region.overlaps(transcript.region)}
            await tap(pilot, "ctrl+up")
            await pilot.pause()
            after = {view.index: view.region.y for view in views(app)}
            common = [index for index in before if index in after]
            assert common, "no turn stayed in view"
            assert all(after[index] == before[index] + 3 for index in common), (before, after)
            moved += 1
        assert transcript.window[0] < first_window[0] - 3  # older turns were shown on the way
        assert moved > 20


async def test_paging_down_after_the_top_returns_to_the_end_and_a_new_answer_follows(settings_for, srv, until, tap, submit, settled, server_saw):
    settings = settings_for(tokens=30)
    cid = seed_long(60, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 60)
        await pilot.press("ctrl+home")
        await until(pilot, lambda: 0 in in_view(app), what="the first turn")
        seen: Set[int] = set()
        for _ in range(400):
            if 59 in in_view(app) and at_end(app.transcript):
                break
            await tap(pilot, "pagedown")
            await pilot.pause()
            seen |= in_view(app)
        assert seen >= set(range(1, 60))
        await submit(pilot, "question 61")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        [answer] = app.query(AssistantMessage)
        await until(pilot, lambda: at_end(app.transcript) and answer.region.overlaps(app.transcript.region), what="the new answer in view")
    assert len(srv.requests[0].body["messages"]) == 121


def stored_rows() -> int:
    db = sqlite3.connect(str(default_path()))
    try:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def managed_gc() -> Any:
    """The GC policy of a real terminal (ChatApp.manage_gc), undone afterwards."""
    yield True
    gc.unfreeze()


async def test_answers_removed_by_a_new_conversation_are_freed(settings_for, submit, settled, until, managed_gc):
    app = ChatApp(settings_for(tokens=40))
    app.manage_gc = managed_gc
    refs: List[weakref.ref] = []
    async with app.run_test(size=SIZE) as pilot:
        for question in ("first", "second", "third"):
            await submit(pilot, question)
            await settled(app)
            answer = app.query(AssistantMessage).last()
            await until(pilot, lambda: not answer._holds_gc, what="the answer to hand the collector back")  # noqa: F821
            refs += [weakref.ref(answer), weakref.ref(answer.markdown), weakref.ref(app.query(UserMessage).last())]
        del answer  # the loop's last answer must not be kept alive by this frame
        await app.new_conversation()
        await pilot.pause()
        gc.collect()
        alive = [ref() for ref in refs if ref() is not None]
        assert alive == []
        assert DRAWN.lines == 0  # nor the lines they drew, in the cache all answers share


async def test_turns_scrolled_far_away_are_freed(settings_for, until, managed_gc):
    settings = settings_for(tokens=5)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    app.manage_gc = managed_gc
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        widgets = [widget for view in views(app) for widget in (view, *view.query("*"))]
        refs = [weakref.ref(widget) for widget in widgets]
        # What Textual painted for them too (its get_inner_outer cache held it: transcript.py).
        refs += [weakref.ref(widget._styles_cache) for widget in widgets]
        del widgets
        assert any(isinstance(ref(), StoredAnswer) for ref in refs)
        await pilot.press("ctrl+home")
        await until(pilot, lambda: 0 in in_view(app), what="the first turn")
        await pilot.pause()
        gc.collect()
        alive = [type(ref()).__name__ for ref in refs if ref() is not None]
        assert alive == []


def full_collections() -> int:
    return gc.get_stats()[-1]["collections"]


async def test_a_long_scroll_is_collected_on_its_way_while_the_keys_hold_collections_off(settings_for, until, tap, managed_gc, monkeypatch):
    """PageUp after PageUp: the keys hold full collections off as long as they come (gc_policy.py),
    and so does the scroll; what the turns scrolled past left is still collected on the way, in a
    gap between two moves (else 30 s of PageUp piled up 1.6 million objects: RSS 60 -> 150 MB,
    then one 4 s collection)."""
    monkeypatch.setattr(transcript_module, "SCROLL_COLLECT_EVERY", 0.2)
    settings = settings_for(tokens=5)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    app.manage_gc = managed_gc
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        transcript, policy = app.transcript, app.gc_policy
        collected = full_collections()
        steps = 0
        while transcript.scroll_y > 0 or transcript.window[0] > 0:
            await page_up(pilot, tap)
            assert policy.holds[gc_policy.INPUT] == 1  # the keys' hold, all along
            await pilot.pause(0.05)  # the gap a key leaves after its frame
            steps += 1
            assert steps < 500, "the top was never reached"
        assert transcript.scroll_collections >= 1
        assert full_collections() >= collected + transcript.scroll_collections


def test_a_strip_divided_at_its_length_or_cropped_to_itself_is_no_reference_cycle():
    """Textual kept such a strip in its own cache: each line the compositor painted so was freed
    only by a full collection (compat.install_acyclic_strips, installed with the transcript)."""
    strip = Strip([Segment("hello")], 5)
    references = sys.getrefcount(strip)
    assert strip.divide([5])[0] is strip and strip.divide([5, 9])[0] is strip
    assert strip.crop_extend(0, 5, None) is strip
    assert sys.getrefcount(strip) == references
    # Anything else as Textual does it.
    assert [part.text for part in strip.divide([2, 5])] == ["he", "llo"]
    assert strip.crop_extend(1, 7, None).text == "ello  "
    assert strip.crop_extend(0, 3, None).text == "hel"


def test_a_strip_makes_a_cache_only_when_a_method_first_needs_it():
    """Textual gave every strip seven caches at birth (each with a dict): ~9 objects the
    collector tracks per painted line, most never used; a full collection walked them all and
    young collections came three times as often while lines were drawn. They are made on first
    use now (compat.install_acyclic_strips, installed with the transcript)."""
    from textual.cache import FIFOCache

    from llmchat.tui import compat

    slots = [slot for slot, _, _ in compat._STRIP_CACHES]
    strip = Strip([Segment("hello"), Segment(" world")], 11)
    assert all(getattr(strip, slot) is None for slot in slots)
    assert strip.crop(0, 11) is strip and strip.crop(-1) is strip and strip.adjust_cell_length(11) is strip
    assert strip.divide([11])[0] is strip and strip.crop_extend(0, 11, None) is strip
    assert all(getattr(strip, slot) is None for slot in slots)  # nothing to cache there
    # The rest as Textual does it, cached as it caches it.
    assert strip.crop(1, 4).text == "ell" and strip.crop(1, 4) is strip.crop(1, 4)
    assert isinstance(strip._crop_cache, FIFOCache) and strip._style_cache is None
    assert [part.text for part in strip.divide([5, 11])] == ["hello", " world"]
    assert strip.adjust_cell_length(3).text == "hel" and strip.adjust_cell_length(13).text == "hello world  "
    assert strip.crop_extend(6, 14, None).text == "world   "
    assert strip.apply_style(RichStyle(bold=True)).text == "hello world"
    assert list(strip.apply_offsets(0, 2))[0].style.meta == {"offset": (0, 2)}
    assert all(isinstance(getattr(strip, slot), FIFOCache) for slot in slots if slot != "_filter_cache")
    segments = [Segment("x")]
    tracked = len(gc.get_objects())
    lines = [Strip(segments, 1) for _ in range(1000)]
    assert len(gc.get_objects()) - tracked < 2100  # the strip and its list of segments, no caches
    del lines


async def test_turns_a_move_mounts_are_laid_out_in_the_gap_after_it(settings_for, until, tap, monkeypatch):
    """When the turns a move mounts above the view are all mounted, the screen is told to lay
    them out (and so draw their Markdown) then, in the gap after the move. It had been told
    while the move's batch held frames back, and was not told again: about one PageUp in a
    hundred found them still to be laid out and paid 50-130 ms for them before its page."""
    ends: List[Any] = []
    end_batch = transcript_module.Transcript._end_batch

    async def recorded(self: Any, batch: Any, waits: Any, *new: Any) -> None:
        await end_batch(self, batch, waits, *new)
        screen = self.screen
        # A layout is owed and nothing will make the screen do it (no message for it to handle,
        # its update timer paused): only the next key or another event would.
        ends.append(screen._layout_required and screen._message_queue.empty() and not screen._update_timer._active.is_set())

    monkeypatch.setattr(transcript_module.Transcript, "_end_batch", recorded)
    settings = settings_for(tokens=5)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        transcript = app.transcript
        steps = 0
        while transcript.window[0] > 0:
            await page_up(pilot, tap)
            steps += 1
            assert steps < 500, "the top was never reached"
        await pilot.pause()
    assert ends and not any(ends)


def lines_drawn(widget: Any) -> int:
    """How many of `widget`'s lines Textual has drawn and keeps (its styles cache)."""
    return len(widget._styles_cache._cache)


async def test_turns_a_move_mounts_are_drawn_ahead_before_a_key_scrolls_onto_them(settings_for, until, tap):
    """The turns a move mounts above the view have every line drawn in the gaps after the move's
    frame, so the next PageUp only paints lines already drawn: a PageUp onto a page of lines
    never drawn drew them in its own frame (55-75 ms: the p99 of PageUp in a 1,000-turn
    conversation), onto drawn ones ~20 ms."""
    settings = settings_for(tokens=5)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        transcript = app.transcript
        before = transcript.scroll_y
        await tap(pilot, "pageup")
        # The move first (a loaded machine handled the key after the state below was checked,
        # idle from before it), then its turns drawn ahead.
        await until(pilot, lambda: transcript.scroll_y != before, what="the page up")

        def above_the_view() -> List[TurnView]:
            shown = in_view(app)
            return [view for view in views(app) if shown and view.index < min(shown)]

        # The window follows the move after its layout: until then nothing is fresh or waiting
        # either (a fast machine checked that before it, and found no turn above the view).
        await until(
            pilot,
            lambda: above_the_view() and not transcript._fresh and not transcript._ahead and not transcript._ahead_pending,
            what="the move's turns mounted above the view and drawn ahead",
        )
        above = above_the_view()
        for view in above:
            for widget in view.walk_children(with_self=True):
                if widget.display and widget.outer_size.height:
                    assert lines_drawn(widget) == widget.outer_size.height, (view.index, widget)
        assert transcript.drawn_ahead


# --- a message sent in a long conversation ------------------------------------------------------


async def test_a_message_typed_in_a_long_conversation_has_its_history_encoded_before_enter(
    settings_for, srv, until, submit, settled, server_saw, monkeypatch
):
    """Typing starts the encoding of the conversation's messages for the request (a slice at a
    time, between keys): at Enter only the new prompt is encoded (1,000 turns: 1.4 MB of JSON, 15-35 ms). What is
    sent is the conversation, whole."""
    from llmchat.stream import client as client_module

    monkeypatch.setattr(client_module, "BIG_BODY", 10_000)  # a big body: 40 turns, not 1,000
    settings = settings_for(tokens=5)
    cid = seed_long(40, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 40)
        kept = app.engine.client._kept
        await pilot.press("a")
        await until(pilot, lambda: len(kept.items) == 80, what="the conversation's messages encoded")
        encoded = kept.encoded
        await submit(pilot, "question 41")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        assert kept.encoded - encoded == 1  # the prompt
        # The answer's worker is not described by its arguments (Textual's default: a repr of the
        # whole context, 1.4 MB of text on the event loop for 1,000 turns).
        assert len(app.worker.description) < 100
    sent = srv.requests[0].body["messages"]
    assert len(sent) == 81 and sent[-1] == {"role": "user", "content": "question 41"}
    assert sent[-2]["content"] == answer_text(40)


async def test_no_lines_are_drawn_ahead_while_an_answer_streams(settings_for, until, tap, submit, settled):
    """The turns a PageUp mounts while an answer streams are drawn ahead once it ended: its
    frames come first (drawn in the gaps between them, they made a new message in a long
    conversation 30-60 ms slower)."""
    settings = settings_for(tokens=40, tps=40)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        transcript = app.transcript
        await until(pilot, lambda: not transcript._ahead and not transcript._ahead_pending, what="the turns at the end drawn")
        await submit(pilot, "slowly")
        [answer] = app.query(AssistantMessage)
        drawn = transcript.drawn_ahead
        await tap(pilot, "pageup")
        await until(pilot, lambda: transcript._ahead or answer.state == "done", what="turns to draw ahead")
        assert transcript._ahead, "the answer ended before the PageUp mounted turns"
        await until(pilot, lambda: answer.state == "done", what="the end of the answer")
        assert transcript.drawn_ahead == drawn  # none while it streamed
        await until(pilot, lambda: not transcript._ahead, timeout=15, what="the lines drawn after it")
        assert transcript.drawn_ahead > drawn
        await settled(app)


async def test_a_message_sent_and_its_answer_are_mounted_together(settings_for, until, submit, settled, monkeypatch):
    """The prompt sent and its answer's widget go into the transcript in one mount: one layout
    of the screen, not one each (20-50 ms each in a 1,000-turn conversation)."""
    settings = settings_for(tokens=5)
    cid = seed_long(30, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 30)
        mounts: List[tuple] = []
        mount = app.transcript.mount

        def recorded(*widgets: Any, **where: Any) -> Any:
            mounts.append(tuple(type(widget).__name__ for widget in widgets))
            return mount(*widgets, **where)

        monkeypatch.setattr(app.transcript, "mount", recorded)
        await submit(pilot, "question 31")
        await settled(app)
        assert ("UserMessage", "AssistantMessage") in mounts, mounts
