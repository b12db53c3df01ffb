"""The providers against servers that read the APIs their own way and against hostile ones.

Several choices, thinking and content on one line, stop reasons the server never sent, whole
JSON answers to a streamed request, errors in every shape servers nest them, content given as
parts, keep-alive events with empty data, cached input, the server's own rate, tool calls for
all four APIs, and the class test: any value of the wrong type anywhere in a recorded stream
gives well-typed events or a protocol error, never another exception.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator, List, Tuple

import pytest
from test_providers import (  # the recorded streams and the client-like driver
    _MSG_START,
    _MSG_STOP,
    RECORDED,
    block_delta,
    chat,
    events_of,
    message_delta,
    ollama_line,
    resp,
    resp_final,
    sse,
    text_of,
)

from llmchat.providers import get_provider
from llmchat.providers.base import load_json
from llmchat.stream.events import Finish, Notice, ReasoningDelta, StreamError, TextDelta, ToolCall, Usage
from llmchat.stream.ndjson import NDJSONDecoder
from llmchat.stream.protocol import ProtocolError, error_message, one_line
from llmchat.stream.sse import ServerSentEvent, SSEDecoder

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]
SSE_APIS = ["openai-chat", "openai-responses", "anthropic"]


# --------------------------------------------------------------------------------------------
# several choices (n > 1)


def _choice(index: int, content: Any = None, finish: Any = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"index": index, "delta": delta, "finish_reason": finish}


def _chunk(*choices: dict) -> str:
    return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "choices": list(choices)}) + "\n\n"


def test_several_choices_interleaved_give_only_the_first_as_the_answer_and_say_so_once() -> None:
    wire = "".join(_chunk(_choice(k, f"<{k}>" if k else word)) for word in ('{"', "city", '":') for k in range(3))
    wire += "".join(_chunk(_choice(k, finish="length" if k else "stop")) for k in range(3)) + "data: [DONE]\n\n"
    events = events_of("openai-chat", sse(wire))
    assert text_of(events) == '{"city":'
    assert [e for e in events if type(e) is Notice] == [Notice("the server sent several answers (n > 1); only the first is shown")]
    assert events[-1] == Finish("stop", "stop")  # choice 0's reason, not the others'


def test_several_choices_in_one_chunk_give_only_the_first() -> None:
    wire = _chunk(_choice(1, "B"), _choice(0, "A"), _choice(2, "C")) + _chunk(_choice(0, finish="stop")) + "data: [DONE]\n\n"
    events = events_of("openai-chat", sse(wire))
    assert text_of(events) == "A"
    assert sum(type(e) is Notice for e in events) == 1


def test_one_choice_says_nothing_about_choices() -> None:
    events = events_of("openai-chat", RECORDED["openai-chat"][0])
    assert not any(type(e) is Notice for e in events)


# --------------------------------------------------------------------------------------------
# Ollama: thinking and content on one line


def test_ollama_line_with_thinking_and_content_keeps_both_thinking_first() -> None:
    wire = (ollama_line("Hi", thinking="greet them") + ollama_line("", done=True, done_reason="stop")).encode()
    assert events_of("ollama", wire) == [ReasoningDelta("greet them"), TextDelta("Hi"), Finish("stop", "stop")]


def test_ollama_final_line_with_thinking_and_content_keeps_both() -> None:
    wire = ollama_line("end", thinking="last thought", done=True, done_reason="stop").encode()
    assert events_of("ollama", wire) == [ReasoningDelta("last thought"), TextDelta("end"), Finish("stop", "stop")]


# --------------------------------------------------------------------------------------------
# a stop reason the server did not send is "unknown", never "stop"

MISSING_REASON = {
    "openai-chat": chat({"content": "a"}) + "data: [DONE]\n\n",
    "anthropic": _MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}) + _MSG_STOP,
    "ollama": ollama_line("a") + ollama_line("", done=True),
    "ollama (null)": ollama_line("a") + ollama_line("", done=True, done_reason=None),
    "openai-chat (a number)": chat({"content": "a"}, 7) + "data: [DONE]\n\n",
}


@pytest.mark.parametrize("case", MISSING_REASON)
def test_a_missing_stop_reason_is_unknown(case: str) -> None:
    api = case.split(" ")[0]
    events = events_of(api, sse(MISSING_REASON[case]))
    assert text_of(events) == "a"
    assert events[-1].reason == "unknown"


def test_a_whole_responses_answer_without_a_status_has_an_unknown_stop() -> None:
    body = {"object": "response", "output": [{"type": "message", "content": [{"type": "output_text", "text": "a"}]}]}
    assert get_provider("openai-responses").new_decoder().whole(body)[-1] == Finish("unknown", None)


# --------------------------------------------------------------------------------------------
# a whole JSON answer to a streamed request (LiteLLM mocks, some proxies)

WHOLE = {
    "openai-chat": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole answer", "reasoning_content": "hm"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    },
    "openai-responses": {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "whole answer", "annotations": []}]},
        ],
        "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11},
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "x"}, {"type": "text", "text": "whole answer"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 9, "output_tokens": 2},
    },
}
WHOLE_FINISH = {
    "openai-chat": Finish("length", "length"),
    "openai-responses": Finish("stop", "completed"),
    "anthropic": Finish("length", "max_tokens"),
}


@pytest.mark.parametrize("api", SSE_APIS)
def test_a_whole_answer_is_read_as_text_reasoning_usage_and_stop_reason(api: str) -> None:
    decoder = get_provider(api).new_decoder()
    events = list(decoder.whole(copy.deepcopy(WHOLE[api])))
    assert decoder.done
    assert events == [ReasoningDelta("hm"), TextDelta("whole answer"), Usage(9, 2), WHOLE_FINISH[api]]


@pytest.mark.parametrize("api", SSE_APIS)
@pytest.mark.parametrize("body", [{"id": "x", "object": "list", "data": []}, [1, 2], "text", 5])
def test_json_that_is_not_an_answer_is_a_protocol_error(api: str, body: Any) -> None:
    with pytest.raises(ProtocolError):
        get_provider(api).new_decoder().whole(body)


@pytest.mark.parametrize("api", SSE_APIS)
def test_a_whole_error_object_is_the_servers_error(api: str) -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "model not found"}}
    if api == "openai-responses":
        body = {"status": "failed", "error": {"code": "server_error", "message": "model not found"}, "output": []}
    (event,) = get_provider(api).new_decoder().whole(body)
    assert type(event) is StreamError and event.message.startswith("model not found")


def test_ollama_non_streamed_answer_is_its_one_final_object() -> None:
    line = (
        json.dumps(
            {
                "model": "m",
                "message": {"role": "assistant", "content": "whole", "thinking": "hm"},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 4,
                "eval_count": 1,
            }
        )
        + "\n"
    )
    assert events_of("ollama", line.encode()) == [ReasoningDelta("hm"), TextDelta("whole"), Usage(4, 1), Finish("stop", "stop")]


# --------------------------------------------------------------------------------------------
# errors in every shape: the server's words, never the framing

ERROR_SHAPES = {
    "openai": (
        {"error": {"message": "Invalid model", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}},
        "Invalid model (model_not_found)",
    ),
    "litellm": (
        {"error": {"message": "litellm.BadRequestError: OpenAIException - bad temperature", "type": None, "param": None, "code": "400"}},
        "litellm.BadRequestError: OpenAIException - bad temperature (400)",
    ),
    "openrouter with upstream raw": (
        {
            "error": {
                "message": "Provider returned error",
                "code": 429,
                "metadata": {"raw": '{"error":{"message":"qwen is rate-limited upstream"}}', "provider_name": "Venice"},
            }
        },
        "Provider returned error (Venice): qwen is rate-limited upstream (429)",
    ),
    "openrouter plain raw": (
        {"error": {"message": "Provider returned error", "code": 502, "metadata": {"raw": "upstream timed out"}}},
        "Provider returned error: upstream timed out (502)",
    ),
    "vllm flat": (
        {"object": "error", "message": "max_tokens is too large", "type": "BadRequestError", "param": None, "code": 400},
        "max_tokens is too large (400)",
    ),
    "vllm nested": (
        {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": None, "code": 404}},
        "The model `x` does not exist. (404)",
    ),
    "anthropic": ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded (overloaded_error)"),
    "ollama": ({"error": "model 'x' not found"}, "model 'x' not found"),
    "fastapi detail list": ({"detail": [{"loc": ["body", "model"], "msg": "field required", "type": "missing"}]}, "field required (missing)"),
    "fastapi detail text": ({"detail": "Not authenticated"}, "Not authenticated"),
    "a list of errors": ([{"error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}}], "bad request (400)"),
    "message is an object": ({"error": {"message": {"message": "inner words"}}}, "inner words"),
}


@pytest.mark.parametrize("shape", ERROR_SHAPES)
def test_the_servers_own_words_are_found_in_every_error_shape(shape: str) -> None:
    body, expected = ERROR_SHAPES[shape]
    assert error_message(body) == expected


@pytest.mark.parametrize("value", [None, True, 5, [], {}, {"error": None}, {"error": {"error": {"error": {}}}}])
def test_an_error_without_words_gives_a_string_and_no_exception(value: Any) -> None:
    assert isinstance(error_message(value), str)


def test_an_error_nested_deeply_gives_a_string_and_no_exception() -> None:
    deep: Any = {"message": "bottom"}
    for _ in range(5000):
        deep = {"error": deep}
    assert isinstance(error_message(deep), str)


@pytest.mark.parametrize("api", SSE_APIS)
def test_a_mid_stream_error_event_in_litellm_shape_is_its_message(api: str) -> None:
    body = json.dumps({"error": {"message": "litellm.APIError: upstream died", "type": None, "param": None, "code": "500"}})
    head = {
        "openai-chat": chat({"content": "a"}),
        "openai-responses": resp("response.output_text.delta", delta="a"),
        "anthropic": _MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}),
    }[api]
    events = events_of(api, sse(head + f"event: error\ndata: {body}\n\n"))
    assert events[-1] == StreamError("litellm.APIError: upstream died (500)", kind="api")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("line one\nline two\r\n\tthree", "line one line two three"),
        ("red \x1b[31mtext\x1b]52;c;AAAA\x07 \x9b2J", "red text"),  # whole sequences go, not just their ESC
        ("\u202eevil", "evil"),
    ],
)
def test_one_line_leaves_one_line_with_no_control_characters(text: str, expected: str) -> None:
    assert one_line(text) == expected


def test_one_line_cuts_a_huge_message_to_a_readable_length() -> None:
    shown = one_line("word " * 1_000_000)
    assert len(shown) == 300 and shown.endswith("…")


# --------------------------------------------------------------------------------------------
# keep-alive events with empty data


@pytest.mark.parametrize("api", SSE_APIS)
@pytest.mark.parametrize("empty", ["data:\n\n", "data: \n\n", "event: ping\ndata:\n\n"])
def test_an_event_with_empty_data_is_skipped_like_a_keep_alive(api: str, empty: str) -> None:
    wire, text, _, finish = RECORDED[api]
    # after the first event, before the rest
    cut = wire.index(b"\n\n") + 2
    events = events_of(api, wire[:cut] + empty.encode() + wire[cut:])
    assert text_of(events) == text
    assert events[-1] == finish


# --------------------------------------------------------------------------------------------
# usage: cached input, absurd values, the server's own rate


def test_anthropic_input_counts_cache_reads_and_writes() -> None:
    start = _MSG_START.replace('"input_tokens":12', '"input_tokens":1,"cache_read_input_tokens":30,"cache_creation_input_tokens":0')
    assert start != _MSG_START
    wire = sse(start + block_delta(0, {"type": "text_delta", "text": "a"}) + message_delta("end_turn", 5) + _MSG_STOP)
    assert events_of("anthropic", wire)[-2] == Usage(31, 5, 30)


def test_anthropic_cache_writes_count_as_input_too() -> None:
    wire = sse(
        _MSG_START
        + block_delta(0, {"type": "text_delta", "text": "a"})
        + 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":2,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":3}}\n\n'
        + _MSG_STOP
    )
    assert events_of("anthropic", wire)[-2] == Usage(102, 3, 0)


def test_openai_cached_prompt_tokens_are_reported() -> None:
    usage = {"prompt_tokens": 31, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 30}}
    wire = sse(
        chat({"content": "a"}, "stop")
        + chat({}, None, usage=usage).replace('"choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": null}]', '"choices": []')
        + "data: [DONE]\n\n"
    )
    assert Usage(31, 2, 30) in events_of("openai-chat", wire)


ABSURD = [10**30, -1, "12", [1], {"n": 1}, 1.5, True, float("inf"), None]


@pytest.mark.parametrize("value", ABSURD, ids=repr)
@pytest.mark.parametrize("api", APIS)
def test_absurd_usage_values_are_left_out_not_passed_on(api: str, value: Any) -> None:
    wire, text, usage, finish = RECORDED[api]
    field = {
        "openai-chat": b'"completion_tokens":10',
        "openai-responses": b'"output_tokens":11',
        "anthropic": b'"output_tokens":15',
        "ollama": b'"eval_count":282',
    }[api]
    assert field in wire
    name = field.split(b":")[0]
    bad = wire.replace(field, name + b":" + json.dumps(value).encode())
    events = events_of(api, bad)
    (reported,) = [e for e in events if type(e) is Usage]
    assert reported.output_tokens is None
    assert reported.input_tokens == usage.input_tokens
    assert events[-1] == finish


def test_llama_cpp_timings_are_the_servers_own_rate() -> None:
    timings = {"prompt_n": 5, "predicted_n": 12, "predicted_ms": 285.0, "predicted_per_second": 42.1}
    wire = sse(chat({"content": "a"}) + chat({}, "stop", timings=timings) + "data: [DONE]\n\n")
    events = events_of("openai-chat", wire)
    assert Usage(None, None, None, 42.1) in events


def test_ollama_eval_duration_gives_the_servers_own_rate() -> None:
    wire = ollama_line("a") + ollama_line("", done=True, done_reason="stop", prompt_eval_count=3, eval_count=84, eval_duration=2_000_000_000)
    assert events_of("ollama", wire.encode())[-2] == Usage(3, 84, None, 42.0)


# --------------------------------------------------------------------------------------------
# tool calls, all four APIs


def test_chat_parallel_tool_calls_come_complete_in_index_order() -> None:
    def call(index: int, **function: Any) -> dict:
        return {"index": index, "function": function}

    wire = sse(
        chat(
            {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}
        )
        + chat({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": '{"tz"'}}]})
        + chat({"tool_calls": [call(0, arguments='{"city": ')]})
        + chat({"tool_calls": [call(1, arguments=': "UTC"}')]})
        + chat({"tool_calls": [call(0, arguments='"Oslo"}')]})
        + chat({}, "tool_calls")
    )  # no [DONE]: the finish reason ends it
    assert events_of("openai-chat", wire) == [
        ToolCall("call_a", "weather", '{"city": "Oslo"}'),
        ToolCall("call_b", "time", '{"tz": "UTC"}'),
        Finish("tool_calls", "tool_calls"),
    ]


def test_responses_function_call_item_is_a_tool_call() -> None:
    item = {"id": "fc_1", "type": "function_call", "status": "completed", "arguments": '{"city": "Oslo"}', "call_id": "call_1", "name": "weather"}
    wire = sse(
        resp("response.output_item.added", output_index=0, item={**item, "arguments": "", "status": "in_progress"})
        + resp("response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta='{"city": ')
        + resp("response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta='"Oslo"}')
        + resp("response.output_item.done", output_index=0, item=item)
        + resp_final("response.completed", "completed")
    )
    events = events_of("openai-responses", wire)
    assert events[0] == ToolCall("call_1", "weather", '{"city": "Oslo"}')
    assert type(events[-1]) is Finish


def test_anthropic_tool_use_without_input_deltas_uses_its_start_input() -> None:
    wire = sse(
        _MSG_START
        + 'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"now","input":{"tz":"UTC"}}}\n\n'
        + 'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
        + message_delta("tool_use", 5)
        + _MSG_STOP
    )
    assert events_of("anthropic", wire)[0] == ToolCall("toolu_1", "now", '{"tz": "UTC"}')


def test_ollama_tool_calls_are_tool_calls_with_arguments_as_json_text() -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]}
    wire = json.dumps({"model": "m", "message": message, "done": False}) + "\n" + ollama_line("", done=True, done_reason="stop")
    events = events_of("ollama", wire.encode())
    # Ollama says "stop" after tool calls too: the answer stopped for them
    assert events == [ToolCall("", "weather", '{"city": "Oslo"}'), Finish("tool_calls", "stop")]


@pytest.mark.parametrize("api", SSE_APIS)
def test_a_whole_answer_with_a_tool_call_gives_the_tool_call(api: str) -> None:
    body = {
        "openai-chat": {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
        "openai-responses": {
            "status": "completed",
            "output": [{"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'}],
        },
        "anthropic": {
            "type": "message",
            "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}],
            "stop_reason": "tool_use",
        },
    }[api]
    events = get_provider(api).new_decoder().whole(body)
    assert events[0] == ToolCall("call_1", "weather", '{"city": "Oslo"}')


def test_a_tool_call_describes_itself_on_one_clean_line() -> None:
    call = ToolCall("id", "rm\x1b[2J", '{"path":\n "/"}' + "x" * 500)
    shown = call.describe()
    assert "\x1b" not in shown and "\n" not in shown and len(shown) < 260
    assert shown.startswith('rm({"path": "/"}')  # the whole sequence goes, not only its ESC


# --------------------------------------------------------------------------------------------
# the class: any value of the wrong type anywhere never breaks a decoder

HOSTILE = [[{"type": "text", "text": "part"}], {"text": "obj"}, ["a", 1, None], 7, -3, 1e30, None, True, [], {}, [[[["deep"]]]]]


def _leaves(value: Any, path: Tuple = ()) -> Iterator[Tuple]:
    """The path of every value in a JSON document, containers included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, path + (index,))


