"""Unit tests for the incremental SSE decoder.

They pin the WHATWG HTML standard, "Server-sent events" -> "Interpreting an event stream":

- the stream is decoded with UTF-8 decode (one leading BOM stripped, errors -> U+FFFD);
- lines end at CRLF, LF not preceded by CR, or CR not followed by LF;
- empty line -> dispatch; ":" first -> comment; otherwise field name / value split at the first
  colon, one leading U+0020 removed from the value; no colon -> whole line is the name, value "";
- event -> event type buffer; data -> append value + LF; id -> last event ID buffer unless the
  value contains NULL; retry -> reconnection time if ASCII digits only; anything else ignored;
- dispatch: empty data buffer -> reset data and event type buffers, nothing dispatched; else
  drop one trailing LF, type defaults to "message", buffers reset (last event ID buffer kept);
- at end of stream pending data is discarded.
"""

from __future__ import annotations

import json
import re
from typing import List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmchat.stream.sse import ServerSentEvent, SSEDecoder

BOM = b"\xef\xbb\xbf"
HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# helpers


def ev(data: str, type: str = "message", last_event_id: str = "") -> ServerSentEvent:
    return ServerSentEvent(type, data, last_event_id)


def decode_all(*chunks: bytes) -> List[ServerSentEvent]:
    """Feed every chunk to a fresh decoder, then flush; return everything dispatched."""
    decoder = SSEDecoder()
    events: List[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.decode(chunk))
    events.extend(decoder.flush())
    return events


def decode_with(decoder: SSEDecoder, chunks: Sequence[bytes]) -> List[ServerSentEvent]:
    events: List[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.decode(chunk))
    events.extend(decoder.flush())
    return events


def split_at(raw: bytes, points: Sequence[int]) -> List[bytes]:
    """Split at the given offsets; repeated offsets yield empty chunks on purpose."""
    chunks = []
    prev = 0
    for p in sorted(points):
        chunks.append(raw[prev:p])
        prev = p
    chunks.append(raw[prev:])
    return chunks


