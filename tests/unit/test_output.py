"""The terminal-side writers: sanitising, raw bytes, and progressive Markdown rendering."""

from __future__ import annotations

import io
import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from llmchat.demo.answer import answer_tokens, demo_answer
from llmchat.output import (
    RawWriter,
    RenderedWriter,
    Sanitizer,
    SurrogateJoiner,
    answer_markdown,
    split_finished,
    strip_controls,
)

ATTACKS = {
    "clear screen": "\x1b[2J\x1b[H",
    "colour": "\x1b[31mred\x1b[0m",
    "title (OSC 0, BEL)": "\x1b]0;pwned\x07",
    "clipboard write (OSC 52, ST)": "\x1b]52;c;aGVsbG8=\x1b\\",
    "hyperlink (OSC 8)": "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "DCS": "\x1bPq#0;2;0;0;0\x1b\\",
    "reset (ESC c)": "\x1bc",
    "8-bit CSI": "\x9b2J",
    "8-bit OSC": "\x9d0;title\x07",
    "C0 bell and backspace": "\x07\x08",
    "carriage return": "\r",
    "DEL": "\x7f",
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_control_sequences_never_reach_a_terminal(name):
    text = f"before {ATTACKS[name]} after"
    cleaned = strip_controls(text)
    assert "\x1b" not in cleaned
    assert not any(0x80 <= ord(c) <= 0x9F or (ord(c) < 0x20 and c not in "\n\t") or c == "\x7f" for c in cleaned)
    assert cleaned.startswith("before ") and cleaned.endswith(" after")


def test_payloads_of_string_sequences_are_removed_with_them():
    assert strip_controls("a\x1b]52;c;SECRET\x07b") == "ab"
    assert strip_controls("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b") == "alinkb"
    assert strip_controls("tab\tand\nnewline kept") == "tab\tand\nnewline kept"


def test_plain_unicode_passes_untouched():
    text = "naïve café — 😀 \u2028 \u00a0 ≠ ∑"
    assert strip_controls(text) == text
    assert Sanitizer().feed(text) == text


@pytest.mark.parametrize("name", list(ATTACKS))
def test_sequence_split_across_deltas_is_still_stripped(name):
    text = f"x{ATTACKS[name]}y"
    for cut in range(1, len(text)):
        sanitizer = Sanitizer()
        out = sanitizer.feed(text[:cut]) + sanitizer.feed(text[cut:]) + sanitizer.flush()
        assert out == strip_controls(text), (name, cut)


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab \n\t\x1b[]0;2Jm\x07\\P\x9b\x9d\x90c")), max_size=12), max_size=12))
@settings(max_examples=300, deadline=None)
def test_streaming_sanitizer_output_is_always_safe(pieces):
    sanitizer = Sanitizer()
    out = "".join(sanitizer.feed(p) for p in pieces) + sanitizer.flush()
    assert "\x1b" not in out
    assert not any(0x80 <= ord(c) <= 0x9F for c in out)


def test_unterminated_osc_keeps_its_text_at_the_end():
    sanitizer = Sanitizer()
    out = sanitizer.feed("answer \x1b]0;never ends") + sanitizer.flush()
    assert "\x1b" not in out
    assert out.startswith("answer ")
    assert "never ends" in out  # nothing the model said is silently lost


def test_surrogate_pair_split_across_deltas_is_joined():
    joiner = SurrogateJoiner()
    assert joiner.feed("a\ud83d") == "a"
    assert joiner.feed("\ude00b") == "😀b"
    assert joiner.flush() == ""


def test_raw_writer_passes_bytes_unchanged_to_a_pipe():
    out = io.BytesIO()
    writer = RawWriter(out, sanitize=False)
    text = "\x1b[31mred\x1b[0m \u2028 😀\r\n"
    for ch in text:
        writer.write(ch)
    writer.close()
    assert out.getvalue() == text.encode()


def test_raw_writer_flushes_every_delta():
    class Recorder(io.BytesIO):
        flushes = 0

        def flush(self):
            Recorder.flushes += 1

    out = Recorder()
    writer = RawWriter(out, sanitize=False)
    for token in ["a", "b", "c"]:
        writer.write(token)
        assert out.getvalue().endswith(token.encode())
    assert Recorder.flushes == 3


def test_raw_writer_sanitises_for_a_terminal():
    out = io.BytesIO()
    writer = RawWriter(out, sanitize=True)
    writer.write("ok \x1b]52;c;")
    writer.write("aGk=\x07 done")
    writer.close()
    assert out.getvalue() == b"ok  done"


# --- progressive rendering --------------------------------------------------------------

PARSER = MarkdownIt().enable("strikethrough").enable("table")


def _console():
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=80, color_system="truecolor"), buffer


