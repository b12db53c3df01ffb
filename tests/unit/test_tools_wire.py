"""Each provider sends tools, earlier tool calls and their results exactly as its API documents,
checked against request shapes written out from the APIs' own docs and examples:

- OpenAI Chat Completions (platform.openai.com/docs/guides/function-calling): `tools:
  [{type: function, function: {name, description, parameters}}]`, `tool_choice` ("auto",
  "none", "required" or `{type: function, function: {name}}`), an assistant message with
  `tool_calls: [{id, type: function, function: {name, arguments}}]` (arguments a JSON string,
  content null without text), then one `{role: tool, tool_call_id, content}` per result (a
  failed call's text marked "Error: ", as on the other APIs without an error flag).
- OpenAI Responses (same guide, Responses tab): `tools: [{type: function, name, description,
  parameters, strict}]`, `tool_choice` `{type: function, name}`, input items `{type:
  function_call, call_id, name, arguments}` and `{type: function_call_output, call_id, output}`.
- Anthropic Messages (docs.claude.com .../tool-use/implement-tool-use): `tools: [{name,
  description, input_schema}]`, `tool_choice` `{type: auto|any|tool|none}`, assistant
  `tool_use` blocks `{id, name, input}` (input an object), then one user message whose
  `tool_result` blocks `{tool_use_id, content, is_error}` come first.
- Ollama (docs.ollama.com/capabilities/tool-calling): `tools` in the OpenAI function shape,
  assistant `tool_calls: [{type: function, function: {index, name, arguments}}]` (arguments an
  object), `{role: tool, tool_name, content}` per result; no tool_choice.

And the decoders: parallel calls, arguments split across many deltas, and the one stop reason
("tool_calls") for a tool-call answer on all four APIs.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from test_providers import _MSG_START, _MSG_STOP, chat, events_of, message_delta, ollama_line, resp, resp_final, sse

from llmchat.conversation import ChatRequest, Message, ToolResult, ToolSpec, tool_results_message
from llmchat.providers import get_provider
from llmchat.stream.events import Finish, TextDelta, ToolCall

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "Get the current weather for a city", WEATHER_SCHEMA)
CLOCK = ToolSpec("now", "The time now")  # no arguments

CALL_A = ToolCall("call_a", "get_weather", '{"city": "Oslo"}')
CALL_B = ToolCall("call_b", "now", "")
RESULT_A = ToolResult("call_a", "get_weather", "-3 C, snow")
RESULT_B = ToolResult("call_b", "now", "clock unreachable", is_error=True)

# A tool loop: a prompt, the model's calls (with a little text), the results, the final answer,
# and the next prompt.
LOOP = [
    Message("user", "Weather in Oslo, and the time?"),
    Message("assistant", "Let me look.", tool_calls=(CALL_A, CALL_B)),
    tool_results_message(RESULT_A, RESULT_B),
    Message("assistant", "It is -3 C and snowing; the clock did not answer."),
    Message("user", "Thanks"),
]


def body(api: str, messages: List[Message], **fields: Any) -> Dict[str, Any]:
    request = ChatRequest(model="m", messages=list(messages), base_url="http://127.0.0.1:9/v1", **fields)
    return get_provider(api).build_request(request).json


def sent(api: str, messages: List[Message], **fields: Any) -> List[Any]:
    got = body(api, messages, **fields)
    return got["input"] if api == "openai-responses" else got["messages"]


# --------------------------------------------------------------------------------------------
# no tools: requests as before


@pytest.mark.parametrize("api", APIS)
def test_a_request_without_tools_sends_no_tool_fields(api: str) -> None:
    got = body(api, [Message("user", "hi")])
    assert "tools" not in got and "tool_choice" not in got


# --------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def test_openai_chat_tools_and_tool_choice() -> None:
    got = body("openai-chat", [Message("user", "hi")], tools=(WEATHER, CLOCK), tool_choice="auto")
    assert got["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city", "parameters": WEATHER_SCHEMA}},
        {"type": "function", "function": {"name": "now", "description": "The time now", "parameters": {"type": "object", "properties": {}}}},
    ]
    assert got["tool_choice"] == "auto"
    assert body("openai-chat", [Message("user", "hi")], tools=(WEATHER,), tool_choice="required")["tool_choice"] == "required"
    assert body("openai-chat", [Message("user", "hi")], tools=(WEATHER,), tool_choice="get_weather")["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


def test_openai_chat_sends_calls_on_the_assistant_message_and_one_tool_message_per_result() -> None:
    assert sent("openai-chat", LOOP, system="Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo, and the time?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "-3 C, snow"},
        {"role": "tool", "tool_call_id": "call_b", "content": "Error: clock unreachable"},
        {"role": "assistant", "content": "It is -3 C and snowing; the clock did not answer."},
        {"role": "user", "content": "Thanks"},
    ]


def test_openai_chat_a_call_only_answer_has_null_content() -> None:
    (_, assistant) = sent("openai-chat", [Message("user", "x"), Message("assistant", "", tool_calls=(CALL_A,))])
    assert assistant["content"] is None and len(assistant["tool_calls"]) == 1


# --------------------------------------------------------------------------------------------
# OpenAI Responses


def test_openai_responses_tools_are_flat_and_not_strict() -> None:
    got = body("openai-responses", [Message("user", "hi")], tools=(WEATHER,), tool_choice="get_weather")
    assert got["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": WEATHER_SCHEMA,
            "strict": False,
        }
    ]
    assert got["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body("openai-responses", [Message("user", "hi")], tool_choice="none")["tool_choice"] == "none"


def test_openai_responses_sends_function_call_and_function_call_output_items() -> None:
    assert sent("openai-responses", LOOP) == [
        {"role": "user", "content": "Weather in Oslo, and the time?"},
        {"role": "assistant", "content": "Let me look."},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call", "call_id": "call_b", "name": "now", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "-3 C, snow"},
        {"type": "function_call_output", "call_id": "call_b", "output": "Error: clock unreachable"},
        {"role": "assistant", "content": "It is -3 C and snowing; the clock did not answer."},
        {"role": "user", "content": "Thanks"},
    ]


def test_openai_responses_a_call_only_answer_is_only_its_function_calls() -> None:
    items = sent("openai-responses", [Message("user", "x"), Message("assistant", "", tool_calls=(CALL_A,))])
    assert items[1:] == [{"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city": "Oslo"}'}]


# --------------------------------------------------------------------------------------------
# Anthropic Messages


def test_anthropic_tools_use_input_schema_and_tool_choice_objects() -> None:
    got = body("anthropic", [Message("user", "hi")], tools=(WEATHER, CLOCK), tool_choice="required")
    assert got["tools"] == [
        {"name": "get_weather", "description": "Get the current weather for a city", "input_schema": WEATHER_SCHEMA},
        {"name": "now", "description": "The time now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert got["tool_choice"] == {"type": "any"}
    assert body("anthropic", [Message("user", "hi")], tool_choice="auto")["tool_choice"] == {"type": "auto"}
    assert body("anthropic", [Message("user", "hi")], tool_choice="none")["tool_choice"] == {"type": "none"}
    assert body("anthropic", [Message("user", "hi")], tool_choice="now")["tool_choice"] == {"type": "tool", "name": "now"}


def test_anthropic_sends_tool_use_blocks_and_tool_result_blocks_in_one_user_message() -> None:
    assert sent("anthropic", LOOP) == [
        {"role": "user", "content": "Weather in Oslo, and the time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_b", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "-3 C, snow"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "clock unreachable", "is_error": True},
            ],
        },
        {"role": "assistant", "content": "It is -3 C and snowing; the clock did not answer."},
        {"role": "user", "content": "Thanks"},
    ]


def test_anthropic_results_then_a_prompt_are_one_user_message_results_first() -> None:
    messages = [Message("user", "x"), Message("assistant", "", tool_calls=(CALL_A,)), tool_results_message(RESULT_A), Message("user", "go on")]
    got = sent("anthropic", messages)
    assert got[1] == {"role": "assistant", "content": [{"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}}]}
    assert got[2:] == [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_a", "content": "-3 C, snow"}, {"type": "text", "text": "go on"}],
        }
    ]


def test_anthropic_an_empty_result_leaves_out_its_optional_content() -> None:
    messages = [Message("user", "x"), Message("assistant", "", tool_calls=(CALL_A,)), tool_results_message(ToolResult("call_a", "get_weather", ""))]
    assert sent("anthropic", messages)[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_a"}]}


def test_anthropic_arguments_that_are_not_a_json_object_are_sent_as_an_empty_input() -> None:
    broken = ToolCall("call_x", "get_weather", '{"city": "Os')
    got = sent("anthropic", [Message("user", "x"), Message("assistant", "", tool_calls=(broken,))])
    assert got[1]["content"][0]["input"] == {}


# --------------------------------------------------------------------------------------------
# Ollama


def test_ollama_tools_in_the_function_shape_and_no_tool_choice() -> None:
    got = body("ollama", [Message("user", "hi")], tools=(WEATHER,), tool_choice="required")
    assert got["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city", "parameters": WEATHER_SCHEMA}}
    ]
    assert "tool_choice" not in got


def test_ollama_sends_arguments_as_objects_and_tool_messages_with_tool_name() -> None:
    no_ids = [
        Message("user", "Weather in Oslo, and the time?"),
        Message("assistant", "", tool_calls=(ToolCall("", "get_weather", '{"city": "Oslo"}'), ToolCall("", "now", ""))),
        tool_results_message(ToolResult("", "get_weather", "-3 C, snow"), ToolResult("", "now", "12:00")),
    ]
    assert sent("ollama", no_ids) == [
        {"role": "user", "content": "Weather in Oslo, and the time?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}},
                {"type": "function", "function": {"index": 1, "name": "now", "arguments": {}}},
            ],
        },
        {"role": "tool", "tool_name": "get_weather", "content": "-3 C, snow"},
        {"role": "tool", "tool_name": "now", "content": "12:00"},
    ]


def test_ollama_a_call_id_from_the_server_goes_back_with_the_call_and_its_result() -> None:
    got = sent("ollama", LOOP[:3])
    assert got[1]["tool_calls"][0]["id"] == "call_a"
    assert got[2] == {"role": "tool", "tool_name": "get_weather", "content": "-3 C, snow", "tool_call_id": "call_a"}
    assert got[3]["content"] == "Error: clock unreachable"  # no error flag: the text says it failed


# --------------------------------------------------------------------------------------------
# decoding: parallel calls, arguments split across many deltas, one stop reason


def _pieces(text: str, size: int = 2) -> List[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_openai_chat_parallel_calls_with_arguments_in_many_deltas() -> None:
    wire = chat({"role": "assistant", "content": None})
    wire += chat({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
    wire += "".join(chat({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in _pieces('{"city": "Oslo"}'))
    wire += chat({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "add", "arguments": ""}}]})
    wire += "".join(chat({"tool_calls": [{"index": 1, "function": {"arguments": p}}]}) for p in _pieces('{"a": 1, "b": 2}'))
    wire += chat({}, "tool_calls") + "data: [DONE]\n\n"
    assert events_of("openai-chat", sse(wire)) == [
        ToolCall("call_a", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_b", "add", '{"a": 1, "b": 2}'),
        Finish("tool_calls", "tool_calls"),
    ]


def test_openai_chat_whole_calls_without_an_index_are_separate_calls() -> None:
    """Some compatible servers (Gemini's) send each call whole in its own chunk, no `index`."""
    wire = chat({"tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]})
    wire += chat({"tool_calls": [{"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}}]})
    wire += chat({}, "tool_calls") + "data: [DONE]\n\n"
    assert events_of("openai-chat", sse(wire)) == [
        ToolCall("call_a", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_b", "now", "{}"),
        Finish("tool_calls", "tool_calls"),
    ]


def _fc(n: int, name: str, arguments: str) -> Dict[str, Any]:
    return {"id": f"fc_{n}", "type": "function_call", "status": "completed", "arguments": arguments, "call_id": f"call_{n}", "name": name}


def test_openai_responses_parallel_function_calls_finish_as_tool_calls() -> None:
    wire = ""
    for n, (name, arguments) in enumerate([("get_weather", '{"city": "Oslo"}'), ("add", '{"a": 1, "b": 2}')]):
        wire += resp("response.output_item.added", output_index=n, item={**_fc(n, name, ""), "status": "in_progress"})
        wire += "".join(resp("response.function_call_arguments.delta", item_id=f"fc_{n}", output_index=n, delta=p) for p in _pieces(arguments))
        wire += resp("response.function_call_arguments.done", item_id=f"fc_{n}", output_index=n, arguments=arguments)
        wire += resp("response.output_item.done", output_index=n, item=_fc(n, name, arguments))
    wire += resp_final("response.completed", "completed")
    assert events_of("openai-responses", sse(wire)) == [
        ToolCall("call_0", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_1", "add", '{"a": 1, "b": 2}'),
        Finish("tool_calls", "completed"),
    ]


def test_openai_responses_an_item_done_without_arguments_takes_them_from_the_deltas() -> None:
    item = _fc(0, "get_weather", "")
    del item["arguments"]
    wire = "".join(resp("response.function_call_arguments.delta", item_id="fc_0", output_index=0, delta=p) for p in _pieces('{"city": "Oslo"}'))
    wire += resp("response.output_item.done", output_index=0, item=item) + resp_final("response.completed", "completed")
    assert events_of("openai-responses", sse(wire))[0] == ToolCall("call_0", "get_weather", '{"city": "Oslo"}')


def test_openai_responses_a_text_answer_still_stops_as_stop() -> None:
    wire = resp("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta="hi")
    assert events_of("openai-responses", sse(wire + resp_final("response.completed", "completed"))) == [TextDelta("hi"), Finish("stop", "completed")]


def test_anthropic_parallel_tool_use_blocks_with_input_in_many_deltas() -> None:
    wire = _MSG_START
    for index, (tid, name, arguments) in enumerate([("toolu_a", "get_weather", '{"city": "Oslo"}'), ("toolu_b", "add", '{"a": 1, "b": 2}')]):
        start = {"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}}
        wire += f"event: content_block_start\ndata: {json.dumps(start)}\n\n"
        for piece in _pieces(arguments):
            delta = {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}
            wire += f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n"
        wire += f'event: content_block_stop\ndata: {{"type":"content_block_stop","index":{index}}}\n\n'
    wire += message_delta("tool_use", 20) + _MSG_STOP
    events = events_of("anthropic", sse(wire))
    assert [e for e in events if type(e) is ToolCall] == [
        ToolCall("toolu_a", "get_weather", '{"city": "Oslo"}'),
        ToolCall("toolu_b", "add", '{"a": 1, "b": 2}'),
    ]
    assert events[-1] == Finish("tool_calls", "tool_use")


def test_ollama_parallel_calls_in_one_line_and_in_separate_lines() -> None:
    call = {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    other = {"id": "call_x", "function": {"index": 1, "name": "add", "arguments": {"a": 1, "b": 2}}}
    for lines in ([[call, other]], [[call], [other]]):
        wire = "".join(
            json.dumps({"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False}) + "\n" for calls in lines
        )
        wire += ollama_line("", done=True, done_reason="stop")
        assert events_of("ollama", wire.encode()) == [
            ToolCall("", "get_weather", '{"city": "Oslo"}'),
            ToolCall("call_x", "add", '{"a": 1, "b": 2}'),
            Finish("tool_calls", "stop"),
        ]


def test_ollama_a_text_answer_still_stops_as_stop() -> None:
    wire = ollama_line("hi") + ollama_line("", done=True, done_reason="stop")
    assert events_of("ollama", wire.encode())[-1] == Finish("stop", "stop")
