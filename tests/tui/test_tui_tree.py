"""The TUI and the conversation's tree: `‹ 2/3 ›` on messages with siblings, selecting a message
(Alt+Up/Down, a click), stepping between siblings ([ ], Left/Right, the arrows), editing a prompt
(a new branch), regenerating an answer (a sibling; Ctrl+R on the last one), forking, and the
context sent being exactly the path shown. Every test has its own store (tests/conftest.py)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any, List, Optional

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryStore, default_path
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets.siblings import SiblingSwitcher
from llmchat.tui.widgets.stored import StoredAnswer

SIZE = (100, 30)


def seed(store: HistoryStore, prompts: List[str], cid: Optional[int] = None, base_url: str = "") -> List[int]:
    """Turns after the current leaf, answered "answer to <prompt>"; the IDs of the answers."""
    ids = []
    for prompt in prompts:
        writer = store.begin_turn(cid, prompt, model="m", api="openai-chat", base_url=base_url)
        cid = writer.conversation_id
        writer.append(f"answer to {prompt}")
        writer.finish(COMPLETE, stop_reason="stop")
        ids.append(writer.message_id)
    return ids


def regenerate(store: HistoryStore, answer_id: int, text: str) -> int:
    writer = store.regenerate(answer_id, model="m", api="openai-chat")
    writer.append(text)
    writer.finish(COMPLETE, stop_reason="stop")
    return writer.message_id


def three_answers(base_url: str) -> int:
    """question 1 with three answers (the third current), then question 2 after it."""
    with HistoryStore.open() as store:
        [first] = seed(store, ["question 1"], base_url=base_url)
        cid = store.message(first).conversation_id
        regenerate(store, first, "second answer to question 1")
        regenerate(store, first, "third answer to question 1")
        seed(store, ["question 2"], cid, base_url=base_url)
    return cid


def shown(app: ChatApp) -> List[str]:
    """The transcript's messages, in order, as text (`‹ i/n ›` marks included)."""
    out = []
    for widget in app.transcript.query("UserMessage, StoredAnswer, AssistantMessage, SiblingSwitcher"):
        if isinstance(widget, UserMessage):
            out.append(widget.text)
        elif isinstance(widget, StoredAnswer):
            out.append(widget.source)
        elif isinstance(widget, AssistantMessage):
            out.append(widget.markdown.source)
        elif isinstance(widget, SiblingSwitcher):
            out.append(f"{widget.index}/{widget.count}")
    return out


def chats(requests: List[Any]) -> List[Any]:
    return [r for r in requests if isinstance(r.body, dict) and "messages" in r.body]


def sent(request: Any) -> List[str]:
    return [m["content"] for m in request.body["messages"]]


async def test_a_reopened_conversation_marks_siblings_and_steps_between_them(settings_for, srv, submit, settled, server_saw, until):
    settings = settings_for(tokens=5)
    cid = three_answers(settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        assert shown(app) == ["question 1", "third answer to question 1", "3/3", "question 2", "answer to question 2"]
        for _ in range(3):
            await pilot.press("alt+up")  # the last answer, its prompt, the first answer
        assert app._selected == (0, "answer")
        await until(pilot, lambda: app.transcript.query(".-selected"), what="the highlight")
        assert "Message 2 of 4 selected · r regenerates" in str(app.query_one("#mode").render())
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "2/3" in shown(app), what="the second answer")
        # The transcript follows the chosen branch: the second answer has nothing after it.
        assert shown(app) == ["question 1", "second answer to question 1", "2/3"]
        assert app._selected == (0, "answer")
        await pilot.press("left")
        await until(pilot, lambda: "1/3" in shown(app), what="the first answer")
        await pilot.press("right", "right")
        await until(pilot, lambda: "3/3" in shown(app), what="the third answer again")
        # Stepping back returns to the branch last chosen below it.
        assert shown(app) == ["question 1", "third answer to question 1", "3/3", "question 2", "answer to question 2"]
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "2/3" in shown(app), what="the second answer")
        await pilot.press("escape")
        assert app._selected is None and not app.transcript.query(".-selected")
        await submit(pilot, "question 3")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
    # The context is exactly the path shown.
    assert sent(srv.requests[0]) == ["question 1", "second answer to question 1", "question 3"]


