"""The conversation list (Ctrl+O / F2 / the palette): newest used first, search, rename, delete
with a confirmation, and opening one (refused while an answer streams)."""

from __future__ import annotations

import sqlite3
import time
from typing import List

import pytest

from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import Confirm, ConversationList
from llmchat.tui.widgets import UserMessage
from llmchat.tui.widgets.stored import StoredAnswer

SIZE = (100, 30)


def seed_three(base_url: str, now: float = 1_700_000_000.0) -> List[int]:
    """Three conversations at fixed times (oldest first), each a finished turn with figures."""
    clock = iter(now + 3600 * i for i in range(100))
    ids = []
    with HistoryStore.open(now=lambda: next(clock)) as store:
        for title, model, answer in (
            ("Why is the sky blue", "gpt-test", "Rayleigh scattering of sunlight."),
            ("Tides and the moon", "claude-test", "The moon pulls the oceans."),
            ("A haiku about rust", "m", "Borrowed, never lost."),
        ):
            writer = store.begin_turn(None, title, model=model, api="openai-chat", base_url=base_url)
            writer.append(answer)
            writer.finish(COMPLETE, stop_reason="stop")
            ids.append(writer.conversation_id)
    db = sqlite3.connect(str(default_path()))
    db.execute(
        "UPDATE messages SET ttft = 0.2, tokens_per_second = 50.0, output_tokens = 8, tokens_exact = 1, elapsed = 0.36 WHERE role = 'assistant'"
    )
    db.commit()
    db.close()
    return ids


async def open_list(pilot) -> ConversationList:
    await pilot.press("ctrl+o")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ConversationList)
    await shown(pilot, screen)
    return screen


async def shown(pilot, screen: ConversationList) -> None:
    """The store is read on its syncer thread: wait until what was asked of it has shown."""
    await screen.settled()
    await pilot.pause()


async def open_first_listed(pilot, expected: int) -> ConversationList:
    """Open the newest conversation from the list, then open the list again (its screen)."""
    screen = await open_list(pilot)
    await pilot.press("enter")
    await shown(pilot, screen)
    assert pilot.app.chat_history.conversation_id == expected
    return await open_list(pilot)


async def rename_highlighted(pilot, screen: ConversationList, title: str) -> None:
    await pilot.press("r")
    screen.rename_box.value = ""
    await pilot.press(*title, "enter")
    await shown(pilot, screen)


async def test_the_list_opens_newest_first_filters_and_closes(settings_for):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(pilot)
        assert screen.shown == [haiku, tides, sky]
        await pilot.press("slash")
        assert screen.search_box.has_focus
        await pilot.press(*"moon")
        await shown(pilot, screen)
        assert screen.shown == [tides]
        assert "1 of 3 conversations match" in str(screen.query_one("#heading").render())
        await pilot.press(*"xyz")
        await shown(pilot, screen)
        assert screen.shown == []
        screen.search_box.value = "rayleigh"  # a word only in an answer
        await pilot.pause()
        await shown(pilot, screen)
        assert screen.shown == [sky]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConversationList)
        await pilot.press("f2")  # F2 toggles it too
        assert isinstance(app.screen, ConversationList)
        await pilot.press("f2")
        assert not isinstance(app.screen, ConversationList)


async def test_enter_opens_a_conversation_and_the_next_message_continues_it(settings_for, srv, submit, settled, server_saw):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(pilot)
        await pilot.press("down", "enter")  # the second newest: tides
        await shown(pilot, screen)
        assert not isinstance(app.screen, ConversationList)
        assert [m.text for m in app.query(UserMessage)] == ["Tides and the moon"]
        [answer] = app.query(StoredAnswer)
        assert answer.metrics_text == "claude-test · TTFT 200 ms · 50.0 tok/s · 8 output tokens · 0.36 s · stop: stop"
        assert app.settings.model == "claude-test"  # the conversation's own model, as with -c
        assert app.chat_history.conversation_id == tides
        await submit(pilot, "and the sun?")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        screen = await open_list(pilot)
        assert screen.shown[0] == tides  # now the newest used
        assert "(open)" in str(screen.options.get_option_at_index(0).prompt)
    assert srv.requests[0].body["model"] == "claude-test"
    assert srv.requests[0].body["messages"][-3:] == [
        {"role": "user", "content": "Tides and the moon"},
        {"role": "assistant", "content": "The moon pulls the oceans."},
        {"role": "user", "content": "and the sun?"},
    ]


