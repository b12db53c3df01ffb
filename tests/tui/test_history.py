"""The TUI and the history store: each turn stored as the one-shot face stores it (complete,
cancelled, error, cut short), saved while it streams, a retry stored as a sibling, -c opening a
stored conversation with its figures and continuing it, and nothing stored with history off.
Every test has its own LLMCHAT_HOME (tests/conftest.py), so the store is empty at the start."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any, List

from llmchat.demo.answer import answer_tokens
from llmchat.history import COMPLETE, HistoryError, HistoryStore, default_path
from llmchat.tui.app import ChatApp
from llmchat.tui.session import STREAMING
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets.stored import StoredAnswer

SIZE = (100, 30)


# A message's text is its row's content, then the pieces a streaming answer is saved in.
_TEXT = (
    "content || coalesce((SELECT group_concat(p.content, '') FROM (SELECT content FROM message_parts"
    " WHERE message_id = messages.id AND kind = 'text' ORDER BY id) p), '')"
)


def rows(sql: str = f"SELECT role, {_TEXT}, status, stop_reason, error, superseded FROM messages ORDER BY id") -> List[tuple]:
    path = default_path()
    if not path.exists():
        return []
    db = sqlite3.connect(str(path), timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def seed(turns: int = 2, *, model: str = "m", base_url: str = "", api: str = "openai-chat") -> int:
    """A stored conversation of `turns` finished turns with fixed figures; its ID."""
    with HistoryStore.open() as store:
        cid = None
        for n in range(1, turns + 1):
            writer = store.begin_turn(cid, f"question {n}", model=model, api=api, base_url=base_url)
            cid = writer.conversation_id
            writer.append(f"**answer {n}**\n\n- a point\n- another")
            writer.finish(COMPLETE, stop_reason="stop")
    db = sqlite3.connect(str(default_path()))
    db.execute(
        "UPDATE messages SET ttft = 0.25, tokens_per_second = 40.0, output_tokens = 12, tokens_exact = 1, elapsed = 0.55 WHERE role = 'assistant'"
    )
    db.commit()
    db.close()
    return cid


async def test_a_turn_is_stored_complete_with_its_figures(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=12, tps=60))  # over 0.2 s: long enough for a tok/s figure
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hello store")
        await settled(app)
        await pilot.pause()
    answer = "".join(answer_tokens("hello store", 12))
    assert rows() == [("user", "hello store", "complete", None, None, 0), ("assistant", answer, "complete", "stop", None, 0)]
    [(ttft, tps, tokens, model)] = rows("SELECT ttft, tokens_per_second, output_tokens, model FROM messages WHERE role = 'assistant'")
    assert ttft is not None and tps is not None and tokens == 12 and model == "m"
    assert rows("SELECT title, model, api FROM conversations") == [("hello store", "m", "openai-chat")]


async def test_the_prompt_is_stored_before_the_request_and_the_answer_while_it_streams(settings_for, srv, submit, tap, until, server_saw, settled):
    app = ChatApp(settings_for(tokens=400, tps=25))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        await server_saw(srv, lambda r: len(r) == 1)
        assert rows()[0][:3] == ("user", "long one", "complete")
        # Saved as it grows (half a second behind at most), not only at the end.
        await until(pilot, lambda: len(rows()) == 2 and rows()[1][1], timeout=10, what="a saved fragment")
        turn = app.session.last
        assert turn.state == STREAMING and rows()[1][2] == "streaming"
        assert turn.answer.startswith(rows()[1][1])
        await tap(pilot, "ctrl+c")
        await settled(app)
        await pilot.pause()
        partial = turn.answer
    assert 0 < len(partial) < len("".join(answer_tokens("long one", 400)))
    assert rows()[1] == ("assistant", partial, "cancelled", None, None, 0)


async def test_an_error_keeps_the_partial_text_and_the_error(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=30, error_after=6))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "fail midway")
        await settled(app)
        await pilot.pause()
    role, content, status, _, error, _ = rows()[1]
    assert (content, status) == ("".join(answer_tokens("fail midway", 6)), "error")
    assert "the demo server was told to fail mid-stream" in error


async def test_a_length_stop_is_stored_complete_and_cut_short(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=8, finish="length"))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "too long")
        await settled(app)
    assert rows()[1][2:4] == ("complete", "length")


async def test_quitting_while_streaming_stores_the_answer_cancelled(settings_for, submit, until):
    app = ChatApp(settings_for(tokens=400, tps=25))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "quit midway")
        await until(pilot, lambda: len(app.session.last.parts) >= 3, what="three tokens")
        parts = len(app.session.last.parts)
    stored = rows()[1]
    assert stored[2] == "cancelled"
    assert stored[1].startswith("".join(app.session.last.parts[:parts]))


async def test_a_retry_stores_a_sibling_of_the_failed_answer(settings_for, srv, submit, tap, until, settled, server_saw):
    app = ChatApp(settings_for(tokens=30, error_after=6))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first")
        await settled(app)
        await submit(pilot, "flaky")
        await settled(app)
        before = app.worker
        await tap(pilot, "ctrl+r")
        await until(pilot, lambda: app.worker is not before, what="the retry")
        await settled(app)
    assert [(r[0], r[1][:5], r[5]) for r in rows()] == [
        ("user", "first", 0),
        ("assistant", "".join(answer_tokens("first", 6))[:5], 0),
        ("user", "flaky", 0),
        ("assistant", "".join(answer_tokens("flaky", 6))[:5], 0),
        ("assistant", "".join(answer_tokens("flaky", 6))[:5], 0),  # a second answer to the same prompt
    ]
    with HistoryStore.open() as store:
        [info] = store.list_conversations()
        context = store.context(info.id)
    assert [m.content for m in context if m.role == "user"] == ["first", "flaky"]


async def test_history_off_stores_nothing_and_the_list_key_says_so(settings_for, submit, settled):
    app = ChatApp(replace(settings_for(tokens=5), history=False))
    notes: List[str] = []
    app.notify = lambda message, **kw: notes.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "not kept")
        await settled(app)
        await pilot.press("ctrl+o")
        assert notes == ["History is off (--no-history): no conversations are stored."]
    assert not default_path().exists()


async def test_a_store_failure_is_a_notification_and_the_answer_still_comes(settings_for, submit, settled, monkeypatch):
    def broken(*args: Any, **kw: Any) -> Any:
        raise HistoryError("disk I/O error")

    monkeypatch.setattr(HistoryStore, "begin_turn", broken)
    app = ChatApp(settings_for(tokens=5))
    notes: List[str] = []
    app.notify = lambda message, **kw: notes.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "still answered")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == "done"
    assert notes == ["Not saving this conversation: disk I/O error"]


async def test_continuing_shows_the_conversation_with_figures_and_sends_its_context(settings_for, srv, submit, settled, server_saw):
    settings = settings_for(tokens=5)
    cid = seed(2, base_url=settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [m.text for m in app.query(UserMessage)] == ["question 1", "question 2"]
        answers = list(app.query(StoredAnswer))
        assert [a.metrics_text for a in answers] == ["m · TTFT 250 ms · 40.0 tok/s · 12 output tokens · 0.55 s · stop: stop"] * 2
        assert answers[0].source == "**answer 1**\n\n- a point\n- another"
        await submit(pilot, "question 3")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
    assert srv.requests[0].body["messages"] == [
        {"role": "user", "content": "question 1"},
        {"role": "assistant", "content": "**answer 1**\n\n- a point\n- another"},
        {"role": "user", "content": "question 2"},
        {"role": "assistant", "content": "**answer 2**\n\n- a point\n- another"},
        {"role": "user", "content": "question 3"},
    ]
    assert rows("SELECT conversation_id, content FROM messages WHERE role = 'user' ORDER BY id")[-1] == (cid, "question 3")


async def test_a_stored_answers_reasoning_shows_as_a_folded_thinking_block(settings_for):
    from llmchat.tui.widgets.thinking import ThinkingBlock

    settings = settings_for(tokens=5)
    cid = seed(1, base_url=settings.base_url)
    with HistoryStore.open() as store:
        writer = store.begin_turn(cid, "think first", model="m", api="openai-chat", base_url=settings.base_url)
        writer.reasoning.append("step one\x1b]0;pwned\x07, then step two")
        writer.append("the answer")
        writer.finish(COMPLETE, stop_reason="stop")
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first, last = app.query(StoredAnswer)
        assert not first.query(ThinkingBlock)  # no reasoning, no block
        [block] = last.query(ThinkingBlock)
        assert block.has_class("-folded") and not block.expanded
        assert block.text == "step one\x1b]0;pwned\x07, then step two"
        block.toggle()
        await pilot.pause()
        assert block.expanded and not block.has_class("-folded")
        assert str(block.body.render()) == "step one, then step two"  # sanitised on screen


async def test_stored_endings_show_their_notes(settings_for):
    settings = settings_for(tokens=5)
    cid = seed(1, base_url=settings.base_url)
    with HistoryStore.open() as store:
        writer = store.begin_turn(cid, "broken", model="m", api="openai-chat", base_url=settings.base_url)
        writer.append("half")
        writer.finish("error", error="connection dropped")
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        last = list(app.query(StoredAnswer))[-1]
        assert last.note_text == "error: connection dropped"
        assert last.has_class("-error")
        assert app.session.last.state == "error"  # Ctrl+R asks it again
        assert app.check_action("retry", ()) is True


async def test_a_200_message_conversation_opens_with_only_its_end_mounted(settings_for, srv, submit, settled, server_saw):
    """Only the turns near the view are widgets (the rest come as the view nears them: see
    test_long_conversation.py). The whole conversation is the context either way."""
    settings = settings_for(tokens=5)
    cid = seed(100, base_url=settings.base_url)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        start = time.perf_counter()
        assert await app._show_conversation(cid)
        await pilot.pause()
        took = time.perf_counter() - start
        shown = [m.text for m in app.query(UserMessage)]
        assert 0 < len(shown) < 20 and shown[-1] == "question 100"
        assert len(app.query(StoredAnswer)) == len(shown)
        await submit(pilot, "question 101")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
    print(f"\n200 stored messages shown in {took * 1000:.0f} ms")  # speed: bench_tui's long section
    assert len(srv.requests[0].body["messages"]) == 201


async def test_llmchat_c_opens_the_last_conversation_in_the_tui(settings_for, srv, submit, settled, server_saw, monkeypatch):
    """`llmchat -c` on a terminal with no prompt: the TUI gets the conversation to show, with
    its own settings, and the command line's flags (not the conversation's) to switch from."""
    import sys

    from llmchat import cli
    from llmchat.tui import app as app_module

    base_url = settings_for(tokens=5).base_url
    seed(1, base_url=base_url)
    last = seed(1, base_url=base_url, model="other")
    captured = {}

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(app_module, "run_tui", lambda settings, flags=None, theme=None: captured.update(settings=settings, flags=flags) or 0)
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdin", Terminal())
        patch.setattr(sys, "stdout", Terminal())
        assert cli.main(["-c"]) == 0
    settings, flags = captured["settings"], captured["flags"]
    assert (settings.conversation_id, settings.model, settings.base_url) == (last, "other", base_url)
    assert flags.model is None and flags.api is None
    app = ChatApp(settings, flags=flags)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [m.text for m in app.query(UserMessage)] == ["question 1"]
        await submit(pilot, "more")
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
    assert srv.requests[0].body["model"] == "other"
    assert [m["content"] for m in srv.requests[0].body["messages"]] == ["question 1", "**answer 1**\n\n- a point\n- another", "more"]


async def test_new_conversation_stores_the_next_message_in_a_new_one(settings_for, submit, settled):
    settings = settings_for(tokens=5)
    cid = seed(1, base_url=settings.base_url)
    app = ChatApp(replace(settings, conversation_id=cid))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.new_conversation()
        assert not app.query(StoredAnswer)
        await submit(pilot, "fresh start")
        await settled(app)
    conversations = rows("SELECT id, title FROM conversations ORDER BY id")
    assert conversations == [(cid, "question 1"), (cid + 1, "fresh start")]
