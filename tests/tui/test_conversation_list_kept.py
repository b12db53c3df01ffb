"""The conversation list is composed once and kept (screens/conversations.py): composing it took
40-70 ms of the Ctrl+O key's way to the screen. Each opening still starts as a new list did."""

from __future__ import annotations

from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import ConversationList
from tests.tui.test_conversation_list import SIZE, open_list, seed_three, shown


async def test_reopening_shows_the_same_screen_reset_as_new(settings_for):
    settings = settings_for(tokens=5)
    sky, tides, haiku = seed_three(settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_list(pilot)
        widgets = list(screen.query("#panel *"))
        assert screen.shown == [haiku, tides, sky]
        # Leave it searched, with a rename open and the last row highlighted.
        await pilot.press("slash", *"e")
        await shown(pilot, screen)
        await pilot.press("down", "end")
        await pilot.press("r")
        assert screen.rename_box.has_class("-shown")
        await pilot.press("escape", "escape")  # ends the rename, then closes
        await pilot.pause()
        assert not isinstance(app.screen, ConversationList)
        assert screen.is_attached  # kept, not removed
        # Opening a conversation while it is closed: the reopened list marks it open.
        assert await app.open_conversation(tides)
        again = await open_list(pilot)
        assert again is screen and list(again.query("#panel *")) == widgets  # not composed again
        assert again.search_box.value == "" and not again.rename_box.has_class("-shown")
        assert again.shown == [haiku, tides, sky]
        assert again.options.highlighted == 0 and again.options.has_focus
        assert "(open)" in str(again.options.get_option_at_index(1).prompt)
        await pilot.press("slash", *"moon")
        await shown(pilot, again)
        assert again.shown == [tides]
        await pilot.press("ctrl+o")  # closes it
        await pilot.pause()
        assert not isinstance(app.screen, ConversationList)
