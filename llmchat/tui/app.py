"""The interactive chat app: transcript, prompt, status bar, footer.

One background worker per answer consumes `StreamingClient.stream()` -- the same StreamEvents
every other face reads; this module knows no wire format -- and feeds the answer's
`StreamingMarkdown`, which takes in whatever arrived since the last frame at once (frame rate,
not token rate). The status bar is refreshed from `Metrics` by a timer, not per token.

Keys: Enter sends, Ctrl+J / Alt+Enter / Shift+Enter insert a newline, Esc or Ctrl+C cancels the
answer being streamed (the connection is closed, the partial answer kept and marked), Ctrl+R
asks the last question again, Ctrl+Q quits. Ctrl+C with nothing streaming copies a selection if
there is one, else says how to quit; a second Ctrl+C within two seconds quits.

The cancel binding for Ctrl+C has priority (so it wins over a selection's copy while an answer
streams) but is enabled only while one streams: otherwise the key falls through to the
widgets' and screen's copy bindings, and last to the app's non-priority quit hint.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Optional

from textual import work
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer
from textual.worker import Worker

from llmchat.config import Settings
from llmchat.output import Sanitizer
from llmchat.stream.events import Finish, ReasoningDelta, StreamError, TextDelta
from llmchat.stream.metrics import Metrics
from llmchat.tui.session import (
    CANCELLED,
    DONE,
    ERROR,
    STREAMING,
    THINKING,
    WAITING,
    ChatSession,
    Turn,
)
from llmchat.tui.widgets import AssistantMessage, ChatPrompt, StatusBar, Transcript, UserMessage, Welcome

QUIT_WINDOW = 2.0  # seconds within which a second Ctrl+C quits
STATUS_INTERVAL = 0.1  # seconds between status-bar refreshes while an answer streams
DEMO_LABEL = "offline demo model"


class ChatApp(App[None]):
    TITLE = "llmchat"

    CSS = """
    /* Bottom-aligned: the newest message sits next to the prompt, and an anchored transcript
       shorter than the view keeps a well-defined scroll position. */
    #transcript {
        height: 1fr;
        padding: 0 1 1 1;
        align-vertical: bottom;
    }
    """

    BINDINGS = [
        Binding("ctrl+c", "cancel_stream", "Cancel", show=False, priority=True),
        Binding("escape", "cancel_stream", "Cancel"),
        Binding("ctrl+c", "interrupt", show=False),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        status_interval: Optional[float] = STATUS_INTERVAL,
        demo_behaviour: Any = None,
    ) -> None:
        """`clock` times the answers and the double Ctrl+C; `status_interval=None` refreshes the
        status bar only when the state changes (deterministic snapshots); `demo_behaviour`
        replaces the demo server's pace (tests)."""
        super().__init__()
        self.settings = settings
        self._clock = clock
        self._status_interval = status_interval
        self._demo_behaviour = demo_behaviour
        self.session: Optional[ChatSession] = None  # once the base URL is known (on mount)
        self._client: Any = None
        self._provider: Any = None
        self._demo_server: Any = None
        self._active: Optional[Turn] = None  # the turn being streamed
        self._worker: Optional[Worker[None]] = None
        self._last_interrupt: Optional[float] = None
        self._restored: Optional[str] = None  # a failed prompt put back into the prompt box
        self._reasoning_shown = 0
        if settings.demo:
            self.model_label = f"{settings.model} ({DEMO_LABEL})"
            self.sub_title = DEMO_LABEL
        else:
            self.model_label = settings.model
            self.sub_title = settings.model

    # --- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Transcript(id="transcript"):
            yield Welcome(self._welcome_text(), markup=False)
        yield ChatPrompt(id="prompt")
        yield StatusBar(self.model_label, id="status")
        yield Footer()

    def _welcome_text(self) -> str:
        settings = self.settings
        if settings.demo:
            reason = f" ({settings.demo_reason})" if settings.demo_reason else ""
            return (
                f"Answers come from llmchat's built-in {DEMO_LABEL}{reason}. Set OPENAI_API_KEY or "
                "ANTHROPIC_API_KEY, start Ollama, or pass --base-url to talk to a real model."
            )
        return f"Chatting with {settings.model} ({settings.api}). Type a message and press Enter."

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def prompt(self) -> ChatPrompt:
        return self.query_one("#prompt", ChatPrompt)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def streaming(self) -> bool:
        return self._active is not None

    @property
    def worker(self) -> Optional[Worker[None]]:
        """The worker of the latest answer (tests await it)."""
        return self._worker

    # --- life cycle ----------------------------------------------------------------------

    async def on_mount(self) -> None:
        self.transcript.anchor()
        self.prompt.focus()
        from llmchat.providers import get_provider
        from llmchat.stream.client import StreamingClient, tls_may_be_needed

        settings = self.settings
        base_url = settings.base_url
        api = settings.api
        if settings.demo:
            from llmchat.demo.server import Behaviour, FakeLLMServer
            from llmchat.demo.answer import DEMO_TPS, DEMO_TTFT

            behaviour = self._demo_behaviour or Behaviour(tps=DEMO_TPS, ttft=DEMO_TTFT)
            self._demo_server = FakeLLMServer(behaviour)
            base_url = await self._demo_server.start() + "/v1"
            api = "openai-chat"
        self._provider = get_provider(api)
        self._client = StreamingClient(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.timeout,
            on_retry=self._on_retry,
            verify=tls_may_be_needed(base_url),
        )
        self.session = ChatSession(settings, base_url)
        if self._status_interval:
            self.set_interval(self._status_interval, self._refresh_status)

    async def on_unmount(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._client is not None:
            await self._client.aclose()
        if self._demo_server is not None:
            await self._demo_server.close()

    # --- sending ----------------------------------------------------------------------

    async def on_chat_prompt_submitted(self, event: ChatPrompt.Submitted) -> None:
        event.stop()
        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it first.", severity="warning", timeout=3)
            return
        if self.session is None:
            self.notify("Still starting up: try again in a moment.", severity="warning", timeout=3)
            return
        event.prompt.clear()  # accepted: the text now lives in the transcript and the session
        self._restored = None
        turn = self.session.begin(event.text, Metrics(clock=self._clock))
        await self.transcript.mount(UserMessage(event.text))
        await self._start(turn)

    async def _start(self, turn: Turn) -> None:
        assert self.session is not None
        view = AssistantMessage()
        turn.view = view
        await self.transcript.mount(view)
        self.transcript.anchor()  # a new question: follow the answer again
        self._active = turn
        self._reasoning_shown = 0
        self.status.show(None, WAITING)
        self.refresh_bindings()
        self._worker = self._stream_answer(turn, self.session.request())

    @work(exclusive=True, group="stream", exit_on_error=False)
    async def _stream_answer(self, turn: Turn, request: Any) -> None:
        view: AssistantMessage = turn.view
        stream = view.markdown.get_stream()
        sanitizer = Sanitizer()  # model text must not reach the terminal as control sequences
        events = self._client.stream(self._provider, request, turn.metrics)
        state = ERROR
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    turn.parts.append(event.text)
                    if turn.state is not STREAMING:
                        self._enter(turn, STREAMING)
                    shown = sanitizer.feed(event.text)
                    if shown:
                        await stream.write(shown)
                elif kind is ReasoningDelta:
                    turn.reasoning.append(event.text)
                    if turn.state is WAITING:
                        self._enter(turn, THINKING)
                elif kind is Finish:
                    turn.finish = event
                elif kind is StreamError:
                    turn.error = event
            if turn.error is None:
                if turn.finish is not None:
                    state = DONE
                else:  # the client promises a Finish or a StreamError; say so if it broke that
                    turn.error = StreamError("the stream ended without a finish or an error", kind="protocol")
        except asyncio.CancelledError:
            state = CANCELLED
            raise
        except Exception as exc:  # a bug, not the network: show it rather than die quietly
            turn.error = StreamError(f"internal error: {exc.__class__.__name__}: {exc}", kind="internal")
        finally:
            self._end(turn, state)
            # Shielded: a second cancel (quit, a new answer) must not leave the connection open
            # or the last fragments unwritten.
            await asyncio.shield(self._close_stream(events, stream, sanitizer.flush()))

    async def _close_stream(self, events: Any, stream: Any, tail: str) -> None:
        await events.aclose()
        if not self.is_running:
            return  # shutting down: the widgets are going away
        if tail:
            await stream.write(tail)
        await stream.stop()

    def _enter(self, turn: Turn, state: str) -> None:
        """A change of state while streaming: shown at once (not at the next tick)."""
        turn.state = state
        turn.view.state = state
        turn.view.set_note(None)  # e.g. a retry notice: the answer has begun
        self.status.show(turn.metrics, state)

    def _end(self, turn: Turn, state: str) -> None:
        """The turn is over (idempotent: a cancel ends it at once, the worker again later)."""
        if turn.ended:
            return
        turn.metrics.stop()
        turn.state = state
        view: AssistantMessage = turn.view
        if self._active is turn:
            self._active = None
        if not self.is_running:
            return
        view.state = state
        if turn.reasoning:
            view.show_reasoning("".join(turn.reasoning))
        view.set_note(self._ending_note(turn))
        self.status.show(turn.metrics, state)
        self.refresh_bindings()
        if state == ERROR and not turn.answer and not self.prompt.text:
            # Nothing was answered: give the question back for editing (Ctrl+R resends it as is).
            self._restored = turn.prompt
            self.prompt.load_text(turn.prompt)
            self.prompt.move_cursor(self.prompt.document.end)

    @staticmethod
    def _ending_note(turn: Turn) -> Optional[str]:
        if turn.state == ERROR:
            assert turn.error is not None
            return f"Error: {turn.error.message} · Ctrl+R to retry"
        if turn.state == CANCELLED:
            return "cancelled" if turn.answer else "cancelled before the answer began"
        if turn.finish is not None and turn.finish.truncated:
            return "cut short: the model reached its output token limit (raise --max-tokens)"
        return None

    def _refresh_status(self) -> None:
        turn = self._active
        if turn is None:
            return
        self.status.show(turn.metrics, turn.state)
        if len(turn.reasoning) != self._reasoning_shown:
            self._reasoning_shown = len(turn.reasoning)
            turn.view.show_reasoning("".join(turn.reasoning))

    def _on_retry(self, notice: Any) -> None:
        turn = self._active
        if turn is not None and turn.view is not None:
            turn.view.set_note(
                f"{notice.reason}; retrying in {notice.delay:.1f} s (attempt {notice.attempt} of {notice.max_attempts})"
            )

    # --- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "cancel_stream":
            return self._active is not None
        if action == "retry":
            return self._active is None and self.session is not None and self.session.last is not None
        return True

    def action_cancel_stream(self) -> None:
        turn = self._active
        if turn is None:
            raise SkipAction()
        if self._worker is not None:
            self._worker.cancel()  # CancelledError at the worker's await: the connection closes
        self._end(turn, CANCELLED)  # at once, even if the worker has not run a step yet

    def action_interrupt(self) -> None:
        if self._active is not None:
            self.action_cancel_stream()
            return
        now = self._clock()
        if self._last_interrupt is not None and now - self._last_interrupt <= QUIT_WINDOW:
            self.exit()
            return
        self._last_interrupt = now
        self.notify("Press Ctrl+Q to quit, or Ctrl+C again within 2 s.", title="Quit?", timeout=QUIT_WINDOW)

    async def action_retry(self) -> None:
        if self._active is not None or self.session is None:
            return
        turn = self.session.retry(Metrics(clock=self._clock))
        if turn is None:
            return
        if self._restored is not None and self.prompt.text == self._restored:
            self.prompt.clear()  # it is being sent again: don't leave a copy behind
        self._restored = None
        await self._start(turn)


def run_tui(settings: Settings) -> int:
    """Run the app until the user quits; the exit code (0 for a normal quit)."""
    app = ChatApp(settings)
    app.run()
    return app.return_code or 0
