"""The long-conversation transcript's costs that do not show as behaviour in the other tests
(tests/tui/test_long_conversation.py): the spacers standing for the turns that are not widgets
take no room in the arrangement (a placement tens of thousands of lines tall made every layout
slow), turns brought into the window are painted only once mounted whole (one layout per move,
not one per level of widgets), and the key bar does not keep every key it ever showed."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from typing import Any, List, Set

from textual.widgets._footer import FooterKey

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryStore
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets.stored import StoredAnswer
from llmchat.tui.widgets.streaming_markdown import DRAWN, StreamingMarkdown
from llmchat.tui.widgets.transcript import Spacer, TurnView

SIZE = (100, 30)


def seed_long(turns: int, base_url: str) -> int:
    """A stored conversation of `turns` finished turns, some answers with code and a table; its ID."""
    with HistoryStore.open() as store:
        cid = None
        for n in range(1, turns + 1):
            writer = store.begin_turn(cid, f"question {n}", model="m", api="openai-chat", base_url=base_url)
            cid = writer.conversation_id
            writer.append(f"answer {n}: " + "".join(answer_tokens(f"q{n}", 20 + (n * 37) % 300)))
            writer.finish(COMPLETE, stop_reason="stop")
    assert cid is not None
    return cid


def in_view(app: ChatApp) -> Set[int]:
    area = app.transcript.scrollable_content_region
    return {view.index for view in app.transcript.query(TurnView) if view.region.overlaps(area)}


async def open_long(pilot: Any, until: Any, turns: int) -> None:
    app = pilot.app
    transcript = app.transcript
    await until(pilot, lambda: app.session is not None, what="the app to start")
    await until(pilot, lambda: transcript.scroll_y == transcript.max_scroll_y and turns - 1 in in_view(app), what="the end in view")


async def test_spacers_take_no_room_yet_the_view_reaches_the_first_turn(settings_for, until):
    settings = settings_for(tokens=5)
    cid = seed_long(300, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 300)
        transcript = app.transcript
        page = transcript.scrollable_content_region.height
        arrangement = transcript.arrange(transcript.scrollable_content_region.size)
        tallest = max(placement.region.height for placement in arrangement.placements)
        assert tallest < 4 * page  # no placement stands for hundreds of turns
        spacers = [placement for placement in arrangement.placements if isinstance(placement.widget, Spacer)]
        assert spacers and all(placement.region.height == 0 for placement in spacers)
        # ... yet the transcript is as tall as all of them, and its top is the first turn.
        assert transcript.max_scroll_y > 100 * page
        assert transcript._above.lines > 0
        await pilot.press("ctrl+home")
        await until(pilot, lambda: 0 in in_view(app), what="the first turn")
        assert transcript.scroll_y == 0


def half_mounted(app: ChatApp) -> List[str]:
    """The turns in the transcript that are not whole yet: no answer, or an answer without its text."""
    out = []
    for view in app.transcript.query(TurnView):
        answers = view.query(StoredAnswer)
        if not answers or not answers.first().query(StreamingMarkdown):
            out.append(f"turn {view.index}")
    return out


async def test_turns_brought_in_by_scrolling_are_painted_only_when_whole(settings_for, until, tap):
    settings = settings_for(tokens=5)
    cid = seed_long(60, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    seen: List[List[str]] = []
    frames = [0]
    original = app._display

    def display(screen: Any, update: Any) -> None:
        if app.transcript.is_attached and app.transcript.stored_turns:
            frames[0] += 1
            seen.append(half_mounted(app))
        original(screen, update)

    app._display = display  # type: ignore[method-assign,assignment]
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 60)
        first = app.transcript.window[0]
        while app.transcript.window[0] > first - 10 and app.transcript.scroll_y > 0:
            await tap(pilot, "pageup")
            await pilot.pause()
        assert app.transcript.window[0] <= first - 10  # turns were mounted on the way
        assert frames[0] > 10
        assert [shown for shown in seen if shown] == []


async def test_the_key_bar_lets_go_of_the_keys_it_no_longer_shows(settings_for):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        refs = []
        for _ in range(6):  # each New conversation changes the bindings: the key bar is composed again
            refs += [weakref.ref(key) for key in app.query(FooterKey)]
            await app.new_conversation()
            await pilot.pause()
            await pilot.pause()
        assert refs
        shown = set(app.query(FooterKey))
        gc.collect()
        alive = [ref() for ref in refs if ref() is not None and ref() not in shown]
        assert alive == []


async def test_lines_drawn_for_turns_scrolled_far_away_are_let_go_of(settings_for, until):
    """The cache of drawn lines all answers share holds only lines that can be painted again:
    those of the answers still mounted (a turn scrolled back into view is a new widget)."""
    settings = settings_for(tokens=5)
    cid = seed_long(80, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await open_long(pilot, until, 80)
        await pilot.press("ctrl+home")
        await until(pilot, lambda: 0 in in_view(app), what="the first turn")
        await pilot.pause()
        mounted = sum(markdown.line_count for markdown in app.transcript.query(StreamingMarkdown))
        assert 0 < DRAWN.lines <= mounted


async def test_no_full_collection_while_the_view_moves_then_one_once_it_is_still(settings_for, until, tap):
    settings = settings_for(tokens=5)
    cid = seed_long(60, settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    app.manage_gc = True
    threshold = gc.get_threshold()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await open_long(pilot, until, 60)
            await until(pilot, lambda: not app.gc_policy.holds, what="no hold (the view still)")
            # A full collection comes due with the first middle-generation one (the policy runs
            # a due one when the hold ends): the move's allocations alone, as few as they now
            # are (compat's lazy strip caches), did not always make one due.
            gc.set_threshold(100, 1, 1)
            await tap(pilot, "pageup")
            assert app.gc_policy.holds["scroll"] == 1 and app.gc_policy.holding
            collections = gc.get_stats()[-1]["collections"]
            await until(pilot, lambda: not app.gc_policy.holds, what="the hold to end once the view is still")
            assert not app.gc_policy.holding
            assert gc.get_stats()[-1]["collections"] > collections  # what the turns removed left is collected then
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
