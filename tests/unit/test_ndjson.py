"""Unit tests for the incremental NDJSON decoder (Ollama's streaming format)."""

from __future__ import annotations

import json
from typing import Any, List, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmchat.stream.ndjson import NDJSONDecoder, NDJSONError

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_all(*chunks: bytes) -> List[Any]:
    decoder = NDJSONDecoder()
    values: List[Any] = []
    for chunk in chunks:
        values.extend(decoder.decode(chunk))
    values.extend(decoder.flush())
    return values


def split_at(raw: bytes, points: Sequence[int]) -> List[bytes]:
    chunks = []
    prev = 0
    for p in sorted(points):
        chunks.append(raw[prev:p])
        prev = p
    chunks.append(raw[prev:])
    return chunks


def bytewise(raw: bytes) -> List[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


# --------------------------------------------------------------------------------------------
# basics


def test_error_is_a_value_error():
    assert issubclass(NDJSONError, ValueError)


def test_single_line():
    d = NDJSONDecoder()
    assert d.decode(b'{"a": 1}\n') == [{"a": 1}]
    assert d.flush() == []


def test_several_lines_in_one_chunk():
    assert NDJSONDecoder().decode(b'{"a":1}\n[2]\n"s"\n3\nnull\ntrue\n') == [
        {"a": 1},
        [2],
        "s",
        3,
        None,
        True,
    ]


def test_ollama_like_stream():
    raw = (
        b'{"model":"m","message":{"role":"assistant","content":"Hel"},"done":false}\n'
        b'{"model":"m","message":{"role":"assistant","content":"lo"},"done":false}\n'
        b'{"model":"m","done":true,"eval_count":2}\n'
    )
    values = decode_all(raw)
    assert "".join(v["message"]["content"] for v in values if not v["done"]) == "Hello"
    assert values[-1] == {"model": "m", "done": True, "eval_count": 2}


def test_values_returned_when_their_lf_arrives():
    d = NDJSONDecoder()
    assert d.decode(b'{"a":') == []
    assert d.decode(b"1}") == []
    assert d.decode(b"\n[") == [{"a": 1}]
    assert d.decode(b"2]\n") == [[2]]
    assert d.flush() == []


# --------------------------------------------------------------------------------------------
# line endings, blank lines


def test_crlf_line_endings():
    assert decode_all(b'{"a":1}\r\n{"b":2}\r\n') == [{"a": 1}, {"b": 2}]


def test_crlf_split_across_reads():
    d = NDJSONDecoder()
    assert d.decode(b'{"a":1}\r') == []
    assert d.decode(b"\n") == [{"a": 1}]
    assert d.decode(b"2\r") == []
    assert d.flush() == [2]


def test_mixed_lf_and_crlf():
    assert decode_all(b"1\n2\r\n3\n4\r\n") == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "raw",
    [
        b"\n1\n\n\n2\n\n",
        b"\r\n1\r\n\r\n2\r\n",
        b"   \n1\n\t\n  \t \r\n2\n \n",
        b"1\n \n2",
        b"\n\n1\n2\n   ",
    ],
)
def test_blank_and_whitespace_only_lines_skipped(raw):
    assert decode_all(raw) == [1, 2]


def test_only_blank_lines():
    assert decode_all(b"\n\r\n  \n\t\n") == []
    assert decode_all(b"   ") == []


def test_whitespace_around_value_ignored():
    assert decode_all(b'  {"a": 1}  \n\t[1]\t\r\n') == [{"a": 1}, [1]]


# --------------------------------------------------------------------------------------------
# splits


def test_line_split_across_reads():
    raw = b'{"message": {"content": "hello world"}, "done": false}\n'
    expected = [{"message": {"content": "hello world"}, "done": False}]
    for cut in range(len(raw) + 1):
        assert decode_all(raw[:cut], raw[cut:]) == expected, cut
    assert decode_all(*bytewise(raw)) == expected


@pytest.mark.parametrize("char", ["é", "€", "😀", "\u2028", "\U0010ffff"])
def test_multibyte_char_split_at_every_byte_position(char):
    raw = json.dumps({"t": f"a{char}b"}, ensure_ascii=False).encode() + b"\n"
    encoded = char.encode()
    start = raw.index(encoded)
    for k in range(1, len(encoded)):
        cut = start + k
        assert decode_all(raw[:cut], raw[cut:]) == [{"t": f"a{char}b"}], (char, k)
    assert decode_all(*bytewise(raw)) == [{"t": f"a{char}b"}]


def test_empty_chunks_harmless():
    d = NDJSONDecoder()
    assert d.decode(b"") == []
    assert d.decode(b"[1") == []
    assert d.decode(b"") == []
    assert d.decode(b"]\n") == [[1]]
    assert d.decode(b"") == []
    assert d.decode(b"2") == []
    assert d.decode(b"") == []
    assert d.flush() == [2]


