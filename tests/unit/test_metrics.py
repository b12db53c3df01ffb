"""Metrics from an injected clock: TTFT, tokens per second, estimate vs exact, frozen elapsed.

Times are chosen to be exact in binary floating point, so every figure is compared exactly.
"""

from __future__ import annotations

from typing import List

import pytest

from llmchat.stream.events import Finish, ReasoningDelta, StreamError, TextDelta, Usage
from llmchat.stream.metrics import Metrics


class FakeClock:
    """A monotonic clock that moves only when told to; counts how often it was read."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def at(self, t: float) -> "FakeClock":
        self.now = t
        return self


class ListClock:
    """Returns the given times in order; reading it once too often is a test failure."""

    def __init__(self, times: List[float]) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        assert self.times, "the clock was read more often than expected"
        return self.times.pop(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def streamed(clock: FakeClock, *at_and_events) -> Metrics:
    """start() at 100.0, then observe each (time, event)."""
    metrics = Metrics(clock=clock)
    clock.at(100.0)
    metrics.start()
    for t, event in at_and_events:
        clock.at(t)
        metrics.observe(event)
    return metrics


# --------------------------------------------------------------------------------------------
# TTFT


def test_ttft_is_start_to_first_text_delta(clock: FakeClock) -> None:
    m = streamed(clock, (100.25, TextDelta("Hi")), (100.5, TextDelta(" there")))
    assert m.sent_at == 100.0
    assert m.ttft == 0.25
    assert m.first_at == 100.25
    assert m.last_at == 100.5


def test_ttft_counts_a_reasoning_delta_as_the_first_token(clock: FakeClock) -> None:
    m = streamed(clock, (100.125, ReasoningDelta("thinking")), (101.0, TextDelta("answer")))
    assert m.ttft == 0.125


def test_ttft_ignores_usage_and_finish_before_any_delta(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, Usage(5, None)), (101.0, TextDelta("x")), (102.0, Finish("stop")))
    assert m.ttft == 1.0


def test_ttft_ignores_empty_deltas(clock: FakeClock) -> None:
    # "the first NON-EMPTY text or reasoning delta" (DESIGN.md §4, metrics.py docstring).
    m = streamed(
        clock,
        (100.25, TextDelta("")),
        (100.375, ReasoningDelta("")),
        (100.75, TextDelta("first")),
        (101.75, TextDelta("second")),
    )
    assert m.ttft == 0.75
    assert m.first_at == 100.75


def test_ttft_is_measured_from_the_answering_attempt(clock: FakeClock) -> None:
    # The client calls start() again for each retry.
    m = Metrics(clock=clock)
    clock.at(10.0)
    m.start()
    clock.at(13.0)
    m.start()  # retry
    clock.at(13.5)
    m.observe(TextDelta("x"))
    assert m.ttft == 0.5


def test_with_a_list_clock_each_event_reads_the_clock_once() -> None:
    clock = ListClock([0.0, 0.5, 0.75, 1.5, 2.0])
    m = Metrics(clock=clock)
    m.start()  # 0.0
    m.observe(TextDelta("a"))  # 0.5
    m.observe(Usage(3, 8))  # no clock read
    m.observe(TextDelta("b"))  # 0.75
    m.observe(ReasoningDelta("c"))  # 1.5
    m.observe(Finish("stop"))  # 2.0
    assert clock.times == []
    assert m.ttft == 0.5
    assert m.tokens_per_second == 8 / (1.5 - 0.5)
    assert m.elapsed() == 2.0


# --------------------------------------------------------------------------------------------
# tokens per second: estimate, then exact


def test_tokens_per_second_is_an_estimate_before_usage(clock: FakeClock) -> None:
    m = streamed(
        clock,
        *((101.0 + i / 4, TextDelta("ab")) for i in range(9)),
    )
    assert m.exact is False
    assert m.deltas == 9
    assert m.output_tokens == 9  # about one token per delta
    # output tokens / (last delta time - first delta time)
    assert m.tokens_per_second == 9 / (103.0 - 101.0) == 4.5


def test_estimate_uses_characters_when_deltas_carry_several_tokens(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("x" * 20)), (103.0, TextDelta("y" * 20)))
    assert m.chars == 40
    assert m.output_tokens == 10  # ~4 characters a token beats 2 deltas
    assert m.tokens_per_second == 5.0
    assert m.exact is False


def test_tokens_per_second_is_exact_after_usage(clock: FakeClock) -> None:
    m = streamed(
        clock,
        (101.0, TextDelta("ab")),
        (101.5, TextDelta("cd")),
        (102.0, TextDelta("ef")),
        (103.0, TextDelta("gh")),
    )
    before = m.tokens_per_second
    m.observe(Usage(input_tokens=12, output_tokens=10))
    assert m.exact is True
    assert m.output_tokens == 10
    assert m.input_tokens == 12
    assert m.tokens_per_second == 10 / 2.0 == 5.0
    assert m.tokens_per_second != before


def test_usage_without_output_tokens_keeps_the_estimate(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("a")), (102.0, TextDelta("b")), (102.0, Usage(7, None)))
    assert m.exact is False
    assert m.input_tokens == 7
    assert m.output_tokens == 2


def test_usage_time_does_not_stretch_the_token_span(clock: FakeClock) -> None:
    # Usage and Finish arrive after the last token: the span stays first..last delta.
    m = streamed(
        clock,
        (101.0, TextDelta("a")),
        (102.0, TextDelta("b")),
        (110.0, Usage(1, 8)),
        (111.0, Finish("stop")),
    )
    assert m.last_at == 102.0
    assert m.tokens_per_second == 8.0


def test_one_delta_gives_no_rate(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("only")), (101.0, Usage(1, 1)))
    assert m.ttft == 1.0
    assert m.tokens_per_second is None


def test_no_first_token_gives_no_ttft_and_no_rate(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, Usage(3, 0)), (101.0, Finish("stop")))
    assert m.ttft is None
    assert m.tokens_per_second is None
    assert m.first_at is None
    s = m.summary()
    assert "TTFT -" in s
    assert "tok/s -" in s


def test_nothing_started() -> None:
    m = Metrics(clock=FakeClock())
    assert m.ttft is None
    assert m.tokens_per_second is None
    assert m.elapsed() is None
    assert m.exact is False
    assert m.output_tokens == 0


# --------------------------------------------------------------------------------------------
# summary


def test_summary_marks_estimates_with_tilde(clock: FakeClock) -> None:
    m = streamed(
        clock,
        (100.25, TextDelta("abcdefghijkl")),
        (100.75, TextDelta("abcdefghijkl")),
        (101.25, TextDelta("abcdefghijkl")),
    )
    s = m.summary()
    assert "TTFT 250 ms" in s
    assert "~9.0 tok/s" in s  # 36 characters, ~9 tokens / 1.0 s
    assert "~9 output tokens" in s
    assert "1.25 s total" in s  # still running: now - start


def test_summary_is_exact_after_usage_and_names_the_stop(clock: FakeClock) -> None:
    m = streamed(
        clock,
        (100.25, TextDelta("ab")),
        (100.75, TextDelta("cd")),
        (101.25, TextDelta("ef")),
        (101.25, Usage(input_tokens=42, output_tokens=12)),
        (101.5, Finish("length", "max_tokens")),
    )
    s = m.summary()
    assert "~" not in s
    assert "TTFT 250 ms" in s
    assert "12.0 tok/s" in s
    assert "42 input, 12 output tokens" in s
    assert "1.50 s total" in s
    assert "stop: max_tokens" in s


def test_summary_after_error(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, TextDelta("a")), (101.0, StreamError("boom", kind="network")))
    s = m.summary()
    assert "stop: error" in s
    assert "1.00 s total" in s
    assert "tok/s -" in s  # one delta: no span


def test_summary_finish_without_raw_reason_uses_normalised(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, TextDelta("a")), (101.0, Finish("stop", None)))
    assert "stop: stop" in m.summary()


# --------------------------------------------------------------------------------------------
# elapsed


def test_elapsed_runs_until_finish_then_freezes(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, TextDelta("a")))
    clock.at(101.0)
    assert m.elapsed() == 1.0
    clock.at(102.0)
    m.observe(Finish("stop"))
    assert m.ended_at == 102.0
    clock.at(500.0)
    assert m.elapsed() == 2.0
    assert m.finish == Finish("stop")


def test_elapsed_freezes_at_stream_error(clock: FakeClock) -> None:
    err = StreamError("dropped", kind="network")
    m = streamed(clock, (100.5, TextDelta("a")), (103.0, err))
    clock.at(900.0)
    assert m.elapsed() == 3.0
    assert m.error is err
    assert m.finish is None


def test_elapsed_freezes_at_stop(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, TextDelta("a")))
    clock.at(104.0)
    m.stop()
    clock.at(200.0)
    assert m.elapsed() == 4.0
    m.stop()  # a second stop does not move the end
    assert m.elapsed() == 4.0


def test_stop_after_finish_keeps_the_finish_time(clock: FakeClock) -> None:
    m = streamed(clock, (100.5, TextDelta("a")), (101.0, Finish("stop")))
    clock.at(150.0)
    m.stop()
    assert m.elapsed() == 1.0


# --------------------------------------------------------------------------------------------
# a rate only where there is one; the server's own rate first; cached input


@pytest.mark.parametrize(
    "times, usage",
    [
        ([101.0 + i * 1e-6 for i in range(40)], None),  # 40 tokens in a 40 µs burst
        ([101.0 + i * 1e-6 for i in range(40)], Usage(5, 2_000_000)),  # the burst that printed 5,767,382 tok/s
        ([101.0, 101.05, 101.09], Usage(5, 40)),  # many tokens, but all within 90 ms
        ([101.0, 102.0, 103.0], None),  # a long span, but only 3 tokens
        ([101.0, 105.0], Usage(5, 7)),  # 7 tokens: too few to call a rate
        ([101.0], Usage(5, 500)),  # one delta: no span at all
    ],
)
def test_no_rate_is_reported_over_a_burst_or_too_few_tokens(clock: FakeClock, times, usage) -> None:
    m = streamed(clock, *((t, TextDelta("ab")) for t in times))
    if usage is not None:
        m.observe(usage)
    assert m.tokens_per_second is None
    assert "tok/s -" in m.summary()


@pytest.mark.parametrize("tokens, span", [(8, 0.125), (40, 0.25), (8, 4.0)])
def test_a_rate_is_reported_from_eight_tokens_over_a_tenth_of_a_second(clock: FakeClock, tokens: int, span: float) -> None:
    m = streamed(clock, (101.0, TextDelta("a")), (101.0 + span, TextDelta("b")))
    m.observe(Usage(5, tokens))
    assert m.tokens_per_second == tokens / ((101.0 + span) - 101.0)


def test_the_servers_own_rate_is_preferred_and_named_in_the_summary(clock: FakeClock) -> None:
    m = streamed(clock, *((101.0 + i / 100, TextDelta("ab")) for i in range(20)))
    m.observe(Usage(5, 20, None, 42.1))
    m.observe(Usage(5, 20))  # a later usage without a rate keeps the server's rate
    assert m.rate_from_server
    assert m.tokens_per_second == 42.1
    assert "42.1 tok/s (server)" in m.summary()


def test_the_servers_rate_is_used_even_for_a_burst(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("a")), (101.0, TextDelta("b")))
    m.observe(Usage(5, 2, None, 61.5))
    assert m.tokens_per_second == 61.5


def test_cached_input_tokens_are_shown_within_the_input_count(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("a")))
    m.observe(Usage(31, 4, 30))
    assert m.input_tokens == 31 and m.cached_input_tokens == 30
    assert "31 input (30 cached), 4 output tokens" in m.summary()


def test_no_cached_tokens_say_nothing_about_a_cache(clock: FakeClock) -> None:
    m = streamed(clock, (101.0, TextDelta("a")))
    m.observe(Usage(31, 4, 0))
    assert "31 input, 4 output tokens" in m.summary()
