"""Failures land in the transcript in the server's own words, partial text kept, with a retry;
what the user typed is never lost."""

from __future__ import annotations

from llmchat.demo.answer import answer_tokens
from llmchat.tui.app import ChatApp
from llmchat.tui.session import DONE, ERROR
from llmchat.tui.widgets import AssistantMessage, UserMessage

SIZE = (100, 30)


async def test_http_error_is_shown_and_the_prompt_comes_back(settings_for, srv, submit, settled):
    app = ChatApp(settings_for(status=401))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "my carefully typed question")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == ERROR
        assert answer.note_text == "Error: 401 Unauthorized: Incorrect API key provided (server_error) · Ctrl+R to retry"
        assert answer.markdown.source == ""
        assert "error" in app.status.figures
        assert app.prompt.text == "my carefully typed question"
        assert len(srv.requests) == 1  # 401 is not retried by the client


async def test_retry_after_an_http_error_answers(settings_for, srv, submit, settled, tap, until):
    app = ChatApp(settings_for(status=401, fail_first=1, tokens=12))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "try me")
        await settled(app)
        await pilot.pause()
        assert app.prompt.text == "try me"
        first = app.worker
        await tap(pilot, "ctrl+r")
        await until(pilot, lambda: app.worker is not first, what="the retry")
        await settled(app)
        await pilot.pause()
        failed, retried = app.query(AssistantMessage)
        assert failed.state == ERROR and retried.state == DONE
        assert retried.markdown.source == "".join(answer_tokens("try me", 12))
        assert app.prompt.text == ""  # resent: no stale copy left in the prompt
        assert len(app.query(UserMessage)) == 1
        assert [r.body["messages"] for r in srv.requests] == [[{"role": "user", "content": "try me"}]] * 2


async def test_mid_stream_error_keeps_the_partial_and_retry_resends(settings_for, srv, submit, settled, tap, until, server_saw):
    app = ChatApp(settings_for(tokens=30, error_after=6))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "fail midway")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        partial = "".join(answer_tokens("fail midway", 6))
        assert answer.state == ERROR
        assert answer.markdown.source == partial
        assert "the demo server was told to fail mid-stream" in answer.note_text
        assert app.prompt.text == ""  # the question was answered in part: nothing to give back
        first = app.worker
        await tap(pilot, "ctrl+r")
        await until(pilot, lambda: app.worker is not first, what="the retry")
        await server_saw(srv, lambda r: len(r) == 2)
        # The retry replaces the failed turn: the same question, without the broken answer.
        assert srv.requests[1].body["messages"] == [{"role": "user", "content": "fail midway"}]
        await settled(app)


async def test_partial_answer_with_an_error_stays_in_context(settings_for, srv, submit, settled, server_saw):
    app = ChatApp(settings_for(tokens=30, error_after=6))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first")
        await settled(app)
        await submit(pilot, "second")
        await server_saw(srv, lambda r: len(r) == 2)
        assert srv.requests[1].body["messages"][:2] == [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "".join(answer_tokens("first", 6))},
        ]
        await settled(app)


async def test_dropped_connection(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=40, drop_after=10))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "drop it")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == ERROR
        assert answer.markdown.source == "".join(answer_tokens("drop it", 10))
        assert "dropped" in answer.note_text
        assert "Ctrl+R to retry" in answer.note_text


async def test_timeout(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=40, stall_after=4, timeout=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "stall")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == ERROR
        assert answer.markdown.source == "".join(answer_tokens("stall", 4))
        assert "timed out: no data from 127.0.0.1" in answer.note_text
        assert "for 0.5 s" in answer.note_text


async def test_cannot_connect(submit, settled):
    import socket

    from llmchat.config import Settings

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(api="openai-chat", model="m", base_url=f"http://127.0.0.1:{port}/v1")
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        app.engine.client.max_retries = 0  # connect errors are retried with backoff; not here
        await submit(pilot, "anyone there?")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == ERROR
        assert f"cannot connect to 127.0.0.1:{port}" in answer.note_text
        assert app.prompt.text == "anyone there?"


async def test_typed_text_survives_an_error_in_an_earlier_answer(settings_for, submit, settled):
    """Typing the next question while an answer fails: the draft is not replaced."""
    app = ChatApp(settings_for(status=401))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "first")
        app.prompt.load_text("my draft")
        await settled(app)
        await pilot.pause()
        assert app.prompt.text == "my draft"


async def test_enter_while_streaming_keeps_the_text(settings_for, submit, tap, until):
    app = ChatApp(settings_for(tokens=200, tps=20))
    notes = []
    app.notify = lambda message, **kw: notes.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        app.prompt.load_text("next question")
        await tap(pilot, "enter", "\r")
        await until(pilot, lambda: notes, what="the notice")
        assert notes == ["An answer is still streaming: press Esc to cancel it first."]
        assert app.prompt.text == "next question"
        assert len(app.query(UserMessage)) == 1
        await tap(pilot, "escape")