async def test_clicking_the_arrows_steps_and_clicking_a_message_selects_it(settings_for, until):
    settings = settings_for(tokens=5)
    cid = three_answers(settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.transcript.query(SiblingSwitcher), what="the arrows")
        await until(pilot, lambda: app.transcript.query_one(SiblingSwitcher).region.width > 0, what="the arrows laid out")
        switcher = app.transcript.query_one(SiblingSwitcher)
        await pilot.click(switcher, offset=(1, 0))  # the left arrow
        await until(pilot, lambda: "2/3" in shown(app), what="the second answer")
        await until(pilot, lambda: app.transcript.query_one(SiblingSwitcher).region.width > 0, what="the new arrows laid out")
        await pilot.pause()
        switcher = app.transcript.query_one(SiblingSwitcher)
        await pilot.click(switcher, offset=(switcher.size.width - 2, 0))  # the right arrow
        await until(pilot, lambda: "3/3" in shown(app), what="the third answer")
        await until(pilot, lambda: app.transcript.query(UserMessage).last().region.width > 0, what="the prompt laid out")
        await pilot.pause()
        prompt = app.transcript.query(UserMessage).last()
        await pilot.click(prompt)
        await until(pilot, lambda: app._selected == (1, "prompt"), what="the click's selection")
        assert prompt.has_class("-selected")


async def test_editing_a_prompt_sends_a_new_branch_from_there(settings_for, srv, submit, settled, server_saw, until):
    settings = settings_for(tokens=5)
    with HistoryStore.open() as store:
        seed(store, ["question 1", "question 2"], base_url=settings.base_url)
        cid = store.most_recent().id
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        app.prompt.load_text("a draft")
        await pilot.press("alt+up", "alt+up")
        assert app._selected == (1, "prompt")
        await pilot.press("e")
        assert app.prompt.text == "question 2"
        assert str(app.query_one("#mode").render()) == "Editing message 3 · Enter sends it as a new branch · Esc to cancel"
        await pilot.press("escape")  # the edit is dropped: the draft comes back
        assert app.prompt.text == "a draft" and not app.query_one("#mode").has_class("-on")
        await pilot.press("alt+up", "alt+up", "enter")
        assert app.prompt.text == "question 2"
        await submit(pilot, "question 2, asked better")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        await until(pilot, lambda: "2/2" in shown(app), what="the new branch, as stored")
        edited = "".join(answer_tokens("question 2, asked better", 5))
        assert shown(app) == ["question 1", "answer to question 1", "question 2, asked better", "2/2", edited]
        assert not app.query_one("#mode").has_class("-on")
        await submit(pilot, "question 3")
        await server_saw(srv, lambda r: len(r) == 2)
        await settled(app)
    assert sent(srv.requests[0]) == ["question 1", "answer to question 1", "question 2, asked better"]
    assert sent(srv.requests[1]) == ["question 1", "answer to question 1", "question 2, asked better", edited, "question 3"]
    with HistoryStore.open() as store:
        assert [m.content for m in store.path_to(cid) if m.role == "user"] == ["question 1", "question 2, asked better", "question 3"]
        prompts = [m for m in store.load(cid, branches=True).messages if m.role == "user"]
        assert [p.content for p in prompts] == ["question 1", "question 2", "question 2, asked better", "question 3"]


async def test_regenerating_an_answer_makes_a_sibling_and_stepping_back_changes_the_context(settings_for, srv, submit, settled, server_saw, until):
    settings = settings_for(tokens=5)
    with HistoryStore.open() as store:
        seed(store, ["question 1", "question 2"], base_url=settings.base_url)
        cid = store.most_recent().id
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        await pilot.press("alt+up", "alt+up", "alt+up")
        assert app._selected == (0, "answer")
        before = app.worker
        await pilot.press("r")
        await until(pilot, lambda: app.worker is not before, what="the regeneration")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        again = "".join(answer_tokens("question 1", 5))
        await until(pilot, lambda: "2/2" in shown(app), what="the sibling, as stored")
        # The new answer has nothing after it yet: question 2 was asked after the other one.
        assert shown(app) == ["question 1", again, "2/2"]
        await submit(pilot, "question 3")
        await server_saw(srv, lambda r: len(r) == 2)
        await settled(app)
        await pilot.press("alt+up", "alt+up", "alt+up", "left_square_bracket")
        await until(pilot, lambda: "1/2" in shown(app), what="the first answer")
        assert shown(app) == ["question 1", "answer to question 1", "1/2", "question 2", "answer to question 2"]
        await pilot.press("escape")
        await submit(pilot, "question 4")
        await server_saw(srv, lambda r: len(r) == 3)
        await settled(app)
    assert sent(srv.requests[0]) == ["question 1"]
    assert sent(srv.requests[1]) == ["question 1", again, "question 3"]
    assert sent(srv.requests[2]) == ["question 1", "answer to question 1", "question 2", "answer to question 2", "question 4"]


