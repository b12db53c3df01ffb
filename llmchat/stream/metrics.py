"""TTFT, tokens per second and token counts, from an injected monotonic clock.

- TTFT: from the request being sent to the first non-empty text or reasoning delta.
- Tokens are stamped with the time the network read that carried them came in (`arrived`), not
  the time the reader got round to them: a burst is a burst however slowly a busy reader decodes
  it, and TTFT is the arrival of the read with the first token.
- tokens/s: output tokens / (time of the last token - time of the first token), and only over a
  meaningful span (at least `MIN_RATE_TOKENS` tokens and `MIN_RATE_SPAN` seconds): a burst
  delivered at once has no rate. Exact when the server reported usage; until then an estimate
  (`exact` is False). When the server measured its own rate (llama.cpp, Ollama) that figure is
  preferred (`rate_from_server`).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from llmchat.stream.events import Finish, ReasoningDelta, StreamError, StreamEvent, TextDelta, Usage

MIN_RATE_TOKENS = 8  # fewer tokens than this give no rate
MIN_RATE_SPAN = 0.1  # nor do tokens that all came within this many seconds


class Metrics:
    __slots__ = (
        "_clock",
        "first_sent_at",
        "sent_at",
        "first_at",
        "last_at",
        "read_at",
        "ended_at",
        "deltas",
        "chars",
        "input_tokens",
        "cached_input_tokens",
        "reported_output_tokens",
        "server_rate",
        "finish",
        "error",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.first_sent_at: Optional[float] = None
        self.sent_at: Optional[float] = None
        self.first_at: Optional[float] = None
        self.last_at: Optional[float] = None
        self.read_at: Optional[float] = None  # when the network read being decoded came in
        self.ended_at: Optional[float] = None
        self.deltas = 0
        self.chars = 0
        self.input_tokens: Optional[int] = None
        self.cached_input_tokens: Optional[int] = None
        self.reported_output_tokens: Optional[int] = None
        self.server_rate: Optional[float] = None
        self.finish: Optional[Finish] = None
        self.error: Optional[StreamError] = None

    def start(self) -> None:
        """The request is being sent. Called again for each retry: TTFT is the answering try's,
        the elapsed time runs from the first."""
        self.sent_at = self._clock()
        self.read_at = None
        if self.first_sent_at is None:
            self.first_sent_at = self.sent_at

    def arrived(self) -> None:
        """A network read came in: the tokens decoded from it are stamped with this time, however
        long the reader takes to get to them. Without it (no network) a token's time is when it
        is observed."""
        self.read_at = self._clock()

    def observe(self, event: StreamEvent) -> None:
        kind = type(event)
        if kind is TextDelta or kind is ReasoningDelta:
            if not event.text:  # type: ignore[union-attr]
                return  # an empty delta is not a token
            now = self.read_at
            if now is None:
                now = self._clock()
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            self.deltas += 1
            self.chars += len(event.text)  # type: ignore[union-attr]
        elif kind is Usage:
            if event.input_tokens is not None:  # type: ignore[union-attr]
                self.input_tokens = event.input_tokens  # type: ignore[union-attr]
            if event.output_tokens is not None:  # type: ignore[union-attr]
                self.reported_output_tokens = event.output_tokens  # type: ignore[union-attr]
            if event.cached_input_tokens is not None:  # type: ignore[union-attr]
                self.cached_input_tokens = event.cached_input_tokens  # type: ignore[union-attr]
            if event.server_rate is not None:  # type: ignore[union-attr]
                self.server_rate = event.server_rate  # type: ignore[union-attr]
        elif kind is Finish:
            self.finish = event  # type: ignore[assignment]
            self.ended_at = self._clock()
        elif kind is StreamError:
            self.error = event  # type: ignore[assignment]
            self.ended_at = self._clock()

    def stop(self) -> None:
        """The reader stopped early (cancelled): freeze the elapsed time."""
        if self.ended_at is None:
            self.ended_at = self._clock()

    @property
    def ttft(self) -> Optional[float]:
        if self.first_at is None or self.sent_at is None:
            return None
        return self.first_at - self.sent_at

    @property
    def exact(self) -> bool:
        """True when the output token count came from the server."""
        return self.reported_output_tokens is not None

    @property
    def output_tokens(self) -> int:
        if self.reported_output_tokens is not None:
            return self.reported_output_tokens
        # Most servers send about one token per delta; some (Anthropic) send several, and
        # English averages ~4 characters a token: take the larger guess.
        return max(self.deltas, (self.chars + 3) // 4)

    @property
    def rate_from_server(self) -> bool:
        """True when `tokens_per_second` is the server's own measurement."""
        return self.server_rate is not None

    @property
    def tokens_per_second(self) -> Optional[float]:
        """Output tokens per second; None when there is no meaningful figure (too few tokens,
        or all of them within too short a span: a burst, not a rate)."""
        if self.server_rate is not None:
            return self.server_rate
        if self.first_at is None or self.last_at is None:
            return None
        span = self.last_at - self.first_at
        tokens = self.output_tokens
        if span < MIN_RATE_SPAN or tokens < MIN_RATE_TOKENS:
            return None
        return tokens / span

    def elapsed(self) -> Optional[float]:
        """Seconds since the request was sent, or its whole duration once it ended."""
        if self.first_sent_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else self._clock()
        return end - self.first_sent_at

    def summary(self) -> str:
        """One line for --stats."""
        parts = []
        ttft = self.ttft
        parts.append(f"TTFT {ttft * 1000:.0f} ms" if ttft is not None else "TTFT -")
        tps = self.tokens_per_second
        mark = "" if self.exact else "~"
        if tps is None:
            parts.append("tok/s -")
        elif self.rate_from_server:
            parts.append(f"{tps:.1f} tok/s (server)")
        else:
            parts.append(f"{mark}{tps:.1f} tok/s")
        tokens = f"{mark}{self.output_tokens} output tokens"
        if self.input_tokens is not None:
            cached = f" ({self.cached_input_tokens} cached)" if self.cached_input_tokens else ""
            tokens = f"{self.input_tokens} input{cached}, " + tokens
        parts.append(tokens)
        elapsed = self.elapsed()
        if elapsed is not None:
            parts.append(f"{elapsed:.2f} s total")
        if self.finish is not None:
            parts.append(f"stop: {self.finish.raw_reason or self.finish.reason}")
        elif self.error is not None:
            parts.append("stop: error")
        return " · ".join(parts)
