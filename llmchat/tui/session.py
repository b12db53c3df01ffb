"""The conversation the TUI holds: turns of (user prompt, assistant answer), and the request
that carries them. Plain data, no I/O, no Textual: the app drives it, tests can read it.

What goes back to the model as context: every turn whose answer has text, whether it finished,
was cancelled or broke off with an error (the user saw that text, so the model should too).
A turn with no answer text at all (an HTTP error, a cancel before the first token) was never
accepted: it is left out, so the context never holds two user messages in a row. A retried
turn is replaced by its retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from llmchat.config import Settings
from llmchat.conversation import ChatRequest, Message
from llmchat.stream.events import Finish, StreamError
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


@dataclass(eq=False)
class Turn:
    prompt: str
    metrics: Metrics
    parts: List[str] = field(default_factory=list)  # the answer, exactly as the model sent it
    reasoning: List[str] = field(default_factory=list)
    state: str = WAITING
    finish: Optional[Finish] = None
    error: Optional[StreamError] = None
    superseded: bool = False  # replaced by a retry: no longer part of the context
    retries: int = 0  # failed tries before the one that answered (or the one under way)
    retry: Any = None  # the client's RetryNotice while waiting to try again, else None
    retry_until: Optional[float] = None  # when that wait ends, on the metrics' clock
    answer_ttft: Optional[float] = None  # request to first answer token, when reasoning came first
    view: Any = None  # the widget showing the answer (owned by the app)
    thinking: Any = None  # the widget showing the reasoning, once there is some (owned by the app)
    record: Any = None  # where it is stored (a chat_history.TurnRecord), None when not stored

    @property
    def answer(self) -> str:
        return "".join(self.parts)

    @property
    def ended(self) -> bool:
        return self.state in FINAL_STATES

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


@dataclass(frozen=True)
class AnswerFigures:
    """What an answer's figures line shows (the fields of a stored message it reads)."""

    model: str
    ttft: Optional[float]
    tokens_per_second: Optional[float]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    tokens_exact: Optional[bool]
    elapsed: Optional[float]
    stop_reason: Optional[str]


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


class ChatSession:
    """The turns so far and the request for the next answer, built from `Settings`."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        self.settings = settings
        self.base_url = base_url
        self.turns: List[Turn] = []

    @property
    def last(self) -> Optional[Turn]:
        for turn in reversed(self.turns):
            if not turn.superseded:
                return turn
        return None

    @property
    def last_answer(self) -> Optional[Turn]:
        """The newest turn with answer text (what "copy the last answer" copies), even if it
        is still streaming or broke off."""
        for turn in reversed(self.turns):
            if not turn.superseded and turn.answer:
                return turn
        return None

    def begin(self, prompt: str, metrics: Metrics) -> Turn:
        turn = Turn(prompt, metrics)
        self.turns.append(turn)
        return turn

    def retry(self, metrics: Metrics) -> Optional[Turn]:
        """A new turn that asks the last prompt again, in place of the last turn."""
        last = self.last
        if last is None or not last.ended:
            return None
        last.superseded = True
        return self.begin(last.prompt, metrics)

    def messages(self) -> List[Message]:
        """The context for the newest turn: the earlier accepted turns, then its prompt."""
        live = [turn for turn in self.turns if not turn.superseded]
        out: List[Message] = []
        for turn in live[:-1]:
            answer = turn.answer
            if answer:
                out.append(Message("user", turn.prompt))
                out.append(Message("assistant", answer))
        if live:
            out.append(Message("user", live[-1].prompt))
        return out

    def request(self) -> ChatRequest:
        settings = self.settings
        return ChatRequest(
            model=settings.model,
            messages=self.messages(),
            base_url=self.base_url,
            system=settings.system,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            api_key=settings.api_key,
            api_key_env=settings.api_key_env,
        )
