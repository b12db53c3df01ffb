"""Streaming an answer: the whole text arrives in the answer's Markdown, the status bar shows the
figures and keeps them, the conversation goes back to the model, settings reach the request."""

from __future__ import annotations

from llmchat.config import Settings
from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import Behaviour
from llmchat.tui.app import ChatApp
from llmchat.tui.session import STREAMING, THINKING
from llmchat.tui.widgets import AssistantMessage, UserMessage
from llmchat.tui.widgets.thinking import ThinkingBlock

SIZE = (100, 30)


async def test_answer_streams_in_full(settings_for, settled, submit):
    app = ChatApp(settings_for(tokens=120, tps=600))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "Tell me about streams")
        await settled(app)
        await pilot.pause()
        [user] = app.query(UserMessage)
        [answer] = app.query(AssistantMessage)
        assert user.text == "Tell me about streams"
        assert answer.markdown.source == "".join(answer_tokens("Tell me about streams", 120))
        assert answer.state == "done"
        assert answer.note_text == ""
        assert app.prompt.text == ""
        assert not app.streaming


async def test_status_bar_figures_after_the_answer(settings_for, settled, until, srv, submit):
    app = ChatApp(settings_for(tokens=60, tps=80, ttft=0.1))
    async with app.run_test(size=SIZE) as pilot:
        status = app.status
        assert status.figures.startswith("m │ ready │ TTFT – │ tok/s – │ tokens – │ elapsed –")
        await submit(pilot, "hi")
        await until(pilot, lambda: status.tokens_per_second is not None and status.state == STREAMING, what="a live tok/s")
        assert "streaming" in status.figures
        assert "tok/s ~" in status.figures  # an estimate until the server's usage arrives
        await settled(app)
        await pilot.pause()
        figures = status.figures
        assert "done" in figures
        assert "tokens 60" in figures and "~" not in figures  # exact: the server reported usage
        assert 0.1 <= status.ttft < 2.0
        assert f"TTFT {status.ttft:.2f} s" in figures
        assert f"tok/s {status.tokens_per_second:.1f}" in figures
        assert f"elapsed {status.elapsed:.1f} s" in figures
        await pilot.pause(0.3)  # several timer periods: the figures stay, nothing resets
        assert status.figures == figures


async def test_estimate_stays_marked_without_usage(settings_for, settled, submit):
    app = ChatApp(settings_for(tokens=30, tps=150, usage="false"))  # 0.2 s: long enough for a tok/s figure
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        figures = app.status.figures
        assert "done" in figures and "tok/s ~" in figures and "tokens ~" in figures


async def test_reasoning_is_shown_apart_and_not_sent_back(settings_for, settled, srv, submit):
    app = ChatApp(settings_for(tokens=20, reasoning=8, tps=400))
    states = []
    original = app._enter

    def record(turn, state):
        states.append(state)
        original(turn, state)

    app._enter = record
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "think first")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert states == [THINKING, STREAMING]
        [thinking] = answer.query(ThinkingBlock)
        assert thinking.text == "".join(answer_tokens("", 8))
        assert answer.markdown.source == "".join(answer_tokens("think first", 20))
        await submit(pilot, "and again")
        await settled(app)
        messages = srv.requests[-1].body["messages"]
        assert messages[1] == {"role": "assistant", "content": "".join(answer_tokens("think first", 20))}


async def test_the_whole_conversation_goes_back(settings_for, settled, srv, submit):
    app = ChatApp(settings_for(tokens=15))
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("one", "two", "three"):
            await submit(pilot, prompt)
            await settled(app)
        await pilot.pause()
        assert len(app.query(AssistantMessage)) == 3
        assert srv.requests[-1].body["messages"] == [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "".join(answer_tokens("one", 15))},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "".join(answer_tokens("two", 15))},
            {"role": "user", "content": "three"},
        ]


async def test_settings_reach_the_request(settings_for, settled, srv, submit):
    settings = settings_for(tokens=5, model="my-model", system="Be brief.", temperature=0.3, max_tokens=77)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        assert app.status.figures.startswith("my-model │")
        await submit(pilot, "hi")
        await settled(app)
        body = srv.requests[-1].body
        assert body["model"] == "my-model"
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["temperature"] == 0.3
        assert body["max_tokens"] == 77


async def test_cut_short_by_the_token_limit_says_so(settings_for, settled, submit):
    app = ChatApp(settings_for(tokens=10, finish="length"))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert "output token limit" in answer.note_text


async def test_control_sequences_in_the_answer_are_not_shown(settings_for, settled, srv, submit):
    text = "safe \x1b]52;c;ZXZpbA==\x07text \x1b[2Jhere"
    app = ChatApp(settings_for(text=text))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.markdown.source == "safe text here"
        await submit(pilot, "next")
        await settled(app)
        # The model's own words, unchanged, are what goes back as context.
        assert srv.requests[-1].body["messages"][1]["content"] == text


async def test_demo_mode_starts_its_own_server(submit):
    settings = Settings(api="demo", model="demo", base_url="", demo=True, demo_reason="no API key")
    app = ChatApp(settings, demo_behaviour=Behaviour(tokens=25))
    async with app.run_test(size=SIZE) as pilot:
        assert app.status.figures.startswith("demo (offline demo model) │ ready")
        await pilot.pause()
        await submit(pilot, "hello demo")
        await app.worker.wait()
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.markdown.source == "".join(answer_tokens("hello demo", 25))
        assert "done" in app.status.figures
