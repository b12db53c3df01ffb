"""Honest figures and states in the TUI: a rate only when it means something, a stall said out
loud, retries counted and their wait counted down, reasoning in a foldable Thinking block with
the time to the answer, each ended answer's figures under it, a retried answer marked, the
prompt given back when nothing was answered, and a status bar that stays one line at 40 columns.
"""

from __future__ import annotations

import re

import pytest

from llmchat.demo.answer import answer_tokens
from llmchat.history import open_for_chat
from llmchat.history.markdown import metrics_line
from llmchat.tui.app import ChatApp
from llmchat.tui.session import CANCELLED, DONE, STREAMING, THINKING, WAITING
from llmchat.tui.widgets import AssistantMessage
from llmchat.tui.widgets.thinking import TAIL_CHARS, ThinkingBlock, ThinkingTitle

SIZE = (100, 30)


def answers(app: ChatApp) -> list:
    return list(app.query(AssistantMessage))


@pytest.fixture
def answered(submit, settled):
    """await answered(pilot, text): send `text`, wait for the answer to end and one more frame."""

    async def send(pilot, text: str) -> None:
        await submit(pilot, text)
        await settled(pilot.app)
        await pilot.pause()

    return send


# --- tok/s only when it means something -------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(tokens=3, tps=20),  # few tokens, however slowly: no rate
        dict(tokens=7, tps=20),  # one short of the least that makes a rate
        dict(tokens=250),  # many tokens in one write (the server batches 256): a burst
        dict(tokens=40, usage="false"),  # the same with an estimated count
    ],
    ids=["3-slow-tokens", "7-slow-tokens", "250-in-one-write", "40-estimated-in-one-write"],
)
async def test_a_burst_shows_a_dash_not_a_rate(settings_for, answered, options):
    app = ChatApp(settings_for(**options))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        assert "tok/s –" in app.status.figures
        assert app.status.tokens_per_second is None
        [answer] = answers(app)
        assert "tok/s" not in answer.figures_text  # no rate in the figures line either


async def test_a_steady_stream_shows_its_rate(settings_for, answered):
    app = ChatApp(settings_for(tokens=60, tps=150))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        rate = app.status.tokens_per_second
        assert rate is not None and 50 < rate < 500  # ~150, with room for a busy machine
        assert f"tok/s {rate:.1f}" in app.status.figures


# --- stalls -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options", [dict(tokens=40, tps=100, stall_after=5), dict(reasoning=10, tokens=20, tps=100, stall_after=5)], ids=["answering", "thinking"]
)
async def test_a_stall_says_stalled_instead_of_a_frozen_rate(settings_for, submit, until, options):
    app = ChatApp(settings_for(**options))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        status = app.status
        await until(pilot, lambda: status.state in (THINKING, STREAMING) and app.session.last.metrics.deltas == 5, what="5 tokens")
        assert "stalled" not in status.figures
        await until(pilot, lambda: status.stalled is not None, timeout=5, what="the stall to show")
        figures = status.figures
        assert re.search(r"stalled \d+\.\d s", figures), figures
        assert "tok/s" not in figures  # the frozen rate is gone while nothing arrives
        seen = status.stalled
        await until(pilot, lambda: status.stalled is not None and status.stalled >= seen + 0.2, timeout=5, what="the stall to grow")
        await pilot.press("escape")
        assert status.stalled is None and status.state == CANCELLED


# --- retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [1, 2])
async def test_the_figures_say_how_many_retries_came_first(settings_for, answered, failures):
    app = ChatApp(settings_for(tokens=20, tps=200, fail_first=failures, retry_after="0.1"))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        retries = "1 retry" if failures == 1 else f"{failures} retries"
        assert re.search(rf"TTFT \d+\.\d\d s after {retries} │", app.status.figures), app.status.figures
        [answer] = answers(app)
        assert answer.figures_text.endswith(f" · after {retries}")
        assert app.session.last.state == DONE


async def test_no_retries_no_mention(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=20, tps=200))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        assert "retr" not in app.status.figures and "retr" not in answers(app)[0].figures_text


async def test_a_retry_wait_counts_down(settings_for, submit, until, settled):
    app = ChatApp(settings_for(tokens=10, tps=100, fail_first=1, retry_after="3"))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        [answer] = answers(app)
        status = app.status

        def left() -> float:
            found = re.search(r"retrying in (\d+\.\d) s \(attempt 2 of 4\)", answer.note_text)
            return float(found.group(1)) if found else -1.0

        await until(pilot, lambda: left() > 0, what="the retry note")
        first = left()
        assert 0.6 < first <= 3.0
        assert re.search(r"retry in \d\.\d s", status.figures), status.figures
        await until(pilot, lambda: 0 < left() <= first - 0.5, timeout=5, what="the wait to count down")
        assert re.search(r"retry in \d\.\d s", status.figures)
        await settled(app)
        await pilot.pause()
        assert status.state == DONE and "retry in" not in status.figures and answer.note_text == ""


