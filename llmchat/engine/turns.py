"""A turn and a conversation as plain data: what every face shows, what the engine records.

What goes back to the model as context (`context`): every turn whose answer has text, whether it
finished, was cancelled or broke off with an error (the user saw that text, so the model should
too). A turn with no answer text at all (an HTTP error, a cancel before the first token) was
never accepted: it is left out, so the context never holds two user messages in a row. A retried
turn is replaced by its retry. No I/O and no UI here.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Type

from llmchat.conversation import ChatRequest, Message, ToolResult, ToolSpec, tool_results_message
from llmchat.stream.events import Finish, StreamError, ToolCall, describe_tool_calls
from llmchat.stream.metrics import Metrics

# Turn states, in the order a healthy turn goes through them; the last three are final.
WAITING, THINKING, STREAMING, DONE, CANCELLED, ERROR = (
    "waiting",
    "thinking",
    "streaming",
    "done",
    "cancelled",
    "error",
)
FINAL_STATES = frozenset({DONE, CANCELLED, ERROR})

MIN_RATE_TOKENS = 8  # a rate needs at least this many tokens ...
MIN_RATE_SPAN = 0.1  # ... spread over at least this many seconds to mean something


# Plain classes written out, not dataclasses: creating a dataclass costs about a millisecond of
# every start, and the one-shot face imports this module before its request.


class TurnRecord:
    """Where a turn lives in the store: its writer while it streams, its rows' IDs."""

    def __init__(self, writer: Any = None, saved: int = 0, prompt_id: Optional[int] = None, answer_id: Optional[int] = None) -> None:
        self.writer = writer  # history AnswerWriter, None once loaded or when not storing
        self.saved = saved  # how many of the turn's parts the writer has been handed
        self.prompt_id = prompt_id
        self.answer_id = answer_id
        self.reasoned = 0  # how many of the turn's reasoning fragments it has been handed


# What a tool call is doing (ToolActivity.status), in order; the last three are final.
ASKED, RUNNING, TOOL_DONE, TOOL_ERROR, DENIED = ("asked", "running", "done", "error", "denied")
DENIED_TEXT = "denied by the user"  # the result the model gets for a call the user refused
# A call that never ended (cancelled before it ran): history's NO_RESULT, the same words.
NO_RESULT = "no result: the call did not finish (the turn was cancelled or interrupted)"


class ToolActivity:
    """One tool call of a step, as the engine runs it: `call` (the stream's ToolCall), `tool`
    (the llmchat.tools.Tool it names; None: no such tool), `status` (asked, running, done,
    error, denied), `result` (llmchat.tools.ToolResult once it ended), `started_at` (on the
    engine's clock, when it began running) and `duration` (seconds, once it ended)."""

    __slots__ = ("call", "tool", "status", "result", "started_at", "duration")

    def __init__(self, call: ToolCall, tool: Any = None) -> None:
        self.call = call
        self.tool = tool
        self.status = ASKED
        self.result: Any = None
        self.started_at: Optional[float] = None
        self.duration: Optional[float] = None

    def __repr__(self) -> str:
        return f"<ToolActivity {self.call.name} {self.status}>"

    @property
    def ended(self) -> bool:
        return self.status in (TOOL_DONE, TOOL_ERROR, DENIED)


class Step:
    """One request of a turn: the first (`index` 0), then one after each round of tool
    results. `first_part`: the index in `turn.parts` where this step's text begins (with
    `keep=False` the parts stay empty, so it is 0); `activities`: the tool calls it ended with;
    `finish`: its Finish; `metrics`: its own figures (step 0's is the turn's `metrics` until it
    ends with calls; then a copy (own_figures), and the turn's add up every step's)."""

    __slots__ = ("index", "first_part", "activities", "finish", "metrics", "folded")

    def __init__(self, index: int, first_part: int, metrics: Metrics) -> None:
        self.index = index
        self.first_part = first_part
        self.activities: List[ToolActivity] = []
        self.finish: Optional[Finish] = None
        self.metrics = metrics
        self.folded = False  # a later step: its figures are in the turn's (once it ended)

    def __repr__(self) -> str:
        return f"<Step {self.index} from part {self.first_part}, {len(self.activities)} tool calls>"