async def test_ctrl_r_on_the_last_answer_stores_a_sibling_and_shows_2_of_2(settings_for, srv, submit, settled, until):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        before = app.worker
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.worker is not before, what="the retry")
        await settled(app)
        await until(pilot, lambda: app.transcript.query(SiblingSwitcher), what="the mark")
        assert [(s.index, s.count) for s in app.transcript.query(SiblingSwitcher)] == [(2, 2)]
        cid = app.chat_history.conversation_id
    with HistoryStore.open() as store:
        messages = store.load(cid, branches=True).messages
    assert [m.role for m in messages] == ["user", "assistant", "assistant"]  # one prompt, two answers


async def test_fork_opens_a_new_conversation_with_the_path_up_to_the_selection(settings_for, until, spy_notices):
    settings = settings_for(tokens=5)
    with HistoryStore.open() as store:
        seed(store, ["question 1", "question 2"], base_url=settings.base_url)
        cid = store.most_recent().id
    app = ChatApp(replace(settings, conversation_id=cid))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        await pilot.press("alt+up", "alt+up", "alt+up")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Fork this conversation here" in titles
        assert "Compare with another answer…" in titles
        await app.fork_here()
        await until(pilot, lambda: app.chat_history.conversation_id != cid, what="the fork")
        assert shown(app) == ["question 1", "answer to question 1"]
        assert any("into conversation" in message for message, _ in notices)
    with HistoryStore.open() as store:
        assert len(store.list_conversations()) == 2
        assert len(store.load(cid).messages) == 4  # the original is untouched


async def test_without_history_the_tree_features_say_so_and_ctrl_r_still_retries(settings_for, submit, settled, until, spy_notices):
    app = ChatApp(replace(settings_for(tokens=5), history=False))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.press("alt+up")
        assert notices == [("Selecting a message needs the history, and it is off (--no-history).", "warning")]
        assert app._selected is None
        await app.fork_here()
        assert notices[-1] == ("Forking needs the history, and it is off (--no-history).", "warning")
        before = app.worker
        await pilot.press("ctrl+r")  # in memory: the old answer dimmed, the new one below
        await until(pilot, lambda: app.worker is not before, what="the retry")
        await settled(app)
        old, new = app.query(AssistantMessage)
        assert old.has_class("-superseded") and not new.has_class("-superseded")


async def test_the_tree_keys_are_in_the_keys_panel(settings_for, until):
    settings = settings_for(tokens=5)
    with HistoryStore.open() as store:
        seed(store, ["question 1"], base_url=settings.base_url)
        cid = store.most_recent().id
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")

        def described() -> dict:
            return {key: active.binding.description for key, active in app.screen.active_bindings.items()}

        keys = described()
        assert keys["alt+up"] == "Select the message above" and keys["alt+down"] == "Select the message below"
        assert "left_square_bracket" not in keys and "e" not in keys  # the prompt's keys until a message is selected
        await pilot.press("alt+up")
        keys = described()
        assert keys["left_square_bracket"] == "Previous version of the message (‹)"
        assert keys["right_square_bracket"] == "Next version of the message (›)"
        assert keys["r"] == "Regenerate the selected answer"
        assert keys["e"] == "Edit the selected prompt and resend it"
        assert keys["escape"] == "Leave the selection or the edit"
        app.action_show_help_panel()
        await until(pilot, lambda: app.screen.query("HelpPanel"), what="the keys panel")
        await pilot.pause()
        from textual.widgets._key_panel import BindingsTable

        table = str(app.screen.query_one(BindingsTable).render_bindings_table().columns[1]._cells)
        assert "Regenerate the selected answer" in table and "Select the message above" in table


