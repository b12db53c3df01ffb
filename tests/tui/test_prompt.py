"""The prompt: Enter sends, Ctrl+J / Alt+Enter / Shift+Enter insert a newline, the hint shows."""

from __future__ import annotations

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import ChatPrompt, UserMessage
from llmchat.tui.widgets.prompt import HINT, HINT_WITH_SHIFT, newline_hint

SIZE = (100, 30)


async def test_enter_sends_and_newline_keys_insert(settings_for, srv, settled):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one(ChatPrompt)
        assert prompt.has_focus
        assert prompt.placeholder == HINT
        await pilot.press("h", "i", "ctrl+j", "t", "h", "e", "r", "e", "alt+enter", "x", "shift+enter", "y")
        assert prompt.text == "hi\nthere\nx\ny"
        await pilot.press("enter")
        await settled(app)
        await pilot.pause()
        assert prompt.text == ""
        [user] = app.query(UserMessage)
        assert user.text == "hi\nthere\nx\ny"
        assert srv.requests[0].body["messages"] == [{"role": "user", "content": "hi\nthere\nx\ny"}]


async def test_newline_replaces_a_selection(settings_for):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.load_text("abc")
        app.prompt.select_all()
        await pilot.press("ctrl+j", "z")
        assert app.prompt.text == "\nz"


async def test_blank_prompt_sends_nothing(settings_for, srv):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space", "ctrl+j", "enter")
        assert app.worker is None
        assert len(app.query(UserMessage)) == 0
        assert app.prompt.text == " \n"


async def test_typed_then_enter_in_one_burst(settings_for, settled, tap):
    """Keys queued faster than the prompt handles them (a paste-like burst, tmux send-keys):
    the priority Enter must still see everything typed before it."""
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        from textual import events

        for ch in "burst":
            event = events.Key(ch, ch)
            event.set_sender(app)
            app.post_message(event)
        await tap(pilot, "enter", "\r")
        await settled(app)
        await pilot.pause()
        [user] = app.query(UserMessage)
        assert user.text == "burst"


async def test_footer_shows_the_keys(settings_for, settled, submit, tap):
    app = ChatApp(settings_for(tokens=200, tps=20))
    async with app.run_test(size=SIZE) as pilot:
        keys = lambda: {b.binding.action for b in app.active_bindings.values() if b.binding.show and b.enabled}
        assert {"submit", "newline", "quit"} <= keys()
        assert "cancel_stream" not in keys() and "retry" not in keys()
        await submit(pilot, "long")
        await pilot.pause(0.01)
        assert "cancel_stream" in keys() and "retry" not in keys()
        await tap(pilot, "escape")
        await settled(app)
        await pilot.pause()
        assert "retry" in keys() and "cancel_stream" not in keys()


async def test_up_in_an_empty_prompt_recalls_this_conversations_prompts_and_down_goes_forward(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        for text in ("first", "second\nhas two lines", "third"):
            await submit(pilot, text)
            await settled(app)
        await pilot.pause()
        prompt = app.prompt
        assert prompt.text == ""
        await pilot.press("up")
        assert prompt.text == "third"
        await pilot.press("up")
        assert prompt.text == "second\nhas two lines"
        await pilot.press("up")  # the cursor is on the last line: it moves up first
        assert prompt.text == "second\nhas two lines" and prompt.cursor_location[0] == 0
        await pilot.press("up", "up", "up")  # the oldest stays
        assert prompt.text == "first"
        await pilot.press("down")  # the cursor is at the end, on the last line: forward at once
        assert prompt.text == "second\nhas two lines"
        await pilot.press("down")
        assert prompt.text == "third"
        await pilot.press("down")
        assert prompt.text == ""
        await pilot.press("up", "enter")
        await settled(app)
        await pilot.pause()
        assert [user.text for user in app.query(UserMessage)][-1] == "third"


@pytest.mark.parametrize("draft", ["a draft", "two\nlines"])
async def test_up_in_a_draft_moves_the_cursor_and_recalls_nothing(settings_for, submit, settled, draft):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "earlier")
        await settled(app)
        app.prompt.load_text(draft)
        app.prompt.move_cursor(app.prompt.document.end)
        await pilot.press("up", "up")
        assert app.prompt.text == draft
        await pilot.press("x")
        assert app.prompt.text != draft and "earlier" not in app.prompt.text


