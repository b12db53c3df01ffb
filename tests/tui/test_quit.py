"""Quitting: a draft in the prompt is kept for the stored conversation and put back when it is
opened again; with no stored conversation to keep it with, the app asks first; on exit, the
line that says how to continue (printed by run_tui once the terminal is restored) names the
stored conversation, and there is none when nothing was stored."""

from __future__ import annotations

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.drafts import drafts_dir
from llmchat.tui.screens.conversations import Confirm

SIZE = (100, 30)


async def test_a_draft_is_kept_on_quit_and_put_back_when_the_conversation_is_continued(settings_for, submit, settled, until):
    settings = settings_for(tokens=2)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first question")
        await settled(app)
        cid = app.chat_history.conversation_id
        app.prompt.load_text("half a thought\nand a second line")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.return_code in (0, None)
    [draft] = drafts_dir().iterdir()
    assert draft.name == f"{cid}.txt" and (draft.stat().st_mode & 0o777) == 0o600
    assert app.exit_hint == f"Conversation {cid} is saved: `llmchat -c` continues it (with the draft you left in the prompt)."

    again = settings_for(tokens=2)
    again.conversation_id = cid
    app = ChatApp(again)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.prompt.text, what="the draft")
        assert app.prompt.text == "half a thought\nand a second line"
        assert list(drafts_dir().iterdir()) == []  # in the prompt now, not twice


@pytest.mark.parametrize("why", ["nothing sent yet", "history off"])
async def test_a_draft_that_cannot_be_kept_asks_before_quitting(settings_for, submit, settled, until, why):
    settings = settings_for(tokens=2)
    settings.history = why != "history off"
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        if why == "history off":
            await submit(pilot, "sent but not stored")
            await settled(app)
        app.prompt.load_text("unsent words")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
        assert "lose the draft" in app.screen.question
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, Confirm), what="the question to go")
        assert app.is_running and app.prompt.text == "unsent words"
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert not drafts_dir().exists() or list(drafts_dir().iterdir()) == []
    assert app.exit_hint is None


@pytest.mark.parametrize("prompt", ["", "   \n", "recalled"])
async def test_no_draft_no_question(settings_for, submit, settled, until, prompt):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        if prompt == "recalled":
            await submit(pilot, "recalled")
            await settled(app)
            await pilot.press("up")  # an unedited recall is no draft
            assert app.prompt.text == "recalled"
        else:
            app.prompt.load_text(prompt)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert not drafts_dir().exists() or list(drafts_dir().iterdir()) == []


async def test_the_exit_line_names_a_conversation_that_is_not_the_latest(settings_for, submit, settled, until):
    from llmchat.history import HistoryStore

    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "mine")
        await settled(app)
        cid = app.chat_history.conversation_id
        with HistoryStore.open() as store:  # another llmchat, meanwhile, sends in another one
            writer = store.begin_turn(None, "elsewhere", model="m", api="openai-chat", base_url="")
            writer.finish("complete", stop_reason="stop")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.exit_hint == f"Conversation {cid} is saved: `llmchat --conversation {cid}` continues it."


async def test_no_exit_line_when_nothing_was_stored(settings_for, until):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.exit_hint is None


async def test_chips_waiting_on_quit_are_kept_with_the_draft_and_taken_again(settings_for, submit, settled, until, tmp_path, monkeypatch):
    """Quitting with chips above the prompt used to lose them without a word (the text was
    kept): they are kept with the draft, the exit line says so, and reopening takes the files
    again (a relative path from the folder it was typed in)."""
    from tests.attachment_samples import png
    from tests.tui.test_tui_attachments import attach, chips

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.md").write_text("remember the milk\n")
    (work / "shot.png").write_bytes(png(8, 6))
    monkeypatch.chdir(work)
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first question")
        await settled(app)
        cid = app.chat_history.conversation_id
        await attach(pilot, app, "notes.md", "shot.png")
        app.prompt.load_text("and these?")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.exit_hint == f"Conversation {cid} is saved: `llmchat -c` continues it (with the draft and 2 attachments you left in the prompt)."
    kept = drafts_dir() / f"{cid}.attach.json"
    assert (kept.stat().st_mode & 0o777) == 0o600

    monkeypatch.chdir(tmp_path)  # opened from elsewhere: the relative paths still name the files
    again = settings_for(tokens=2)
    again.conversation_id = cid
    app = ChatApp(again)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(chips(app)) == 2, what="the chips taken again", timeout=30)
        assert app.prompt.text == "and these?"
        assert [a.name for a in app.attachment_bar.attachments] == [str(work / "notes.md"), str(work / "shot.png")]
        assert list(drafts_dir().iterdir()) == []


async def test_chips_alone_that_cannot_be_kept_ask_before_quitting(settings_for, until, tmp_path, monkeypatch):
    from tests.attachment_samples import png
    from tests.tui.test_tui_attachments import attach

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shot.png").write_bytes(png(8, 6))
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
        assert (
            app.screen.question == "Quit and lose 1 attachment waiting to be sent? It cannot be kept: nothing has been sent in this conversation yet."
        )
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="the app to quit")


async def test_a_message_handled_while_the_app_closes_raises_nothing(settings_for):
    """Chips left at quit: the attachment bar is emptied as the app closes, and its Changed
    message can reach the app after its screens are gone; refreshing the key bar then raised
    ScreenStackError (seen once in a full run of the test above), a traceback at exit."""
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        stack = app._screen_stack  # (private: emptied here to stand for the app taking its screens down)
        screens = list(stack)
        stack.clear()
        try:
            app.refresh_bindings()
        finally:
            stack.extend(screens)