def bytewise(raw: bytes) -> List[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def as_tuples(events: Sequence[ServerSentEvent]) -> List[Tuple[str, str, str]]:
    return [(e.type, e.data, e.last_event_id) for e in events]


_LINE_END = re.compile(r"\r\n|\n|\r")


def reference_parse(raw: bytes) -> Tuple[List[Tuple[str, str, str]], Optional[int], str]:
    """A deliberately naive, literal transcription of the spec, working on the whole stream.

    Returns (events, reconnection time, last event ID buffer)."""
    if raw.startswith(BOM):  # UTF-8 decode: strip one leading BOM
        raw = raw[3:]
    text = raw.decode("utf-8", "replace")
    pieces = _LINE_END.split(text)
    lines = pieces[:-1]  # the last piece is not terminated: discarded at end of stream
    data, event_type, last_id = "", "", ""
    retry: Optional[int] = None
    events: List[Tuple[str, str, str]] = []
    for line in lines:
        if line == "":
            if data == "":
                data, event_type = "", ""
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append((event_type or "message", data, last_id))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\x00" not in value:
                last_id = value
        elif name == "retry":
            if value and all(c in "0123456789" for c in value):
                retry = int(value)
    return events, retry, last_id


# --------------------------------------------------------------------------------------------
# ServerSentEvent


def test_event_equality_and_repr():
    a = ServerSentEvent("message", "x", "1")
    assert a == ServerSentEvent("message", "x", "1")
    assert a != ServerSentEvent("message", "x", "2")
    assert a != ServerSentEvent("other", "x", "1")
    assert a != ServerSentEvent("message", "y", "1")
    assert a != ("message", "x", "1")
    assert ServerSentEvent("message", "x") == ServerSentEvent("message", "x", "")
    assert "message" in repr(a) and "'x'" in repr(a)


# --------------------------------------------------------------------------------------------
# basics: dispatch, default type, data joining


def test_single_event():
    assert decode_all(b"data: hello\n\n") == [ev("hello")]


def test_default_type_is_message():
    [event] = decode_all(b"data: x\n\n")
    assert event.type == "message"
    assert event.last_event_id == ""


def test_named_event():
    assert decode_all(b"event: delta\ndata: x\n\n") == [ev("x", type="delta")]


def test_field_order_does_not_matter():
    assert decode_all(b"data: x\nevent: delta\n\n") == [ev("x", type="delta")]


def test_several_data_lines_joined_with_lf():
    assert decode_all(b"data: a\ndata: b\ndata: c\n\n") == [ev("a\nb\nc")]


def test_trailing_lf_not_kept_but_empty_last_line_is():
    # data buffer "a\n\n" -> one trailing LF removed -> "a\n"
    assert decode_all(b"data: a\ndata:\n\n") == [ev("a\n")]
    # data buffer "\na\n" -> "\na"
    assert decode_all(b"data:\ndata: a\n\n") == [ev("\na")]


def test_two_events():
    assert decode_all(b"data: 1\n\ndata: 2\n\n") == [ev("1"), ev("2")]


def test_event_type_resets_after_dispatch():
    assert decode_all(b"event: a\ndata: 1\n\ndata: 2\n\n") == [ev("1", type="a"), ev("2")]


def test_last_event_type_line_wins():
    assert decode_all(b"event: a\nevent: b\ndata: x\n\n") == [ev("x", type="b")]


def test_empty_event_type_means_message():
    assert decode_all(b"event\ndata: x\n\n") == [ev("x")]
    assert decode_all(b"event:\ndata: x\n\n") == [ev("x")]
    assert decode_all(b"event: a\nevent:\ndata: x\n\n") == [ev("x")]


def test_blank_line_without_data_dispatches_nothing():
    assert decode_all(b"\n\n\n") == []
    assert decode_all(b"event: foo\n\n") == []
    assert decode_all(b"id: 1\n\n") == []
    assert decode_all(b": comment\n\n") == []


def test_empty_data_buffer_also_resets_event_type():
    assert decode_all(b"event: foo\n\ndata: x\n\n") == [ev("x")]


def test_extra_blank_lines_between_events():
    assert decode_all(b"\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n") == [ev("1"), ev("2")]


def test_events_returned_from_the_decode_call_that_completes_them():
    d = SSEDecoder()
    assert d.decode(b"data: 1\n") == []
    assert d.decode(b"\ndata: 2\n\ndata: 3") == [ev("1"), ev("2")]
    assert d.decode(b"\n") == []
    assert d.decode(b"\n") == [ev("3")]
    assert d.flush() == []


def test_decoded_event_strings_are_str():
    [event] = decode_all(b"event: t\nid: 1\ndata: x\n\n")
    assert type(event.type) is str
    assert type(event.data) is str
    assert type(event.last_event_id) is str


# --------------------------------------------------------------------------------------------
# field parsing


@pytest.mark.parametrize(
    "line, data",
    [
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),
        (b"data:   x", "  x"),
        (b"data: x ", "x "),
        (b"data:\tx", "\tx"),  # only U+0020 is removed, never a tab
        (b"data: ", ""),
        (b"data:", ""),
        (b"data", ""),
        (b"data: a:b: c", "a:b: c"),  # split at the first colon only
        (b"data::", ":"),
        (b"data: :x", ":x"),
    ],
)
def test_data_value_parsing(line, data):
    assert decode_all(line + b"\n\n") == [ev(data)]


def test_data_without_colon_dispatches_empty_string():
    # "data" alone: field name "data", value "" -> data buffer "\n" -> event with data "".
    assert decode_all(b"data\n\n") == [ev("")]


def test_two_bare_data_lines():
    assert decode_all(b"data\ndata\n\n") == [ev("\n")]


@pytest.mark.parametrize(
    "stream",
    [
        b": comment\n\n",
        b":\n\n",
        b": data: x\n\n",
        b":data: x\n\n",
    ],
)
def test_comments_are_ignored(stream):
    assert decode_all(stream) == []


def test_comments_between_fields_do_not_break_the_event():
    assert decode_all(b":c1\ndata: a\n: c2\n:\ndata: b\n:c3\n\n") == [ev("a\nb")]