def _one_shot(text):
    """The whole answer rendered at once (long code lines left for the terminal to wrap)."""
    from rich.segment import Segment, SegmentLines

    console, buffer = _console()
    lines = Segment.split_lines(console.render(answer_markdown(text), console.options))
    console.print(SegmentLines(list(lines), new_lines=True), crop=False)
    return buffer.getvalue()


def _progressive(text, seed):
    console, buffer = _console()
    ticks = itertools.count()
    writer = RenderedWriter(console, live=False, clock=lambda: float(next(ticks)))
    rnd = random.Random(seed)
    i = 0
    while i < len(text):
        n = rnd.randint(1, 15)
        writer.write(text[i : i + n])
        i += n
    writer.close()
    return buffer.getvalue()


DOCUMENTS = {
    "demo answer": demo_answer("hello"),
    "long answer": "".join(answer_tokens("x", 2500)),
    "tricky blocks": (
        "3. three\n4. four\n\npara\n\n1. one\n\nSetext\n---\n\n> quote\nlazy line\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n\nmore code\n```\n\n***\n\nend"
    ),
    "list that continues after a blank line": "- a\n\n- b\n\n  continued\n\nafter",
    "rules between blocks": "Intro.\n\n---\n\nAfter.\n\n- a\n\n***\n\n- b\n\n```\nx\n```\n\n---\n\n# H\n\n> q\n\nend\n",
    # A reference may be used before it is defined: the blocks that use it wait for the end.
    "references defined at the end": (
        "# Sources\n\nSee [the spec][spec] and [1].\n\n- a list [Spec] item\n\n"
        "```python\nx[0] = y[1]\n```\n\nA [plain link](http://a.example) and [unknown].\n\n"
        '[spec]: http://spec.example/ "The spec"\n[1]: <http://one.example/a b>\n'
    ),
    "references defined first": "[a]: http://a.example\n\nIntro.\n\nUse [a] here.\n\nAnd [A][] there.\n\n- [x] done\n- [ ] todo\n",
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
@pytest.mark.parametrize("seed", range(4))
def test_progressive_render_equals_one_shot_render(name, seed):
    text = DOCUMENTS[name]
    assert _progressive(text, seed) == _one_shot(text)


def test_finished_blocks_are_printed_once_while_streaming():
    console, buffer = _console()
    ticks = itertools.count()
    writer = RenderedWriter(console, live=False, clock=lambda: float(next(ticks)))
    writer.write("# Title\n\nfirst paragraph\n\n")
    assert "Title" in buffer.getvalue()  # finished: printed already
    writer.write("second para")
    assert "second" not in buffer.getvalue()  # still growing: not printed for good yet
    writer.close()
    assert buffer.getvalue().count("Title") == 1
    assert "second para" in buffer.getvalue()


def test_a_block_that_may_use_a_later_reference_waits_for_the_end():
    console, buffer = _console()
    ticks = itertools.count()
    writer = RenderedWriter(console, live=False, clock=lambda: float(next(ticks)))
    writer.write("# Title\n\nSee [the spec][s] here.\n\nmore\n\nand more\n\n")
    assert "Title" in buffer.getvalue()  # no brackets: printed at once
    assert "See" not in buffer.getvalue() and "more" not in buffer.getvalue()  # held, in order
    writer.write("[s]: http://spec.example\n")
    writer.close()
    out = buffer.getvalue()
    assert "http://spec.example" in out and "[s]" not in out
    assert out == _one_shot("# Title\n\nSee [the spec][s] here.\n\nmore\n\nand more\n\n[s]: http://spec.example\n")


def test_code_and_inline_links_do_not_hold_blocks_back():
    console, buffer = _console()
    ticks = itertools.count()
    writer = RenderedWriter(console, live=False, clock=lambda: float(next(ticks)))
    writer.write("```\nx[0]\n```\n\nA [link](http://a.example), `y[1]`\n\n- [x] done\n- [ ] todo\n\nnext\n\nlast")
    assert "x[0]" in buffer.getvalue() and "todo" in buffer.getvalue()
    writer.close()


def test_split_finished_waits_for_a_complete_line():
    # "1" could still become "1. item", continuing the list: not a new block yet.
    assert split_finished("1. a\n\n1", PARSER) == 0
    text = "1. a\n\npara\n"
    cut = split_finished(text, PARSER)
    assert text[cut:] == "para\n"


def test_split_finished_keeps_setext_and_tables_whole():
    assert split_finished("Title\n", PARSER) == 0
    assert split_finished("| a |\n|---|\n| 1 |\n", PARSER) == 0
    assert split_finished("```\nx\n\ny\n", PARSER) == 0  # an open fence is one block


def test_rendered_writer_strips_control_sequences():
    console, buffer = _console()
    writer = RenderedWriter(console, live=False)
    writer.write("safe \x1b]52;c;aGk=\x07text \x1b[2J")
    writer.close()
    out = buffer.getvalue()
    assert "52;c" not in out and "\x1b[2J" not in out and "\x1b]" not in out
    assert "safe text" in out


def test_rendered_links_show_their_target():
    # Hyperlinks are off: the URL is visible text, so a link cannot hide where it points.
    console, buffer = _console()
    writer = RenderedWriter(console, live=False)
    writer.write("[innocent](http://evil.example)\n")
    writer.close()
    out = buffer.getvalue()
    assert "http://evil.example" in out
    assert "\x1b]8;" not in out


def test_live_tail_shows_only_the_last_screenful():
    console = Console(file=io.StringIO(), force_terminal=True, width=40, height=10)
    writer = RenderedWriter(console, clock=lambda: 0.0)
    drawn = []
    writer._region.draw = drawn.append
    writer.write("```\n" + "".join(f"line {i}\n" for i in range(50)))  # one open block
    texts = ["".join(segment.text for segment in line) for line in drawn[-1]]
    assert len(texts) == 9
    assert "line 49" in [text.strip() for text in texts if text.strip()][-1]


def test_batched_raw_writer_writes_once_per_network_read():
    """With a scheduler, the deltas of one read go out in one write, when the reader waits."""
    scheduled = []

    class Recorder(io.BytesIO):
        writes = 0

        def write(self, data):
            Recorder.writes += 1
            return super().write(data)

    out = Recorder()
    writer = RawWriter(out, sanitize=False, schedule=scheduled.append)
    for token in ["Hel", "lo", " wor", "ld"]:
        writer.write(token)
    assert out.getvalue() == b""  # nothing until the reading task yields
    assert len(scheduled) == 1  # one flush scheduled per batch, not per delta
    scheduled.pop()()
    assert out.getvalue() == b"Hello world" and Recorder.writes == 1
    writer.write("!")
    writer.close()  # close flushes what is pending without waiting for the scheduler
    assert out.getvalue() == b"Hello world!"


def test_surrogate_halves_meeting_inside_a_batch_are_joined():
    scheduled = []
    out = io.BytesIO()
    writer = RawWriter(out, sanitize=False, schedule=scheduled.append)
    writer.write("a\ud83d")
    writer.write("\ude00b\ud800")  # a pair split across deltas, then a lone high half
    writer.close()
    assert out.getvalue() == "a😀b".encode() + "\ufffd".encode()


def test_a_failed_scheduled_write_reaches_the_reader():
    scheduled = []

    class Closed(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError

    writer = RawWriter(Closed(), sanitize=False, schedule=scheduled.append)
    writer.write("x")
    scheduled.pop()()  # the failure happens inside the event loop's callback...
    with pytest.raises(BrokenPipeError):  # ...and is raised to the reader at its next write
        writer.write("y")


def test_an_unterminated_introducer_does_not_hold_the_answer_back():
    # A lone OSC introducer (mojibake, say) must not swallow what follows, nor cost a rescan
    # of everything held on every delta.
    sanitizer = Sanitizer()
    shown = sanitizer.feed("start \x9d")
    for _ in range(3000):
        shown += sanitizer.feed("word ")
    shown += sanitizer.flush()
    assert shown.startswith("start ") and shown.count("word") == 3000
    assert len(sanitizer._held) == 0


def test_rendered_writer_keeps_a_long_growing_block_linear():
    console, buffer = _console()
    writer = RenderedWriter(console, live=False, clock=lambda: 0.0)  # never due: pieces pile up
    for i in range(20000):
        writer.write(f"line {i}\n")
    assert len(writer._tail) == 20000  # appended, not re-concatenated per delta
    writer.close()
    assert "line 19999" in buffer.getvalue()


# --- what the rendered face prints --------------------------------------------------------


def _rendered(text, width=80, **options):
    console = Console(file=io.StringIO(), force_terminal=False, width=width)
    writer = RenderedWriter(console, live=False, **options)
    writer.write(text)
    writer.close()
    return console.file.getvalue()


@pytest.mark.parametrize(
    "source, numbers",
    [
        ("1. one\n2. two\n3. three\n", ["1.", "2.", "3."]),
        ("3. three\n4. four\n", ["3.", "4."]),
        ("9. nine\n10. ten\n", ["9.", "10."]),
        ("Intro\n\n1. one\n\n   more of one\n2. two\n", ["1.", "2."]),
    ],
)
def test_ordered_list_items_keep_their_number_and_dot(source, numbers):
    lines = [line.strip() for line in _rendered(source).splitlines() if line.strip()]
    shown = [line.split()[0] for line in lines if line.split()[0][0].isdigit()]
    assert shown == numbers


@pytest.mark.parametrize(
    "source, address",
    [
        ("See <https://example.com/a?b=1> now.\n", "https://example.com/a?b=1"),
        ("Mail <someone@example.com> now.\n", "someone@example.com"),
        ("- item <http://x.example/>\n", "http://x.example/"),
    ],
)
def test_an_autolink_is_printed_once(source, address):
    out = _rendered(source)
    assert out.count(address) == 1, out
    assert "(" not in out


def test_a_link_with_other_text_still_shows_its_address_after_it():
    out = _rendered("[innocent](http://evil.example) and <http://ok.example>\n")
    assert "innocent (http://evil.example)" in out
    assert out.count("http://ok.example") == 1


@pytest.mark.parametrize("width", [30, 50, 80])
def test_a_long_code_line_is_printed_whole_for_the_terminal_to_wrap(width):
    line = "value = first_function(argument_one, argument_two) + second_function(argument_three)  # the end"
    out = _rendered(f"Code:\n\n```python\n{line}\n```\n\nAfter.\n", width=width)
    assert line in [text.strip() for text in out.splitlines()]
    # Only the text overflows: the padding lines and short lines stay within the width.
    for text in out.splitlines():
        if line not in text:
            assert len(text) <= width, text


def test_code_inside_a_list_is_wrapped_not_cut():
    line = "value = first_function(argument_one, argument_two) + second_function(argument_three)"
    out = _rendered(f"- step:\n\n  ```\n  {line}\n  ```\n", width=40)
    joined = "".join(text.strip() for text in out.splitlines()).replace(" ", "")
    assert joined.count(line.replace(" ", "")) == 1


def test_reasoning_is_printed_dimmed_under_a_label_before_the_answer():
    console = Console(file=io.StringIO(), force_terminal=True, width=60, color_system="truecolor")
    notes = Console(file=io.StringIO(), force_terminal=True, width=60, color_system="truecolor")
    ticks = itertools.count()
    writer = RenderedWriter(console, live=False, clock=lambda: float(next(ticks)), reasoning_console=notes)
    for piece in ["First I ", "think.\nThen I ", "decide \x1b]0;x\x07here."]:
        writer.reasoning(piece)
    assert "First I think." in notes.file.getvalue()  # complete lines at once
    writer.write("The **answer**.")
    writer.close()
    shown = notes.file.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert plain.splitlines()[:3] == ["Reasoning", "First I think.", "Then I decide here."]
    assert "\x1b[2m" in shown or "\x1b[2;" in shown  # dimmed
    assert "\x1b]" not in shown  # sanitised like the answer
    assert "Reasoning" not in console.file.getvalue() and "think" not in console.file.getvalue()  # stdout: the answer only
    assert "answer" in console.file.getvalue()


def test_reasoning_is_ignored_without_a_console_for_it():
    assert "think" not in _rendered_with_reasoning(None)


def _rendered_with_reasoning(notes):
    console = Console(file=io.StringIO(), force_terminal=False, width=60)
    writer = RenderedWriter(console, live=False, reasoning_console=notes)
    writer.reasoning("I think.\n")
    writer.write("Answer.")
    writer.close()
    return console.file.getvalue()


def _region(width):
    from llmchat.output import _Region

    console = Console(file=io.StringIO(), force_terminal=True, width=width, height=20)
    now = [0.0]
    return _Region(console, lambda: now[0]), console, now


@pytest.mark.parametrize(
    "texts, width, rows",
    [
        (["a" * 57, "b" * 15, "", "c" * 7], 60, 4),  # as drawn: one row per line
        (["a" * 57, "b" * 15, "", "c" * 7], 40, 5),  # narrower: the long line takes two rows
        (["a" * 60, "b" * 60], 20, 6),
        (["a" * 10 + " " * 50], 20, 1),  # trailing blanks are not drawn, so not reflowed
        (["a" * 57], 80, 1),  # wider: rows are not joined
    ],
)
def test_the_region_erases_exactly_the_rows_its_lines_take_at_the_current_width(texts, width, rows):
    from rich.segment import Segment

    region, console, _ = _region(60)
    region.draw([[Segment(text)] if text else [] for text in texts])
    console.width = width
    start = len(console.file.getvalue())
    region.clear()
    erase = console.file.getvalue()[start:]
    assert erase.startswith("\r\x1b[2K")
    assert erase.count("\x1b[1A") == rows - 1


def test_the_region_is_drawn_with_autowrap_off_so_a_line_takes_one_row():
    from rich.segment import Segment

    region, console, _ = _region(40)
    region.draw([[Segment("👍🏽" * 30)]])  # wider to a terminal than to Rich: clipped, not wrapped
    out = console.file.getvalue()
    assert out.index("\x1b[?7l") < out.index("👍🏽") < out.index("\x1b[?7h")


def test_the_region_waits_for_a_resized_window_to_keep_its_size():
    console = Console(file=io.StringIO(), force_terminal=True, width=60, height=20)
    now = [0.0]
    writer = RenderedWriter(console, clock=lambda: now[0])
    writer.write("growing paragraph")
    console.width = 40  # a drag of the window's edge begins
    drawn = len(console.file.getvalue())
    for step in range(1, 3):
        now[0] = step * 0.1
        writer.write(" more")
        writer.tick()
    assert len(console.file.getvalue()) == drawn  # nothing erased or drawn at a width in flux
    now[0] = 0.5
    writer.tick()
    assert "growing paragraph more more" in console.file.getvalue()[drawn:]
    writer.close()


@pytest.mark.parametrize(
    "env, reflows",
    [
        ({"TERM": "xterm-256color", "VTE_VERSION": "7600"}, True),
        ({"TERM": "xterm-kitty"}, True),
        ({"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"}, True),
        ({"TERM": "screen", "TMUX": "/tmp/x,1,0", "XTERM_VERSION": "XTerm(390)"}, True),  # tmux inside xterm
        ({"TERM": "xterm", "XTERM_VERSION": "XTerm(390)"}, False),
        ({"TERM": "linux"}, False),
    ],
)
def test_terminals_that_cut_rows_on_a_resize_are_told_from_those_that_reflow(env, reflows):
    from llmchat.output import terminal_reflows

    assert terminal_reflows(env) is reflows


def test_in_a_terminal_that_cuts_rows_a_line_is_one_row_at_any_width():
    from rich.segment import Segment

    from llmchat.output import _Region

    console = Console(file=io.StringIO(), force_terminal=True, width=60, height=20)
    region = _Region(console, lambda: 0.0, reflows=False)
    region.draw([[Segment("a" * 57)], [Segment("b" * 15)]])
    console.width = 20
    start = len(console.file.getvalue())
    region.clear()
    assert console.file.getvalue()[start:].count("\x1b[1A") == 1
