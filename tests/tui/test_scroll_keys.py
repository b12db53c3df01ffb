"""Scrolling the transcript from the keyboard while the prompt keeps the focus: PageUp/PageDown,
Ctrl+Up/Down, Ctrl+Home/End. Moving up lets go of the growing answer; back at the end (or
Ctrl+End) the transcript follows it again."""

from __future__ import annotations

from textual.command import CommandPalette

from llmchat.tui.app import SCROLL_LINES, ChatApp

SIZE = (100, 30)


def at_end(transcript) -> bool:
    return transcript.max_scroll_y > 0 and transcript.scroll_y == transcript.max_scroll_y


async def test_keys_scroll_the_transcript_and_leave_the_prompt_alone(settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=500))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "a long answer please")
        await settled(app)
        transcript = app.transcript
        await until(pilot, lambda: at_end(transcript), what="the end")
        app.prompt.load_text("a draft\nof two lines")
        app.prompt.move_cursor((0, 3))
        await pilot.pause()  # the prompt grows to two lines: the transcript's page is smaller
        await until(pilot, lambda: at_end(transcript), what="the end")
        page = transcript.scrollable_content_region.height
        end = transcript.max_scroll_y

        await pilot.press("pageup")
        assert transcript.scroll_y == end - page
        await pilot.press("pageup")
        assert transcript.scroll_y == end - 2 * page
        await pilot.press("pagedown")
        assert transcript.scroll_y == end - page
        await pilot.press("ctrl+up")
        assert transcript.scroll_y == end - page - SCROLL_LINES
        await pilot.press("ctrl+down", "ctrl+down")
        assert transcript.scroll_y == end - page + SCROLL_LINES
        await pilot.press("ctrl+home")
        assert transcript.scroll_y == 0
        await pilot.press("ctrl+end")
        await until(pilot, lambda: at_end(transcript), what="the end again")

        # The prompt kept the focus, its text and its cursor (PageUp is not its page-up here).
        assert app.prompt.has_focus
        assert app.prompt.text == "a draft\nof two lines"
        assert app.prompt.cursor_location == (0, 3)


# A long, steady answer (~15 s): the tests watch it grow, then cancel it, so no wait depends on
# the stream still running by the time a slow machine gets there.
LONG = dict(tokens=3000, tps=200)


async def test_paging_up_mid_answer_stays_put_and_paging_back_down_follows_again(settings_for, submit, tap, settled, until):
    app = ChatApp(settings_for(**LONG))
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await submit(pilot, "a long answer please")
        await until(pilot, lambda: transcript.max_scroll_y > 40, what="an answer much taller than the view")
        await tap(pilot, "pageup")
        await tap(pilot, "pageup")
        held = transcript.scroll_y
        assert held < transcript.max_scroll_y
        grown = transcript.max_scroll_y + 10
        await until(pilot, lambda: transcript.max_scroll_y > grown, what="more answer")
        assert transcript.scroll_y == held  # not dragged to the end while reading
        while not at_end(transcript):  # page back down to the end: following again
            await tap(pilot, "pagedown")
        grown = transcript.max_scroll_y + 10
        await until(pilot, lambda: transcript.max_scroll_y > grown and at_end(transcript), what="following more answer")
        assert app.streaming
        await tap(pilot, "escape")
        await settled(app)


async def test_ctrl_end_follows_the_answer_again(settings_for, submit, tap, settled, until):
    app = ChatApp(settings_for(**LONG))
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await submit(pilot, "a long answer please")
        await until(pilot, lambda: transcript.max_scroll_y > 20, what="an answer taller than the view")
        await tap(pilot, "ctrl+home")
        assert transcript.scroll_y == 0
        grown = transcript.max_scroll_y + 10
        await until(pilot, lambda: transcript.max_scroll_y > grown, what="more answer")
        assert transcript.scroll_y == 0
        await tap(pilot, "ctrl+end")
        grown = transcript.max_scroll_y + 10
        await until(pilot, lambda: transcript.max_scroll_y > grown and at_end(transcript), what="following more answer")
        assert app.streaming
        await tap(pilot, "escape")
        await settled(app)


async def test_page_keys_in_the_palette_do_not_scroll_the_transcript(settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=500))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "a long answer please")
        await settled(app)
        transcript = app.transcript
        await until(pilot, lambda: at_end(transcript), what="the end")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press("pageup", "ctrl+home", "pageup")
        assert isinstance(app.screen, CommandPalette)
        # Still at the end (the last lines of the answer may still be laid out after the
        # stream settles, so the end can move down; the keys must not move the view up).
        assert at_end(transcript)
        await pilot.press("escape")