def test_comment_lines_do_not_dispatch():
    # A comment line is not a blank line: the event continues.
    assert decode_all(b"data: a\n:\ndata: b\n\n") == [ev("a\nb")]


def test_leading_space_line_is_not_a_comment():
    # " : x" is a field named " " -> unknown, ignored; data still empty -> nothing.
    assert decode_all(b" : x\n\n") == []
    assert decode_all(b" data: x\n\n") == []


@pytest.mark.parametrize(
    "line",
    [
        b"Data: x",
        b"DATA: x",
        b"data : x",  # field name "data " (with a space)
        b"datum: x",
        b"dat: x",
        b"foo: x",
        b"foo",
        b"\xef\xbb\xbfdata: x",  # BOM not at stream start: part of the field name (see below)
    ],
)
def test_unknown_and_case_mismatched_fields_ignored(line):
    # Prefix a real first line so the BOM case is not at the start of the stream.
    assert decode_all(b":\n" + line + b"\n\n") == []


def test_unknown_fields_do_not_disturb_known_ones():
    assert decode_all(b"foo: 1\ndata: x\nEvent: y\nbar\n\n") == [ev("x")]


def test_case_sensitive_event_and_id_names():
    assert decode_all(b"EVENT: e\nID: 5\ndata: x\n\n") == [ev("x")]


# --------------------------------------------------------------------------------------------
# id


def test_id_sets_last_event_id_on_event_and_decoder():
    d = SSEDecoder()
    assert d.last_event_id == ""
    assert d.decode(b"id: 42\ndata: x\n\n") == [ev("x", last_event_id="42")]
    assert d.last_event_id == "42"