def test_snapshot_of_a_transcript_with_siblings_and_a_selection(snap_compare, settings_for, monkeypatch):
    """‹ 3/3 › under the first prompt's answer and ‹ 2/2 › under an edited prompt, the first
    answer selected (highlighted, the line above the prompt says so)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        settings = settings_for(tokens=5)
        clock = iter(1_700_000_000.0 + 60 * i for i in range(100))
        with HistoryStore.open(now=lambda: next(clock)) as store:
            [first] = seed(store, ["Why is the sky blue?"], base_url=settings.base_url)
            cid = store.message(first).conversation_id
            regenerate(store, first, "Sunlight scatters off air molecules; blue scatters most.")
            regenerate(store, first, "**Rayleigh scattering**: shorter wavelengths scatter more.")
            [asked] = seed(store, ["And at sunset?"], cid, base_url=settings.base_url)
            writer = store.begin_edit(store.message(asked).parent_id or 0, "And why is the sunset red?", model="m", api="openai-chat")
            writer.append("The light crosses more air, so the blue is scattered away first.")
            writer.finish(COMPLETE, stop_reason="stop")
        db = sqlite3.connect(str(default_path()))
        db.execute(
            "UPDATE messages SET ttft = 0.2, tokens_per_second = 50.0, output_tokens = 8, tokens_exact = 1, elapsed = 0.36 WHERE role = 'assistant'"
        )
        db.commit()
        db.close()
        app = ChatApp(replace(settings, conversation_id=cid), status_interval=None)

        async def run_before(pilot) -> None:
            app.prompt.cursor_blink = False
            await pilot.pause()
            await pilot.press("alt+up", "alt+up", "alt+up")
            await pilot.pause()

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_regenerate_with_another_model_from_the_palette(settings_for, srv, settled, server_saw, until):
    from test_palette import choose, palette_open, run_command

    settings = settings_for(tokens=5)
    with HistoryStore.open() as store:
        seed(store, ["question 1", "question 2"], base_url=settings.base_url)
        cid = store.most_recent().id
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        await pilot.press("alt+up", "alt+up", "alt+up")  # the first answer
        await run_command(pilot, until, "regenerate with model", "Regenerate with model…")
        await palette_open(pilot, until)
        await choose(pilot, until, "other-model", "Use model other-model")
        await server_saw(srv, lambda r: len(chats(r)) == 1)  # (the picker asked for the model list too)
        await until(pilot, lambda: app.worker is not None, what="the regeneration")
        await settled(app)
        await until(pilot, lambda: "2/2" in shown(app), what="the sibling")
        assert shown(app)[:1] == ["question 1"] and len(shown(app)) == 3  # the new branch ends at the new answer
    [request] = chats(srv.requests)
    assert request.body["model"] == "other-model"
    assert sent(request) == ["question 1"]
    with HistoryStore.open() as store:
        answers = [m for m in store.load(cid, branches=True).messages if m.role == "assistant"]
        assert [m.model for m in answers] == ["m", "m", "other-model"]


async def test_the_palette_hands_two_sibling_answers_to_compare_answers(settings_for, until):
    """The compare screen is another engineer's: the app calls its `compare_answers(a, b)`."""
    from test_palette import choose, palette_open, run_command

    compared: List[tuple] = []

    class Comparing(ChatApp):
        def compare_answers(self, a_id: int, b_id: int) -> None:
            compared.append((a_id, b_id))

    settings = settings_for(tokens=5)
    cid = three_answers(settings.base_url)
    with HistoryStore.open() as store:
        first, second, third = [m.id for m in store.load(cid, branches=True).messages if m.role == "assistant"][:3]
    app = Comparing(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the conversation")
        await pilot.press("alt+up", "alt+up", "alt+up")  # the third answer to question 1
        await run_command(pilot, until, "compare with another", "Compare with another answer…")
        await palette_open(pilot, until)
        await choose(pilot, until, "version 1", "Version 1 of 3 · m")
        await until(pilot, lambda: compared, what="the comparison")
    assert compared == [(third, first)]
