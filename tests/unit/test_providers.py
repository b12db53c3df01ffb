"""The four providers' decoders fed recorded wire data, and their request builders.

Each recorded stream is written out below as the real API sends it (ids, fingerprints, unknown
keys and all) and goes through the real framing decoder (SSEDecoder / NDJSONDecoder) and then
`provider.new_decoder()`, exactly as StreamingClient drives them: feed items until
`decoder.done`, then `flush()` and `end()` when the body ends.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmchat.conversation import ChatRequest, Message
from llmchat.providers import PROVIDERS, get_provider
from llmchat.providers.anthropic import Anthropic
from llmchat.providers.ollama import Ollama, normalise_host
from llmchat.providers.openai_chat import OpenAIChat
from llmchat.providers.openai_responses import OpenAIResponses
from llmchat.stream.events import Finish, ReasoningDelta, StreamError, TextDelta, ToolCall, Usage
from llmchat.stream.ndjson import NDJSONDecoder
from llmchat.stream.protocol import ProtocolError, StreamDecoder
from llmchat.stream.sse import SSEDecoder

LS = "\u2028"  # LINE SEPARATOR: httpx.iter_lines() would split here, SSE must not
PS = "\u2029"  # PARAGRAPH SEPARATOR
NEL = "\u0085"  # NEXT LINE


# --------------------------------------------------------------------------------------------
# helpers


def run(
    api: str,
    wire: bytes,
    *,
    chunks: Optional[Sequence[int]] = None,
) -> Tuple[List[Any], StreamDecoder]:
    """Drive framing + decoder as the client does; `chunks` are the cut points of the body."""
    provider = get_provider(api)
    framing = SSEDecoder() if provider.framing == "sse" else NDJSONDecoder()
    decoder = provider.new_decoder()
    events: List[Any] = []
    cuts = [0, *sorted(set(chunks or ())), len(wire)]
    pieces = [wire[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
    for piece in pieces:
        for item in framing.decode(piece):
            events.extend(decoder.feed(item))
            if decoder.done:
                return events, decoder
    for item in framing.flush():
        events.extend(decoder.feed(item))
        if decoder.done:
            return events, decoder
    events.extend(decoder.end())
    return events, decoder


def events_of(api: str, wire: bytes) -> List[Any]:
    return run(api, wire)[0]


def text_of(events: Sequence[Any]) -> str:
    return "".join(e.text for e in events if type(e) is TextDelta)


def reasoning_of(events: Sequence[Any]) -> str:
    return "".join(e.text for e in events if type(e) is ReasoningDelta)


def feed_all(api: str, wire: bytes) -> Tuple[List[Any], StreamDecoder]:
    """Every framed item to the decoder, ignoring `done` (to see what the decoder itself does)."""
    provider = get_provider(api)
    framing = SSEDecoder() if provider.framing == "sse" else NDJSONDecoder()
    decoder = provider.new_decoder()
    events: List[Any] = []
    for item in framing.decode(wire) + framing.flush():
        events.extend(decoder.feed(item))
    return events, decoder


def sse(text: str) -> bytes:
    return text.encode("utf-8")


def assert_well_formed(events: Sequence[Any]) -> None:
    """Exactly one terminal event, and it is the last one."""
    assert events, "no events at all"
    terminal = [i for i, e in enumerate(events) if type(e) in (Finish, StreamError)]
    assert terminal == [len(events) - 1], events


# --------------------------------------------------------------------------------------------
# recorded streams: OpenAI Chat Completions

_CHAT_HEAD = (
    '{"id":"chatcmpl-BRk2Xb8Yc9wJ3Pq0","object":"chat.completion.chunk","created":1745512345,'
    '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0392822090",'
)

# stream_options.include_usage: every chunk carries "usage":null, the usage chunk has empty
# choices and comes after the finish chunk, then [DONE]. Content deltas hold raw UTF-8 (U+2028,
# NEL, emoji) and JSON escapes (\n, \t, \", \\, \u00e9, a surrogate pair, \u2029).
OPENAI_CHAT = sse(
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"kX3"}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"content":"Hello"}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"Zq"}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"content":"! Line{LS}sep"}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"a"}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"content":" \\"quoted\\" \\\\ back\\nslash\\ttab"}},"logprobs":null,"finish_reason":null}}],"usage":null}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"content":" 😀 caf\\u00e9"}},"logprobs":null,"finish_reason":null}}],"usage":null}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{"content":" \\ud83d\\ude80{NEL}\\u2029"}},"logprobs":null,"finish_reason":null}}],"usage":null}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}\n\n'
    f'data: {_CHAT_HEAD}"choices":[],"usage":{{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
    '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
    '{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
    "data: [DONE]\n\n"
)
OPENAI_CHAT_TEXT = f'Hello! Line{LS}sep "quoted" \\ back\nslash\ttab 😀 café 🚀{NEL}{PS}'


def chat(delta: dict, finish: Optional[str] = None, **extra: Any) -> str:
    """One chunk line, as a compatible server writes it."""
    body = json.loads(_CHAT_HEAD + '"choices":[]}')
    body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    body.update(extra)
    return "data: " + json.dumps(body, ensure_ascii=False) + "\n\n"


# --------------------------------------------------------------------------------------------
# recorded streams: OpenAI Responses

_RESP = (
    '"id":"resp_68a1f0c2e5a48190b1c3","object":"response","created_at":1755443394,'
    '"model":"gpt-4.1-mini-2025-04-14","instructions":"Be brief.","max_output_tokens":null,'
    '"parallel_tool_calls":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,'
    '"text":{"format":{"type":"text"}},"metadata":{}'
)

OPENAI_RESPONSES = sse(
    "event: response.created\n"
    f'data: {{"type":"response.created","sequence_number":0,"response":{{{_RESP},"status":"in_progress","error":null,"incomplete_details":null,"output":[],"usage":null}}}}\n\n'
    "event: response.in_progress\n"
    f'data: {{"type":"response.in_progress","sequence_number":1,"response":{{{_RESP},"status":"in_progress","error":null,"incomplete_details":null,"output":[],"usage":null}}}}\n\n'
    "event: response.output_item.added\n"
    'data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_68a1f0c3","type":"message","status":"in_progress","content":[],"role":"assistant"}}\n\n'
    "event: response.content_part.added\n"
    'data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}\n\n'
    "event: response.output_text.delta\n"
    'data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"delta":"Hi","logprobs":[],"obfuscation":"Wd7kQ"}\n\n'
    "event: response.output_text.delta\n"
    f'data: {{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"delta":" th{LS}ere \\u2014 \\"ok\\"\\n","logprobs":[]}}\n\n'
    "event: response.output_text.delta\n"
    'data: {"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"delta":"🎉\\ud83d\\udc4d","logprobs":[]}\n\n'
    "event: response.output_text.done\n"
    f'data: {{"type":"response.output_text.done","sequence_number":7,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"text":"Hi th{LS}ere \\u2014 \\"ok\\"\\n🎉👍","logprobs":[]}}\n\n'
    "event: response.content_part.done\n"
    f'data: {{"type":"response.content_part.done","sequence_number":8,"item_id":"msg_68a1f0c3","output_index":0,"content_index":0,"part":{{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi th{LS}ere \\u2014 \\"ok\\"\\n🎉👍"}}}}\n\n'
    "event: response.output_item.done\n"
    f'data: {{"type":"response.output_item.done","sequence_number":9,"output_index":0,"item":{{"id":"msg_68a1f0c3","type":"message","status":"completed","content":[{{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi th{LS}ere \\u2014 \\"ok\\"\\n🎉👍"}}],"role":"assistant"}}}}\n\n'
    "event: response.completed\n"
    f'data: {{"type":"response.completed","sequence_number":10,"response":{{{_RESP},"status":"completed","error":null,"incomplete_details":null,"output":[],'
    '"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}\n\n'
)
OPENAI_RESPONSES_TEXT = f'Hi th{LS}ere \u2014 "ok"\n🎉👍'


def resp(kind: str, **payload: Any) -> str:
    return f"event: {kind}\ndata: " + json.dumps({"type": kind, **payload}, ensure_ascii=False) + "\n\n"


def resp_final(kind: str, status: str, usage: Optional[dict] = None, **extra: Any) -> str:
    response = {"id": "resp_1", "object": "response", "status": status, "output": [], "usage": usage, **extra}
    return resp(kind, sequence_number=99, response=response)


_RESP_START = resp("response.created", sequence_number=0, response={"id": "resp_1", "status": "in_progress"})


# --------------------------------------------------------------------------------------------
# recorded streams: Anthropic Messages

ANTHROPIC = sse(
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}\n\n'
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    "event: ping\n"
    'data: {"type": "ping"}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    "event: content_block_delta\n"
    f'data: {{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"!{LS}Über \\u00fcber\\n\\t\\"x\\" \\\\ 🦀"}}}}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" \\ud83e\\udd80 done."}}\n\n'
    "event: content_block_stop\n"
    'data: {"type":"content_block_stop","index":0}\n\n'
    "event: message_delta\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}\n\n'
    "event: message_stop\n"
    'data: {"type":"message_stop"}\n\n'
)
ANTHROPIC_TEXT = f'Hello!{LS}Über über\n\t"x" \\ 🦀 🦀 done.'

_MSG_START = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
)


def block_delta(index: int, delta: dict) -> str:
    return (
        "event: content_block_delta\ndata: "
        + json.dumps({"type": "content_block_delta", "index": index, "delta": delta}, ensure_ascii=False)
        + "\n\n"
    )


def message_delta(stop_reason: str, output_tokens: int = 7) -> str:
    return (
        "event: message_delta\n"
        f'data: {{"type":"message_delta","delta":{{"stop_reason":"{stop_reason}","stop_sequence":null}},"usage":{{"output_tokens":{output_tokens}}}}}\n\n'
    )


_MSG_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'


# --------------------------------------------------------------------------------------------
# recorded streams: Ollama /api/chat

OLLAMA = (
    '{"model":"llama3.2","created_at":"2025-06-01T10:00:00.123456Z","message":{"role":"assistant","content":"The"},"done":false}\n'
    '{"model":"llama3.2","created_at":"2025-06-01T10:00:00.145678Z","message":{"role":"assistant","content":" sky"},"done":false}\n'
    f'{{"model":"llama3.2","created_at":"2025-06-01T10:00:00.167890Z","message":{{"role":"assistant","content":" is{LS}blue \\u2014 \\"really\\"\\n"}},"done":false}}\n'
    '{"model":"llama3.2","created_at":"2025-06-01T10:00:00.189012Z","message":{"role":"assistant","content":""},"done":false}\n'
    '{"model":"llama3.2","created_at":"2025-06-01T10:00:00.201234Z","message":{"role":"assistant","content":"☀️\\ud83c\\udf08"},"done":false}\n'
    '{"model":"llama3.2","created_at":"2025-06-01T10:00:00.223456Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,'
    '"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n'
).encode("utf-8")
OLLAMA_TEXT = f'The sky is{LS}blue \u2014 "really"\n☀️🌈'


def ollama_line(content: str = "", *, thinking: Optional[str] = None, done: bool = False, **extra: Any) -> str:
    message: dict = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    obj = {"model": "qwen3", "created_at": "2025-06-01T10:00:00Z", "message": message, "done": done, **extra}
    return json.dumps(obj, ensure_ascii=False) + "\n"


RECORDED = {
    "openai-chat": (OPENAI_CHAT, OPENAI_CHAT_TEXT, Usage(19, 10, 0), Finish("stop", "stop")),
    "openai-responses": (OPENAI_RESPONSES, OPENAI_RESPONSES_TEXT, Usage(37, 11, 0), Finish("stop", "completed")),
    "anthropic": (ANTHROPIC, ANTHROPIC_TEXT, Usage(25, 15, 0), Finish("stop", "end_turn")),
    # Ollama's own rate: eval_count / eval_duration (ns)
    "ollama": (OLLAMA, OLLAMA_TEXT, Usage(26, 282, None, 282 / 4.535599), Finish("stop", "stop")),
}


# ============================================================================================
# every provider: the recorded happy path


@pytest.mark.parametrize("api", list(RECORDED))
def test_recorded_stream_decodes_byte_exact_with_usage_and_finish_last(api: str) -> None:
    wire, text, usage, finish = RECORDED[api]
    events, decoder = run(api, wire)
    assert decoder.done
    assert all(type(e) is not ReasoningDelta for e in events)
    assert text_of(events) == text
    assert [e for e in events if type(e) is Usage] == [usage]
    assert events[-1] == finish
    assert not events[-1].truncated
    assert_well_formed(events)
    # No empty deltas reach the consumer.
    assert all(e.text for e in events if type(e) is TextDelta)


@pytest.mark.parametrize("api", list(RECORDED))
@pytest.mark.parametrize("size", [1, 2, 3, 5, 17])
def test_recorded_stream_is_the_same_however_the_network_cuts_it(api: str, size: int) -> None:
    wire = RECORDED[api][0]
    whole = events_of(api, wire)
    cut = run(api, wire, chunks=range(size, len(wire), size))[0]
    assert cut == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(api=st.sampled_from(list(RECORDED)), data=st.data())
def test_recorded_stream_at_random_cut_points(api: str, data: st.DataObject) -> None:
    wire = RECORDED[api][0]
    cuts = data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=40))
    assert run(api, wire, chunks=cuts)[0] == events_of(api, wire)


@pytest.mark.parametrize("api", ["openai-chat", "openai-responses", "anthropic"])
def test_sse_streams_with_crlf_line_endings_decode_the_same(api: str) -> None:
    wire = RECORDED[api][0]
    crlf = wire.replace(b"\n", b"\r\n")
    assert events_of(api, crlf) == events_of(api, wire)
    # A CRLF split between two reads is still one line ending.
    cuts = [i + 1 for i in range(len(crlf)) if crlf[i : i + 1] == b"\r"]
    assert run(api, crlf, chunks=cuts)[0] == events_of(api, wire)


@pytest.mark.parametrize("api", list(RECORDED))
def test_stream_without_terminal_signal_is_cut_off(api: str) -> None:
    wire, text, _, _ = RECORDED[api]
    marker = {
        "openai-chat": b"data: " + _CHAT_HEAD.encode() + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}',
        "openai-responses": b"event: response.output_text.done",
        "anthropic": b"event: content_block_stop",
        "ollama": b'{"model":"llama3.2","created_at":"2025-06-01T10:00:00.223456Z"',
    }[api]
    truncated = wire[: wire.index(marker)]
    events, decoder = run(api, truncated)
    assert text_of(events) == text  # the partial answer stays delivered
    assert isinstance(events[-1], StreamError)
    assert events[-1].kind == "cutoff"
    assert "cut off" in events[-1].message
    assert decoder.done
    assert_well_formed(events)


@pytest.mark.parametrize("api", list(RECORDED))
def test_empty_body_is_cut_off(api: str) -> None:
    events, _ = run(api, b"")
    assert len(events) == 1 and events[0].kind == "cutoff"


@pytest.mark.parametrize(
    "api, cut_inside, expected_last",
    [
        # The unterminated last event is discarded: no terminal signal was seen.
        ("openai-responses", b'"type":"response.completed"', "cutoff"),
        ("openai-chat", b'"finish_reason":"stop"', "cutoff"),
        # The stop reason arrived (message_delta) before the cut: the answer finished.
        ("anthropic", b'"type":"message_stop"', "finish"),
    ],
)
def test_stream_cut_inside_the_terminal_event(api: str, cut_inside: bytes, expected_last: str) -> None:
    wire, text, _, _ = RECORDED[api]
    events, _ = run(api, wire[: wire.rindex(cut_inside) + 5])
    assert text_of(events) == text
    if expected_last == "cutoff":
        assert isinstance(events[-1], StreamError) and events[-1].kind == "cutoff"
    else:
        assert isinstance(events[-1], Finish)
    assert_well_formed(events)


def test_every_provider_has_a_decoder_that_starts_not_done() -> None:
    assert set(PROVIDERS) == {"openai-chat", "openai-responses", "anthropic", "ollama"}
    for name in PROVIDERS:
        provider = get_provider(name)
        assert provider.name == name  # the lazy table and the classes agree
        assert provider.new_decoder().done is False
    # A fresh decoder per stream: one stream's finish reason does not leak into the next.
    p = get_provider("openai-chat")
    d1, d2 = p.new_decoder(), p.new_decoder()
    (item,) = SSEDecoder().decode(sse(chat({}, "length")))
    assert list(d1.feed(item)) == []
    assert list(d1.end()) == [Finish("length", "length")]
    (cut,) = d2.end()
    assert isinstance(cut, StreamError) and cut.kind == "cutoff"


def test_get_provider_unknown_name_raises_value_error() -> None:
    with pytest.raises(ValueError) as info:
        get_provider("nope")
    assert "nope" in str(info.value)
    assert "openai-chat" in str(info.value)


@pytest.mark.parametrize(
    "name, cls, framing",
    [
        ("openai-chat", OpenAIChat, "sse"),
        ("openai-responses", OpenAIResponses, "sse"),
        ("anthropic", Anthropic, "sse"),
        ("ollama", Ollama, "ndjson"),
    ],
)
def test_get_provider_by_name(name: str, cls: type, framing: str) -> None:
    provider = get_provider(name)
    assert type(provider) is cls
    assert provider.name == name
    assert provider.framing == framing


# ============================================================================================
# OpenAI Chat Completions


def test_chat_events_in_order_usage_then_finish_last() -> None:
    events = events_of("openai-chat", OPENAI_CHAT)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta"] * 5 + ["Usage", "Finish"]
    assert events[0] == TextDelta("Hello")
    assert events[1] == TextDelta(f"! Line{LS}sep")
    assert events[2] == TextDelta(' "quoted" \\ back\nslash\ttab')
    assert events[3] == TextDelta(" 😀 café")
    assert events[4] == TextDelta(f" 🚀{NEL}{PS}")


def test_chat_ends_at_first_done_and_later_data_is_not_read() -> None:
    wire = sse(
        chat({"role": "assistant", "content": ""})
        + chat({"content": "one"})
        + chat({}, "stop")
        + "data: [DONE]\n\n"
        + chat({"content": " AFTER"})
        + "data: [DONE]\n\n"
    )
    events, decoder = run("openai-chat", wire)
    assert decoder.done
    assert events == [TextDelta("one"), Finish("stop", "stop")]


def test_chat_done_without_finish_reason_is_an_unknown_stop_never_an_invented_one() -> None:
    wire = sse(chat({"content": "hi"}) + "data: [DONE]\n\n")
    events, decoder = run("openai-chat", wire)
    assert decoder.done
    assert events[0] == TextDelta("hi")
    assert events[-1] == Finish("unknown", None)


def test_chat_done_sets_done_flag_immediately() -> None:
    decoder = get_provider("openai-chat").new_decoder()
    framing = SSEDecoder()
    (item,) = framing.decode(b"data: [DONE]\n\n")
    out = decoder.feed(item)
    assert decoder.done is True
    assert list(out) == [Finish("unknown", None)]
    assert list(decoder.end()) == []  # nothing more once done


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
    ],
)
def test_chat_finish_reason_is_normalised_and_raw_kept(raw: str, reason: str) -> None:
    wire = sse(chat({"content": "x"}) + chat({}, raw) + "data: [DONE]\n\n")
    events = events_of("openai-chat", wire)
    assert events[-1] == Finish(reason, raw)
    assert events[-1].truncated is (reason == "length")


def test_chat_unknown_finish_reason_is_kept() -> None:
    events = events_of("openai-chat", sse(chat({"content": "x"}) + chat({}, "eos_token") + "data: [DONE]\n\n"))
    assert events[-1] == Finish("eos_token", "eos_token")


def test_chat_length_stop_is_truncated() -> None:
    wire = sse(
        chat({"role": "assistant", "content": ""})
        + chat({"content": "The answer is"})
        + chat({}, "length")
        + f'data: {_CHAT_HEAD}"choices":[],"usage":{{"prompt_tokens":8,"completion_tokens":3,"total_tokens":11}}}}\n\n'
        + "data: [DONE]\n\n"
    )
    events = events_of("openai-chat", wire)
    assert events[-2:] == [Usage(8, 3), Finish("length", "length")]
    assert events[-1].truncated


def test_chat_finish_reason_then_eof_without_done_is_finish_not_cutoff() -> None:
    wire = sse(chat({"content": "all"}) + chat({}, "stop"))
    events, decoder = run("openai-chat", wire)
    assert events == [TextDelta("all"), Finish("stop", "stop")]
    assert decoder.done


def test_chat_finish_reason_then_usage_then_eof_emits_finish_last() -> None:
    wire = sse(
        chat({"content": "all"})
        + chat({}, "length")
        + f'data: {_CHAT_HEAD}"choices":[],"usage":{{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}}}\n\n'
    )
    events = events_of("openai-chat", wire)
    assert events == [TextDelta("all"), Usage(4, 1), Finish("length", "length")]


def test_chat_content_and_finish_reason_in_one_chunk() -> None:
    # llama.cpp / vLLM sometimes put the last text and the finish reason in the same chunk.
    wire = sse(chat({"content": "last"}, "stop") + "data: [DONE]\n\n")
    assert events_of("openai-chat", wire) == [TextDelta("last"), Finish("stop", "stop")]


def test_chat_usage_inside_the_finish_chunk() -> None:
    wire = sse(chat({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}) + "data: [DONE]\n\n")
    assert events_of("openai-chat", wire) == [Usage(3, 2), Finish("stop", "stop")]


def test_chat_without_usage_reports_no_usage() -> None:
    wire = sse(chat({"content": "a"}) + chat({}, "stop") + "data: [DONE]\n\n")
    assert not [e for e in events_of("openai-chat", wire) if type(e) is Usage]


def test_chat_refusal_is_answer_text() -> None:
    wire = sse(
        chat({"role": "assistant", "content": None, "refusal": ""})
        + chat({"refusal": "I'm sorry,"})
        + chat({"refusal": " I can't help with that."})
        + chat({}, "stop")
        + "data: [DONE]\n\n"
    )
    events = events_of("openai-chat", wire)
    assert events == [
        TextDelta("I'm sorry,"),
        TextDelta(" I can't help with that."),
        Finish("stop", "stop"),
    ]


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_chat_reasoning_is_reasoning_never_text(key: str) -> None:
    # reasoning_content: DeepSeek, vLLM, llama.cpp; reasoning: OpenRouter, Ollama's /v1, Groq.
    wire = sse(
        chat({"role": "assistant", "content": None, key: ""})
        + chat({"content": None, key: "Let me think"})
        + chat({"content": "", key: " about 2+2."})
        + chat({"content": "4", key: None})
        + chat({}, "stop")
        + "data: [DONE]\n\n"
    )
    events = events_of("openai-chat", wire)
    assert events == [
        ReasoningDelta("Let me think"),
        ReasoningDelta(" about 2+2."),
        TextDelta("4"),
        Finish("stop", "stop"),
    ]


def test_chat_tool_call_fragments_become_one_complete_tool_call_before_the_finish() -> None:
    wire = sse(
        chat(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
                ],
                "refusal": None,
            }
        )
        + chat({"tool_calls": [{"index": 0, "function": {"arguments": '{"'}}]})
        + chat({"tool_calls": [{"index": 0, "function": {"arguments": 'location": "Paris"}'}}]})
        + chat({}, "tool_calls")
        + "data: [DONE]\n\n"
    )
    assert events_of("openai-chat", wire) == [
        ToolCall("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", '{"location": "Paris"}'),
        Finish("tool_calls", "tool_calls"),
    ]


def test_chat_empty_deltas_role_only_and_unknown_keys_produce_nothing() -> None:
    wire = sse(
        chat({"role": "assistant"})
        + chat({})
        + chat({"content": ""})
        + chat({"content": None})
        + chat({"content": "x"}, None, brand_new_field={"nested": [1, 2]}, obfuscation="Zz")
        + 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":null,"finish_reason":null}]}\n\n'
        + chat({}, "stop")
        + "data: [DONE]\n\n"
    )
    assert events_of("openai-chat", wire) == [TextDelta("x"), Finish("stop", "stop")]


def test_chat_azure_prompt_filter_chunk_with_empty_choices_produces_nothing() -> None:
    wire = sse(
        'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n'
        + chat({"content": "ok"})
        + chat({}, "content_filter")
        + "data: [DONE]\n\n"
    )
    events = events_of("openai-chat", wire)
    assert events == [TextDelta("ok"), Finish("content_filter", "content_filter")]


def test_chat_comments_and_unknown_sse_fields_are_ignored() -> None:
    wire = sse(
        ": OPENROUTER PROCESSING\n\n"
        + "id: 7\nretry: 1000\nfoo: bar\n"
        + chat({"content": "a"})
        + ": keep-alive\n\n"
        + chat({}, "stop")
        + "data: [DONE]\n\n"
    )
    assert events_of("openai-chat", wire) == [TextDelta("a"), Finish("stop", "stop")]


def test_chat_error_chunk_mid_stream_is_an_error_after_the_text() -> None:
    wire = sse(
        chat({"content": "partial"})
        + 'data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}\n\n'
        + chat({"content": " never"})
    )
    events, decoder = run("openai-chat", wire)
    assert decoder.done
    assert events[0] == TextDelta("partial")
    err = events[-1]
    assert isinstance(err, StreamError)
    assert err.kind == "api"
    assert "The server had an error while processing your request. Sorry about that!" in err.message
    assert text_of(events) == "partial"
    assert_well_formed(events)


def test_chat_event_error_with_json_payload() -> None:
    wire = sse(chat({"content": "a"}) + 'event: error\ndata: {"error":{"message":"Upstream idle timeout exceeded","code":502}}\n\n')
    events, decoder = run("openai-chat", wire)
    assert decoder.done
    assert isinstance(events[-1], StreamError)
    assert "Upstream idle timeout exceeded" in events[-1].message


def test_chat_event_error_with_plain_text_payload() -> None:
    wire = sse("event: error\ndata: upstream connect error or disconnect/reset before headers\n\n")
    events = events_of("openai-chat", wire)
    assert events == [StreamError("upstream connect error or disconnect/reset before headers", kind="api")]


def test_chat_malformed_json_is_a_protocol_error() -> None:
    decoder = get_provider("openai-chat").new_decoder()
    (item,) = SSEDecoder().decode(b'data: {"choices": [\n\n')
    with pytest.raises(ProtocolError) as info:
        decoder.feed(item)
    assert "not JSON" in str(info.value)


def test_chat_usage_only_then_eof_is_cut_off() -> None:
    wire = sse(chat({"content": "a"}) + f'data: {_CHAT_HEAD}"choices":[],"usage":{{"prompt_tokens":1,"completion_tokens":1}}}}\n\n')
    events = events_of("openai-chat", wire)
    assert events[:2] == [TextDelta("a"), Usage(1, 1)]
    assert events[-1].kind == "cutoff"


# ============================================================================================
# OpenAI Responses


def test_responses_done_events_do_not_repeat_the_text() -> None:
    events = events_of("openai-responses", OPENAI_RESPONSES)
    assert [type(e) for e in events] == [TextDelta] * 3 + [Usage, Finish]
    assert events[-1] == Finish("stop", "completed")


def test_responses_without_event_lines_decodes_from_payload_type() -> None:
    stripped = b"\n".join(line for line in OPENAI_RESPONSES.split(b"\n") if not line.startswith(b"event:"))
    assert events_of("openai-responses", stripped) == events_of("openai-responses", OPENAI_RESPONSES)


def test_responses_refusal_is_answer_text() -> None:
    wire = sse(
        _RESP_START
        + resp(
            "response.content_part.added",
            sequence_number=1,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            part={"type": "refusal", "refusal": ""},
        )
        + resp("response.refusal.delta", sequence_number=2, item_id="msg_1", output_index=0, content_index=0, delta="I can't")
        + resp("response.refusal.delta", sequence_number=3, item_id="msg_1", output_index=0, content_index=0, delta=" help with that.")
        + resp("response.refusal.done", sequence_number=4, item_id="msg_1", output_index=0, content_index=0, refusal="I can't help with that.")
        + resp_final("response.completed", "completed", {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11})
    )
    events = events_of("openai-responses", wire)
    assert events == [TextDelta("I can't"), TextDelta(" help with that."), Usage(5, 6), Finish("stop", "completed")]


def test_responses_reasoning_is_reasoning_never_text() -> None:
    wire = sse(
        _RESP_START
        + resp("response.output_item.added", sequence_number=1, output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []})
        + resp(
            "response.reasoning_summary_part.added",
            sequence_number=2,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )
        + resp("response.reasoning_summary_text.delta", sequence_number=3, item_id="rs_1", output_index=0, summary_index=0, delta="**Adding**")
        + resp("response.reasoning_summary_text.delta", sequence_number=4, item_id="rs_1", output_index=0, summary_index=0, delta=" two numbers")
        + resp(
            "response.reasoning_summary_text.done", sequence_number=5, item_id="rs_1", output_index=0, summary_index=0, text="**Adding** two numbers"
        )
        + resp("response.reasoning_text.delta", sequence_number=6, item_id="rs_1", output_index=0, content_index=0, delta=" raw")
        + resp("response.output_text.delta", sequence_number=7, item_id="msg_1", output_index=1, content_index=0, delta="4")
        + resp_final(
            "response.completed",
            "completed",
            {"input_tokens": 9, "output_tokens": 70, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 79},
        )
    )
    events = events_of("openai-responses", wire)
    assert events == [
        ReasoningDelta("**Adding**"),
        ReasoningDelta(" two numbers"),
        ReasoningDelta(" raw"),
        TextDelta("4"),
        Usage(9, 70),
        Finish("stop", "completed"),
    ]


def test_responses_stray_done_is_ignored() -> None:
    wire = sse(
        _RESP_START
        + resp("response.output_text.delta", sequence_number=1, delta="a")
        + "data: [DONE]\n\n"
        + resp("response.output_text.delta", sequence_number=2, delta="b")
        + resp_final("response.completed", "completed")
        + "data: [DONE]\n\n"
    )
    events, decoder = run("openai-responses", wire)
    assert decoder.done
    assert events == [TextDelta("a"), TextDelta("b"), Finish("stop", "completed")]


def test_responses_stray_done_alone_is_not_terminal() -> None:
    events, decoder = run("openai-responses", sse(resp("response.output_text.delta", delta="a") + "data: [DONE]\n\n"))
    assert events[0] == TextDelta("a")
    assert events[-1].kind == "cutoff"


def test_responses_incomplete_max_output_tokens_is_a_length_finish() -> None:
    wire = sse(
        _RESP_START
        + resp("response.output_text.delta", sequence_number=1, delta="The answer")
        + resp_final(
            "response.incomplete",
            "incomplete",
            {"input_tokens": 10, "output_tokens": 16, "total_tokens": 26},
            incomplete_details={"reason": "max_output_tokens"},
        )
    )
    events, decoder = run("openai-responses", wire)
    assert decoder.done
    assert events == [TextDelta("The answer"), Usage(10, 16), Finish("length", "max_output_tokens")]
    assert events[-1].truncated


def test_responses_incomplete_content_filter() -> None:
    wire = sse(_RESP_START + resp_final("response.incomplete", "incomplete", incomplete_details={"reason": "content_filter"}))
    events = events_of("openai-responses", wire)
    assert events == [Finish("content_filter", "content_filter")]
    assert not events[-1].truncated


def test_responses_failed_is_an_error_with_the_servers_message() -> None:
    wire = sse(
        _RESP_START
        + resp("response.output_text.delta", sequence_number=1, delta="half")
        + resp_final("response.failed", "failed", error={"code": "server_error", "message": "The model produced invalid content."})
    )
    events, decoder = run("openai-responses", wire)
    assert decoder.done
    assert events[0] == TextDelta("half")
    err = events[-1]
    assert isinstance(err, StreamError) and err.kind == "api"
    assert "The model produced invalid content." in err.message
    assert_well_formed(events)


def test_responses_error_event_with_json() -> None:
    wire = sse(
        _RESP_START
        + resp("response.output_text.delta", sequence_number=1, delta="x")
        + 'event: error\ndata: {"type":"error","sequence_number":2,"code":"rate_limit_exceeded","message":"Rate limit reached for gpt-4.1 in organization org-123 on tokens per min.","param":null}\n\n'
    )
    events, decoder = run("openai-responses", wire)
    assert decoder.done
    assert isinstance(events[-1], StreamError)
    assert "Rate limit reached for gpt-4.1 in organization org-123 on tokens per min." in events[-1].message


def test_responses_error_event_with_nested_error_object() -> None:
    wire = sse('event: error\ndata: {"type":"error","error":{"type":"invalid_request_error","message":"Invalid prompt"}}\n\n')
    events = events_of("openai-responses", wire)
    assert isinstance(events[-1], StreamError)
    assert "Invalid prompt" in events[-1].message


def test_responses_error_event_with_plain_text() -> None:
    events = events_of("openai-responses", sse("event: error\ndata: stream timeout\n\n"))
    assert events == [StreamError("stream timeout", kind="api")]


def test_responses_unknown_and_tool_events_produce_nothing() -> None:
    wire = sse(
        _RESP_START
        + resp("response.web_search_call.in_progress", sequence_number=1, output_index=0, item_id="ws_1")
        + resp("response.function_call_arguments.delta", sequence_number=2, item_id="fc_1", output_index=0, delta='{"city":')
        + resp("response.function_call_arguments.done", sequence_number=3, item_id="fc_1", output_index=0, arguments='{"city":"Paris"}')
        + resp("response.output_text.annotation.added", sequence_number=4, annotation={"type": "url_citation"})
        + resp("response.output_text.delta", sequence_number=5, delta="", logprobs=[])
        + resp("response.some_future_event", sequence_number=6, delta="not text")
        + resp("response.output_text.delta", sequence_number=7, delta="ok", future_key=[1])
        + resp_final("response.completed", "completed")
    )
    assert events_of("openai-responses", wire) == [TextDelta("ok"), Finish("stop", "completed")]


def test_responses_completed_without_usage_has_no_usage_event() -> None:
    events = events_of("openai-responses", sse(resp_final("response.completed", "completed")))
    assert events == [Finish("stop", "completed")]


# ============================================================================================
# Anthropic Messages


def test_anthropic_usage_combines_message_start_input_and_message_delta_output() -> None:
    events = events_of("anthropic", ANTHROPIC)
    assert [type(e) for e in events] == [TextDelta] * 3 + [Usage, Finish]
    assert events[-2] == Usage(25, 15, 0)


def test_anthropic_message_delta_input_tokens_win_when_present() -> None:
    wire = sse(
        _MSG_START
        + block_delta(0, {"type": "text_delta", "text": "x"})
        + 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":30,"cache_read_input_tokens":0,"output_tokens":2}}\n\n'
        + _MSG_STOP
    )
    assert events_of("anthropic", wire)[-2] == Usage(30, 2, 0)


def test_anthropic_thinking_is_reasoning_and_signature_is_skipped() -> None:
    wire = sse(
        _MSG_START
        + 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
        + block_delta(0, {"type": "thinking_delta", "thinking": "Let me solve this step by step:\n\n1. 27 * 453"})
        + block_delta(0, {"type": "thinking_delta", "thinking": "\n2. = 12231"})
        + block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"})
        + 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        + 'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n'
        + block_delta(1, {"type": "text_delta", "text": "27 * 453 = 12,231"})
        + 'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
        + message_delta("end_turn", 40)
        + _MSG_STOP
    )
    events = events_of("anthropic", wire)
    assert events == [
        ReasoningDelta("Let me solve this step by step:\n\n1. 27 * 453"),
        ReasoningDelta("\n2. = 12231"),
        TextDelta("27 * 453 = 12,231"),
        Usage(12, 40),
        Finish("stop", "end_turn"),
    ]


def test_anthropic_tool_use_block_becomes_one_tool_call_with_its_joined_input() -> None:
    wire = sse(
        _MSG_START
        + 'event: ping\ndata: {"type": "ping"}\n\n'
        + 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
        + block_delta(0, {"type": "input_json_delta", "partial_json": ""})
        + block_delta(0, {"type": "input_json_delta", "partial_json": '{"location": "San Fra'})
        + block_delta(0, {"type": "input_json_delta", "partial_json": 'ncisco, CA"}'})
        + 'event: ping\ndata: {"type": "ping"}\n\n'
        + 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        + message_delta("tool_use", 89)
        + _MSG_STOP
    )
    assert events_of("anthropic", wire) == [
        ToolCall("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", '{"location": "San Francisco, CA"}'),
        Usage(12, 89),
        Finish("tool_calls", "tool_use"),
    ]


def test_anthropic_unknown_events_unknown_delta_types_and_empty_text_produce_nothing() -> None:
    wire = sse(
        _MSG_START
        + 'event: brand_new_event\ndata: {"type":"brand_new_event","text":"not text"}\n\n'
        + block_delta(0, {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}})
        + block_delta(0, {"type": "text_delta", "text": ""})
        + block_delta(0, {"type": "thinking_delta", "thinking": ""})
        + block_delta(0, {"type": "text_delta", "text": "ok", "future": True})
        + message_delta("end_turn", 1)
        + _MSG_STOP
    )
    assert events_of("anthropic", wire) == [TextDelta("ok"), Usage(12, 1), Finish("stop", "end_turn")]


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_anthropic_stop_reason_is_normalised_and_raw_kept(raw: str, reason: str) -> None:
    wire = sse(_MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}) + message_delta(raw) + _MSG_STOP)
    events = events_of("anthropic", wire)
    assert events[-1] == Finish(reason, raw)
    assert events[-1].truncated is (raw == "max_tokens")


def test_anthropic_message_delta_stop_reason_then_eof_is_finish() -> None:
    wire = sse(_MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}) + message_delta("max_tokens", 3))
    events, decoder = run("anthropic", wire)
    assert events == [TextDelta("a"), Usage(12, 3), Finish("length", "max_tokens")]
    assert events[-1].truncated
    assert decoder.done


def test_anthropic_message_stop_without_a_stop_reason_is_an_unknown_stop() -> None:
    events = events_of("anthropic", sse(_MSG_START + block_delta(0, {"type": "text_delta", "text": "a"}) + _MSG_STOP))
    assert events == [TextDelta("a"), Finish("unknown", None)]


def test_anthropic_error_event_mid_stream() -> None:
    wire = sse(
        _MSG_START
        + block_delta(0, {"type": "text_delta", "text": "partial"})
        + 'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
        + block_delta(0, {"type": "text_delta", "text": " never"})
    )
    events, decoder = run("anthropic", wire)
    assert decoder.done
    assert events[0] == TextDelta("partial")
    err = events[-1]
    assert isinstance(err, StreamError) and err.kind == "api"
    assert "Overloaded" in err.message
    assert_well_formed(events)


def test_anthropic_error_event_plain_text() -> None:
    events = events_of("anthropic", sse("event: error\ndata: Internal server error\n\n"))
    assert events == [StreamError("Internal server error", kind="api")]


# ============================================================================================
# Ollama


def test_ollama_events_in_order() -> None:
    events = events_of("ollama", OLLAMA)
    assert events == [
        TextDelta("The"),
        TextDelta(" sky"),
        TextDelta(f' is{LS}blue \u2014 "really"\n'),
        TextDelta("☀️🌈"),
        Usage(26, 282, None, 282 / 4.535599),
        Finish("stop", "stop"),
    ]


def test_ollama_thinking_is_reasoning_never_text() -> None:
    wire = (
        ollama_line("", thinking="Okay, the user")
        + ollama_line("", thinking=" wants a greeting.")
        + ollama_line("Hi", thinking=None)
        + ollama_line("!")
        + ollama_line("", done=True, done_reason="stop", prompt_eval_count=11, eval_count=9)
    ).encode()
    events = events_of("ollama", wire)
    assert events == [
        ReasoningDelta("Okay, the user"),
        ReasoningDelta(" wants a greeting."),
        TextDelta("Hi"),
        TextDelta("!"),
        Usage(11, 9),
        Finish("stop", "stop"),
    ]


def test_ollama_length_stop_is_truncated() -> None:
    wire = (ollama_line("cut") + ollama_line("", done=True, done_reason="length", prompt_eval_count=3, eval_count=1)).encode()
    events = events_of("ollama", wire)
    assert events[-1] == Finish("length", "length")
    assert events[-1].truncated


def test_ollama_done_without_done_reason_is_an_unknown_stop_and_without_counts_has_no_usage() -> None:
    events = events_of("ollama", (ollama_line("a") + ollama_line("", done=True)).encode())
    assert events == [TextDelta("a"), Finish("unknown", None)]


def test_ollama_final_line_may_carry_text() -> None:
    events = events_of("ollama", ollama_line("tail", done=True, done_reason="stop", eval_count=1).encode())
    assert events == [TextDelta("tail"), Usage(None, 1), Finish("stop", "stop")]


def test_ollama_error_line_mid_stream() -> None:
    wire = (
        ollama_line("partial") + '{"error":"an error was encountered while running the model: unexpected EOF"}\n' + ollama_line(" never")
    ).encode()
    events, decoder = run("ollama", wire)
    assert decoder.done
    assert events[0] == TextDelta("partial")
    err = events[-1]
    assert isinstance(err, StreamError) and err.kind == "api"
    assert "an error was encountered while running the model: unexpected EOF" in err.message
    assert_well_formed(events)


def test_ollama_unknown_keys_empty_content_and_non_objects_produce_nothing() -> None:
    wire = (
        ollama_line("", images=None, tool_calls=[{"function": {"name": "f", "arguments": {}}}])
        + '{"model":"qwen3","created_at":"x","done":false}\n'
        + "\n"
        + "[1, 2]\n"
        + ollama_line("ok", future={"k": 1})
        + ollama_line("", done=True, done_reason="stop")
    ).encode()
    assert events_of("ollama", wire) == [TextDelta("ok"), Finish("stop", "stop")]


def test_ollama_crlf_lines_decode_the_same() -> None:
    assert events_of("ollama", OLLAMA.replace(b"\n", b"\r\n")) == events_of("ollama", OLLAMA)


def test_ollama_final_line_without_newline_is_still_read() -> None:
    events, decoder = run("ollama", OLLAMA.rstrip(b"\n"))
    assert events[-1] == Finish("stop", "stop")
    assert decoder.done


# ============================================================================================
# build_request


def req(base_url: str, **kw: Any) -> ChatRequest:
    messages = kw.pop(
        "messages",
        [Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "2+2?")],
    )
    return ChatRequest(model=kw.pop("model", "m-1"), messages=messages, base_url=base_url, **kw)


def test_openai_chat_build_request_official_host() -> None:
    http = OpenAIChat().build_request(req("https://api.openai.com/v1/", system="Be brief.", temperature=0.0, max_tokens=64, api_key="sk-test-123"))
    assert http.url == "https://api.openai.com/v1/chat/completions"
    assert http.headers["Authorization"] == "Bearer sk-test-123"
    assert http.headers["Accept"] == "text/event-stream"
    assert http.json == {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "2+2?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "max_completion_tokens": 64,
    }
    assert "max_tokens" not in http.json
    assert "sk-test-123" not in repr(http)


def test_openai_chat_build_request_compatible_host_uses_max_tokens_and_no_auth_without_key() -> None:
    http = OpenAIChat().build_request(req("http://127.0.0.1:8000/v1", max_tokens=10))
    assert http.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert http.json["max_tokens"] == 10
    assert "max_completion_tokens" not in http.json
    assert "Authorization" not in http.headers
    assert "temperature" not in http.json
    assert http.json["stream"] is True
    assert http.json["stream_options"] == {"include_usage": True}
    assert http.json["messages"][0] == {"role": "user", "content": "Hi"}  # no system prompt given


def test_openai_chat_build_request_without_max_tokens_sends_neither_field() -> None:
    body = OpenAIChat().build_request(req("https://api.openai.com/v1")).json
    assert "max_tokens" not in body and "max_completion_tokens" not in body


def test_openai_responses_build_request() -> None:
    http = OpenAIResponses().build_request(req("https://api.openai.com/v1", system="Be brief.", temperature=0.7, max_tokens=128, api_key="sk-abc"))
    assert http.url == "https://api.openai.com/v1/responses"
    assert http.headers["Authorization"] == "Bearer sk-abc"
    assert http.headers["Accept"] == "text/event-stream"
    assert http.json == {
        "model": "m-1",
        "input": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "2+2?"},
        ],
        "stream": True,
        "instructions": "Be brief.",
        "temperature": 0.7,
        "max_output_tokens": 128,
    }


def test_openai_responses_build_request_minimal() -> None:
    http = OpenAIResponses().build_request(req("http://127.0.0.1:9/v1/"))
    assert http.url == "http://127.0.0.1:9/v1/responses"
    assert "Authorization" not in http.headers
    assert http.json["stream"] is True
    for key in ("instructions", "temperature", "max_output_tokens", "max_tokens"):
        assert key not in http.json


def test_anthropic_build_request() -> None:
    http = Anthropic().build_request(req("https://api.anthropic.com", system="Be brief.", temperature=0.2, max_tokens=256, api_key="sk-ant-xyz"))
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers["x-api-key"] == "sk-ant-xyz"
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in http.headers
    assert http.json == {
        "model": "m-1",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "2+2?"},
        ],
        "max_tokens": 256,
        "stream": True,
        "system": "Be brief.",
        "temperature": 0.2,
    }


def test_anthropic_build_request_defaults() -> None:
    http = Anthropic().build_request(req("http://127.0.0.1:9/"))
    assert http.url == "http://127.0.0.1:9/v1/messages"
    assert http.json["max_tokens"] == 4096  # the API requires it
    assert http.json["stream"] is True
    assert "system" not in http.json and "temperature" not in http.json
    assert "x-api-key" not in http.headers
    assert http.headers["anthropic-version"] == "2023-06-01"


def test_ollama_build_request() -> None:
    http = Ollama().build_request(req("http://127.0.0.1:11434/", system="Be brief.", temperature=0.0, max_tokens=32))
    assert http.url == "http://127.0.0.1:11434/api/chat"
    assert http.headers["Accept"] == "application/x-ndjson"
    assert "Authorization" not in http.headers
    assert http.json == {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "2+2?"},
        ],
        "stream": True,
        "options": {"temperature": 0.0, "num_predict": 32},
    }


def test_ollama_build_request_minimal_and_with_proxy_key() -> None:
    plain = Ollama().build_request(req("http://localhost:11434"))
    assert "options" not in plain.json
    assert plain.json["stream"] is True
    keyed = Ollama().build_request(req("http://localhost:11434", api_key="proxy-key"))
    assert keyed.headers["Authorization"] == "Bearer proxy-key"


@pytest.mark.parametrize("cls", [OpenAIChat, OpenAIResponses, Anthropic, Ollama])
def test_build_request_key_never_in_repr(cls: type) -> None:
    http = cls().build_request(req("http://127.0.0.1:1", api_key="sk-secret-value"))
    assert "sk-secret-value" not in repr(http)
    assert "sk-secret-value" not in repr(req("http://127.0.0.1:1", api_key="sk-secret-value"))
    assert "sk-secret-value" not in json.dumps(http.json)


# ============================================================================================
# normalise_host (OLLAMA_HOST as Ollama's own client reads it)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("", "http://127.0.0.1:11434"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        ("example.com", "http://example.com:11434"),
        ("example.com:1234", "http://example.com:1234"),
        ("https://x", "https://x:443"),
        ("https://example.com:56789", "https://example.com:56789"),
        ("http://h:1/", "http://h:1"),
        ("example.com/", "http://example.com:11434"),
        ("example.com/path", "http://example.com:11434/path"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("https://example.com:56789/path", "https://example.com:56789/path"),
        ("  1.2.3.4  ", "http://1.2.3.4:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:5000", "http://[::1]:5000"),
        # Ollama's clients (Go envconfig.Host and ollama-python _parse_host): an explicit
        # http:// scheme without a port means port 80, and ":port" alone means local.
        ("http://1.2.3.4", "http://1.2.3.4:80"),
        ("http://example.com", "http://example.com:80"),
        (":56789", "http://127.0.0.1:56789"),
    ],
)
def test_normalise_host(value: str, expected: str) -> None:
    assert normalise_host(value) == expected


def test_a_stray_done_is_ignored_by_anthropic():
    from llmchat.providers import get_provider
    from llmchat.stream.sse import SSEDecoder

    body = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello."}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    decoder = get_provider("anthropic").new_decoder()
    events = [e for item in SSEDecoder().decode(body) for e in decoder.feed(item)]
    assert [type(e).__name__ for e in events] == ["TextDelta", "Usage", "Finish"]
    assert decoder.done