async def test_an_edited_recalled_prompt_is_a_draft(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "one")
        await settled(app)
        await submit(pilot, "two")
        await settled(app)
        await pilot.press("up", "!", "up")
        assert app.prompt.text == "two!"


async def test_recall_offers_a_reopened_conversations_prompts_and_a_new_conversation_none(settings_for, srv, settled, until):
    from llmchat.history import COMPLETE, HistoryStore

    with HistoryStore.open() as store:
        cid = None
        for n in (1, 2):
            writer = store.begin_turn(cid, f"stored question {n}", model="m", api="openai-chat", base_url="")
            cid = writer.conversation_id
            writer.append("answer")
            writer.finish(COMPLETE, stop_reason="stop")
    settings = settings_for(tokens=2)
    settings.conversation_id = cid
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.prompt.earlier, what="the stored prompts")
        await pilot.press("up")
        assert app.prompt.text == "stored question 2"
        await pilot.press("up")
        assert app.prompt.text == "stored question 1"
        await pilot.press("down", "down")
        await app.new_conversation()
        await pilot.press("up")
        assert app.prompt.text == ""


BURSTS = {
    # name: (keys in one burst, as (key, character); the prompt's text after them)
    "ctrl+u after letters": ([("a", "a"), ("b", "b"), ("ctrl+u", "\x15"), ("K", "K")], "K"),
    "ctrl+w after a word": ([("o", "o"), ("n", "n"), ("e", "e"), ("space", " "), ("t", "t"), ("w", "w"), ("ctrl+w", "\x17"), ("x", "x")], "one x"),
    "ctrl+j between letters": ([("a", "a"), ("ctrl+j", "\n"), ("b", "b")], "a\nb"),
    "a zero-width joiner": ([("man", "\U0001f468"), ("zero_width_joiner", "\u200d"), ("girl", "\U0001f467")], "\U0001f468\u200d\U0001f467"),
    "a word joiner": ([("a", "a"), ("word_joiner", "\u2060"), ("b", "b")], "a\u2060b"),
}


@pytest.mark.parametrize("burst", list(BURSTS))
async def test_a_burst_of_keys_is_applied_in_order(settings_for, burst):
    """Keys queued faster than the prompt handles them: a bound key (Ctrl+U) is not run after
    the letters typed behind it, and format characters are text."""
    from textual import events

    keys, expected = BURSTS[burst]
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        for key, character in keys:
            event = events.Key(key, character)
            event.set_sender(app)
            app.post_message(event)
        for _ in range(10):
            await pilot.pause(0.01)
        assert app.prompt.text == expected


@pytest.mark.parametrize("control", ["\u202e", "\u2066"])
async def test_bidirectional_overrides_typed_as_keys_are_not_inserted(settings_for, control):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        from textual import events

        await pilot.press("a")

        event = events.Key("bidi", control)
        event.set_sender(app)
        app.post_message(event)
        await pilot.pause(0.05)
        assert app.prompt.text == "a"


@pytest.mark.parametrize(
    "env, shift",
    [
        ({}, False),
        ({"TERM": "xterm-256color"}, False),
        ({"TERM": "xterm-kitty"}, True),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, True),
        ({"TERM_PROGRAM": "WezTerm"}, True),
        ({"TERM": "xterm-ghostty"}, True),
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, False),
        ({"TERM": "screen-256color", "STY": "1.pts"}, False),
    ],
)
def test_the_hint_names_shift_enter_only_where_the_terminal_tells_it_from_enter(env, shift):
    hint = newline_hint(env)
    assert hint == (HINT_WITH_SHIFT if shift else HINT)
    assert "Alt+Enter" in hint and "Ctrl+J" in hint
    assert ("Shift+Enter" in hint) is shift