def test_id_persists_across_following_events():
    events = decode_all(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\ndata: d\n\n")
    assert events == [
        ev("a", last_event_id="1"),
        ev("b", last_event_id="1"),
        ev("c", last_event_id="2"),
        ev("d", last_event_id="2"),
    ]


def test_id_after_data_in_same_event_still_applies():
    assert decode_all(b"data: a\nid: 7\n\n") == [ev("a", last_event_id="7")]


def test_id_without_data_updates_buffer_but_dispatches_nothing():
    d = SSEDecoder()
    assert d.decode(b"id: 9\n\n") == []
    assert d.last_event_id == "9"
    assert d.decode(b"data: x\n\n") == [ev("x", last_event_id="9")]


def test_id_with_null_is_ignored():
    d = SSEDecoder()
    events = decode_with(d, [b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"])
    assert events == [ev("a", last_event_id="1"), ev("b", last_event_id="1")]
    assert d.last_event_id == "1"


def test_id_with_null_only_is_ignored():
    assert decode_all(b"id: 5\nid: \x00\ndata: b\n\n") == [ev("b", last_event_id="5")]


def test_null_allowed_in_data_and_event():
    assert decode_all(b"event: a\x00b\ndata: x\x00y\n\n") == [ev("x\x00y", type="a\x00b")]


@pytest.mark.parametrize("line", [b"id:", b"id: ", b"id"])
def test_empty_id_resets_last_event_id(line):
    d = SSEDecoder()
    events = decode_with(d, [b"id: 1\ndata: a\n\n" + line + b"\ndata: b\n\n"])
    assert events == [ev("a", last_event_id="1"), ev("b", last_event_id="")]
    assert d.last_event_id == ""


def test_id_keeps_extra_spaces_and_unicode():
    assert decode_all("id:  é 1 \ndata: x\n\n".encode()) == [ev("x", last_event_id=" é 1 ")]


def test_id_invalid_utf8_replaced():
    assert decode_all(b"id: a\xffb\ndata: x\n\n") == [ev("x", last_event_id="a\ufffdb")]


def test_id_survives_flush_of_unterminated_event():
    d = SSEDecoder()
    assert d.decode(b"data: a\n\nid: 3\ndata: lost") == [ev("a")]
    assert d.flush() == []
    assert d.last_event_id == "3"


# --------------------------------------------------------------------------------------------
# retry


def test_retry_initially_none():
    assert SSEDecoder().retry is None


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"retry: 1000", 1000),
        (b"retry:1000", 1000),
        (b"retry: 0", 0),
        (b"retry: 007", 7),
        (b"retry: 123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_retry_ascii_digits(line, expected):
    d = SSEDecoder()
    assert d.decode(line + b"\n") == []
    assert d.retry == expected
    assert type(d.retry) is int


@pytest.mark.parametrize(
    "line",
    [
        b"retry: 10a",
        b"retry: a10",
        b"retry: ",
        b"retry:",
        b"retry",
        b"retry: -5",
        b"retry: +5",
        b"retry: 1.5",
        b"retry: 1e3",
        b"retry: 10 ",
        b"retry:  10",  # second space is part of the value
        b"retry: 1_000",
        "retry: ١٢".encode(),  # ARABIC-INDIC digits
        "retry: １２".encode(),  # FULLWIDTH digits
        "retry: ²".encode(),  # superscript two (str.isdigit() is True for it)
        b"Retry: 10",
    ],
)
def test_retry_invalid_is_ignored(line):
    d = SSEDecoder()
    d.decode(b"retry: 500\n")
    assert d.retry == 500
    assert d.decode(line + b"\n") == []
    assert d.retry == 500


def test_retry_does_not_dispatch_or_touch_data():
    d = SSEDecoder()
    assert d.decode(b"data: a\nretry: 3000\ndata: b\n\n") == [ev("a\nb")]
    assert d.retry == 3000


def test_retry_last_valid_wins():
    d = SSEDecoder()
    d.decode(b"retry: 1\nretry: 2\nretry: x\n")
    assert d.retry == 2


def test_retry_applies_even_if_event_unterminated():
    d = SSEDecoder()
    d.decode(b"retry: 250\ndata: x")
    assert d.flush() == []
    assert d.retry == 250


def test_retry_line_split_across_reads():
    d = SSEDecoder()
    d.decode(b"ret")
    d.decode(b"ry: 12")
    assert d.retry is None  # line not terminated yet
    d.decode(b"34\r")
    assert d.retry == 1234


# --------------------------------------------------------------------------------------------
# line endings


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_each_line_ending(eol):
    stream = eol.join([b"event: t", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    assert decode_all(stream) == [ev("a\nb", type="t"), ev("c")]


def test_mixed_line_endings():
    assert decode_all(b"data: a\rdata: b\r\ndata: c\n\r\n") == [ev("a\nb\nc")]
    assert decode_all(b"data: a\n\rdata: b\r\r") == [ev("a"), ev("b")]


def test_crlf_is_one_line_ending():
    # If CRLF were two endings, "data: a\r\n" would already dispatch "a" and then "b" alone.
    assert decode_all(b"data: a\r\ndata: b\r\n\r\n") == [ev("a\nb")]


def test_cr_cr_lf_is_two_line_endings():
    # "\r" ends "data: a", "\r\n" ends an empty line -> dispatch.
    assert decode_all(b"data: a\r\r\ndata: b\r\n\r\n") == [ev("a"), ev("b")]


def test_lf_cr_is_two_line_endings():
    assert decode_all(b"data: a\n\rdata: b\n\n") == [ev("a"), ev("b")]


def test_crlf_split_across_reads_is_one_line_ending():
    d = SSEDecoder()
    assert d.decode(b"data: a\r") == []
    assert d.decode(b"\n") == []  # the LF completes the CRLF: no blank line yet
    assert d.decode(b"data: b\r") == []
    # LF completes the CRLF of "data: b"; the lone CR that follows is a blank line: dispatch.
    assert d.decode(b"\n\r") == [ev("a\nb")]
    # and the LF right after that CR is swallowed too, not a second blank line
    assert d.decode(b"\n") == []
    assert d.decode(b"data: c\n\n") == [ev("c")]
    assert d.flush() == []


def test_crlf_split_then_blank_line():
    assert decode_all(b"data: a\r", b"\n\n") == [ev("a")]
    assert decode_all(b"data: a\r", b"\n\r\n") == [ev("a")]


def test_crlf_split_with_empty_chunks_between():
    assert decode_all(b"data: a\r", b"", b"", b"\n", b"", b"\r", b"", b"\n") == [ev("a")]


def test_cr_at_chunk_end_is_already_a_line_end():
    d = SSEDecoder()
    assert d.decode(b"data: a\r") == []
    # The next read starts with CR, not LF: that CR is a new (blank) line -> dispatch.
    assert d.decode(b"\r") == [ev("a")]


def test_cr_at_chunk_end_followed_by_text():
    assert decode_all(b"data: a\r", b"data: b\r", b"\r") == [ev("a\nb")]


def test_lone_cr_dispatch_available_without_waiting_for_next_byte():
    d = SSEDecoder()
    assert d.decode(b"data: a\r\r") == [ev("a")]


def test_only_first_lf_after_split_cr_is_swallowed():
    d = SSEDecoder()
    assert d.decode(b"data: a\r") == []
    assert d.decode(b"\n\n") == [ev("a")]


def test_cr_split_swallow_does_not_leak_to_later_reads():
    # After "\r" + "x", a later LF at a chunk start is a real line ending.
    assert decode_all(b"data: a\r", b"data: b", b"\n", b"\n") == [ev("a\nb")]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\u000b", "\u000c", "\u001c"])
def test_unicode_line_separators_are_not_line_ends(char):
    data = f"a{char}b{char}"
    assert decode_all(f"data: {data}\n\n".encode()) == [ev(data)]
    # nor do they end a field name
    assert decode_all(f"data{char}: x\n\n".encode()) == []


def test_json_payload_with_unicode_separators_survives():
    payload = {"text": "line\u2028sep\u2029para\u0085nel 😀 é", "n": [1, 2]}
    raw = json.dumps(payload, ensure_ascii=False)
    assert "\u2028" in raw and "\u0085" in raw
    [event] = decode_all(f"data: {raw}\r\n\r\n".encode())
    assert json.loads(event.data) == payload


# --------------------------------------------------------------------------------------------
# BOM


def test_leading_bom_stripped():
    assert decode_all(BOM + b"data: x\n\n") == [ev("x")]


def test_leading_bom_stripped_before_comment_and_blank():
    assert decode_all(BOM + b":c\ndata: x\n\n") == [ev("x")]
    assert decode_all(BOM + b"\ndata: x\n\n") == [ev("x")]


def test_leading_bom_stripped_before_cr_lines():
    assert decode_all(BOM + b"data: x\r\r") == [ev("x")]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xef", b"\xbb\xbfdata: x\n\n"],
        [b"\xef\xbb", b"\xbfdata: x\n\n"],
        [b"\xef\xbb\xbf", b"data: x\n\n"],
        [b"\xef", b"\xbb", b"\xbf", b"d", b"ata: x\n\n"],
        [b"", b"\xef", b"", b"\xbb", b"", b"\xbf", b"", b"data: x\n\n"],
        [b"\xef\xbb\xbfd", b"ata: x\n\n"],
        [b"\xef\xbb\xbfdata: x\n", b"\n"],
    ],
)
def test_leading_bom_split_across_reads(chunks):
    assert decode_all(*chunks) == [ev("x")]


def test_second_bom_not_stripped():
    # The first BOM is stripped; the second is part of the field name "\ufeffdata" -> ignored.
    assert decode_all(BOM + BOM + b"data: x\n\n") == []
    assert decode_all(BOM + BOM + b"data: x\n\ndata: y\n\n") == [ev("y")]


def test_second_bom_not_stripped_when_split():
    assert decode_all(b"\xef\xbb", b"\xbf\xef", b"\xbb\xbfdata: x\n\ndata: y\n\n") == [ev("y")]
    assert decode_all(*bytewise(BOM + BOM + b"data: x\n\ndata: y\n\n")) == [ev("y")]


def test_bom_not_at_start_not_stripped():
    assert decode_all(b"\n" + BOM + b"data: x\n\ndata: y\n\n") == [ev("y")]
    assert decode_all(b"data: a\n\n", BOM + b"data: x\n\n") == [ev("a")]


def test_bom_inside_data_kept():
    assert decode_all(b"data: " + BOM + b"x\n\n") == [ev("\ufeffx")]
    assert decode_all(BOM + b"data: " + BOM + b"x\n\n") == [ev("\ufeffx")]


def test_partial_bom_is_not_stripped():
    # EF BB followed by "d" is not a BOM: invalid UTF-8 -> U+FFFD in the field name -> ignored.
    assert decode_all(b"\xef\xbbdata: x\n\ndata: y\n\n") == [ev("y")]
    assert decode_all(b"\xef", b"\xbbdata: x\n\ndata: y\n\n") == [ev("y")]
    assert decode_all(b"\xefdata: x\n\ndata: y\n\n") == [ev("y")]


def test_utf16_bom_not_used():
    for bom in (b"\xff\xfe", b"\xfe\xff"):
        assert decode_all(bom + b"data:1\n\ndata:2\n\n") == [ev("2")]


# --------------------------------------------------------------------------------------------
# UTF-8 decoding


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"a\xffb", "a\ufffdb"),
        (b"\x80", "\ufffd"),
        (b"\xc3", "\ufffd"),  # truncated 2-byte sequence at end of field
        (b"\xe2\x82", "\ufffd"),  # truncated 3-byte sequence -> one U+FFFD (maximal subpart)
        (b"\xf0\x9f\x98", "\ufffd"),
        (b"\xf0\x9f\x98x", "\ufffdx"),
        (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # surrogate
        (b"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"),  # > U+10FFFF
        (b"\xfe\xff", "\ufffd\ufffd"),
    ],
)
def test_invalid_utf8_in_data_replaced(raw, expected):
    assert decode_all(b"data: " + raw + b"\n\n") == [ev(expected)]


def test_truncated_sequence_before_line_end_does_not_eat_the_line_end():
    assert decode_all(b"data: \xe2\ndata: b\r\n\r\n") == [ev("\ufffd\nb")]
    assert decode_all(b"data: \xf0\x9f\r\r") == [ev("\ufffd")]


def test_invalid_utf8_in_event_type_replaced():
    assert decode_all(b"event: a\xfeb\ndata: x\n\n") == [ev("x", type="a\ufffdb")]


def test_invalid_utf8_in_field_name_makes_field_unknown():
    assert decode_all(b"data\xff: x\n\n") == []
    assert decode_all(b"dat\xe1: x\n\n") == []


def test_valid_unicode_roundtrip():
    text = "héllo € 😀 日本語 \U0010ffff"
    assert decode_all(f"event: ü\ndata: {text}\n\n".encode()) == [ev(text, type="ü")]


@pytest.mark.parametrize("char", ["é", "€", "😀", "\u2028", "\U0010ffff"])
def test_multibyte_char_split_at_every_byte_position(char):
    raw = f"data: a{char}b\n\n".encode()
    encoded = char.encode()
    start = raw.index(encoded)
    for k in range(1, len(encoded)):
        cut = start + k
        assert decode_all(raw[:cut], raw[cut:]) == [ev(f"a{char}b")], (char, k)
    assert decode_all(*bytewise(raw)) == [ev(f"a{char}b")]


def test_multibyte_in_event_type_and_id_split_bytewise():
    raw = "id: ид😀\nevent: тип€\ndata: é\n\n".encode()
    assert decode_all(*bytewise(raw)) == [ev("é", type="тип€", last_event_id="ид😀")]


def test_multibyte_split_and_line_end_in_same_chunk():
    raw = "data: 😀\r\n\r\n".encode()
    assert decode_all(raw[:8], raw[8:]) == [ev("😀")]


# --------------------------------------------------------------------------------------------
# end of stream, empty chunks, reuse


def test_unterminated_event_discarded_by_flush():
    d = SSEDecoder()
    assert d.decode(b"data: x") == []
    assert d.flush() == []


def test_event_without_blank_line_discarded_by_flush():
    d = SSEDecoder()
    assert d.decode(b"data: a\n\ndata: x\n") == [ev("a")]
    assert d.flush() == []


def test_event_ended_by_single_line_end_is_discarded():
    for eol in (b"\n", b"\r\n", b"\r"):
        assert decode_all(b"event: t\ndata: x" + eol) == []


def test_flush_always_returns_empty_list():
    d = SSEDecoder()
    assert d.flush() == []
    d.decode(b"data: a\ndata: b\n")
    assert d.flush() == []
    assert d.flush() == []
    d.decode(b"data: c\r")
    assert d.flush() == []


def test_flush_discards_pending_event_type_and_data():
    d = SSEDecoder()
    d.decode(b"event: stale\ndata: stale\n")
    assert d.flush() == []
    # state from before flush must not leak into what follows
    assert d.decode(b"data: fresh\n\n") == [ev("fresh")]


def test_flush_discards_partial_line():
    d = SSEDecoder()
    d.decode(b"data: stale")
    d.flush()
    assert d.decode(b"data: fresh\n\n") == [ev("fresh")]


def test_flush_forgets_pending_cr():
    d = SSEDecoder()
    d.decode(b"data: a\r")
    d.flush()
    # After end of stream, a following LF is not part of an old CRLF
    assert d.decode(b"\ndata: b\n\n") == [ev("b")]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"", b"data: x\n\n"],
        [b"data: x\n\n", b""],
        [b"data", b"", b": x", b"", b"\n", b"", b"\n"],
        [b"", b"", b"", b"data: x\n\n", b"", b""],
        [b"data: x\r", b"", b"\n", b"", b"\r\n"],
    ],
)
def test_empty_chunks_harmless(chunks):
    assert decode_all(*chunks) == [ev("x")]


