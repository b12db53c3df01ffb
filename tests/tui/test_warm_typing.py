"""The TUI opens the connection while the user types, and Enter sends on it: the server sees
one connection, accepted before the request, carrying it. Never before the user types."""

from __future__ import annotations

from llmchat.tui.app import ChatApp

SIZE = (100, 30)


async def test_typing_opens_the_connection_that_enter_sends_on(settings_for, srv, until, settled):
    app = ChatApp(settings_for(tokens=3))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        await pilot.press("h", "i")
        await until(pilot, lambda: srv.server.connections == 1, what="the warm connection")
        assert srv.requests == []  # opened, nothing sent
        await pilot.press("enter")
        await settled(app)
        assert app.engine.client._warm.handed_over == 1
    assert srv.server.connections == 1
    [request] = srv.requests
    assert request.connection == 1 and request.outcome == "complete"


async def test_nothing_is_opened_before_the_user_types(settings_for, srv, until):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        for _ in range(5):
            await pilot.pause()
        app.prompt.focus()
        assert srv.server.connections == 0
        assert not app.engine.client._warm._ready


async def test_each_message_of_a_conversation_goes_on_a_warm_connection(settings_for, srv, until, settled):
    """The fake server closes every connection after its answer: the next message's
    connection is opened while it is typed."""
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        for n, word in enumerate(["one", "two"], start=1):
            await pilot.press(*word)
            await until(pilot, lambda: srv.server.connections == n, what=f"warm connection {n}")
            await pilot.press("enter")
            await settled(app)
        assert app.engine.client._warm.handed_over == 2
    assert [r.connection for r in srv.requests] == [1, 2]
