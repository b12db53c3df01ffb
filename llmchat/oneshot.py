"""The faces without a screen: one prompt in, one answer out, streamed to stdout.

stdout carries only the answer: raw bytes when it is a pipe or file (or with --raw), Markdown
rendered progressively when it is a terminal. Everything else (the demo notice, retries, reasoning,
--stats, warnings, errors) goes to stderr. Ctrl-C stops the stream at once and keeps what arrived.

With a history store, the prompt is committed before the request is sent and the answer is saved
as it grows (every `FLUSH_INTERVAL`, by a timer: the token loop only appends to a list), then
stored complete, cancelled (Ctrl-C, SIGTERM, the reader went away) or error.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from typing import Any, Optional, Sequence

from llmchat.config import Settings
from llmchat.conversation import ChatRequest, Message
from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import OK as EXIT_OK
from llmchat.exitcodes import TERMINATED as EXIT_TERMINATED
from llmchat.stream.events import Finish, Notice, ReasoningDelta, StreamError, TextDelta, ToolCall, describe_tool_calls
from llmchat.terminal import isatty, silence_stdout


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
) -> int:
    """`history`: an open `HistoryStore` to record in (None: not stored); `context`: the earlier
    messages of a continued conversation (`settings.conversation_id`), sent before the prompt;
    `early`: the connection to the server a thread is opening (`stream.early.connect_early`)."""
    session = OneShot(settings, prompt, raw=raw, stats=stats, show_reasoning=show_reasoning, history=history, context=context, early=early)
    try:
        return asyncio.run(session.main())
    except KeyboardInterrupt:  # a second Ctrl-C while cleaning up
        return EXIT_INTERRUPTED
    finally:
        # The answer is out; what is left is tearing the interpreter down. Freezing the heap
        # spares the final collections a walk over every object (~100 ms at exit).
        gc.freeze()


class OneShot:
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
    ) -> None:
        self.settings = settings
        self.early = early  # see run()
        self.prompt = prompt
        self.context = list(context)
        self.recorder: Any = None
        if history is not None:
            from llmchat.history import Recorder

            self.recorder = Recorder(history, self.note, settings.conversation_id)
        self.stats = stats
        self.show_reasoning = show_reasoning
        self.stdout_tty = isatty(sys.stdout)
        self.stderr_tty = isatty(sys.stderr)
        self.rendered = self.stdout_tty and not raw
        self.writer: Any = None
        self.reasoning_out: Any = None
        self.reasoning_open = False  # reasoning text on stderr without its final newline yet
        self.broken_pipe = False
        self.signal: Optional[int] = None
        self.redactor: Any = None  # masks known secrets in what is printed (none: not loaded)
        if settings.secrets:
            from llmchat.redact import Redactor

            self.redactor = Redactor(settings.secrets)
        self.tool_calls: list = []  # asked for by the model; llmchat runs none

    async def main(self) -> int:
        from llmchat.stream.client import StreamingClient, tls_may_be_needed
        from llmchat.stream.metrics import Metrics

        settings = self.settings
        demo_server = None
        base_url = settings.base_url
        if settings.demo:
            from llmchat.demo.answer import DEMO_TPS, DEMO_TTFT
            from llmchat.demo.server import Behaviour, FakeLLMServer

            demo_server = FakeLLMServer(Behaviour(tps=DEMO_TPS, ttft=DEMO_TTFT))
            base_url = await demo_server.start() + "/v1"
            self.note(f"llmchat: answering with the built-in offline demo model ({settings.demo_reason})")
        from llmchat.providers import get_provider

        provider = get_provider("openai-chat" if settings.demo else settings.api)
        request = ChatRequest(
            model=settings.model,
            messages=[*self.context, Message("user", self.prompt)],
            base_url=base_url,
            system=settings.system,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            api_key=settings.api_key,
            api_key_env=settings.api_key_env,
        )
        client = StreamingClient(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.timeout,
            on_retry=self._on_retry,
            verify=tls_may_be_needed(base_url),
            max_time=settings.max_time,
        )
        if self.early is not None:
            client.warm_up(base_url, self.early)  # TLS, if any, starts while the history is written
        metrics = Metrics()
        answer: Any = None
        saver: Optional[asyncio.Future] = None
        if self.recorder is not None:
            answer = self.recorder.begin_turn(self.prompt, settings)  # committed before the request
        self.writer = self._make_writer()
        task = asyncio.ensure_future(self._consume(client.stream(provider, request, metrics), metrics, answer))
        if answer is not None:
            saver = asyncio.ensure_future(self._keep_saved(answer))
        loop = asyncio.get_running_loop()

        def stop(sig: int) -> None:
            self.signal = sig
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        outcome: Optional[object] = None
        try:
            outcome = await task
        except asyncio.CancelledError:
            outcome = None
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError):
                    pass
            metrics.stop()
            if saver is not None:
                saver.cancel()
            write_error = self._close_writer()
            if write_error is not None and not isinstance(outcome, StreamError):
                outcome = write_error
            if answer is not None:  # after the answer is out on stdout
                self.recorder.finish_answer(answer, outcome, metrics)
            await client.aclose()
            if demo_server is not None:
                await demo_server.close()
        return self._report(outcome, metrics)

    async def _consume(self, events: Any, metrics: Any, answer: Any) -> object:
        """Feed the writer (and the history); return the last event (Finish or StreamError),
        or None when stdout's reader went away."""
        write = self.writer.write
        save = answer.pending.append if answer is not None else None  # flushed by _keep_saved
        think = answer.reasoning.append if answer is not None else None
        last: object = None
        ticker = None
        if self.rendered:
            from llmchat.sanitize import one_line

            self.writer.waiting(f"waiting for {one_line(self.settings.model, 60)}…")
            ticker = asyncio.ensure_future(self._tick())
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    if save is not None:
                        save(event.text)
                    if self.reasoning_open:
                        self._end_reasoning()
                    write(event.text)
                elif kind is ReasoningDelta:
                    if think is not None:
                        think(event.text)
                    if self.show_reasoning:
                        if self.rendered and self.stderr_tty:
                            self.writer.reasoning(event.text)  # above the answer's live region
                        else:
                            self._reasoning(event.text)
                elif kind is Finish or kind is StreamError:
                    last = event
                elif kind is ToolCall:
                    self.tool_calls.append(event)
                elif kind is Notice:
                    self.note(f"llmchat: {event.message}")
        except BrokenPipeError:
            self.broken_pipe = True
            return None
        except OSError as exc:  # e.g. the disk behind a redirected stdout is full
            return StreamError(f"cannot write the answer to stdout: {exc.strerror or exc}", kind="output")
        finally:
            if ticker is not None:
                ticker.cancel()
            await events.aclose()
        return last

    async def _keep_saved(self, answer: Any) -> None:
        """Saves the growing answer every interval (the token loop only appends to the list),
        also when the stream stalls."""
        while True:
            await asyncio.sleep(answer.flush_interval / 2)
            answer.flush_if_due()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1 / 12)
            self.writer.tick()

    def _report(self, outcome: object, metrics: Any) -> int:
        if self.broken_pipe:
            silence_stdout()  # the reader went away: saying so would be noise
            return EXIT_OK
        if self.reasoning_open:
            self._end_reasoning()
        if self.tool_calls:
            self.note(f"llmchat: {describe_tool_calls(self.tool_calls)}")
        if self.stats:
            self.note(f"{self.settings.model} · {metrics.summary()}")  # note() sanitises the name
        if outcome is None:
            if self.signal == signal.SIGTERM:
                self.note("llmchat: terminated; the partial answer was kept")
                return EXIT_TERMINATED
            self.note("llmchat: interrupted; the partial answer was kept")
            return EXIT_INTERRUPTED
        if isinstance(outcome, StreamError):
            self.note(f"error: {outcome.message}")
            return EXIT_ERROR
        if isinstance(outcome, Finish) and outcome.truncated:
            self.note("warning: the answer was cut short: the model reached its output token limit (raise --max-tokens)")
        elif isinstance(outcome, Finish) and outcome.reason == "content_filter":
            self.note(f"warning: the model stopped early: content filter ({outcome.raw_reason or outcome.reason})")
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

        return RawWriter(sys.stdout.buffer, sanitize=self.stdout_tty, schedule=asyncio.get_running_loop().call_soon)

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

    def _on_retry(self, notice: Any) -> None:
        self.note(f"llmchat: {notice.reason}; retrying in {notice.delay:.1f} s (attempt {notice.attempt} of {notice.max_attempts})")
