"""Pasted text of many lines shows in the transcript as one collapsed line with its line count;
Enter or a click shows it in full and hides it again. What is sent is always the whole text."""

from __future__ import annotations

import pytest
from textual import events

from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import UserMessage
from llmchat.tui.widgets.pasted import PastedUserMessage

SIZE = (100, 30)


def lines(n: int, eol: str = "\n") -> str:
    return eol.join(f"log line {i}" for i in range(1, n + 1))


def shown(widget) -> str:
    return str(widget.render())


async def paste(pilot, text: str) -> None:
    """A bracketed paste, as the driver delivers it: to the app, which forwards it."""
    event = events.Paste(text)
    event.set_sender(pilot.app)
    pilot.app.post_message(event)
    await pilot.pause()


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("count", [6, 40, 400])
async def test_a_long_paste_is_collapsed_with_its_line_count_and_expands(settings_for, srv, submit, settled, until, server_saw, count, eol):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Why?", "ctrl+j")
        await paste(pilot, lines(count, eol))
        await pilot.press("enter")
        await until(pilot, lambda: app.query(UserMessage), what="the message")
        await settled(app)
        [message] = app.query(UserMessage)
        pasted = lines(count)
        assert isinstance(message, PastedUserMessage)
        assert message.text == f"Why?\n{pasted}"
        await server_saw(srv, lambda r: len(r) == 1)
        assert srv.requests[0].body["messages"][-1]["content"] == f"Why?\n{pasted}"
        text = shown(message)
        assert text == f"Why?\n▸ pasted text, {count} lines (Enter or click shows it)"
        assert message.region.height <= 3  # two lines and no more (and its margin)
        await pilot.click(message)
        assert f"log line {count}" in shown(message) and "hides it" in shown(message)
        message.focus()
        await pilot.press("enter")
        assert shown(message) == text


@pytest.mark.parametrize("case", ["short paste", "typed lines", "paste edited away"])
async def test_nothing_is_collapsed_unless_a_long_paste_is_sent_as_pasted(settings_for, submit, settled, until, case):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        if case == "short paste":
            await paste(pilot, lines(5))
        elif case == "typed lines":
            app.prompt.load_text(lines(30))
        else:
            await paste(pilot, lines(30))
            app.prompt.load_text(lines(30).replace("line 7", "row 7"))
        await pilot.press("enter")
        await until(pilot, lambda: app.query(UserMessage), what="the message")
        await settled(app)
        [message] = app.query(UserMessage)
        assert type(message) is UserMessage


async def test_a_paste_sent_once_is_not_collapsed_in_a_later_prompt(settings_for, settled, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, lines(10))
        await pilot.press("enter")
        await until(pilot, lambda: len(app.query(UserMessage)) == 1, what="the first message")
        await settled(app)
        app.prompt.load_text(lines(10))  # the same text, typed (say) rather than pasted
        await pilot.press("enter")
        await until(pilot, lambda: len(app.query(UserMessage)) == 2, what="the second message")
        await settled(app)
        first, second = app.query(UserMessage)
        assert isinstance(first, PastedUserMessage) and type(second) is UserMessage
