"""The faces without a screen: one prompt in, one answer out, streamed to stdout.

stdout carries only the answer: raw bytes when it is a pipe or file (or with --raw), Markdown
rendered progressively when it is a terminal. Everything else (the demo notice, retries, reasoning,
--stats, warnings, errors) goes to stderr. Ctrl-C stops the stream at once and keeps what arrived.

The turn itself is the engine's (llmchat/engine): with a history store, the prompt is committed
before the request is sent and the answer is saved as it grows (by a timer: the token loop only
appends to a list), then stored complete, cancelled (Ctrl-C, SIGTERM, the reader went away) or
error. This module is the engine's observer: it only presents.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from typing import IO, Any, Callable, Dict, Optional, Sequence, Tuple

from llmchat.config import Settings
from llmchat.conversation import Message
from llmchat.engine.core import Observer
from llmchat.engine.turns import DONE, ERROR, STREAMING
from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import OK as EXIT_OK
from llmchat.exitcodes import TERMINATED as EXIT_TERMINATED
from llmchat.stream.events import StreamError
from llmchat.terminal import isatty, silence_stdout

# Where a turn can go in the conversation's tree: `run(place=...)` sets these on its Turn.
_PLACES = frozenset({"parent_id", "edits", "regenerates", "current"})


def run(
    settings: Settings,
    prompt: str,
    *,
    raw: bool,
    stats: bool,
    show_reasoning: bool,
    history: Any = None,
    context: Sequence[Message] = (),
    early: Any = None,
    attachments: Sequence[Any] = (),
    place: Optional[Dict[str, Any]] = None,
    output: Optional[IO[bytes]] = None,
    ended: Optional[Callable[["OneShot"], None]] = None,
) -> int:
    """`history`: an open `HistoryStore` to record in (None: not stored); `context`: the earlier
    messages of a continued conversation (`settings.conversation_id`), sent before the prompt;
    `early`: the connection to the server a thread is opening (`stream.early.connect_early`);
    `attachments`: what the prompt carries (`attaching.gather`: checked and encoded already);
    `place`: where the turn goes in the conversation's tree, as the `Turn` attributes
    parent_id, edits, regenerates and current (none: after the current leaf); `output`: where
    the answer is written instead of stdout (raw); `ended` is called with the session once its
    turn is over (its `turn`, `writer`), before the exit code is returned."""
    session = OneShot(
        settings,
        prompt,
        raw=raw,
        stats=stats,
        show_reasoning=show_reasoning,
        history=history,
        context=context,
        early=early,
        place=place,
        output=output,
    )
    session.attachments = tuple(attachments)
    try:
        code = asyncio.run(session.main())
        if ended is not None:
            ended(session)
        return code
    except KeyboardInterrupt:  # a second Ctrl-C while cleaning up
        return EXIT_INTERRUPTED
    finally:
        # The answer is out; what is left is tearing the interpreter down. Freezing the heap
        # spares the final collections a walk over every object (~100 ms at exit).
        gc.freeze()


class OneShot(Observer):
    """The one-shot face: presents one turn the engine runs (llmchat/engine)."""

    def __init__(
        self,
        settings: Settings,
        prompt: str,
        *,
        raw: bool,
        stats: bool,
        show_reasoning: bool,
        history: Any = None,
        context: Sequence[Message] = (),
        early: Any = None,
        place: Optional[Dict[str, Any]] = None,
        output: Optional[IO[bytes]] = None,
    ) -> None:
        self.settings = settings
        self.early = early  # see run()
        self.prompt = prompt
        self.context = list(context)
        self.history = history
        self.stats = stats
        self.show_reasoning = show_reasoning
        self.place = dict(place or {})
        if not self.place.keys() <= _PLACES:
            raise TypeError(f"unknown places: {sorted(self.place.keys() - _PLACES)}")
        self.output = output
        self.turn: Any = None  # the turn, once main() runs it
        self.stdout_tty = isatty(sys.stdout) if output is None else False
        self.stderr_tty = isatty(sys.stderr)
        self.rendered = self.stdout_tty and not raw
        self.writer: Any = None
        self.reasoning_out: Any = None
        self.reasoning_open = False  # reasoning text on stderr without its final newline yet
        self.broken_pipe = False
        self.signal: Optional[int] = None
        self.redactor: Any = None  # masks known secrets in what is printed (none: not loaded)
        self.attachments: Tuple[Any, ...] = ()  # the prompt's (set by run)
        if settings.secrets:
            from llmchat.redact import Redactor

            self.redactor = Redactor(settings.secrets)

    async def main(self) -> int:
        from llmchat.engine import Engine, Turn
        from llmchat.stream.metrics import Metrics

        settings = self.settings
        # Store calls on the loop: there is no screen to keep responsive, and a thread start
        # would delay the request.
        engine = Engine(settings, store=self.history, warn=self.note, store_in_thread=False)
        turn = self.turn = Turn(self.prompt, Metrics())
        turn.attachments = self.attachments
        for name, value in self.place.items():
            setattr(turn, name, value)
        try:
            await engine.start()
            if settings.demo:
                self.note(f"llmchat: answering with the built-in offline demo model ({settings.demo_reason})")
            if self.early is not None:
                engine.warm_up(self.early)  # TLS, if any, starts while the history is written
            self.writer = self._make_writer()
            task = asyncio.ensure_future(self._consume(engine, turn))
            loop = asyncio.get_running_loop()

            def stop(sig: int) -> None:
                self.signal = sig
                task.cancel()

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop, sig)
                except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                    pass
            try:
                await task
            except asyncio.CancelledError:
                pass
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    try:
                        loop.remove_signal_handler(sig)
                    except (NotImplementedError, RuntimeError):
                        pass
        finally:
            await engine.aclose()
        return self._report(turn)

    async def _consume(self, engine: Any, turn: Any) -> None:
        """Run the turn; this face is its observer (text to the writer, notes to stderr)."""
        ticker = None
        if self.rendered:
            from llmchat.sanitize import one_line

            self.writer.waiting(f"waiting for {one_line(self.settings.model, 60)}…")
            ticker = asyncio.ensure_future(self._tick())
        self.text = self.writer.write  # type: ignore[method-assign]  # per token: no extra call
        try:
            await engine.run(turn, self.context, self, keep=False)
        finally:
            if ticker is not None:
                ticker.cancel()

    # --- the engine's observer -------------------------------------------------------------

    def text(self, text: str) -> None:
        self.writer.write(text)

    def reasoning(self, text: str) -> None:
        if self.show_reasoning:
            if self.rendered and self.stderr_tty:
                self.writer.reasoning(text)  # above the answer's live region
            else:
                self._reasoning(text)

    def state(self, turn: Any) -> None:
        if turn.state == STREAMING and self.reasoning_open:
            self._end_reasoning()

    def notice(self, turn: Any, message: str) -> None:
        self.note(f"llmchat: {message}")

    def retry(self, turn: Any) -> None:
        notice = turn.retry
        self.note(f"llmchat: {notice.reason}; retrying in {notice.delay:.1f} s (attempt {notice.attempt} of {notice.max_attempts})")

    def failed(self, exc: Exception) -> Optional[StreamError]:
        if isinstance(exc, BrokenPipeError):
            self.broken_pipe = True
            return None  # stored cancelled: the reader went away
        if isinstance(exc, OSError):  # e.g. the disk behind a redirected stdout is full
            return StreamError(f"cannot write the answer to stdout: {exc.strerror or exc}", kind="output")
        raise exc  # a bug: the crash log (crash.py)

    def ended(self, turn: Any) -> Optional[StreamError]:
        """The answer is out on stdout before the history is written."""
        return self._close_writer()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1 / 12)
            self.writer.tick()

    def _report(self, turn: Any) -> int:
        if self.broken_pipe:
            silence_stdout()  # the reader went away: saying so would be noise
            return EXIT_OK
        if self.reasoning_open:
            self._end_reasoning()
        if turn.tool_note:
            self.note(f"llmchat: {turn.tool_note}")
        if self.stats:
            self.note(f"{self.settings.model} · {turn.metrics.summary()}")  # note() sanitises the name
        if turn.state == ERROR:
            self.note(f"error: {turn.error.message}")
            return EXIT_ERROR
        if turn.state != DONE:  # cancelled: Ctrl-C, or a signal
            if self.signal == signal.SIGTERM:
                self.note("llmchat: terminated; the partial answer was kept")
                return EXIT_TERMINATED
            self.note("llmchat: interrupted; the partial answer was kept")
            return EXIT_INTERRUPTED
        if turn.warning:
            self.note(f"warning: {turn.warning}")
        return EXIT_OK

    # --- output ------------------------------------------------------------------------

    def _make_writer(self) -> Any:
        if self.rendered:
            from rich.console import Console

            from llmchat.output import RenderedWriter

            # Reasoning goes to stderr, as everywhere: rendered there when it is the terminal too.
            notes = Console(stderr=True, highlight=False) if self.show_reasoning and self.stderr_tty else None
            return RenderedWriter(Console(highlight=False), reasoning_console=notes)
        from llmchat.output import RawWriter

        out = sys.stdout.buffer if self.output is None else self.output
        return RawWriter(out, sanitize=self.stdout_tty, schedule=asyncio.get_running_loop().call_soon)

    def _close_writer(self) -> Optional[StreamError]:
        try:
            self.writer.close()
        except BrokenPipeError:
            self.broken_pipe = True
            return None
        except OSError as exc:
            return StreamError(f"cannot write the answer to stdout: {exc.strerror or exc}", kind="output")
        if self.stderr_tty:  # the shell prompt starts on a clean line
            self._end_raw_line()
        return None

    def _end_raw_line(self) -> None:
        """Raw text on a terminal that stopped mid-line: end the line on stderr, which shares
        the terminal, so nothing is added to stdout. Once: it is ended afterwards."""
        writer = self.writer
        if self.stdout_tty and not self.rendered and writer is not None and writer.wrote_any and not writer.ends_with_newline:
            writer.ends_with_newline = True
            self._to_stderr("\n")

    def _reasoning(self, text: str) -> None:
        """Reasoning goes to stderr, dim on a terminal, and never onto stdout."""
        if self.reasoning_out is None:
            from llmchat.output import Sanitizer

            self.reasoning_out = Sanitizer() if self.stderr_tty else False
        if self.reasoning_out:
            text = self.reasoning_out.feed(text)
        if not text:
            return
        if self.stderr_tty and not os.environ.get("NO_COLOR"):
            text = f"\x1b[2m{text}\x1b[0m"
        self.reasoning_open = True
        self._to_stderr(text)

    def _end_reasoning(self) -> None:
        self.reasoning_open = False
        self._to_stderr("\n")

    def note(self, message: str) -> None:
        """One line on stderr, kept clear of a raw answer still on the same terminal line.
        Whatever it quotes (a server's error message, a model name) is sanitised and its
        secrets masked: a terminal shows stderr too."""
        from llmchat.sanitize import one_line

        if self.reasoning_open:
            self._end_reasoning()
        self._end_raw_line()
        if self.redactor is not None:
            message = self.redactor.redact(message)
        self._to_stderr(one_line(message) + "\n")

    def _to_stderr(self, text: str) -> None:
        def show() -> None:
            sys.stderr.write(text)
            sys.stderr.flush()

        if self.rendered and self.writer is not None:
            self.writer.print_above(show)  # never drawn over by the live region
        else:
            show()
