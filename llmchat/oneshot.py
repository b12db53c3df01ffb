"""The faces without a screen: one prompt in, one answer out, streamed to stdout.

stdout carries only the answer: raw bytes when it is a pipe or file (or with --raw), Markdown
rendered progressively when it is a terminal. Everything else (the demo notice, retries, reasoning,
--stats, warnings, errors) goes to stderr. Ctrl-C stops the stream at once and keeps what arrived.
With --json, stdout carries every event of the turn as one JSON object per line instead
(`output.JsonWriter`, the schema in docs/events.schema.json); stderr keeps its notes.

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
    json: bool = False,
    verbose: bool = False,
) -> int:
    """`history`: an open `HistoryStore` to record in (None: not stored); `context`: the earlier
    messages of a continued conversation (`settings.conversation_id`), sent before the prompt;
    `early`: the connection to the server a thread is opening (`stream.early.connect_early`);
    `attachments`: what the prompt carries (`attaching.gather`: checked and encoded already);
    `place`: where the turn goes in the conversation's tree, as the `Turn` attributes
    parent_id, edits, regenerates and current (none: after the current leaf); `output`: where
    the answer is written instead of stdout (raw); `ended` is called with the session once its
    turn is over (its `turn`, `writer`), before the exit code is returned; `json`: every event
    as a line of JSON on stdout (--json), whether stdout is a terminal or not; `verbose`: a
    line on stderr for each tool call and result."""
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
        json=json,
        verbose=verbose,
    )
    session.attachments = tuple(attachments)
    try:
        code = asyncio.run(session.main())
        if ended is not None:
            ended(session)
        return code
    except KeyboardInterrupt:  # a second Ctrl-C while cleaning up
        session.json_interrupted()
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
        json: bool = False,
        verbose: bool = False,
    ) -> None:
        self.settings = settings
        self.verbose = verbose  # --verbose: tool calls and results on stderr
        self.asker: Any = None  # approval.TtyAsker, once a call needs a question
        self.said_no_tty = False
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
        self.json = json  # --json: events as JSON lines on stdout, even on a terminal
        self.rendered = self.stdout_tty and not raw and not json
        self.engine: Any = None
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
        self.engine = engine  # the ids of --json's start line
        if self.json:  # before anything can fail: a Ctrl-C while starting still ends with a line
            self.writer = self._make_writer()
        try:
            await engine.start()
            if settings.demo:
                self.note(f"llmchat: answering with the built-in offline demo model ({settings.demo_reason})")
            if self.early is not None:
                engine.warm_up(self.early)  # TLS, if any, starts while the history is written
            if self.writer is None:
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
            if self.asker is not None:
                self.asker.close()
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

    def started(self, turn: Any) -> None:
        if self.json:  # the ids are known: a script has them before the answer starts
            self.writer.begin()

    def text(self, text: str) -> None:
        self.writer.write(text)

    def reasoning(self, text: str) -> None:
        if self.json:
            self.writer.reasoning(text)
        if self.show_reasoning:
            if self.rendered and self.stderr_tty:
                self.writer.reasoning(text)  # above the answer's live region
            else:
                self._reasoning(text)

    def state(self, turn: Any) -> None:
        if turn.state == STREAMING and self.reasoning_open:
            self._end_reasoning()

    def notice(self, turn: Any, message: str) -> None:
        if self.json:
            self.writer.event("notice", message=self._redact(message))
        self.note(f"llmchat: {message}")

    def retry(self, turn: Any) -> None:
        notice = turn.retry
        if self.json:
            fields = dict(reason=self._redact(notice.reason), delay=_number(notice.delay), attempt=notice.attempt, max_attempts=notice.max_attempts)
            self.writer.event("retry", **fields)
        self.note(f"llmchat: {notice.reason}; retrying in {notice.delay:.1f} s (attempt {notice.attempt} of {notice.max_attempts})")

    def tool_call(self, turn: Any, call: Any) -> None:
        if self.json:  # the other faces say so once the answer ended (turn.tool_note)
            self.writer.event("tool_call", id=call.id, name=call.name, arguments=call.arguments)

    async def approve(self, turn: Any, activity: Any) -> str:
        """Ask on the terminal (/dev/tty), whatever stdout is; no terminal: denied, said once."""
        from llmchat.approval import TtyAsker, question

        if self.asker is None:
            self.asker = TtyAsker()
        if not self.asker.available:
            if not self.said_no_tty:
                self.said_no_tty = True
                self.note("llmchat: no terminal to ask on, so tool calls are denied unless allowed (--allow-tool NAME, --allow-tools)")
            return "deny"
        call = activity.call
        text = question(call.name, activity.tool.server if activity.tool is not None else None, self._redact(call.arguments))
        if self.reasoning_open:
            self._end_reasoning()
        self._end_raw_line()
        pause = getattr(self.writer, "pause", None) if self.rendered else None
        if pause is not None:
            pause()
        try:
            return await self.asker.ask(text)
        finally:
            if pause is not None:
                self.writer.resume()

    def step(self, turn: Any, step: Any) -> None:
        """The answer goes on after tool results: a paragraph break between the text before
        the calls and the text after them (written with the next step's first text), so two
        steps' sentences are not glued together. Not in --json: each text event is the model's."""
        if self.json or step.first_part == 0:
            return
        last = turn.parts[step.first_part - 1]
        if last.endswith("\n\n"):
            return
        pending = ["\n" if last.endswith("\n") else "\n\n"]
        write = self.writer.write

        def first(text: str) -> None:
            if pending:
                write(pending.pop())
            write(text)

        self.text = first  # type: ignore[method-assign]

    def tool_started(self, turn: Any, activity: Any) -> None:
        if self.verbose and activity.status == "running":
            server = activity.tool.server if activity.tool is not None else "?"
            self.note(f"llmchat: tool {activity.call.describe()} on {server}: running")

    def tool_finished(self, turn: Any, activity: Any) -> None:
        result = activity.result
        duration = activity.duration or 0.0
        if self.json:
            fields = dict(
                id=activity.call.id,
                name=activity.call.name,
                is_error=bool(result.is_error),
                status=activity.status,
                duration=_number(duration),
                content=self._redact(result.text),
            )
            self.writer.event("tool_result", **fields)
        if self.verbose:
            from llmchat.sanitize import one_line

            said = f": {one_line(result.text, 120)}" if activity.status != "done" else ""
            self.note(f"llmchat: tool {one_line(activity.call.name, 60)}: {activity.status} in {duration:.2f} s{said}")

    def usage(self, turn: Any, usage: Any) -> None:
        if self.json:
            fields = dict(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=usage.cached_input_tokens,
                server_rate=_number(usage.server_rate),
            )
            self.writer.event("usage", **fields)

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
        if self.json and not self.broken_pipe:  # the turn ended before it ran (no `ended`)
            self._close_writer()
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
        if self.json:
            from llmchat.output import JsonWriter

            return JsonWriter(sys.stdout.buffer, self._json_start, schedule=asyncio.get_running_loop().call_soon)
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
            if self.json:
                self._json_finish(self.turn)
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

    # --- --json --------------------------------------------------------------------------

    def _json_start(self) -> dict:
        """The first line's fields: written just before the first event, when the prompt is stored."""
        engine, turn = self.engine, self.turn
        record = turn.record if turn is not None else None
        return dict(
            model=self.settings.model,
            api=self.settings.api,
            conversation_id=engine.conversation_id if engine is not None and record is not None else None,
            prompt_id=record.prompt_id if record is not None else None,
            message_id=record.answer_id if record is not None else None,
        )

    def _json_finish(self, turn: Any) -> None:
        """The last lines: the error, if any, then how the turn ended and its figures (once)."""
        writer = self.writer
        if writer is None or writer.finished:
            return
        if turn is not None and turn.state == ERROR and turn.error is not None:
            error = turn.error
            writer.event("error", message=self._redact(error.message), kind=error.kind, status=error.status)
        status = {DONE: "complete", ERROR: "error"}.get(turn.state, "cancelled") if turn is not None else "cancelled"
        finish = turn.finish if turn is not None and status == "complete" else None
        metrics = turn.metrics if turn is not None else None
        figures = _figures(metrics) if metrics is not None else None
        steps = []
        for step in turn.steps if turn is not None else ():
            step_finish = step.finish
            steps.append(
                dict(
                    stop_reason=step_finish.reason if step_finish is not None else None,
                    tool_calls=len(step.activities),
                    metrics=_figures(step.metrics),
                )
            )
        signal_name = signal.Signals(self.signal).name if self.signal is not None else None
        writer.finish(
            status=status,
            stop_reason=finish.reason if finish is not None else None,
            raw_stop_reason=finish.raw_reason if finish is not None else None,
            signal=signal_name if status == "cancelled" else None,
            metrics=figures,
            steps=steps,
        )

    def json_interrupted(self) -> None:
        """A Ctrl-C outside the turn (while starting or cleaning up): the last line says cancelled."""
        if not self.json or self.broken_pipe or self.writer is None or self.writer.finished:
            return
        if self.signal is None:
            self.signal = signal.SIGINT
        try:
            self._close_writer()
        except Exception:  # the process is ending: nothing more to say
            pass

    def _redact(self, text: str) -> str:
        return self.redactor.redact(text) if self.redactor is not None else text

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


def _figures(metrics: Any) -> dict:
    """A Metrics as --json's `metrics` object."""
    return dict(
        ttft=_number(metrics.ttft),
        tokens_per_second=_number(metrics.tokens_per_second),
        rate_from_server=metrics.rate_from_server,
        input_tokens=metrics.input_tokens,
        cached_input_tokens=metrics.cached_input_tokens,
        output_tokens=metrics.output_tokens,
        exact=metrics.exact,
        elapsed=_number(metrics.elapsed()),
    )


def _number(value: Optional[float]) -> Optional[float]:
    """A figure for JSON: rounded to the microsecond, None when unknown or not finite."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return round(value, 6)