# --------------------------------------------------------------------------------------------
# end of stream


def test_final_line_without_lf_returned_by_flush():
    d = NDJSONDecoder()
    assert d.decode(b'{"a":1}\n{"done": true}') == [{"a": 1}]
    assert d.flush() == [{"done": True}]


def test_final_line_with_cr_only_returned_by_flush():
    d = NDJSONDecoder()
    assert d.decode(b'{"done": true}\r') == []
    assert d.flush() == [{"done": True}]


def test_flush_is_idempotent_and_resets():
    d = NDJSONDecoder()
    d.decode(b"[1]")
    assert d.flush() == [[1]]
    assert d.flush() == []
    assert d.decode(b"2\n") == [2]


def test_flush_on_fresh_decoder():
    assert NDJSONDecoder().flush() == []


def test_flush_whitespace_only_tail():
    d = NDJSONDecoder()
    assert d.decode(b"1\n  \t") == [1]
    assert d.flush() == []


def test_flush_invalid_tail_raises():
    d = NDJSONDecoder()
    assert d.decode(b'1\n{"trunc') == [1]
    with pytest.raises(NDJSONError, match="trunc"):
        d.flush()


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        b'{"a": 1',
        b"{'a': 1}",
        b'{"a": 1}}',
        b"1 2",
        b"[1,]",
        b'"unterminated',
        b"data: {}",  # an SSE line sent to the NDJSON decoder
    ],
)
def test_invalid_json_raises_with_the_line(bad):
    d = NDJSONDecoder()
    with pytest.raises(NDJSONError) as info:
        d.decode(bad + b"\n")
    assert bad.decode() in str(info.value)
    assert isinstance(info.value, ValueError)
    # the cause is kept for debugging
    assert isinstance(info.value.__cause__, ValueError)


def test_invalid_line_among_valid_ones_raises():
    with pytest.raises(NDJSONError, match="oops"):
        NDJSONDecoder().decode(b"1\noops\n2\n")


def test_invalid_utf8_raises_ndjson_error():
    with pytest.raises(NDJSONError):
        NDJSONDecoder().decode(b'{"a": "\xff"}\n')


def test_error_message_for_long_line_is_bounded_but_shows_start():
    bad = b"x" * 10_000
    with pytest.raises(NDJSONError) as info:
        NDJSONDecoder().decode(bad + b"\n")
    message = str(info.value)
    assert "xxxxxxxx" in message
    assert len(message) < 1000


def test_error_on_line_split_across_reads_shows_whole_line():
    d = NDJSONDecoder()
    assert d.decode(b"bro") == []
    with pytest.raises(NDJSONError, match="broken"):
        d.decode(b"ken\n")


# --------------------------------------------------------------------------------------------
# unicode


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085"])
def test_unicode_separators_inside_json_string_kept(char):
    # str.splitlines() would split at these; the decoder must split at LF only.
    value = {"t": f"a{char}b{char}"}
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert char.encode() in raw  # raw, not escaped
    assert decode_all(raw + b"\n" + raw + b"\n") == [value, value]


def test_escaped_newlines_in_strings_kept():
    assert decode_all(b'{"t": "a\\nb\\r\\nc"}\n') == [{"t": "a\nb\r\nc"}]


def test_non_ascii_roundtrip():
    value = {"content": "héllo € 😀 日本語", "emoji": "\U0001f600"}
    assert decode_all(json.dumps(value, ensure_ascii=False).encode() + b"\n") == [value]
    assert decode_all(json.dumps(value).encode() + b"\n") == [value]


# --------------------------------------------------------------------------------------------
# property tests

_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u2028", "\u2029", "\u0085", "😀", "é", "\n", "\r", '"', "\\"]),
    ),
    max_size=10,
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)


@st.composite
def ndjson_streams(draw):
    values = draw(st.lists(_JSON, max_size=6))
    out = bytearray()
    for value in values:
        for _ in range(draw(st.integers(0, 2))):  # blank / whitespace-only lines
            out += draw(st.sampled_from([b"", b" ", b"\t", b"  \r"])) + draw(st.sampled_from([b"\n", b"\r\n"]))
        out += json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
        out += draw(st.sampled_from([b"\n", b"\r\n"]))
    if values and draw(st.booleans()):
        # the last line may lack its line ending: flush() returns it
        out = out.rstrip(b"\r\n")
    return bytes(out), values


@HYPOTHESIS
@given(st.data())
def test_property_any_split_gives_same_values(data):
    raw, values = data.draw(ndjson_streams())
    assert decode_all(raw) == values
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    assert decode_all(*split_at(raw, points)) == values
