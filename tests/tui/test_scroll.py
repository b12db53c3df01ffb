"""Follow-scroll: the transcript stays at the end while an answer grows, unless the user scrolls
up to read; back at the end, it follows again."""

from __future__ import annotations

from llmchat.tui.app import ChatApp

SIZE = (100, 30)


def at_end(transcript) -> bool:
    return transcript.max_scroll_y > 0 and transcript.scroll_y == transcript.max_scroll_y


async def test_long_answer_ends_scrolled_to_the_end(settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=500))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "a long answer please")
        await settled(app)
        transcript = app.transcript
        await until(pilot, lambda: at_end(transcript), what="the end of the transcript")
        assert transcript.max_scroll_y > 20


async def test_scrolling_up_mid_stream_stays_put_until_back_at_the_end(settings_for, submit, settled, until):
    # Long enough that plenty is still to come when the test scrolls back to the end, however
    # slowly the steps before ran (with 400 tokens a loaded machine could reach the end first).
    app = ChatApp(settings_for(tokens=1200, tps=250))
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await submit(pilot, "a long answer please")
        await until(pilot, lambda: transcript.max_scroll_y > 5, what="an answer taller than the view")
        assert at_end(transcript)  # following so far
        transcript.scroll_to(y=2, animate=False, immediate=True)  # the user scrolls up to read
        grown = transcript.max_scroll_y + 10
        await until(pilot, lambda: transcript.max_scroll_y > grown, what="more answer")
        assert transcript.scroll_y == 2  # not dragged along
        transcript.scroll_end(animate=False, immediate=True)  # back to the end: follow again
        await settled(app)
        await until(pilot, lambda: at_end(transcript) and transcript.max_scroll_y > grown + 10, what="following again")


async def test_a_new_question_follows_again(settings_for, submit, settled, until):
    app = ChatApp(settings_for(tokens=150))
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await submit(pilot, "first")
        await settled(app)
        await until(pilot, lambda: at_end(transcript), what="the end")
        transcript.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: transcript.scroll_y == 0, what="the top")
        await submit(pilot, "second")
        await settled(app)
        await until(pilot, lambda: at_end(transcript), what="the end after the second answer")