# --- reasoning: the Thinking block and the time to the answer ---------------------------------------


async def test_reasoning_streams_into_an_open_thinking_block_that_folds_when_the_answer_starts(settings_for, submit, until, settled):
    app = ChatApp(settings_for(reasoning=80, tokens=20, tps=40))  # 2 s of thinking: time to look
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await until(pilot, lambda: app.session.last.thinking is not None, what="the Thinking block")
        block = app.session.last.thinking
        await until(pilot, lambda: block.text.count(" ") >= 3, what="some reasoning")
        assert app.session.last.state == THINKING
        assert block.expanded and block.body.display and block.title.render().plain == "▼ Thinking"
        grew_from = len(block.text)
        await until(pilot, lambda: len(block.text) > grew_from or app.session.last.state != THINKING, what="more reasoning")
        assert app.session.last.state == THINKING, "the reasoning should still be streaming"  # it grew while open
        await until(pilot, lambda: app.session.last.state == STREAMING, what="the answer")
        assert not block.expanded and block.title.render().plain == "▶ Thinking"
        await pilot.pause()
        assert block.body.region.height == 0  # folded: the reasoning takes no room
        await settled(app)


async def test_the_time_to_the_first_answer_token_is_shown_when_reasoning_came_first(settings_for, answered):
    app = ChatApp(settings_for(reasoning=20, tokens=20, tps=100))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        status = app.status
        assert status.ttft is not None and status.answer_ttft is not None
        assert status.answer_ttft >= status.ttft + 0.05  # 20 reasoning tokens at 100/s came between
        assert f"TTFT {status.ttft:.2f} s │ answer at {status.answer_ttft:.2f} s │" in status.figures


async def test_without_reasoning_there_is_no_thinking_block_and_no_answer_time(settings_for, answered):
    app = ChatApp(settings_for(tokens=20, tps=200))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        assert not app.query(ThinkingBlock) and "answer at" not in app.status.figures


async def test_the_thinking_block_toggles_by_key_and_by_click(settings_for, answered):
    app = ChatApp(settings_for(reasoning=8, tokens=10))
    async with app.run_test(size=SIZE) as pilot:
        await answered(pilot, "hi")
        [block] = app.query(ThinkingBlock)
        assert not block.expanded
        await pilot.press("ctrl+t")  # from the prompt
        assert block.expanded and app.focused is app.prompt
        await pilot.press("ctrl+t")
        assert not block.expanded
        await pilot.click(ThinkingTitle)
        assert block.expanded
        await pilot.click(ThinkingTitle)
        assert not block.expanded
        block.title.focus()
        await pilot.press("enter")
        assert block.expanded
        await pilot.press("space")
        assert not block.expanded


async def test_ctrl_t_toggles_the_newest_thinking_block(settings_for, answered):
    app = ChatApp(settings_for(reasoning=8, tokens=10))
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("one", "two"):
            await answered(pilot, prompt)
        older, newer = app.query(ThinkingBlock)
        await pilot.press("ctrl+t")
        assert newer.expanded and not older.expanded


async def test_ctrl_t_opens_a_thinking_block_scrolled_out_of_view_into_view(settings_for, answered, until):
    app = ChatApp(settings_for(reasoning=30, tokens=300))
    async with app.run_test(size=(60, 20)) as pilot:
        await answered(pilot, "hi")
        [block] = app.query(ThinkingBlock)
        transcript = app.transcript

        def visible() -> bool:
            return transcript.scrollable_content_region.contains_point(block.title.region.offset)

        assert not visible()  # the long answer pushed it above the view
        await pilot.press("ctrl+t")
        await until(pilot, visible, what="the opened block in view")
        assert block.expanded and block.body.region.height > 0


async def test_ctrl_t_with_no_thinking_says_so(settings_for, spy_notices):
    app = ChatApp(settings_for(tokens=10))
    async with app.run_test(size=SIZE) as pilot:
        seen = spy_notices(app)
        await pilot.press("ctrl+t")
        assert seen == [("No answer here shows its thinking.", "information")]