async def test_opening_is_refused_while_an_answer_streams(settings_for, submit, tap, until):
    settings = settings_for(tokens=400, tps=20)
    seed_three(settings.base_url)
    app = ChatApp(settings)
    notes: List[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "a long one")
        app.notify = lambda message, **kw: notes.append(message)
        await tap(pilot, "ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConversationList), what="the list")
        screen = app.screen
        await until(pilot, lambda: screen.shown, what="the rows")
        await tap(pilot, "enter")
        await until(pilot, lambda: notes, what="the refusal")
        assert notes == ["An answer is still streaming: press Esc to cancel it, or open the conversation when it ends."]
        assert app.screen is screen  # still open, nothing switched
        assert [m.text for m in app.query(UserMessage)] == ["a long one"]
        screen.dismiss(None)
        await pilot.pause()
        await tap(pilot, "escape")


async def test_rename_in_place(settings_for):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(pilot)
        await pilot.press("r")
        assert screen.rename_box.has_focus and screen.rename_box.value == "A haiku about rust"
        await pilot.press("escape")
        await rename_highlighted(pilot, screen, "Rust poems")
        assert not screen.rename_box.has_class("-shown")
        await pilot.press("r", "escape")  # Esc ends a rename without saving, list stays open
        assert isinstance(app.screen, ConversationList)
    with HistoryStore.open() as store:
        assert store.get(haiku).title == "Rust poems"


async def test_renaming_the_open_conversation_updates_its_note_at_once(settings_for):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_first_listed(pilot, haiku)
        note = app._about
        assert f"Conversation {haiku}: A haiku about rust ·" in str(note.render())
        await rename_highlighted(pilot, screen, "Rust poems")
        assert f"Conversation {haiku}: Rust poems ·" in str(note.render())
        await pilot.press("down")  # another conversation: the note stays
        await rename_highlighted(pilot, screen, "Other")
        assert f"Conversation {haiku}: Rust poems ·" in str(note.render())


async def test_delete_asks_first_and_deleting_the_open_conversation_starts_afresh(settings_for):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_first_listed(pilot, haiku)
        await pilot.press("d")
        assert isinstance(app.screen, Confirm)
        assert "A haiku about rust" in app.screen.question
        await pilot.press("n")  # kept
        assert app.screen is screen and screen.shown == [haiku, tides, sky]
        await pilot.press("d", "y")
        await shown(pilot, screen)
        await shown(pilot, screen)  # the deletion, then the list read again
        assert screen.shown == [tides, sky]
        await pilot.press("escape")
        await pilot.pause()
        assert app.chat_history.conversation_id is None  # the next message starts a new one
        assert not app.query(StoredAnswer)
    with HistoryStore.open() as store:
        assert [c.id for c in store.list_conversations()] == [tides, sky]


async def test_the_palette_offers_the_list(settings_for):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        commands = [command.title for command in app.get_system_commands(app.screen)]
        assert "Conversations" in commands
        app.action_conversations()
        await pilot.pause()
        assert isinstance(app.screen, ConversationList)
        await shown(pilot, app.screen)
        assert app.screen.shown == []


def test_snapshot_of_the_conversation_list(snap_compare, settings_for, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        settings = settings_for(tokens=5)
        seed_three(settings.base_url)
        app = ChatApp(settings, status_interval=None)

        async def run_before(pilot) -> None:
            app.prompt.cursor_blink = False
            await pilot.press("ctrl+o")
            await pilot.pause()
            await shown(pilot, app.screen)
            app.screen.search_box.cursor_blink = False

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("key, end", [("up", "first"), ("down", "last")])
async def test_the_list_stops_at_its_ends_instead_of_wrapping(settings_for, srv, count, key, end):
    ids = seed_three(srv.base_url("openai-chat"))
    with HistoryStore.open() as store:
        for cid in ids[count:]:
            store.delete(cid)
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(pilot)
        options = screen.options
        assert options.option_count == count
        edge = 0 if end == "first" else count - 1
        options.highlighted = count - 1 - edge  # start from the other end
        for _ in range(count - 1):
            await pilot.press(key)
        assert options.highlighted == edge
        for _ in range(3):  # a held key goes on sending
            await pilot.press(key)
            assert options.highlighted == edge