def _replaced(value: Any, path: Tuple, new: Any) -> Any:
    value = copy.deepcopy(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


def _items(api: str) -> List[Any]:
    wire = RECORDED[api][0]
    if api == "ollama":
        framing = NDJSONDecoder()
        return framing.decode(wire) + framing.flush()
    return SSEDecoder().decode(wire)


def _variants(api: str) -> Iterator[List[Any]]:
    """The recorded stream once for every (JSON leaf, hostile value) pair."""
    items = _items(api)
    for position, item in enumerate(items):
        if api == "ollama":
            payload = item
        elif item.data.startswith("{"):
            payload = json.loads(item.data)
        else:
            continue
        for path in _leaves(payload):
            if not path:
                continue
            for new in HOSTILE:
                changed = _replaced(payload, path, new)
                copy_items = list(items)
                copy_items[position] = changed if api == "ollama" else ServerSentEvent(item.type, json.dumps(changed), "")
                yield copy_items


def _assert_typed(event: Any) -> None:
    kind = type(event)
    if kind in (TextDelta, ReasoningDelta):
        assert type(event.text) is str and event.text
    elif kind is Usage:
        for count in (event.input_tokens, event.output_tokens, event.cached_input_tokens):
            assert count is None or (type(count) is int and 0 <= count <= 10**15)
        assert event.server_rate is None or type(event.server_rate) is float
    elif kind is Finish:
        assert type(event.reason) is str and (event.raw_reason is None or type(event.raw_reason) is str)
    elif kind is ToolCall:
        assert type(event.id) is str and type(event.name) is str and type(event.arguments) is str
    elif kind in (StreamError, Notice):
        assert type(event.message) is str
    else:
        raise AssertionError(f"unknown event {event!r}")


STREAM_ERRORS = (ProtocolError, TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError)


@pytest.mark.parametrize("api", APIS)
def test_a_value_of_the_wrong_type_anywhere_gives_typed_events_or_a_protocol_error(api: str) -> None:
    tried = 0
    for items in _variants(api):
        tried += 1
        decoder = get_provider(api).new_decoder()
        events: List[Any] = []
        try:
            for item in items:
                events.extend(decoder.feed(item))
                if decoder.done:
                    break
            else:
                events.extend(decoder.end())
        except STREAM_ERRORS:  # the client reports these as a protocol error (a StreamError)
            continue
        for event in events:
            _assert_typed(event)
    assert tried > 100


@pytest.mark.parametrize(
    "parts",
    [[{"type": "text", "text": "x"}, {"type": "text", "text": "y"}], ["x", "y"], [{"text": "x"}, {"type": "image_url"}, {"text": "y"}]],
    ids=["typed parts", "strings", "mixed"],
)
def test_content_given_as_a_list_of_parts_is_text(parts: list) -> None:
    wire = sse(chat({"content": parts}) + chat({}, "stop") + "data: [DONE]\n\n")
    assert text_of(events_of("openai-chat", wire)) == "xy"


def test_json_nested_too_deeply_is_a_protocol_error_not_a_recursion_error() -> None:
    with pytest.raises(ProtocolError, match="nested too deeply"):
        load_json("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("api", SSE_APIS)
def test_an_untyped_error_event_from_a_proxy_is_an_error_after_the_text(api: str) -> None:
    head = {
        "openai-chat": chat({"content": "a"}),
        "openai-responses": resp("response.output_text.delta", delta="a"),
        "anthropic": _MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}),
    }[api]
    body = json.dumps({"error": {"message": "litellm.RateLimitError: slow down", "type": None, "code": "429"}})
    events = events_of(api, sse(head + f"data: {body}\n\n" + "data: [DONE]\n\n"))
    assert text_of(events) == "a"
    assert events[-1] == StreamError("litellm.RateLimitError: slow down (429)", kind="api")
