"""Terminal-side consumers of the answer: the raw writer, the rendered writer and the JSON writer.

`RawWriter` writes each delta and flushes at once. When stdout is a pipe or a file the bytes pass
unchanged; when it is a terminal, control sequences are stripped first, so model text cannot
clear the screen, set the title, write the clipboard (OSC 52) or forge hyperlinks (OSC 8)
(the sanitiser itself lives in sanitize.py, shared by every face).

`RenderedWriter` (Rich, imported only when used) renders Markdown progressively: finished
top-level blocks are printed once, only the growing last block is redrawn, at frame rate, and
the final output is the same as rendering the whole answer at once.

`JsonWriter` (--json) writes every event of the turn as one line of JSON, for scripts.
"""

from __future__ import annotations

import os
import re
import time
from typing import IO, TYPE_CHECKING, Any, Callable, List, Mapping, Optional

if TYPE_CHECKING:  # Rich is imported lazily: --raw and pipes never load it
    from rich.console import Console


def __getattr__(name: str) -> Any:
    """The sanitiser's names, from their home (sanitize.py), loaded only when used: a pipe never
    needs them."""
    if name in ("Sanitizer", "strip_controls", "one_line"):
        from llmchat import sanitize

        return getattr(sanitize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SurrogateJoiner:
    """Some servers split a surrogate pair across two JSON strings: join the halves again."""

    def __init__(self) -> None:
        self._high = ""

    def feed(self, text: str) -> str:
        if self._high:
            text = self._high + text
            self._high = ""
            if len(text) > 1 and "\udc00" <= text[1] <= "\udfff":
                text = text[:2].encode("utf-16-le", "surrogatepass").decode("utf-16-le") + text[2:]
        if text and "\ud800" <= text[-1] <= "\udbff":
            self._high = text[-1]
            text = text[:-1]
        return text

    def flush(self) -> str:
        high, self._high = self._high, ""
        return high


def encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Surrogate halves that met inside a batch form a pair: join them; a lone one
        # cannot be UTF-8 and becomes U+FFFD rather than an exception.
        joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return joined.encode("utf-8", "replace")


BATCH_BOUND = 4096  # pieces that may wait for the reader to wait, whatever the network does


class Batch:
    """Pieces of output collected and written with one write and one flush when the reading
    task next waits for the network (`schedule`, e.g. `loop.call_soon`, runs the flush then):
    every delta of one network read arrived at the same moment, and a write per token costs a
    system call per token. At most BATCH_BOUND pieces wait. A write that fails in that
    scheduled flush is kept in `error`, raised to the writer at its next piece (or its
    writer's `close`)."""

    __slots__ = ("pending", "error", "_emit", "_schedule")

    def __init__(self, emit: Callable[[str], None], schedule: Callable[[Callable[[], None]], Any]) -> None:
        self.pending: List[str] = []  # cleared in place: a writer may hold it as its own list
        self.error: Optional[BaseException] = None
        self._emit = emit
        self._schedule = schedule

    def add(self, piece: str) -> None:
        if self.error is not None:
            raise self.error
        pending = self.pending
        if not pending:
            self._schedule(self._flush_soon)
        pending.append(piece)
        if len(pending) >= BATCH_BOUND:
            self.flush()

    def flush(self) -> None:
        pending = self.pending
        if pending:
            text = "".join(pending)
            pending.clear()
            self._emit(text)

    def _flush_soon(self) -> None:
        try:
            self.flush()
        except (BrokenPipeError, OSError) as exc:
            self.error = exc


class RawWriter:
    """Each delta reaches stdout the moment it arrives.

    With `schedule` (e.g. `loop.call_soon`), deltas are collected and written with one write
    and one flush when the reading task next waits for the network (`Batch`). Without it,
    every delta is written and flushed at once.
    """

    def __init__(
        self,
        out: IO[bytes],
        sanitize: bool,
        schedule: Optional[Callable[[Callable[[], None]], Any]] = None,
    ) -> None:
        self._out = out
        self._sanitizer: Any = None
        if sanitize:
            from llmchat.sanitize import Sanitizer

            self._sanitizer = Sanitizer()
        self._joiner = SurrogateJoiner()
        self._batch = Batch(self._emit, schedule) if schedule is not None else None
        # write(text), per delta: the batch's own `add`, or a write and flush at once (bound
        # here, not dispatched per call: the hot path)
        self.write: Callable[[str], None] = self._batch.add if self._batch is not None else self._emit
        self.wrote_any = False
        self.ends_with_newline = True

    @property
    def error(self) -> Optional[BaseException]:
        """A write that failed in a scheduled flush (raised at the next write or at close())."""
        return self._batch.error if self._batch is not None else None

    def flush(self) -> None:
        if self._batch is not None:
            self._batch.flush()

    def _emit(self, text: str, final: bool = False) -> None:
        text = self._joiner.feed(text)
        if final:
            text += self._joiner.flush()
        if self._sanitizer is not None:
            text = self._sanitizer.feed(text)
            if final:
                text += self._sanitizer.flush()
        if text:
            self._out.write(encode(text))
            self._out.flush()
            self.wrote_any = True
            self.ends_with_newline = text[-1] == "\n"

    def close(self) -> None:
        pending = ""
        batch = self._batch
        if batch is not None:
            if batch.error is not None:
                error, batch.error = batch.error, None
                raise error
            pending = "".join(batch.pending)
            batch.pending.clear()
        self._emit(pending, final=True)
        self._out.flush()


# --- JSON events for scripts --------------------------------------------------------------

JSON_VERSION = 1  # the version of the event schema (docs/events.schema.json); bumped on a breaking change

# Characters JSON allows raw inside a string that still end a line for some readers
# (Python's str.splitlines(), JavaScript before ES2019): written as escapes instead.
_LINE_BREAKERS = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x85", "\\u0085"))


class JsonWriter:
    """`--json`: one JSON object per line (NDJSON) for every event, nothing else on stdout.

    Each answer or reasoning delta is its own `text` / `reasoning` event. With `schedule`
    (e.g. `loop.call_soon`), the lines are collected and written with one write and one flush
    when the reading task next waits for the network, as `RawWriter` does with the text; every
    other event flushes at once. The first line is `start` (its fields from `start()`), written
    by `begin()` or else just before the first event; the last is `finish`. Strings are escaped by `json`: control characters as
    escapes, the rest as UTF-8; a surrogate pair split across two deltas is joined again and a
    lone surrogate becomes U+FFFD, as on the raw face.
    """

    def __init__(
        self,
        out: IO[bytes],
        start: Callable[[], dict],
        schedule: Optional[Callable[[Callable[[], None]], Any]] = None,
    ) -> None:
        import json
        from json.encoder import encode_basestring  # the C one, when built

        self._dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
        self._quote = encode_basestring
        self._out = out
        self._start: Optional[Callable[[], dict]] = start
        self._batch = Batch(self._emit, schedule) if schedule is not None else None
        self._pending: List[str] = self._batch.pending if self._batch is not None else []  # what waits, the batch's own
        self._add: Callable[[str], None] = self._batch.add if self._batch is not None else self._add_now
        self._text = SurrogateJoiner()
        self._thought = SurrogateJoiner()
        self.wrote_any = False
        self.ends_with_newline = True  # every line ends with one
        self.finished = False

    # the answer and the reasoning: per delta, the hot path

    def write(self, text: str) -> None:
        text = self._text.feed(text)
        if text:
            if self._start is not None:
                self.begin()  # the start line at once, whatever waits for the network
            self._add('{"type":"text","text":' + self._quote(text) + "}\n")

    def reasoning(self, text: str) -> None:
        text = self._thought.feed(text)
        if text:
            if self._start is not None:
                self.begin()
            self._add('{"type":"reasoning","text":' + self._quote(text) + "}\n")

    def _add_now(self, line: str) -> None:
        self._pending.append(line)
        self.flush()

    # every other event: at once

    def event(self, kind: str, /, **fields: Any) -> None:
        """One `kind` event; `fields` must be JSON values (floats finite)."""
        if self._start is not None:
            self._begin()
        self._pending.append(self._dumps({"type": kind, **fields}) + "\n")
        self.flush()

    def finish(self, **fields: Any) -> None:
        """The last line (once): what is held of a split surrogate pair goes first."""
        if self.finished:
            return
        if self._start is not None:
            self._begin()
        for kind, joiner in (("reasoning", self._thought), ("text", self._text)):
            held = joiner.flush()
            if held:
                self._pending.append('{"type":"' + kind + '","text":' + self._quote(held) + "}\n")
        self.finished = True
        self.event("finish", **fields)

    def begin(self) -> None:
        """Write the start line now (else it goes before the first event)."""
        if self._start is not None:
            self._begin()
            self.flush()

    def _begin(self) -> None:
        start, self._start = self._start, None
        assert start is not None
        self._pending.insert(0, self._dumps({"type": "start", "version": JSON_VERSION, **start()}) + "\n")

    @property
    def error(self) -> Optional[BaseException]:
        """A write that failed in a scheduled flush (raised at the next line or flush)."""
        return self._batch.error if self._batch is not None else None

    def flush(self) -> None:
        batch = self._batch
        if batch is not None and batch.error is not None:
            error, batch.error = batch.error, None
            raise error
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._emit(text)

    def _emit(self, text: str) -> None:
        for char, escape in _LINE_BREAKERS:
            if char in text:  # only ever inside a string: the escape reads back as the same character
                text = text.replace(char, escape)
        self._out.write(encode(text))
        self._out.flush()
        self.wrote_any = True

    def close(self) -> None:
        self.flush()
        self._out.flush()


# --- rendered Markdown ---------------------------------------------------------------------


def split_finished(text: str, parser: Any) -> int:
    """Where the finished top-level blocks of `text` end (0 when none is finished yet).

    A block is finished once a later block has begun on a complete line: nothing after that
    can change how it renders (a setext underline, a list continuation and a table delimiter
    all belong to the last block). Only complete lines are considered.
    """
    end = text.rfind("\n")
    if end == -1:
        return 0
    complete = text[: end + 1]
    starts = [t.map[0] for t in parser.parse(complete) if t.level == 0 and t.nesting != -1 and t.map]
    if len(starts) < 2:
        return 0
    return _line_offset(complete, starts[-1])


class RenderedWriter:
    """Markdown rendered while it arrives, for a terminal on stdout.

    Finished blocks are printed once; the growing block is shown in a transient region under
    them (`_Region`), redrawn at most `fps` times a second and less often when drawing it is
    slow, so the work stays a bounded share of the time whatever the answer's length. Only the
    last screenful of a block taller than the terminal is drawn while it grows.

    With `reasoning_console` (stderr on a terminal), `reasoning()` text is shown before the
    answer, dimmed under a label: complete lines are printed for good on that console, the
    line still growing is shown in the transient region.
    """

    def __init__(
        self,
        console: "Console",
        *,
        live: bool = True,
        fps: float = 12.0,
        clock: Callable[[], float] = time.monotonic,
        code_theme: str = "monokai",
        reasoning_console: Optional["Console"] = None,
    ) -> None:
        from markdown_it import MarkdownIt

        from llmchat.sanitize import Sanitizer

        self.console = console
        self._clock = clock
        self._interval = 1.0 / fps
        self._parser = MarkdownIt().enable("strikethrough").enable("table")
        self._sanitizer = Sanitizer()
        self._joiner = SurrogateJoiner()
        self._tail: list = []  # pieces of the text not yet printed for good
        self._last_block = ""  # source of the last block printed: Rich spaces by what came before
        self._references: dict = {}  # link reference definitions seen in printed blocks
        self._definitions = ""  # ... as Markdown source, put before whatever is rendered
        self._holding = False  # a block may use a reference defined later: print nothing more
        self._held: list = []  # finished blocks waiting for the end (while holding)
        self._printed_any = False
        self._code_theme = code_theme
        self._region = _Region(console, clock, terminal_reflows(os.environ)) if live else None
        self._paused = False  # a question has the terminal (`pause`)
        self._next_draw = 0.0
        self._dirty = False
        self._waiting_label: Optional[str] = None
        self._spinner: Any = None
        self._reasoning_console = reasoning_console
        self._thought = ""  # reasoning on its line still growing, not printed yet
        self._thought_sanitizer = Sanitizer()
        self._thought_joiner = SurrogateJoiner()
        self._thinking = False  # reasoning has been shown and the answer has not begun
        self.wrote_any = False

    def pause(self) -> None:
        """Take the transient region off the terminal (cursor shown) and draw nothing until
        `resume`: a question on the terminal (a tool's approval) has the screen meanwhile."""
        self._paused = True
        if self._region is not None and self._region.shown:
            self._region.clear(for_good=True)

    def resume(self) -> None:
        self._paused = False
        self._show_region()

    def waiting(self, label: str) -> None:
        """Before the first token: a spinner with the elapsed time, in the transient region."""
        if self._region is None:
            return
        from rich.spinner import Spinner

        self._waiting_since = self._clock()
        self._spinner = Spinner("dots", text=label, style="dim")
        self._waiting_label = label
        self._show_region()

    def tick(self) -> None:
        """Called at frame rate: animate the spinner, or draw text that arrived since the last
        frame (a pause in the stream must not leave it undrawn)."""
        if self._region is None:
            return
        now = self._clock()
        if not self._region.settled(now):
            return  # the window is being resized: draw once it keeps a size
        if self._waiting_label is not None and not self.wrote_any:
            self._spinner.update(text=f"{self._waiting_label} {now - self._waiting_since:.1f} s")
            self._flush_thought()
            self._show_region()
        elif self._dirty and now >= self._next_draw:
            if self.wrote_any:
                self._draw(now)
            else:
                self._flush_thought()
                self._show_region()
                self._dirty = False

    def reasoning(self, text: str) -> None:
        """Reasoning before the answer: complete lines printed for good, dimmed, under a label."""
        if self._reasoning_console is None or self.wrote_any:
            return
        text = self._thought_sanitizer.feed(self._thought_joiner.feed(text))
        if not text:
            return
        self._thought += text
        self._dirty = True
        now = self._clock()
        if now >= self._next_draw and self._settled(now):
            self._flush_thought()
            self._show_region()
            self._next_draw = now + self._interval
            self._dirty = False

    def write(self, text: str) -> None:
        text = self._sanitizer.feed(self._joiner.feed(text))
        if not text:
            return
        if self._thinking or self._thought:
            self._end_reasoning()
        self.wrote_any = True
        self._tail.append(text)
        self._dirty = True
        now = self._clock()
        if now >= self._next_draw and self._settled(now):
            self._draw(now)

    def _settled(self, now: float) -> bool:
        return self._region is None or self._region.settled(now)

    def close(self) -> None:
        """The answer ended (finished, failed or cancelled): print what is left for good."""
        self._tail.append(self._sanitizer.feed(self._joiner.flush()) + self._sanitizer.flush())
        if self._thinking or self._thought:
            self._end_reasoning()
        if self._region is not None:
            self._region.clear(for_good=True)
        tail = "".join(self._held) + "".join(self._tail)
        if tail.strip():
            self._print_blocks(tail)
        self._held = []
        self._tail = []

    def print_above(self, show: Callable[[], None]) -> None:
        """Run `show` (which writes to the terminal, e.g. a note on stderr) with the transient
        region cleared, then bring the region back: the two never overwrite each other."""
        if self._region is None or not self._region.shown:
            show()
            return
        self._region.clear()
        show()
        self._show_region()

    def _draw(self, now: float) -> None:
        tail = "".join(self._tail)
        cut = split_finished(tail, self._parser)
        if cut:
            finished, tail = tail[:cut], tail[cut:]
            if not self._holding:
                keep = self._printable(finished)
                if keep:
                    self._print_blocks(finished[:keep])  # above the region, which is drawn again below
                finished = finished[keep:]
            if finished:
                self._held.append(finished)
        self._tail = [tail]
        if self._region is not None:
            started = self._clock()
            self._show_region()
            cost = self._clock() - started
            # Redraw less often when drawing is slow: drawing stays under ~1/4 of the time.
            self._next_draw = now + max(self._interval, 4 * cost)
        else:
            self._next_draw = now + self._interval
        self._dirty = False

    def _show_region(self) -> None:
        """Draw what is not printed for good: the growing block, else the reasoning's growing
        line and the spinner."""
        if self._region is None or self._paused:
            return
        console = self.console
        options = console.options.update(height=None)
        room = max(1, console.size.height - 1)  # the region never scrolls the terminal
        if self.wrote_any:
            tail = "".join(self._tail)
            if not (tail.strip() or self._held):
                self._region.clear()
                return
            renderable: Any = answer_markdown(self._definitions + self._recent_held() + tail, self._code_theme)
            lines = console.render_lines(renderable, options, pad=False)
        else:
            lines = []
            if self._thought:
                from rich.text import Text

                lines = console.render_lines(Text(self._thought, style="dim"), options, pad=False)
            if self._spinner is not None:
                lines += console.render_lines(self._spinner, options, pad=False)
        self._region.draw(lines[-room:])

    def _flush_thought(self) -> None:
        """Print the reasoning's complete lines for good (the label first)."""
        cut = self._thought.rfind("\n")
        if cut != -1:
            lines, self._thought = self._thought[:cut], self._thought[cut + 1 :]
            self._print_reasoning(lines)
        elif self._thought and not self._thinking:
            self._print_reasoning(None)  # the label at once: reasoning has begun

    def _print_reasoning(self, lines: Optional[str]) -> None:
        from rich.text import Text

        out = self._reasoning_console
        assert out is not None
        if self._region is not None:
            self._region.clear()
        if not self._thinking:
            self._thinking = True
            out.print(Text("Reasoning", style="dim bold italic"))
        if lines is not None:
            out.print(Text(lines, style="dim"), crop=False)

    def _end_reasoning(self) -> None:
        """The answer begins (or the stream ended): the rest of the reasoning, then a blank line."""
        self._thinking = False
        rest, self._thought = self._thought, ""
        rest += self._thought_sanitizer.feed(self._thought_joiner.flush()) + self._thought_sanitizer.flush()
        out = self._reasoning_console
        assert out is not None
        if self._region is not None:
            self._region.clear()
        from rich.text import Text

        if rest:
            out.print(Text(rest, style="dim"), crop=False)
        out.print()

    def _recent_held(self) -> str:
        """The held blocks the live region can show: the last ones, a screenful of source lines
        (each renders to at least one line), so a long held answer costs no more to draw."""
        lines, start = 0, len(self._held)
        while start > 0 and lines < self.console.size.height:
            start -= 1
            lines += self._held[start].count("\n")
        return "".join(self._held[start:])

    def _print_blocks(self, text: str) -> None:
        """Print finished blocks for good, exactly as Rich lays them out in one document.

        Rich decides the gap before a block from the element before it, so the blocks are
        rendered after the source of the last block already printed, whose own lines are
        then dropped: each block is rendered at most three times, whatever the answer's length.
        Lines are not cut at the terminal's width: a code line longer than it is left for the
        terminal to wrap, so that copying it gives the line as it is.
        """
        if self._region is not None:
            self._region.clear()
        before = self._definitions + self._last_block
        lines = self._render(before + text)
        if self._last_block:
            lines = lines[len(self._render(before)) :]
        self.console.print(_Lines(lines), crop=False)
        self._printed_any = True
        self._last_block = text[_last_block_start(text, self._parser) :]

    def _render(self, source: str) -> list:
        from rich.segment import Segment

        segments = self.console.render(answer_markdown(source, self._code_theme), self.console.options)
        return list(Segment.split_lines(segments))

    def _printable(self, finished: str) -> int:
        """How much of the finished blocks `finished` can be printed for good.

        A link reference (`[text][label]`, `[label]`) may be defined anywhere in the answer, even
        after its use, so a block with bracketed text that no definition seen so far resolves
        is not printed: from it on, finished blocks are held, and the live region shows the last
        of them, until the end. Definitions in what is printed are kept and put before every
        later render, as one document has them.
        """
        env = {"references": dict(self._references)}
        tokens = self._parser.parse(finished, env)
        cut = len(finished)
        block_start = 0
        for token in tokens:
            if token.level == 0 and token.nesting != -1 and token.map:
                block_start = token.map[0]
            if token.type == "inline" and any(child.type == "text" and _maybe_reference(child.content) for child in token.children or ()):
                self._holding = True
                cut = _line_offset(finished, block_start)
                env = {"references": dict(self._references)}
                self._parser.parse(finished[:cut], env)  # only the definitions printed count
                break
        if env["references"] != self._references:
            self._references = env["references"]
            self._definitions = _definitions_source(self._references)
        return cut


class _Region:
    """The transient lines under the printed answer: drawn, erased and drawn again in place.

    Redrawing in place means moving the cursor up over the rows drawn before, so the count of
    rows must be right. Rich's Live counts the lines it rendered, which is the count of rows
    only if the terminal agrees with Rich on every line's width: a line the terminal finds
    wider (an emoji with a skin-tone modifier is 2 cells to Rich, 4 to tmux, xterm and VTE)
    wraps onto a second row, and the rows above the count are never erased -- and once the
    block is printed for good, they stay in the scrollback twice. So autowrap is off (DECAWM)
    while the region is drawn: every line takes exactly one row, whatever width the terminal
    gives it (an overlong line is clipped at the margin until its block is printed for good).

    A window made narrower splits each row wider than it into several (tmux, VTE, kitty and
    most terminals reflow), not counting blank cells at the end of a row: so lines are drawn
    without their trailing plain spaces, and rows are counted at the width of the moment. xterm
    and the Linux console cut rows instead (`reflows=False`): one row per line, always.

    Known limit: tmux keeps the cursor's row when it reflows and pushes the rows above it off
    the top of the screen, where no cursor movement reaches; so a window narrowed while the
    growing block begins near the top of the screen can leave its first rows in the scrollback.
    """

    SETTLE = 0.25  # seconds a new width must last before the region is erased at it

    def __init__(self, console: "Console", clock: Callable[[], float], reflows: bool = True) -> None:
        self.console = console
        self._reflows = reflows
        self._widths: list = []  # the cell widths of the lines shown
        self._cursor_hidden = False
        self._clock = clock
        self._seen_width = console.width
        self._resized_at = -1e9

    def settled(self, now: float) -> bool:
        """False while the window is being resized (and for `SETTLE` after).

        Bytes written just before a resize may reach the terminal after it: rows counted at
        one width while the terminal lays them out at the next would erase too few rows (a
        line left twice) or too many (a printed line lost). Dragging a window's edge sends
        many resizes in a row, so the region waits for the width to stay put.
        """
        width = self.console.width
        if width != self._seen_width:
            self._seen_width = width
            self._resized_at = now
        return not self._widths or now - self._resized_at >= self.SETTLE

    @property
    def shown(self) -> bool:
        return bool(self._widths)

    def draw(self, lines: list) -> None:
        from rich.segment import Segment

        out = self._erase()
        if not self._cursor_hidden:
            out += "\x1b[?25l"
            self._cursor_hidden = True
        lines = [_trim_blanks(line) for line in lines]
        self._write(out + "\x1b[?7l")
        self.console.print(_Lines(lines, last_new_line=False), end="", crop=False, soft_wrap=True)
        self._write("\x1b[?7h")
        self._widths = [Segment.get_line_length(line) for line in lines] or [0]

    def clear(self, for_good: bool = False) -> None:
        out = self._erase()
        if for_good and self._cursor_hidden:
            out += "\x1b[?25h"
            self._cursor_hidden = False
        self._write(out)
        self._widths = []

    def _erase(self) -> str:
        if not self._widths:
            return ""
        if not self._reflows:
            rows = len(self._widths)
        else:
            width = max(1, self.console.width)
            rows = sum(max(1, -(-w // width)) for w in self._widths)
        return "\r\x1b[2K" + "\x1b[1A\x1b[2K" * (rows - 1)

    def _write(self, control: str) -> None:
        if control:
            self.console.file.write(control)
            self.console.file.flush()


def terminal_reflows(env: Mapping[str, str]) -> bool:
    """Whether the terminal rewraps its rows when the window narrows: most do (tmux, VTE,
    kitty, iTerm2, Windows Terminal...); xterm and the Linux console do not, unless inside tmux."""
    if env.get("TMUX"):
        return True
    return not (env.get("XTERM_VERSION") or env.get("TERM") == "linux")


def _trim_blanks(line: list) -> list:
    """`line` without the spaces at its end that show nothing (no background, no underline):
    a terminal does not count them when it reflows the row."""
    line = list(line)
    while line:
        segment = line[-1]
        style = segment.style
        if segment.control or (style is not None and (style.bgcolor is not None or style.reverse or style.underline or style.strike)):
            break
        text = segment.text.rstrip(" ")
        if text:
            line[-1] = segment._replace(text=text)
            break
        line.pop()
    return line


def answer_markdown(text: str, code_theme: str = "monokai") -> Any:
    """Rich's Markdown for an answer, as the one-shot face prints it (see `_answer_markdown_class`)."""
    return _answer_markdown_class()(text, code_theme=code_theme, hyperlinks=False)


_ANSWER_MARKDOWN: Any = None


def _answer_markdown_class() -> Any:
    """Rich's Markdown with three corrections for a terminal:

    - ordered list items keep their `1.` (Rich prints `1 item`);
    - an autolink (`<https://x>`, whose text is its address) is printed once, not as
      `https://x (https://x)`; every other link still shows its address after its text;
    - a code line longer than the terminal is not wrapped by Rich: the terminal wraps it, so
      copying it gives the real line. Code inside a list or a quote is wrapped as before (it is
      laid out in a narrower box, which cannot let a line overflow).
    """
    global _ANSWER_MARKDOWN
    if _ANSWER_MARKDOWN is not None:
        return _ANSWER_MARKDOWN
    from rich.cells import cell_len
    from rich.markdown import CodeBlock, ListItem, Markdown
    from rich.segment import Segment
    from rich.syntax import Syntax

    class NumberedItem(ListItem):
        def render_number(self, console: Any, options: Any, number: int, last_number: int) -> Any:
            number_width = len(str(last_number)) + 3
            render_options = options.update(width=options.max_width - number_width)
            lines = console.render_lines(self.elements, render_options, style=self.style)
            number_style = console.get_style("markdown.item.number", default="none")
            numeral = Segment(f"{number}.".rjust(number_width - 1) + " ", number_style)
            padding = Segment(" " * number_width, number_style)
            new_line = Segment("\n")
            for first, line in enumerate(lines):
                yield numeral if first == 0 else padding
                yield from line
                yield new_line

    class UnwrappedCode(CodeBlock):
        def __rich_console__(self, console: Any, options: Any) -> Any:
            code = str(self.text).rstrip()
            longest = max((cell_len(line) for line in code.splitlines()), default=0) + 2  # padding
            if longest <= options.max_width or options.max_width < console.width:
                yield from super().__rich_console__(console, options)
                return
            syntax = Syntax(code, self.lexer_name, theme=self.theme, word_wrap=False, padding=1)
            new_line = Segment.line()
            for line in console.render_lines(syntax, options.update(width=longest), pad=False):
                # Only text may overflow: padding beyond the terminal's width would wrap as
                # rows of blank background.
                length = Segment.get_line_length(line)
                text = "".join(segment.text for segment in line)
                keep = max(options.max_width, cell_len(text.rstrip()))
                yield from Segment.adjust_line_length(line, keep) if keep < length else line
                yield new_line

    class AnswerMarkdown(Markdown):
        elements = {**Markdown.elements, "list_item_open": NumberedItem, "fence": UnwrappedCode, "code_block": UnwrappedCode}
        inlines = Markdown.inlines | {"autolink"}

        def __init__(self, markup: str, **options: Any) -> None:
            super().__init__(markup, **options)
            _mark_autolinks(self.parsed)

    _ANSWER_MARKDOWN = AnswerMarkdown
    return AnswerMarkdown


def _mark_autolinks(tokens: Any) -> None:
    """Turn the link tokens of autolinks, and of links whose text is their address already
    (`same_address`), into a plain inline style (`markdown.autolink`, unset: the text as it
    is), so Rich prints the address once."""
    for token in tokens:
        children = token.children or ()
        closing = set()
        for index, child in enumerate(children):
            if child.type == "link_open":
                # `[text](href)` with nothing but plain text inside: does the text say the address?
                said = index + 2 < len(children) and children[index + 1].type == "text" and children[index + 2].type == "link_close"
                if child.markup in ("autolink", "linkify") or (said and same_address(children[index + 1].content, str(child.attrs.get("href", "")))):
                    child.type, child.tag = "autolink_open", "autolink"
                    if said:
                        closing.add(index + 2)
            elif child.type == "link_close" and (child.markup in ("autolink", "linkify") or index in closing):
                child.type, child.tag = "autolink_close", "autolink"


def same_address(text: str, href: str) -> bool:
    """Does a link's text say where it goes: its address, or its address but for the scheme a
    linkifier adds (`www.example.com` for http://www.example.com) or `mailto:`? Then the
    address is not shown again after it."""
    text = text.strip()
    if text == href:
        return True
    scheme, sep, rest = href.partition(":")
    if not sep or scheme.lower() not in ("http", "https", "mailto"):
        return False
    return rest.removeprefix("//") == text if scheme.lower() != "mailto" else rest == text


# Bracketed text left as text after parsing: an unresolved reference, unless it is a task-list
# box ("[ ]", "[x]") at the start.
_BRACKETED = re.compile(r"\[[^\]]*\S[^\]]*\]")
_TASK_BOX = re.compile(r"\[[ xX]\]\s")


def _maybe_reference(text: str) -> bool:
    for match in _BRACKETED.finditer(text):
        if not (match.start() == 0 and _TASK_BOX.match(text)):
            return True
    return False


def _definitions_source(references: dict) -> str:
    """Link reference definitions as Markdown: they render as nothing, and resolve the uses."""
    lines = []
    for label, ref in references.items():
        title = ref.get("title") or ""
        quoted = ' "' + title.replace("\\", "\\\\").replace('"', '\\"') + '"' if title else ""
        lines.append(f"[{label}]: <{ref['href']}>{quoted}")
    return "\n".join(lines) + "\n\n"


def _last_block_start(text: str, parser: Any) -> int:
    """Offset where the last top-level block of `text` starts."""
    starts = [t.map[0] for t in parser.parse(text) if t.level == 0 and t.nesting != -1 and t.map]
    return _line_offset(text, starts[-1]) if starts else 0


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


class _Lines:
    """Pre-rendered lines, printed as they are."""

    def __init__(self, lines: list, last_new_line: bool = True) -> None:
        self.lines = lines
        self.last_new_line = last_new_line

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        new_line = Segment.line()
        for index, line in enumerate(self.lines):
            yield from line
            if self.last_new_line or index < len(self.lines) - 1:
                yield new_line