def test_empty_chunk_returns_empty_list():
    d = SSEDecoder()
    assert d.decode(b"") == []
    d.decode(b"data: x\n")
    assert d.decode(b"") == []
    assert d.decode(b"\n") == [ev("x")]


def test_empty_stream():
    assert decode_all() == []
    assert decode_all(b"") == []
    d = SSEDecoder()
    assert d.flush() == []
    assert d.retry is None
    assert d.last_event_id == ""


def test_bytewise_feeding_equals_whole():
    raw = (
        BOM + b"retry: 10\r\n: hi\r\nid: 1\rdata: a\r\ndata:  b\n\r" + "event: ü\ndata: 😀\u2028x\r\r".encode() + b"data\n\nid\ndata: z\n\ndata: lost"
    )
    whole = SSEDecoder()
    events = decode_with(whole, [raw])
    assert events == [
        ev("a\n b", last_event_id="1"),
        ev("😀\u2028x", type="ü", last_event_id="1"),
        ev("", last_event_id="1"),
        ev("z", last_event_id=""),
    ]
    split = SSEDecoder()
    assert decode_with(split, bytewise(raw)) == events
    assert whole.retry == split.retry == 10
    assert whole.last_event_id == split.last_event_id == ""


def test_matches_reference_on_spec_examples():
    # The examples from the spec's "Interpreting an event stream" section.
    streams = [
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        b"data\n\ndata\ndata\n\ndata:",
        b"data:test\n\ndata: test\n\n",
    ]
    expected = [
        [ev("YHOO\n+2\n10")],
        [ev("first event", last_event_id="1"), ev("second event"), ev(" third event")],
        [ev(""), ev("\n")],
        [ev("test"), ev("test")],
    ]
    for raw, want in zip(streams, expected):
        assert decode_all(raw) == want
        assert as_tuples(want) == reference_parse(raw)[0]


