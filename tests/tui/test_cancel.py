"""Cancelling an answer (Esc, Ctrl+C) and what Ctrl+C does when nothing streams."""

from __future__ import annotations

from llmchat.tui.app import ChatApp
from llmchat.tui.session import CANCELLED, STREAMING
from llmchat.tui.widgets import AssistantMessage
from llmchat.tui.widgets.status import SPINNER

SIZE = (100, 30)


def outcome(srv, index):
    return lambda requests: len(requests) > index and requests[index].outcome == "disconnected"


async def test_cancel_before_the_first_token(settings_for, srv, submit, tap, until, server_saw, settled):
    app = ChatApp(settings_for(tokens=20, ttft=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "slow one")
        await server_saw(srv, lambda r: len(r) == 1)
        await until(pilot, lambda: app.status.elapsed is not None, what="the waiting clock")
        figures = app.status.figures
        assert "waiting" in figures and any(frame in figures for frame in SPINNER)
        assert "TTFT –" in figures
        await tap(pilot, "escape")
        [answer] = app.query(AssistantMessage)
        assert answer.state == CANCELLED  # at once, not when the server gives up
        assert answer.note_text == "cancelled before the answer began"
        assert not app.streaming
        assert "cancelled" in app.status.figures
        await server_saw(srv, outcome(srv, 0))
        await settled(app)
        # Nothing was answered: the next request carries only the new question.
        await submit(pilot, "next")
        await server_saw(srv, lambda r: len(r) == 2)
        assert srv.requests[1].body["messages"] == [{"role": "user", "content": "next"}]
        await tap(pilot, "escape")


async def test_cancel_mid_answer_keeps_the_partial_in_context(settings_for, srv, submit, tap, until, server_saw, settled):
    app = ChatApp(settings_for(tokens=200, tps=20))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        turn = app.session.last
        await until(pilot, lambda: len(turn.parts) >= 3, what="three tokens")
        assert turn.state == STREAMING
        app.prompt.load_text("a draft")
        app.prompt.select_all()  # a selection: while streaming, Ctrl+C still cancels
        await tap(pilot, "ctrl+c")
        [answer] = app.query(AssistantMessage)
        assert answer.state == CANCELLED
        assert answer.note_text == "cancelled"
        assert not app.streaming
        assert app.clipboard != "a draft" and app.prompt.text == "a draft"
        await server_saw(srv, outcome(srv, 0))
        await settled(app)
        await pilot.pause()
        partial = turn.answer
        assert 3 <= len(turn.parts) < 200
        assert answer.markdown.source == partial  # what arrived stays on screen
        assert "cancelled" in app.status.figures and "tokens" in app.status.figures
        assert app.prompt.has_focus
        await submit(pilot, "go on")
        await server_saw(srv, lambda r: len(r) == 2)
        assert srv.requests[1].body["messages"] == [
            {"role": "user", "content": "long one"},
            {"role": "assistant", "content": partial},
            {"role": "user", "content": "go on"},
        ]
        await tap(pilot, "escape")
        await server_saw(srv, outcome(srv, 1))


async def test_cancel_before_the_worker_runs_a_step(settings_for, srv, submit, settled):
    """A cancel that lands before the worker's first step: the worker never runs its cleanup,
    so the cancel itself must end the turn."""

    class CancelAtOnce(ChatApp):
        async def _start(self, turn):
            await super()._start(turn)
            self.action_cancel_stream()

    app = CancelAtOnce(settings_for(tokens=50, tps=20))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "quick")
        await settled(app)
        await pilot.pause()
        [answer] = app.query(AssistantMessage)
        assert answer.state == CANCELLED
        assert app.worker.is_cancelled
        assert not app.streaming
        assert srv.requests == []  # nothing was sent
        assert app.check_action("retry", ()) is True  # and the prompt is ready for more


async def test_ctrl_c_idle_explains_then_quits_on_a_second_press(settings_for, manual_clock, tap):
    app = ChatApp(settings_for(), clock=manual_clock)
    notes = []
    app.notify = lambda message, **kw: notes.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await tap(pilot, "ctrl+c")
        assert notes == ["Press Ctrl+Q to quit, or Ctrl+C again within 2 s."]
        manual_clock.now += 2.5  # too late: explains again
        await tap(pilot, "ctrl+c")
        assert len(notes) == 2 and app.return_code is None
        manual_clock.now += 1.9
        await tap(pilot, "ctrl+c")
        await pilot.pause()
        assert len(notes) == 2
        assert app.return_code == 0


async def test_ctrl_q_quits(settings_for):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        assert app.return_code == 0


async def test_ctrl_q_while_streaming_closes_the_connection(settings_for, srv, submit, until, server_saw):
    app = ChatApp(settings_for(tokens=200, tps=20))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        await until(pilot, lambda: app.session.last.parts, what="a token")
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    await server_saw(srv, outcome(srv, 0))


async def test_ctrl_c_copies_a_selection_when_nothing_streams(settings_for, tap):
    app = ChatApp(settings_for())
    notes = []
    app.notify = lambda message, **kw: notes.append(message)
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.load_text("copy me")
        app.prompt.select_all()
        await tap(pilot, "ctrl+c")
        assert app.clipboard == "copy me"
        assert notes == []
        assert app.prompt.text == "copy me"


async def test_escape_does_nothing_when_idle(settings_for, tap):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.load_text("keep")
        await tap(pilot, "escape")
        assert app.prompt.text == "keep"
        assert app.return_code is None
        assert app.status.state == "ready"