class Turn:
    """One prompt and its answer. The engine changes it while it runs; faces read it (a face
    keeps its own things, such as widgets, in a subclass)."""

    def __init__(self, prompt: str, metrics: Metrics, *, state: str = WAITING) -> None:
        self.prompt = prompt
        self.metrics = metrics
        self.parts: List[str] = []  # the answer, exactly as the model sent it
        self.reasoning: List[str] = []
        self.state = state
        self.finish: Optional[Finish] = None
        self.error: Optional[StreamError] = None
        self.superseded = False  # replaced by a retry: no longer part of the context
        self.retries = 0  # failed tries before the one that answered (or the one under way)
        self.retry: Any = None  # the client's RetryNotice while waiting to try again, else None
        self.retry_until: Optional[float] = None  # when that wait ends, on the engine's clock
        self.answer_ttft: Optional[float] = None  # request to first answer token, when reasoning came first
        self.tool_calls: List[ToolCall] = []  # every call the model asked for, over all steps
        # The requests of the turn: the first exists from the start; one more after each round
        # of tool results (the engine's tool loop). A turn without tools has just the one.
        self.steps: List[Step] = [Step(0, 0, metrics)]
        self.tools_enabled = False  # the run offered tools: its calls ran (or were refused)
        self.notices: List[str] = []  # the stream's Notices, one clean line each
        self.over_limit: Optional[str] = None  # the tool loop stopped at `max_steps`: why (also in `notices`)
        self.record: Optional[TurnRecord] = None  # where it is stored, None when not stored
        # Where it is stored in the conversation's tree (history's Recorder.begin_turn): none of
        # these, after the current leaf; `parent_id`, a new branch after that answer; `edits`, a
        # new prompt beside that one; `regenerates`, a new answer beside that one (no new prompt),
        # kept off the current branch when not `current` (a replay).
        self.parent_id: Optional[int] = None
        self.edits: Optional[int] = None
        self.regenerates: Optional[int] = None
        self.current = True
        # What the prompt carries (llmchat.attachments.Attachment): sent with it, stored with it.
        self.attachments: Tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return f"<Turn {self.prompt[:20]!r} {self.state} {len(self.parts)} parts>"

    @property
    def answer(self) -> str:
        """The answer's text: a new string each time (a flood's is megabytes): to know whether
        there is any, ask `answered`."""
        return "".join(self.parts)

    @property
    def answered(self) -> bool:
        """Some answer text arrived (without joining it all)."""
        return any(self.parts)

    @property
    def ended(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def outcome(self) -> object:
        """How it ended, as history stores it: the Finish, the StreamError, or None (cancelled)."""
        return self.finish if self.state == DONE else self.error if self.state == ERROR else None

    @property
    def warning(self) -> Optional[str]:
        """What a finished answer's reader must know: cut short, or stopped by a filter."""
        finish = self.finish
        if self.state != DONE or finish is None:
            return None
        if finish.truncated:
            return "the answer was cut short: the model reached its output token limit (raise --max-tokens)"
        if finish.reason == "content_filter":
            return f"the model stopped early: content filter ({finish.raw_reason or finish.reason})"
        return None

    @property
    def tool_note(self) -> Optional[str]:
        """Which tools the model asked for, and that none ran; None when it asked for none, or
        when the run had tools (its calls ran or were refused: `steps` says how)."""
        return describe_tool_calls(self.tool_calls) if self.tool_calls and not self.tools_enabled else None

    @property
    def step(self) -> Step:
        """The step under way (or the last one)."""
        return self.steps[-1]

    @property
    def activities(self) -> List[ToolActivity]:
        """Every tool call of every step, in order."""
        return [activity for step in self.steps for activity in step.activities]

    def figures(self, model: str) -> "AnswerFigures":
        """The answer's figures, as history stores them (and `metrics_line` reads them)."""
        metrics = self.metrics
        reported = metrics.reported_output_tokens
        counted = reported is not None or metrics.deltas > 0
        return AnswerFigures(
            model=model,
            ttft=metrics.ttft,
            tokens_per_second=meaningful_rate(metrics),
            input_tokens=metrics.input_tokens,
            output_tokens=metrics.output_tokens if counted else None,
            tokens_exact=metrics.exact if counted else None,
            elapsed=metrics.elapsed(),
            stop_reason=self.finish.reason if self.finish is not None else None,
        )


class AnswerFigures:
    """What an answer's figures line shows (the fields of a stored message it reads)."""

    __slots__ = ("model", "ttft", "tokens_per_second", "input_tokens", "output_tokens", "tokens_exact", "elapsed", "stop_reason")

    def __init__(
        self,
        *,
        model: str,
        ttft: Optional[float],
        tokens_per_second: Optional[float],
        input_tokens: Optional[int],
        output_tokens: Optional[int],
        tokens_exact: Optional[bool],
        elapsed: Optional[float],
        stop_reason: Optional[str],
    ) -> None:
        self.model = model
        self.ttft = ttft
        self.tokens_per_second = tokens_per_second
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.tokens_exact = tokens_exact
        self.elapsed = elapsed
        self.stop_reason = stop_reason


def own_figures(metrics: Metrics) -> Metrics:
    """A copy of `metrics`: the first step's own figures, kept apart before the turn's (the
    same object until then) add up later steps and run on while tools run."""
    copy = Metrics(metrics._clock)
    for name in Metrics.__slots__:
        setattr(copy, name, getattr(metrics, name))
    return copy


def live_figures(turn: "Turn") -> Metrics:
    """The turn's figures now: while a later request streams, the turn's own (which add up a
    step's once it ends) with that request's so far, so a status bar counts its tokens as they
    come. The turn's own `metrics` when there is nothing to add."""
    steps = turn.steps
    step = steps[-1] if steps else None
    if step is None or step.folded or step.metrics is turn.metrics or step.index == 0:
        return turn.metrics
    live = own_figures(turn.metrics)
    fold(live, step.metrics)
    return live


def fold(total: Metrics, step: Metrics) -> None:
    """Add a later step's figures to the turn's (`total`): its tokens (input
    too: what was billed), its end; the turn's TTFT stays the first text's, the TTFT of the
    request that gave it, and its rate is over the time tokens streamed (the time between the
    steps, answering questions, running tools, is counted in neither; `elapsed` has it)."""
    total.deltas += step.deltas
    total.chars += step.chars
    for name in ("input_tokens", "cached_input_tokens", "reported_output_tokens"):
        mine, theirs = getattr(total, name), getattr(step, name)
        if theirs is not None:
            setattr(total, name, theirs + (mine or 0))
    if total.first_at is None and step.first_at is not None:  # the step's TTFT (not counting the time before it was sent)
        total.sent_at, total.first_at = step.sent_at, step.first_at
    elif total.last_at is not None and step.first_at is not None:
        # The time between the last step's last token and this one's first (the question, the
        # tools, the request's wait) is no part of the rate: the turn's first token moves on by
        # it, and so does its sending (the TTFT stays the same).
        gap = max(0.0, step.first_at - total.last_at)
        total.first_at = (total.first_at or 0.0) + gap
        if total.sent_at is not None:
            total.sent_at += gap
    if step.last_at is not None:
        total.last_at = step.last_at
    if step.ended_at is not None or total.ended_at is None:  # a turn ended by a cancel keeps its end
        total.ended_at = step.ended_at
    total.finish, total.error = step.finish, step.error


def meaningful_rate(metrics: Metrics) -> Optional[float]:
    """Tokens per second, or None when there is none worth showing: a burst (fewer than
    MIN_RATE_TOKENS tokens, or under MIN_RATE_SPAN seconds between the first and the last;
    a buffering proxy or a cached answer gives figures like 244,359 tok/s)."""
    rate = metrics.tokens_per_second
    first, last = metrics.first_at, metrics.last_at
    if rate is None or first is None or last is None:
        return None
    if last - first < MIN_RATE_SPAN or metrics.output_tokens < MIN_RATE_TOKENS:
        return None
    return rate


def context(turns: Sequence[Turn], *, before_next: bool = False) -> List[Message]:
    """The messages sent before the prompt of the newest live turn: the earlier accepted turns
    (see the module's docstring). The one place that decides what the model is shown.
    `before_next`: before the prompt of a turn not begun yet (the newest live one included)."""
    live = [turn for turn in turns if not turn.superseded]
    out: List[Message] = []
    for turn in live if before_next else live[:-1]:
        answer = answer_messages(turn)
        if answer:
            out.append(prompt_message(turn))
            out.extend(answer)
    return out


def answer_messages(turn: Turn) -> List[Message]:
    """The answer as context: one assistant message, or, when it called tools, each step's text
    with its calls, then their results (role "tool"), then the next step's (history's
    `context` reads a stored answer the same way). A call that never ended (cancelled) gets an
    error result: every API wants one for each call. Empty when there is nothing to send."""
    steps = turn.steps
    if not any(step.activities for step in steps):
        answer = turn.answer
        return [Message("assistant", answer)] if answer else []
    out: List[Message] = []
    parts = turn.parts
    for n, step in enumerate(steps):
        end = steps[n + 1].first_part if n + 1 < len(steps) else len(parts)
        text = "".join(parts[step.first_part : end])
        if step.activities:
            out.append(Message("assistant", text, tool_calls=tuple(a.call for a in step.activities)))
            out.append(tool_results_message(*(activity_result(a) for a in step.activities)))
        elif text:
            out.append(Message("assistant", text))
    return out


def activity_result(activity: ToolActivity) -> ToolResult:
    """What the model is told a call gave (conversation.ToolResult)."""
    call, result = activity.call, activity.result
    if activity.status == DENIED:
        return ToolResult(call.id, call.name, DENIED_TEXT, is_error=True)
    if result is None:
        return ToolResult(call.id, call.name, NO_RESULT, is_error=True)
    return ToolResult(call.id, call.name, result.text, is_error=bool(result.is_error))


def prompt_message(turn: Turn) -> Message:
    """The user message a turn sends: its prompt, with its attachments."""
    return Message("user", turn.prompt, turn.attachments)


def build_request(settings: Any, base_url: str, messages: List[Message], tools: Tuple[ToolSpec, ...] = ()) -> ChatRequest:
    """The request for `messages` with a run's `Settings`, sent to `base_url`, offering `tools`."""
    return ChatRequest(
        model=settings.model,
        messages=messages,
        base_url=base_url,
        system=settings.system,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        api_key=settings.api_key,
        api_key_env=settings.api_key_env,
        tools=tools,
    )


class Conversation:
    """The turns so far, oldest first; `turn_type` makes new ones (a face's own subclass)."""

    def __init__(self, turn_type: Type[Turn] = Turn) -> None:
        self.turn_type = turn_type
        self.turns: List[Any] = []

    @property
    def last(self) -> Optional[Any]:
        for turn in reversed(self.turns):
            if not turn.superseded:
                return turn
        return None

    @property
    def last_answer(self) -> Optional[Any]:
        """The newest turn with answer text (what "copy the last answer" copies), even if it
        is still streaming or broke off."""
        for turn in reversed(self.turns):
            if not turn.superseded and turn.answered:
                return turn
        return None

    def begin(self, prompt: str, metrics: Metrics) -> Any:
        turn = self.turn_type(prompt, metrics)
        self.turns.append(turn)
        return turn

    def retry(self, metrics: Metrics) -> Optional[Any]:
        """A new turn that asks the last prompt again (its attachments too), in place of the last turn."""
        last = self.last
        if last is None or not last.ended:
            return None
        last.superseded = True
        turn = self.begin(last.prompt, metrics)
        turn.attachments = last.attachments
        return turn

    def context(self) -> List[Message]:
        """What goes before the newest turn's prompt (see `context`)."""
        return context(self.turns)

    def next_context(self) -> List[Message]:
        """What will go before the prompt of the next turn begun (see `context`)."""
        return context(self.turns, before_next=True)

    def messages(self) -> List[Message]:
        """The context for the newest turn, then its prompt."""
        last = self.last
        return self.context() + ([prompt_message(last)] if last is not None else [])