# --------------------------------------------------------------------------------------------
# property tests

_SPECIAL = st.sampled_from(["\u2028", "\u2029", "\u0085", "😀", "é", "€", "\ufeff", ":", " ", "\x00", "\t", "\U0010ffff"])
_LINE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", blacklist_characters="\r\n"),
        _SPECIAL,
    ),
    max_size=10,
)
_EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def event_streams(draw):
    """(serialised bytes, expected events, expected retry, expected last event id)."""
    out = bytearray()
    if draw(st.booleans()):
        out += BOM
    last_id = ""
    retry: Optional[int] = None
    expected: List[ServerSentEvent] = []

    def field(name: str, value: str) -> None:
        # "name:value" is only faithful when the value does not start with a space.
        if value == "" and draw(st.booleans()):
            text = name
        elif not value.startswith(" ") and draw(st.booleans()):
            text = f"{name}:{value}"
        else:
            text = f"{name}: {value}"
        out.extend(text.encode() + draw(_EOL))

    def comment() -> None:
        out.extend(b":" + draw(_LINE_TEXT).encode() + draw(_EOL))

    def blank_line() -> None:
        eol = draw(_EOL)
        if eol == b"\n" and out.endswith(b"\r"):
            eol = b"\r\n"  # a lone LF right after a CR would merge with it into one CRLF
        out.extend(eol)

    for _ in range(draw(st.integers(0, 4))):
        lines: List[Tuple[str, str]] = []  # non-data fields, in any order
        event_type = draw(st.one_of(st.none(), _LINE_TEXT))
        if event_type is not None:
            lines.append(("event", event_type))
        event_id = draw(st.one_of(st.none(), _LINE_TEXT.filter(lambda s: "\x00" not in s)))
        if event_id is not None:
            lines.append(("id", event_id))
        if draw(st.booleans()):
            r = draw(st.integers(0, 10**6))
            lines.append(("retry", str(r)))
        data_lines = draw(st.lists(_LINE_TEXT, min_size=1, max_size=3))
        # Interleave the other fields anywhere among the data lines (which keep their order):
        # the spec does not care where event/id/retry appear within an event.
        ordered: List[Tuple[str, str]] = [("data", d) for d in data_lines]
        for item in draw(st.permutations(lines)):
            ordered.insert(draw(st.integers(0, len(ordered))), item)
        for name, value in ordered:
            if draw(st.integers(0, 4)) == 0:
                comment()
            field(name, value)
            if name == "retry":
                retry = int(value)
        if event_id is not None:
            last_id = event_id
        expected.append(ev("\n".join(data_lines), type=event_type or "message", last_event_id=last_id))
        blank_line()  # dispatch
        for _ in range(draw(st.integers(0, 2))):  # extra blank lines or comments
            if draw(st.booleans()):
                blank_line()
            else:
                comment()
    if draw(st.booleans()):  # an unterminated trailing event, discarded at end of stream
        out.extend(b"data: " + draw(_LINE_TEXT).encode() + draw(st.sampled_from([b"", b"\n", b"\r\n", b"\r"])))
    return bytes(out), expected, retry, last_id


