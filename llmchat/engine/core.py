"""The engine: one turn from settings to stored outcome, for every face.

    engine = Engine(settings, store=store, warn=say)    # one per face; store None: not stored
    await engine.start()                                 # the demo model if needed, provider, client
    turn = Turn(prompt, Metrics())
    await engine.run(turn, context, observer)            # streams; the turn is recorded as it goes
    await engine.use(other_settings)                     # switch profile or model: reconnects
    await engine.aclose()                                # an answer still streaming is stored cancelled

`run` records: the prompt is committed (or deferred while another process holds the store) before
the request is sent; the answer is saved as it grows by a timer, never from the token loop; the
end is stored with its status (complete / cancelled / error, with the partial text) and figures,
also when the run is cancelled (Esc, a signal, quitting). Every store call goes through
`_store_call`, off the event loop.

A face is told through an `Observer`: `started` once the prompt is stored, `text` per answer token (the hot path: keep it cheap),
`reasoning`, `state` when the turn's state changes (the final one included), `retry` while the
client waits to try again, `notice`, `tool_call`, `usage`, and `ended` once the stream is closed, before the outcome is
stored. With tools (engine/tooling.py): `approve` per call not allowed already, `tool_started` and
`tool_finished` per call, `step` when the next request (with the results) begins. The turn itself is plain data any face can read at any time.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import threading
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

from llmchat.conversation import ChatRequest, Message, without_tool_steps
from llmchat.engine.turns import (
    CANCELLED,
    DONE,
    ERROR,
    STREAMING,
    THINKING,
    WAITING,
    Step,
    ToolActivity,
    Turn,
    TurnRecord,
    answer_messages,
    build_request,
    fold,
    own_figures,
    prompt_message,
)
from llmchat.stream.events import Finish, Notice, ReasoningDelta, StreamError, TextDelta, ToolCall, Usage
from llmchat.stream.metrics import Metrics

DEMO_API = "openai-chat"  # what the built-in demo model speaks
# Every JOIN_EVERY answer tokens the loop joins the parts of the answer not yet handed to history
# into one once there are PARTS_RUN of them (a part per token: ~60 bytes each), and lets other
# tasks run if the face asked for that (`pause_every`).
JOIN_EVERY = 64
PARTS_RUN = 256


class Observer:
    """What a face is told about a running turn. Every method may be left as it is."""

    def started(self, turn: Turn) -> None:
        """The prompt is stored (`turn.record`, when recording) and the request is sent next."""

    def text(self, text: str) -> None:
        """A piece of the answer (already in `turn.parts`): called per token."""

    def reasoning(self, text: str) -> None:
        """A piece of the model's reasoning (already in `turn.reasoning`)."""

    def state(self, turn: Turn) -> None:
        """`turn.state` changed: thinking, streaming, or a final state (also from `end`)."""

    def retry(self, turn: Turn) -> None:
        """The client waits `turn.retry.delay` seconds and tries again (`turn.retries` counted)."""

    def notice(self, turn: Turn, message: str) -> None:
        """The stream said something the user should know (one clean line, in `turn.notices`)."""

    def tool_call(self, turn: Turn, call: ToolCall) -> None:
        """The model asked to call a tool (already in `turn.tool_calls`)."""

    async def approve(self, turn: Turn, activity: ToolActivity) -> str:
        """May `activity.call` run? "once", "always" (this tool, for the rest of the run and in
        the profile's config) or "deny" (the model is told "denied by the user"). Only asked
        for calls not allowed already (--allow-tool, the profile's `allow_tools`, an earlier
        "always"). The default denies: a face that cannot ask runs nothing unasked."""
        return "deny"

    def tool_started(self, turn: Turn, activity: ToolActivity) -> None:
        """`activity.status` became "running" (`started_at` set), or "denied" / "error" (no
        such tool) at once, without running."""

    def tool_finished(self, turn: Turn, activity: ToolActivity) -> None:
        """The call ended: done, error or denied, its `result` and `duration` set."""

    def step(self, turn: Turn, step: Step) -> None:
        """A new request begins (`step`, now `turn.steps[-1]`), sending the last step's tool
        results; its text goes on from `step.first_part`."""

    def usage(self, turn: Turn, usage: Usage) -> None:
        """The server reported token counts (already in `turn.metrics`)."""

    def failed(self, exc: Exception) -> Optional[StreamError]:
        """The loop raised `exc` (a bug, or the face's own output failing): the error to store,
        or None to store the turn cancelled (e.g. the reader went away). May raise."""
        return StreamError(f"internal error: {exc.__class__.__name__}: {exc}", kind="internal")

    def ended(self, turn: Turn) -> Optional[StreamError]:
        """The stream is closed; the outcome is stored next. A face finishing its output here
        may return an error to store instead (the one-shot face: stdout failed at the end)."""
        return None


