"""Terminal-side consumers of the answer: the raw writer and the rendered writer.

`RawWriter` writes each delta and flushes at once. When stdout is a pipe or a file the bytes pass
unchanged; when it is a terminal, control sequences are stripped first, so model text cannot
clear the screen, set the title, write the clipboard (OSC 52) or forge hyperlinks (OSC 8)
(the sanitiser itself lives in sanitize.py, shared by every face).

`RenderedWriter` (Rich, imported only when used) renders Markdown progressively: finished
top-level blocks are printed once, only the growing last block is redrawn, at frame rate, and
the final output is the same as rendering the whole answer at once.
"""

from __future__ import annotations

import re
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Optional

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


class RawWriter:
    """Each delta reaches stdout the moment it arrives.

    With `schedule` (e.g. `loop.call_soon`), deltas are collected and written with one write
    and one flush when the reading task next waits for the network: every delta of one network
    read arrived at the same moment, and a write per token costs a system call per token.
    Without it, every delta is written and flushed at once.
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
        self._schedule = schedule
        self._pending: list = []
        self.wrote_any = False
        self.ends_with_newline = True
        self.error: Optional[BaseException] = None  # a write that failed in a scheduled flush

    def write(self, text: str) -> None:
        if self._schedule is None:
            self._emit(text)
            return
        if self.error is not None:
            raise self.error
        if not self._pending:
            self._schedule(self._flush_pending)
        self._pending.append(text)
        if len(self._pending) >= 4096:  # a bound on what waits, whatever the network does
            self.flush()

    def _flush_pending(self) -> None:
        try:
            self.flush()
        except (BrokenPipeError, OSError) as exc:
            self.error = exc  # raised to the reader at its next write or at close()

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._emit(text)

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
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        pending = "".join(self._pending)
        self._pending.clear()
        self._emit(pending, final=True)
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

    Finished blocks are printed once; the growing block is shown in a transient Live region,
    redrawn at most `fps` times a second and less often when drawing it is slow, so the work
    stays a bounded share of the time whatever the answer's length. Only the last screenful of
    a block taller than the terminal is drawn while it grows.
    """

    def __init__(
        self,
        console: "Console",
        *,
        live: bool = True,
        fps: float = 12.0,
        clock: Callable[[], float] = time.monotonic,
        code_theme: str = "monokai",
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
        self._live: Any = None
        self._use_live = live
        self._next_draw = 0.0
        self._dirty = False
        self._waiting_label: Optional[str] = None
        self.wrote_any = False

    def waiting(self, label: str) -> None:
        """Before the first token: a spinner with the elapsed time, in the transient region."""
        if not self._use_live:
            return
        from rich.spinner import Spinner

        self._waiting_since = self._clock()
        self._spinner = Spinner("dots", text=label, style="dim")
        self._waiting_label = label
        self._start_live(self._spinner)
        self._live.refresh()

    def tick(self) -> None:
        """Called at frame rate: animate the spinner, or draw text that arrived since the last
        frame (a pause in the stream must not leave it undrawn)."""
        if self._live is None:
            return
        now = self._clock()
        if self._waiting_label is not None and not self.wrote_any:
            self._spinner.update(text=f"{self._waiting_label} {now - self._waiting_since:.1f} s")
            self._live.refresh()
        elif self._dirty and now >= self._next_draw:
            self._draw(now)

    def write(self, text: str) -> None:
        text = self._sanitizer.feed(self._joiner.feed(text))
        if not text:
            return
        self.wrote_any = True
        self._tail.append(text)
        self._dirty = True
        now = self._clock()
        if now >= self._next_draw:
            self._draw(now)

    def close(self) -> None:
        """The answer ended (finished, failed or cancelled): print what is left for good."""
        self._tail.append(self._sanitizer.feed(self._joiner.flush()) + self._sanitizer.flush())
        if self._live is not None:
            self._live.stop()
            self._live = None
        tail = "".join(self._held) + "".join(self._tail)
        if tail.strip():
            self._print_blocks(tail)
        self._held = []
        self._tail = []

    def print_above(self, show: Callable[[], None]) -> None:
        """Run `show` (which writes to the terminal, e.g. a note on stderr) with the transient
        region cleared, then bring the region back: the two never overwrite each other."""
        if self._live is None:
            show()
            return
        self._live.stop()
        self._live = None
        show()
        if self._waiting_label is not None and not self.wrote_any:
            self._start_live(self._spinner)
            self._live.refresh()
        else:
            self._draw(self._clock())

    def _draw(self, now: float) -> None:
        tail = "".join(self._tail)
        cut = split_finished(tail, self._parser)
        if cut:
            finished, tail = tail[:cut], tail[cut:]
            if not self._holding:
                keep = self._printable(finished)
                if keep:
                    self._print_blocks(finished[:keep])  # above the Live region, which Rich keeps below
                finished = finished[keep:]
            if finished:
                self._held.append(finished)
        self._tail = [tail]
        if self._use_live and (tail.strip() or self._held):
            started = self._clock()
            self._start_live(_Tail(self._markdown(self._definitions + self._recent_held() + tail)))
            self._live.refresh()
            cost = self._clock() - started
            # Redraw less often when drawing is slow: drawing stays under ~1/4 of the time.
            self._next_draw = now + max(self._interval, 4 * cost)
        else:
            self._next_draw = now + self._interval
        self._dirty = False

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
        """
        render = self.console.render_lines
        options = self.console.options
        before = self._definitions + self._last_block
        if self._last_block:
            skip = len(render(self._markdown(before), options, pad=False, new_lines=False))
            lines = render(self._markdown(before + text), options, pad=False, new_lines=False)[skip:]
        else:
            lines = render(self._markdown(before + text), options, pad=False, new_lines=False)
        self.console.print(_Lines(lines))
        self._printed_any = True
        self._last_block = text[_last_block_start(text, self._parser):]

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
            if token.type == "inline" and any(
                child.type == "text" and _maybe_reference(child.content) for child in token.children or ()
            ):
                self._holding = True
                cut = _line_offset(finished, block_start)
                env = {"references": dict(self._references)}
                self._parser.parse(finished[:cut], env)  # only the definitions printed count
                break
        if env["references"] != self._references:
            self._references = env["references"]
            self._definitions = _definitions_source(self._references)
        return cut

    def _markdown(self, text: str) -> Any:
        from rich.markdown import Markdown

        return Markdown(text, code_theme=self._code_theme, hyperlinks=False)

    def _start_live(self, renderable: Any) -> None:
        from rich.live import Live

        if self._live is None:
            self._live = Live(
                renderable,
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._live.update(renderable)


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

    def __init__(self, lines: list) -> None:
        self.lines = lines

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        new_line = Segment.line()
        for line in self.lines:
            yield from line
            yield new_line


class _Tail:
    """The growing block, cut to the last screenful so the Live region never scrolls."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        room = max(1, console.size.height - 1)
        new_line = Segment.line()
        for line in lines[-room:]:
            yield from line
            yield new_line
