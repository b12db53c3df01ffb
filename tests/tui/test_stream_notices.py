"""What the stream tells the TUI besides the answer: a tool call the model asked for (a note
under the answer: none ran), several choices (a notice), content given as parts, and an
overall --max-time, all against the real fake server."""

from __future__ import annotations

from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import TOOL_ARGUMENTS
from llmchat.tui.app import ChatApp
from llmchat.tui.session import DONE, ERROR
from llmchat.tui.widgets import AssistantMessage

SIZE = (100, 30)


async def answer_to(pilot, prompt: str, submit, settled) -> AssistantMessage:
    """Send `prompt`, wait for the answer to end however it ends, and return its view."""
    await submit(pilot, prompt)
    await settled(pilot.app)
    await pilot.pause()
    [answer] = pilot.app.query(AssistantMessage)
    return answer


async def test_a_tool_call_is_noted_under_the_answer_and_said_not_to_have_run(settings_for, submit, settled):
    app = ChatApp(settings_for(tool="get_weather", tokens=3))
    async with app.run_test(size=SIZE) as pilot:
        answer = await answer_to(pilot, "weather?", submit, settled)
        assert answer.state == DONE
        assert answer.markdown.source == "".join(answer_tokens("weather?", 3))
        assert answer.note_text == (f"the model asked to call a tool, and llmchat runs no tools, so none ran: get_weather({TOOL_ARGUMENTS})")


async def test_several_choices_show_the_first_and_one_notice(settings_for, submit, settled, spy_notices):
    app = ChatApp(settings_for(choices=3, tokens=10))
    async with app.run_test(size=SIZE) as pilot:
        seen = spy_notices(app)
        answer = await answer_to(pilot, "pick one", submit, settled)
        assert answer.markdown.source == "".join(answer_tokens("pick one", 10))
        assert seen == [("the server sent several answers (n > 1); only the first is shown", "warning")]


async def test_content_given_as_parts_is_shown_not_a_crash(settings_for, submit, settled):
    app = ChatApp(settings_for(parts=1, tokens=10))
    async with app.run_test(size=SIZE) as pilot:
        answer = await answer_to(pilot, "parts", submit, settled)
        assert answer.state == DONE
        assert answer.markdown.source == "".join(answer_tokens("parts", 10))


async def test_max_time_ends_a_trickled_answer_and_keeps_the_partial(settings_for, submit, settled):
    settings = settings_for(tokens=40, stall_after=4, trickle=0.05, timeout=5)
    settings.max_time = 1.0
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        answer = await answer_to(pilot, "slow", submit, settled)
        assert answer.state == ERROR
        assert answer.markdown.source == "".join(answer_tokens("slow", 4))
        assert "--max-time" in answer.note_text