async def test_thinking_text_is_sanitised_and_never_markup(settings_for):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        block = ThinkingBlock()
        await app.transcript.mount(block)
        block.update_text("[bold]not markup[/bold] \x1b]52;c;aGk=\x07clipboard\x1b[2J")
        await pilot.pause()
        shown = block.body.render().plain
        assert shown == "[bold]not markup[/bold] clipboard"


async def test_a_long_reasoning_shows_its_tail_while_it_streams_and_all_of_it_once_ended(settings_for, submit, until, settled):
    app = ChatApp(settings_for(reasoning=1500, stall_after=1500, tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await until(
            pilot,
            lambda: (
                len(app.session.last.reasoning) == 1500
                and app.session.last.thinking is not None
                and app.session.last.thinking.text.endswith(answer_tokens("", 1500)[-1])
            ),
            what="all the reasoning",
        )
        block = app.session.last.thinking
        full = "".join(answer_tokens("", 1500))
        assert len(full) > 2 * TAIL_CHARS
        await pilot.pause()
        shown = block.body.render().plain
        assert shown.startswith("…\n") and full.endswith(shown[2:]) and len(shown) <= TAIL_CHARS + 2
        await pilot.press("escape")
        await settled(app)
        await pilot.pause()
        assert block.expanded  # no answer came: nothing folded it
        assert block.body.render().plain == full


# --- the answer's figures line, the superseded mark ----------------------------------------------------


async def test_each_ended_answer_shows_the_figures_line_history_shows(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=30, tps=150))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        [answer] = answers(app)
        assert not answer.has_class("-has-figures")  # none while it streams
        await settled(app)
        await pilot.pause()
        assert answer.has_class("-has-figures") and answer.figures.region.height == 1
        store = open_for_chat(lambda message: None)
        stored = store.load(app.chat_history.conversation_id).messages[-1]
        assert answer.figures_text == metrics_line(stored)  # the line a reopened answer shows
        assert re.fullmatch(r"m · TTFT \d+ ms · \d+\.\d tok/s · \d+ input, 30 output tokens · \d\.\d\d s · stop: stop", answer.figures_text)
        store.close()


@pytest.mark.parametrize("options", [dict(tokens=40, tps=100, stall_after=5), dict(status=500)], ids=["cancelled", "error"])
async def test_a_cancelled_or_failed_answer_shows_its_figures_too(settings_for, submit, settled, until, options):
    app = ChatApp(settings_for(**options))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        if "stall_after" in options:
            await until(pilot, lambda: app.session.last.metrics.deltas == 5, what="5 tokens")
            await pilot.press("escape")
        await settled(app)
        await pilot.pause()
        [answer] = answers(app)
        assert answer.figures_text.startswith("m · ") and answer.figures.region.height == 1


SUPERSEDED = "superseded: asked again below, and not sent as context"


@pytest.mark.parametrize(
    "options, note",
    [(dict(tokens=10), ""), (dict(status=401), "Error: 401 Unauthorized: Incorrect API key provided (server_error) · Ctrl+R to retry")],
    ids=["done", "error"],
)
async def test_a_retried_answer_is_marked_superseded_beside_its_note(settings_for, submit, settled, options, note):
    app = ChatApp(settings_for(**options))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        assert answers(app)[0].note_text == note
        await pilot.press("ctrl+r")
        await settled(app)
        await pilot.pause()
        old, new = answers(app)
        assert old.has_class("-superseded") and not new.has_class("-superseded")
        assert old.note_text == (f"{note} · {SUPERSEDED}" if note else SUPERSEDED)
        assert old.note.region.height >= 1 and old.styles.opacity < 1


# --- Esc before the answer gives the prompt back -----------------------------------------------------


@pytest.mark.parametrize(
    "options, state",
    [(dict(ttft=30, tokens=5), WAITING), (dict(reasoning=10, stall_after=4, tokens=5), THINKING)],
    ids=["waiting", "thinking"],
)
async def test_esc_before_the_answer_puts_the_prompt_back(settings_for, submit, until, settled, options, state):
    app = ChatApp(settings_for(**options))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "a question\non two lines")
        assert app.prompt.text == ""
        await until(pilot, lambda: app.session.last.state == state and app.status.state == state, what=state)
        await pilot.press("escape")
        await settled(app)
        assert app.prompt.text == "a question\non two lines"
        assert app.prompt.cursor_location == app.prompt.document.end
        await pilot.press("ctrl+r")  # resent as it is: the copy in the prompt goes
        assert app.prompt.text == ""


