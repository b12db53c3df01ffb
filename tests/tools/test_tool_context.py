"""The engine's in-memory context of a turn that called tools (engine.turns.context): each
step's text with its calls, then their results, then the next step's text."""

from __future__ import annotations

from llmchat.conversation import Message, ToolResult
from llmchat.engine.turns import DENIED, TOOL_DONE, Step, ToolActivity, Turn, context
from llmchat.stream.events import ToolCall
from llmchat.stream.metrics import Metrics
from llmchat.tools import ToolResult as CallResult


def _turn_with_tools() -> Turn:
    turn = Turn("add 1 and 2, echo hi", Metrics())
    turn.parts[:] = ["Let me ", "check."]
    first = turn.steps[0]
    added = ToolActivity(ToolCall("call_0_0", "add", '{"a": 1, "b": 2}'))
    added.status, added.result = TOOL_DONE, CallResult("3")
    denied = ToolActivity(ToolCall("call_0_1", "echo", '{"text": "hi"}'))
    denied.status = DENIED
    first.activities[:] = [added, denied]
    turn.steps.append(Step(1, len(turn.parts), Metrics()))
    turn.parts.append("It is 3.")
    return turn


def test_a_turn_with_tool_calls_is_sent_back_step_by_step():
    turn = _turn_with_tools()
    next_turn = Turn("and now?", Metrics())
    messages = context([turn, next_turn])
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1] == Message("assistant", "Let me check.", tool_calls=tuple(a.call for a in turn.steps[0].activities))
    assert messages[2].tool_results == (
        ToolResult("call_0_0", "add", "3", False),
        ToolResult("call_0_1", "echo", "denied by the user", True),
    )
    assert messages[3] == Message("assistant", "It is 3.")


def test_a_call_cancelled_before_its_result_still_gets_one():
    turn = Turn("slow", Metrics())
    activity = ToolActivity(ToolCall("c1", "slow", '{"seconds": 9}'))
    turn.steps[0].activities.append(activity)  # no text at all, cancelled while running
    messages = context([turn, Turn("next", Metrics())])
    assert [m.role for m in messages] == ["user", "assistant", "tool"]
    (result,) = messages[2].tool_results
    assert result.is_error and "did not finish" in result.content


def test_a_turn_without_tools_is_one_assistant_message():
    turn = Turn("hi", Metrics())
    turn.parts[:] = ["hel", "lo"]
    assert context([turn, Turn("next", Metrics())]) == [Message("user", "hi"), Message("assistant", "hello")]
    assert len(turn.steps) == 1 and turn.steps[0].metrics is turn.metrics