@st.composite
def split_points(draw, raw: bytes):
    return draw(st.lists(st.integers(0, len(raw)), max_size=20))


@HYPOTHESIS
@given(st.data())
def test_property_serialised_events_roundtrip_under_any_split(data):
    raw, expected, retry, last_id = data.draw(event_streams())
    whole = SSEDecoder()
    assert decode_with(whole, [raw]) == expected
    assert whole.retry == retry
    assert whole.last_event_id == last_id

    points = data.draw(split_points(raw))
    split = SSEDecoder()
    assert decode_with(split, split_at(raw, points)) == expected
    assert split.retry == retry
    assert split.last_event_id == last_id


@HYPOTHESIS
@given(st.data())
def test_property_any_bytes_any_split_same_as_whole_and_never_raises(data):
    raw = data.draw(
        st.one_of(
            st.binary(max_size=200),
            # bias towards interesting bytes: line ends, colons, BOM pieces, partial UTF-8
            st.lists(
                st.sampled_from(
                    [
                        b"\r",
                        b"\n",
                        b"\r\n",
                        b":",
                        b" ",
                        b"data",
                        b"event",
                        b"id",
                        b"retry",
                        b"1",
                        b"x",
                        b"\x00",
                        BOM,
                        b"\xef",
                        b"\xbb",
                        b"\xbf",
                        b"\xe2\x80\xa8",
                        "😀".encode(),
                        "😀".encode()[:2],
                        b"\xff",
                        b"\x80",
                    ]
                ),
                max_size=60,
            ).map(b"".join),
        )
    )
    whole = SSEDecoder()
    expected = decode_with(whole, [raw])
    points = data.draw(split_points(raw))
    split = SSEDecoder()
    assert decode_with(split, split_at(raw, points)) == expected
    assert (split.retry, split.last_event_id) == (whole.retry, whole.last_event_id)
    # and both agree with a literal whole-stream transcription of the spec
    ref_events, ref_retry, ref_last_id = reference_parse(raw)
    assert as_tuples(expected) == ref_events
    assert whole.retry == ref_retry
    assert whole.last_event_id == ref_last_id