async def test_esc_after_the_answer_began_leaves_the_prompt_empty(settings_for, submit, until, settled):
    app = ChatApp(settings_for(tokens=40, tps=100, stall_after=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await until(pilot, lambda: app.session.last.state == STREAMING, what="the answer")
        await pilot.press("escape")
        await settled(app)
        assert app.prompt.text == ""  # the answer is on screen and goes back as context


async def test_a_status_refresh_while_quitting_mid_answer_is_harmless(settings_for, submit, until):
    """The status timer can tick once more while the app's widgets are being removed."""
    app = ChatApp(settings_for(reasoning=10, stall_after=4, tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await until(pilot, lambda: app.status.state == THINKING, what="thinking")
        await app.status.remove()
        app._refresh_status()
        app._show_status()
        assert app.session.last.state == THINKING


# --- the status bar at 40 columns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(reasoning=20, tokens=40, tps=100),
        dict(tokens=40, tps=100, stall_after=10),
        dict(tokens=20, tps=100, fail_first=2, retry_after="0.6"),
        dict(status=503, retry_after="0.1"),
    ],
    ids=["thinking-then-answer", "stalled", "retried", "failed-after-retries"],
)
async def test_at_40_columns_the_status_bar_is_one_line_through_a_send(settings_for, submit, until, options):
    app = ChatApp(settings_for(model="a-rather-long-model-name-7b-instruct", **options))
    async with app.run_test(size=(40, 15)) as pilot:
        status = app.status
        seen = set()
        lines = set()

        def look() -> bool:
            seen.add(status.size.height)
            text = status.figures
            lines.add(text)
            assert "\n" not in text and len(text) <= status.content_size.width, text
            if "stall_after" in options:
                return status.stalled is not None  # stalled: the longest usual line
            return app.worker is not None and app.worker.is_finished

        await submit(pilot, "hi")
        await until(pilot, look, timeout=15, what="the send to end")
        if "stall_after" in options:
            await pilot.press("escape")
        await pilot.pause()
        look()
        assert seen == {1}
        assert any("TTFT" in line for line in lines)


@pytest.mark.parametrize(
    "status_line, expected",
    [
        (dict(), "ready │ TTFT – │ – tok/s"),
        (dict(state=WAITING, elapsed=0.3), "⠸ waiting │ TTFT – │ – tok/s"),
        (dict(state=WAITING, elapsed=0.3, retry_in=1.5, retries=1), "⠸ retry in 1.5s │ TTFT – ↻1 │ – tok/s"),
        (dict(state=THINKING, ttft=0.41, tokens_per_second=85.2, elapsed=2.1), "thinking │ TTFT 0.41s │ ~85.2 tok/s"),
        (dict(state=STREAMING, ttft=0.41, stalled=2.14, elapsed=4.5), "streaming │ TTFT 0.41s │ stalled 2.1s"),
        (dict(state=DONE, ttft=0.05, retries=2, tokens_per_second=210.5, exact=True, elapsed=1.2), "done │ TTFT 0.05s ↻2 │ 210.5 tok/s"),
        # Longer than 38 columns: cut, never wrapped onto a second line.
        (dict(state=STREAMING, ttft=12.41, retries=3, stalled=12.14, elapsed=40.5), "streaming │ TTFT 12.41s ↻3 │ stalled …"),
    ],
    ids=["ready", "waiting", "retry-wait", "thinking", "stalled", "done-after-retries", "too-long"],
)
async def test_the_compact_status_line_at_40_columns(status_line, expected):
    from llmchat.config import Settings

    app = ChatApp(Settings(api="openai-chat", model="m", base_url="http://127.0.0.1:9/v1"))
    async with app.run_test(size=(40, 15)) as pilot:
        status = app.status
        for name, value in status_line.items():
            setattr(status, name, value)
        await pilot.pause()
        assert status.figures == expected
        assert status.size.height == 1


@pytest.mark.parametrize("width, height", [(100, 1), (74, 1), (73, 2), (56, 2), (55, 1), (40, 1), (30, 1)])
async def test_the_status_bar_form_depends_on_the_width_only(width, height):
    from llmchat.config import Settings

    app = ChatApp(Settings(api="openai-chat", model="m", base_url="http://127.0.0.1:9/v1"))
    async with app.run_test(size=(width, 15)) as pilot:
        status = app.status
        await pilot.pause()
        assert status.size.height == height
        status.state, status.ttft, status.retries, status.answer_ttft, status.stalled = STREAMING, 0.5, 3, 2.25, 12.5
        status.tokens, status.elapsed = 12345, 123.4
        await pilot.pause()
        assert status.size.height == height
        for line in status.figures.split("\n"):
            assert len(line) <= status.content_size.width
