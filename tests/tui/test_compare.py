"""Two answers to one prompt compared (issue 11): their figures, the texts side by side (stacked
below 100 columns) or as a word diff (`d`), Esc closes; reached from the palette's "Compare with
another answer…" for the last answer with siblings. A real store, the real app, Pilot."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from typing import Any, Tuple

import pytest
import test_palette as palette
import test_theme_contrast as contrast

from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.history.markdown import word_diff
from llmchat.tui.app import ChatApp
from llmchat.tui.screens.compare import CompareScreen, diff_content
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

WIDE = (120, 40)
NARROW = (80, 24)

FIRST = """\
The sky looks **blue** because air scatters short wavelengths of sunlight more than long ones.

- Rayleigh scattering
- strongest for violet and blue
"""

SECOND = """\
The sky looks **blue** because molecules in the air scatter blue light far more than red light.

- Rayleigh scattering
- our eyes are less sensitive to violet
"""


def seed_siblings(first: str = FIRST, second: str = SECOND, *, model_b: str = "other-model", base_url: str = "") -> Tuple[int, int, int]:
    """A conversation with one prompt and two answers to it (the second regenerated, current),
    each with figures; returns (conversation, first answer, second answer)."""
    with HistoryStore.open() as store:
        writer = store.begin_turn(None, "Why is the sky blue?", model="gpt-test", api="openai-chat", base_url=base_url or None)
        writer.append(first)
        writer.finish(COMPLETE, stop_reason="stop")
        again = store.regenerate(writer.message_id, model=model_b, api="openai-chat", base_url=base_url or None)
        again.append(second)
        again.finish(COMPLETE, stop_reason="stop")
        ids = (writer.conversation_id, writer.message_id, again.message_id)
    db = sqlite3.connect(str(default_path()))
    for answer, (ttft, tps, tokens, elapsed) in ((ids[1], (0.21, 48.5, 31, 0.85)), (ids[2], (0.09, 120.0, 35, 0.4))):
        db.execute(
            "UPDATE messages SET ttft = ?, tokens_per_second = ?, output_tokens = ?, tokens_exact = 1, elapsed = ? WHERE id = ?",
            (ttft, tps, tokens, elapsed, answer),
        )
    db.commit()
    db.close()
    return ids


async def open_compare(pilot: Any, until: Any, a: int, b: int) -> CompareScreen:
    pilot.app.compare_answers(a, b)
    await until(pilot, lambda: isinstance(pilot.app.screen, CompareScreen), what="the compare screen")
    screen = pilot.app.screen
    await until(pilot, lambda: screen.loaded is not None or screen.error is not None, what="both answers")
    await pilot.pause()
    return screen


def text_of(screen: CompareScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def markdown_of(screen: CompareScreen, column: str) -> str:
    return screen.query_one(f"#{column} StreamingMarkdown", StreamingMarkdown).source


async def show_diff(pilot: Any, until: Any, screen: CompareScreen) -> None:
    await pilot.press("d")
    await until(pilot, lambda: screen.diffed, what="the word diff")
    await pilot.pause()


async def test_both_answers_and_their_figures_side_by_side_then_a_word_diff_then_esc_closes(settings_for, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_compare(pilot, until, a, b)
        assert not screen.stacked and not screen.showing_diff
        assert "Two answers to “Why is the sky blue?”" in text_of(screen, "#heading")
        assert markdown_of(screen, "a") == FIRST
        assert markdown_of(screen, "b") == SECOND
        left, right = screen.query_one("#a").region, screen.query_one("#b").region
        assert left.y == right.y and left.right <= right.x  # beside each other
        figures = text_of(screen, "#figures").splitlines()
        assert figures[0].split() == ["answer", "model", "status", "TTFT", "tok/s", "tokens", "time"]
        assert figures[1].split() == ["A", f"#{a}", "‹1/2›", "gpt-test", "complete", "210", "ms", "48.5", "31", "0.85", "s"]
        assert figures[2].split() == ["B", f"#{b}", "‹2/2›", "other-model", "complete", "90", "ms", "120.0", "35", "0.40", "s"]
        assert "gpt-test" in str(screen.query_one("#a").border_title) and "other-model" in str(screen.query_one("#b").border_title)

        await show_diff(pilot, until, screen)
        assert screen.showing_diff
        assert not screen.query_one("#answers").display and screen.query_one("#diff").display
        diff = screen.query_one("#diff-text").render()
        shown = str(diff)
        assert shown.startswith("The sky looks **blue** because ")
        struck = {shown[s.start : s.end] for s in diff.spans if "strike" in str(s.style)}
        underlined = {shown[s.start : s.end] for s in diff.spans if "underline" in str(s.style)}
        runs = word_diff(FIRST, SECOND)
        assert struck == {text for op, text in runs if op == "-"} and underlined == {text for op, text in runs if op == "+"}
        assert "scatters short wavelengths of sunlight" in struck and "long ones." in struck and "strongest for" in struck
        assert "sensitive to" in " ".join(underlined) and "red light." in " ".join(underlined)
        assert "Rayleigh scattering" not in "".join(struck | underlined)  # the same in both

        await pilot.press("d")  # back
        assert not screen.showing_diff and screen.query_one("#answers").display
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen), what="the screen to close")


async def test_the_footer_lists_the_keys(settings_for, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_compare(pilot, until, a, b)
        keys = [(key.key, key.description) for key in screen.query("FooterKey")]
        assert ("escape", "Close") in keys and ("d", "Word diff / side by side") in keys


async def test_below_100_columns_the_answers_are_stacked_and_scroll_as_one(settings_for, until):
    _, a, b = seed_siblings(FIRST * 3, SECOND * 3)
    app = ChatApp(settings_for())
    async with app.run_test(size=NARROW) as pilot:
        screen = await open_compare(pilot, until, a, b)
        assert screen.stacked
        left, right = screen.query_one("#a").region, screen.query_one("#b").region
        assert left.x == right.x and left.bottom <= right.y  # one above the other
        assert markdown_of(screen, "b") == SECOND * 3
        # The figures still fit: every line within the screen.
        assert all(len(line) <= NARROW[0] - 4 for line in text_of(screen, "#figures").splitlines())
        answers = screen.query_one("#answers")
        assert answers.max_scroll_y > 0 and answers.has_focus  # B is below: the keys scroll to it
        await pilot.press("end")
        await until(pilot, lambda: answers.scroll_y == answers.max_scroll_y, what="the end of B")
        await pilot.resize_terminal(*WIDE)
        await until(pilot, lambda: not screen.stacked, what="side by side once wide")
        assert screen.query_one("#a").has_focus
        await pilot.press("tab")
        assert screen.query_one("#b").has_focus


async def test_model_output_is_sanitised_everywhere_it_is_shown(settings_for, until):
    hostile = "Plain \x1b[2J\x1b]0;pwned\x07words\x9b31m and \u202eevil."
    _, a, b = seed_siblings(hostile, "Plain words and good.", model_b="bad\x1b[31mmodel\nname")
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_compare(pilot, until, a, b)
        shown = [markdown_of(screen, "a"), text_of(screen, "#figures"), str(screen.query_one("#b").border_title)]
        await show_diff(pilot, until, screen)
        shown.append(text_of(screen, "#diff-text"))
        for text in shown:
            assert not any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text), repr(text)
        assert "badmodel name" in shown[1]
        assert markdown_of(screen, "a") == "Plain words and evil."


async def test_an_answer_that_did_not_end_normally_says_how_it_ended(settings_for, until):
    _, a, b = seed_siblings()
    db = sqlite3.connect(str(default_path()))
    db.execute("UPDATE messages SET status = 'error', error = 'HTTP 500: \x1b[31mupstream\nfailed' WHERE id = ?", (b,))
    db.commit()
    db.close()
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_compare(pilot, until, a, b)
        assert not screen.query("#a .note")  # ended normally (and off the current branch: no news)
        assert text_of(screen, "#b .note") == "error: HTTP 500: upstream failed"
        assert text_of(screen, "#figures").splitlines()[2].split()[4] == "error"


async def test_the_answers_are_read_off_the_event_loop(settings_for, until):
    """A store that takes its time (locked by another llmchat, say) leaves the screen working."""
    _, a, b = seed_siblings()
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        store = app.chat_history.store
        gate = threading.Event()
        read = store.message

        def slow_message(message_id: int) -> Any:
            assert threading.current_thread() is not threading.main_thread()
            gate.wait(10)
            return read(message_id)

        store.message = slow_message
        app.compare_answers(a, b)
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare screen")
        screen = app.screen
        await pilot.press("d")  # the keys still work while the store is read
        assert screen.showing_diff and screen.loaded is None
        assert "Comparing answers" in text_of(screen, "#heading")
        gate.set()
        await until(pilot, lambda: screen.diffed, what="the word diff once read")
        assert "molecules" in text_of(screen, "#diff-text")


async def test_an_unknown_answer_is_a_notification_not_a_crash(settings_for, spy_notices, until):
    _, a, _ = seed_siblings()
    app = ChatApp(settings_for())
    async with app.run_test(size=WIDE) as pilot:
        seen = spy_notices(app)
        screen = await open_compare(pilot, until, a, 999_999)
        assert screen.loaded is None and "999999" in (screen.error or "")
        await until(pilot, lambda: any("Cannot compare answers" in m and s == "error" for m, s in seen), what="the notification")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen), what="the screen to close")


async def test_with_history_off_compare_says_so(settings_for, spy_notices):
    app = ChatApp(replace(settings_for(), history=False))
    async with app.run_test(size=WIDE) as pilot:
        seen = spy_notices(app)
        app.compare_answers(1, 2)
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        assert any("History is off" in m for m, _ in seen)


async def test_the_palette_compares_the_last_answer_with_the_one_picked(settings_for, until):
    settings = settings_for()
    cid, a, b = seed_siblings(base_url=settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=WIDE) as pilot:
        assert await app.open_conversation(cid)
        await palette.run_command(pilot, until, "compare", "Compare with another answer…")
        # The picker lists the other answer to the prompt (B, the current one, is the last answer).
        picker = await palette.palette_open(pilot, until)
        assert [picker.get_option_at_index(i).hit.text for i in range(picker.option_count)] == [f"‹ 1/2 › answer {a} · gpt-test · complete"]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare screen")
        screen = app.screen
        assert (screen.a_id, screen.b_id) == (b, a)
        await until(pilot, lambda: screen.loaded is not None, what="both answers")
        assert markdown_of(screen, "a") == SECOND and markdown_of(screen, "b") == FIRST


async def test_the_palette_says_when_no_answer_has_another(settings_for, spy_notices, ask):
    app = ChatApp(settings_for(text="Only one answer."))
    async with app.run_test(size=WIDE) as pilot:
        await ask(pilot, "A question")
        seen = spy_notices(app)
        await app.pick_answer_to_compare()
        assert any("No answer here has another answer" in m for m, _ in seen)


def test_the_word_diff_marks_deletions_and_insertions_only():
    content = diff_content("one two three", "one 2 three")
    runs = [(str(content)[s.start : s.end], str(s.style)) for s in content.spans]
    assert str(content) == "one two2 three"
    assert runs == [("two", "$text-error strike"), ("2", "$text-success underline")]


@pytest.mark.parametrize("theme", contrast.THEMES)
async def test_every_text_of_the_compare_screen_is_readable(settings_for, theme, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for(), status_interval=None, theme=theme, themes_from=[contrast.REPO_THEMES])
    async with app.run_test(size=contrast.SIZE) as pilot:
        screen = await open_compare(pilot, until, a, b)
        problems = contrast.low_contrast(app, contrast.BAR[theme])
        assert not problems, "side by side:\n" + "\n".join(problems)
        await show_diff(pilot, until, screen)
        problems = contrast.low_contrast(app, contrast.BAR[theme])
        assert not problems, "word diff:\n" + "\n".join(problems)


def test_snapshot_side_by_side(snap_compare, settings_for, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for(), status_interval=None)

    async def run_before(pilot) -> None:
        await open_compare(pilot, until, a, b)

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_snapshot_word_diff(snap_compare, settings_for, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for(), status_interval=None)

    async def run_before(pilot) -> None:
        await show_diff(pilot, until, await open_compare(pilot, until, a, b))

    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


def test_snapshot_stacked_at_80_columns(snap_compare, settings_for, until):
    _, a, b = seed_siblings()
    app = ChatApp(settings_for(), status_interval=None)

    async def run_before(pilot) -> None:
        await open_compare(pilot, until, a, b)

    assert snap_compare(app, terminal_size=NARROW, run_before=run_before)