_call_ids = itertools.count(1)  # ids for calls the API gave none: unique in the process ...
_CALL_RUN = f"{os.getpid():x}{int(time.time()) & 0xFFFFFF:x}"  # ... and, with this, across runs


def _ignore(message: str) -> None:
    pass


def _drop(prepared: Optional["asyncio.Future[Any]"]) -> None:
    """A body `StreamingClient.prepare` started that will not be sent: cancelled, its failure
    (if it failed) not reported as never retrieved."""
    if prepared is not None:
        prepared.cancel()
        prepared.add_done_callback(lambda done: done.cancelled() or done.exception())


def _first_token(turn: Turn) -> None:
    """The turn's first token came in a later step (the first request asked for tools and
    said nothing): the turn's TTFT is that request's own, from its sending, not from the
    first request's (the user's answering a question and the tools' running are no part of
    it). Set as the token arrives, so the status bar shows it while the step streams."""
    metrics = turn.metrics
    if metrics.first_at is None:
        mine = turn.step.metrics
        if mine is not metrics and mine.first_at is not None:
            metrics.sent_at, metrics.first_at = mine.sent_at, mine.first_at


class Engine:
    def __init__(
        self,
        settings: Any,
        *,
        store: Any = None,
        warn: Callable[[str], None] = _ignore,
        tool_warn: Optional[Callable[[str], None]] = None,
        clock: Callable[[], float] = time.monotonic,
        demo_behaviour: Any = None,
        store_in_thread: bool = True,
    ) -> None:
        """`settings`: a config `Settings`; `store`: an open `HistoryStore` to record in (None:
        nothing stored; the face that opened it closes it); `warn`: one line for the user (a
        store that fails, a locked store), always called on the event loop's thread; `tool_warn`:
        the same for the MCP servers' lines (a server that did not start or crashed, tools off,
        an "always" not remembered), `warn` unless given (a face that titles them apart); `clock`
        times retries and the answer's start after reasoning; `demo_behaviour` replaces the
        demo server's pace (tests). `store_in_thread=False` makes store calls on the loop (a
        face with nothing else to keep responsive spares a thread start before its request)."""
        self._settings = settings
        self._warn = warn
        self._tool_warn = tool_warn if tool_warn is not None else warn
        self._clock = clock
        self._demo_behaviour = demo_behaviour
        self._store_in_thread = store_in_thread
        self.recorder: Any = None
        if store is not None:
            from llmchat.history.recorder import Recorder

            self.recorder = Recorder(store, self._say, settings.conversation_id)
        self._base_url: str = settings.base_url
        self._provider: Any = None
        self._client: Any = None
        self._demo_server: Any = None
        self._active: Optional[Tuple[Turn, Observer]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._endings: dict = {}  # turn -> the task storing its outcome (idempotent finish)
        self.tooling: Any = None  # engine.tooling.Tooling: the run's MCP servers, when it has any

    # --- read-only views -------------------------------------------------------------------

    @property
    def settings(self) -> Any:
        return self._settings

    @property
    def base_url(self) -> str:
        """Where requests go (the demo server's, once started, for the demo)."""
        return self._base_url

    @property
    def provider(self) -> Any:
        return self._provider

    @property
    def client(self) -> Any:
        return self._client

    @property
    def active(self) -> Optional[Turn]:
        """The turn being run, if any."""
        return self._active[0] if self._active is not None else None

    @property
    def conversation_id(self) -> Optional[int]:
        """The stored conversation the next turn goes to (None: a new one, or not storing)."""
        return self.recorder.conversation_id if self.recorder is not None else None

    @conversation_id.setter
    def conversation_id(self, value: Optional[int]) -> None:
        if self.recorder is not None:
            self.recorder.conversation_id = value

    @property
    def storing(self) -> bool:
        """The store is open and has not failed since."""
        return self.recorder is not None and self.recorder.store is not None

    # --- connection ------------------------------------------------------------------------

    async def start(self) -> None:
        """The demo server (when the settings ask for the demo), the provider and the client."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        settings = self._settings
        from llmchat.providers import get_provider
        from llmchat.stream.client import StreamingClient, tls_may_be_needed

        base_url = settings.base_url
        api = settings.api
        if settings.demo:
            from llmchat.demo.answer import DEMO_TPS, DEMO_TTFT
            from llmchat.demo.server import Behaviour, FakeLLMServer

            self._demo_server = FakeLLMServer(self._demo_behaviour or Behaviour(tps=DEMO_TPS, ttft=DEMO_TTFT))
            base_url = await self._demo_server.start() + "/v1"
            api = DEMO_API
        self._provider = get_provider(api)
        self._client = StreamingClient(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.timeout,
            on_retry=self._on_retry,
            verify=tls_may_be_needed(base_url),
            max_time=settings.max_time,
        )
        self._base_url = base_url
        await self._start_tools()

    async def _start_tools(self) -> None:
        """The run's MCP servers (engine/tooling.py), when its settings name any; the SDK is
        imported only then. A server that fails is one `warn` line; the chat goes on."""
        settings = self._settings
        tooling = self.tooling
        if tooling is not None and tuple(tooling.settings.mcp_servers) != tuple(settings.mcp_servers):
            self.tooling = None
            await tooling.aclose()
            tooling = None
        if tooling is not None:
            tooling.settings = settings
            return
        if settings.mcp_servers:
            from llmchat.engine.tooling import Tooling

            self.tooling = Tooling(settings, self._tool_warn, self._clock)
            await self.tooling.start()

    @property
    def tools(self) -> List[Any]:
        """The tools the model is offered (llmchat.tools.Tool): none without servers."""
        return self.tooling.tools if self.tooling is not None else []

    async def use(self, settings: Any) -> None:
        """Send the next turns with `settings` (another profile or model): reconnects. The
        stored conversation goes on; the MCP servers stay up if the new settings name the same."""
        await self._disconnect()
        self._settings = settings
        await self.start()

    def warm_up(self, early: Any = None, context: Optional[Callable[[], Sequence[Message]]] = None) -> None:
        """Open the connection the next request will use, in the background (stream/warm.py);
        `early` is a socket a thread is connecting already (stream/early.py). `context`: what
        gives the messages the next request will send before its prompt, encoded from now on
        (a slice at a time) if they make a big body (`StreamingClient.warm_body`)."""
        client = self._client
        if client is not None:
            client.warm_up(self._base_url, early)
            if context is not None:
                client.warm_body(self._provider, lambda: self.request(context()))
        elif early is not None:
            early.close()

    async def aclose(self, *, store_wait: Optional[float] = None) -> None:
        """An answer still streaming is stored cancelled; then the client and the demo server
        close (the store stays open: its opener closes it). `store_wait`: the most seconds to
        wait for that store (None: until it is written); past it the write stays queued on the
        store's syncer, whose `close` says what it could not write."""
        active = self._active
        if active is not None:
            turn, observer = active
            self.end(turn, CANCELLED)
            finishing = asyncio.ensure_future(self._finish(turn))
            if store_wait is None:
                await finishing
            else:
                await asyncio.wait([finishing], timeout=store_wait)
        await self._disconnect()
        tooling, self.tooling = self.tooling, None
        if tooling is not None:
            await tooling.aclose()

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        server, self._demo_server = self._demo_server, None
        if server is not None:
            await server.close()

    def request(self, messages: Sequence[Message]) -> ChatRequest:
        tools = self.tooling.specs if self.tooling is not None else ()
        sent = list(messages)
        if not tools:  # an API refuses tool steps (a continued conversation's) without tools
            sent = without_tool_steps(sent)
        return build_request(self._settings, self._base_url, sent, tools)

    # --- a turn ------------------------------------------------------------------------------

    async def run(
        self,
        turn: Turn,
        context: Sequence[Message] = (),
        observer: Optional[Observer] = None,
        *,
        keep: bool = True,
        pause_every: int = 0,
    ) -> Turn:
        """Ask `turn.prompt` after `context` (earlier messages), streaming into `turn` and
        recording it. `keep=False` keeps no text in the turn (a face that only writes it out:
        memory stays flat however long the answer). `pause_every` lets other tasks run every
        that many answer tokens (a multiple of JOIN_EVERY; 0: never). Returns the turn, ended;
        a cancel is re-raised once the outcome is stored. One turn at a time per engine."""
        client = self._client
        if client is None:
            raise RuntimeError("Engine.run() before start()")
        if turn.ended:  # ended before it ran (a face's cancel): nothing is sent or stored
            return turn
        obs = observer if observer is not None else Observer()
        self._active = (turn, obs)
        events: Any = None
        state = ERROR
        tooling = self.tooling
        try:
            if tooling is not None and tooling.stale:  # a cancel stopped calls: fresh servers
                await tooling.restart()
            if tooling is not None and tooling.tools:
                turn.tools_enabled = True
                keep = True  # each step's text goes back to the model with its calls
            messages = [*context, prompt_message(turn)]
            request = self.request(messages)
            # A long conversation's body (1.4 MB of JSON for 1,000 turns) is built in a thread
            # while the prompt is stored, not after it.
            prepared = client.prepare(self._provider, request)
            try:
                await self._begin(turn)  # committed before the request is sent
            except BaseException:
                _drop(prepared)
                raise
            if turn.ended:  # ended (by `end`) while the prompt was being stored: nothing is sent
                _drop(prepared)
                return turn
            obs.started(turn)
            saver = asyncio.ensure_future(self._keep_saved(turn, keep)) if turn.record is not None else None
            try:
                while True:
                    step = turn.step
                    if step.index:
                        events = client.stream(self._provider, self.request(messages + answer_messages(turn)), step.metrics)
                    else:
                        events = client.stream(self._provider, request, step.metrics, prepared)
                    try:
                        state = await self._consume(turn, events, obs, keep, pause_every)
                    finally:  # also at a cancel: a later request's tokens so far count in the turn's
                        step.finish = turn.finish
                        if step is not turn.steps[0] and not step.folded:
                            step.folded = True
                            fold(turn.metrics, step.metrics)
                    if state != DONE or not step.activities:
                        break
                    if step.metrics is turn.metrics:  # the first step keeps its own figures ...
                        step.metrics = own_figures(turn.metrics)
                    turn.metrics.ended_at = None  # ... and the turn's time runs on while tools are asked for and run
                    await events.aclose()  # the step's connection goes back to the pool
                    events = None
                    record = turn.record
                    if record is not None and record.writer is not None:
                        self._hand_over(turn, record)  # the text before the calls, then the calls
                    if len(turn.steps) > self._settings.max_steps:
                        self._over_limit(turn, step, obs, record)
                        break
                    await tooling.run_round(turn, step, obs, record)
                    if turn.ended:  # ended by the face while the tools ran
                        state = turn.state
                        break
                    self._next_step(turn, obs)
            finally:
                _drop(prepared)  # (sent: already done) a cancel before it was sent
                if saver is not None:
                    saver.cancel()
        except asyncio.CancelledError:
            state = CANCELLED
            raise
        except Exception as exc:
            failure = obs.failed(exc)
            if failure is None:
                state = CANCELLED
            else:
                turn.error = failure
        finally:
            self.end(turn, state)
            # Shielded: a second cancel (quit, a signal) must not leave the connection open or
            # the outcome unstored.
            await asyncio.shield(self._wind_up(turn, events, obs))
        return turn

    def _next_step(self, turn: Turn, obs: Observer) -> None:
        """The results go back: a new request, its figures its own."""
        metrics = turn.metrics
        step = Step(len(turn.steps), len(turn.parts), Metrics(metrics._clock))
        turn.steps.append(step)
        turn.finish = None
        metrics.ended_at = None  # the turn's elapsed time runs on
        obs.step(turn, step)

    def _over_limit(self, turn: Turn, step: Step, obs: Observer, record: Any) -> None:
        """The model asked for tools once more than `max_steps` rounds allow: not run; the
        turn ends with a notice (and the calls with error results, so a later request is whole)."""
        limit = self._settings.max_steps
        self.tooling.refuse_round(turn, step, obs, record, f"the answer reached its limit of {limit} round{'' if limit == 1 else 's'} of tool calls")
        rounds = "1 round" if limit == 1 else f"{limit} rounds"
        message = f"the model asked for more tools after {rounds} of tool calls (--max-steps {limit}); they did not run and the answer ends here"
        turn.over_limit = message
        turn.notices.append(message)
        obs.notice(turn, message)

    async def _consume(self, turn: Turn, events: Any, obs: Observer, keep: bool, pause_every: int) -> str:
        """The token loop: the turn's state, text and events; the final state."""
        record = turn.record
        writer = record.writer if record is not None else None
        parts = turn.parts
        if keep:
            save: Optional[Callable[[str], None]] = parts.append
            think: Optional[Callable[[str], None]] = turn.reasoning.append
        else:  # straight into the writer's buffer, flushed by _keep_saved
            save = writer.pending.append if writer is not None else None
            think = writer.reasoning.append if writer is not None else None
        text = obs.text
        clock = self._clock
        thought = False
        joined = turn.step.first_part  # parts before this one are joined already (or an earlier step's)
        tooling = self.tooling if turn.tools_enabled else None
        activities = turn.step.activities
        deltas = 0
        async for event in events:
            kind = type(event)
            if kind is TextDelta:
                if save is not None:
                    save(event.text)
                if turn.state is not STREAMING:
                    if turn.ended:  # ended by the face (a cancel) or by aclose: read no more
                        break
                    sent_at = turn.step.metrics.sent_at  # this request's (a later step's own)
                    if thought and sent_at is not None:
                        turn.answer_ttft = clock() - sent_at
                    _first_token(turn)
                    self._enter(turn, STREAMING, obs)
                text(event.text)
                deltas += 1
                if deltas % JOIN_EVERY == 0:
                    if keep and len(parts) - joined >= PARTS_RUN:
                        if writer is not None and record is not None:
                            # History is handed its parts first (it holds them until its next
                            # flush): then all of them are joined, none left a string per delta.
                            self._hand_over(turn, record)
                            parts[joined:] = ["".join(parts[joined:])]
                            joined = record.saved = len(parts)
                        else:
                            # Only parts history has not been handed yet (its index stays true).
                            first = max(joined, record.saved if record is not None else 0)
                            parts[first:] = ["".join(parts[first:])]
                            joined = len(parts)
                    if pause_every and deltas % pause_every == 0:
                        await asyncio.sleep(0)
            elif kind is ReasoningDelta:
                if event.text:
                    thought = True
                    if think is not None:
                        think(event.text)
                    obs.reasoning(event.text)
                    if turn.state is WAITING:
                        _first_token(turn)
                        self._enter(turn, THINKING, obs)
            elif kind is Finish:
                turn.finish = event
            elif kind is StreamError:
                turn.error = event
            elif kind is ToolCall:
                if tooling is not None:
                    if not event.id:  # (Ollama's): one to match its result by, here and in history
                        event = ToolCall(f"call_{_CALL_RUN}_{next(_call_ids)}", event.name, event.arguments)
                    activities.append(tooling.activity(event))
                turn.tool_calls.append(event)
                obs.tool_call(turn, event)
            elif kind is Usage:
                obs.usage(turn, event)
            elif kind is Notice:
                turn.notices.append(event.message)
                obs.notice(turn, event.message)
        if turn.ended:
            return turn.state
        if turn.error is not None:
            return ERROR
        if turn.finish is not None:
            return DONE
        # The client promises a Finish or a StreamError; say so if it broke that.
        turn.error = StreamError("the stream ended without a finish or an error", kind="protocol")
        return ERROR

    def _enter(self, turn: Turn, state: str, obs: Observer) -> None:
        turn.state = state
        turn.retry = None
        obs.state(turn)

    def end(self, turn: Turn, state: str) -> bool:
        """The turn is over (idempotent: a face's cancel ends it at once, the run again later):
        its figures stop and its run's observer is told (a turn not running yet has none: a
        run of it then does nothing). The outcome is stored by the run (or by `aclose`). False
        when it had ended already."""
        if turn.ended:
            return False
        turn.metrics.stop()
        turn.state = state
        turn.retry = None
        active = self._active
        if active is not None and active[0] is turn:
            if self.tooling is not None:
                self.tooling.stop()  # its running calls end now, as cancelled
            active[1].state(turn)
        return True

    async def _wind_up(self, turn: Turn, events: Any, obs: Observer) -> None:
        try:
            if events is not None:
                await events.aclose()
        finally:
            tooling = self.tooling
            if tooling is not None and tooling.stale:  # calls were stopped mid-way: so are their servers
                await tooling.aclose()
            failure = obs.ended(turn)
            if failure is not None and turn.error is None:
                turn.error, turn.state = failure, ERROR
            await self._finish(turn)
            if self._active is not None and self._active[0] is turn:
                self._active = None

    def _on_retry(self, notice: Any) -> None:
        """The client waits `notice.delay` seconds and tries again: counted in the turn."""
        active = self._active
        if active is None:
            return
        turn, obs = active
        turn.retries = notice.attempt - 1
        turn.retry = notice
        turn.retry_until = self._clock() + notice.delay
        obs.retry(turn)

    # --- recording ---------------------------------------------------------------------------

    async def _store_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Every store call of the engine: off the event loop (a store locked by another
        process must never freeze a face), unless `store_in_thread` is off."""
        if not self._store_in_thread:
            return fn(*args)
        store = self.recorder.store if self.recorder is not None else None
        if store is not None:
            from llmchat.history import HistoryError

            try:  # the store's one syncer thread: in order with the saves it already runs
                future = store.submit(fn, *args)
            except HistoryError:  # closed: the call says so itself
                return fn(*args)
            return await asyncio.wrap_future(future)
        return await asyncio.to_thread(fn, *args)

    def _say(self, message: str) -> None:
        """`warn`, on the event loop's thread whichever thread the store called it from."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._warn, message)
        else:
            self._warn(message)

    async def _begin(self, turn: Turn) -> None:
        """Commit the prompt and an empty answer (or defer them while the store is locked)."""
        recorder = self.recorder
        if recorder is None or recorder.store is None:
            return
        place = dict(parent_id=turn.parent_id, edits=turn.edits, regenerates=turn.regenerates, current=turn.current, attachments=turn.attachments)
        begin = asyncio.ensure_future(self._store_call(functools.partial(recorder.begin_turn, turn.prompt, self._settings, **place)))
        try:
            writer = await asyncio.shield(begin)
        except asyncio.CancelledError:  # cancelled while it was being written: still recorded
            writer = await begin
            self._keep(turn, writer)
            raise
        self._keep(turn, writer)

    @staticmethod
    def _keep(turn: Turn, writer: Any) -> None:
        if writer is not None:
            turn.record = TurnRecord(writer, 0, writer.prompt_id, writer.message_id)

    async def _keep_saved(self, turn: Turn, keep: bool) -> None:
        """Saves the growing answer every half interval (the token loop only appends to a
        list), also when the stream stalls."""
        record = turn.record
        assert record is not None
        writer = record.writer
        while True:
            await asyncio.sleep(writer.flush_interval / 2)
            if keep:
                self._hand_over(turn, record)
            # Never blocks: the writer hands what arrived to the store's syncer thread, which
            # saves it in order with the turn's begin and end.
            writer.flush_if_due()

    @staticmethod
    def _hand_over(turn: Turn, record: TurnRecord) -> None:
        """Give the writer the parts and reasoning that arrived since the last call."""
        parts = turn.parts
        if len(parts) > record.saved:
            record.writer.pending.extend(parts[record.saved :])
            record.saved = len(parts)
        reasoning = turn.reasoning  # stored with the answer (history show, exports)
        if len(reasoning) > record.reasoned:
            record.writer.reasoning.extend(reasoning[record.reasoned :])
            record.reasoned = len(reasoning)

    async def _finish(self, turn: Turn) -> None:
        """Store the rest of the answer and how it ended (once, however often called)."""
        record = turn.record
        if record is None or record.writer is None or self.recorder is None:
            return
        ending = self._endings.get(turn)
        if ending is None:
            self._hand_over(turn, record)  # the parts kept in the turn (none with keep=False)
            ending = asyncio.ensure_future(self._store_call(self.recorder.finish_answer, record.writer, turn.outcome, turn.metrics))
            self._endings[turn] = ending
            ending.add_done_callback(lambda _: self._endings.pop(turn, None))
        await asyncio.shield(ending)

    async def supersede(self, turn: Optional[Turn]) -> None:
        """`turn` was asked again: keep it stored, but no longer as context."""
        record = turn.record if turn is not None else None
        if record is None or self.recorder is None:
            return
        await self._store_call(self.recorder.supersede, [record.prompt_id, record.answer_id])
