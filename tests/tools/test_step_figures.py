"""The figures of a turn that called tools, from its steps' own (engine/turns.py fold): tokens add
up; the TTFT is the first token's request's; the rate is over the time tokens streamed, not the
time the user took to answer a question or the tools took to run; `elapsed` is the whole turn."""

from __future__ import annotations

from typing import List

from llmchat.engine.turns import fold, own_figures
from llmchat.stream.events import Finish, TextDelta, Usage
from llmchat.stream.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stream(metrics: Metrics, clock: Clock, tokens: int, *, ttft: float, every: float, output: int) -> None:
    """One request: sent now, its first token `ttft` later, one each `every` seconds after."""
    metrics.start()
    clock.now += ttft
    for n in range(tokens):
        if n:
            clock.now += every
        metrics.observe(TextDelta("word "))
    metrics.observe(Usage(input_tokens=10, output_tokens=output))
    metrics.observe(Finish("tool_calls"))


def test_the_time_between_the_steps_counts_in_neither_the_ttft_nor_the_rate() -> None:
    clock = Clock()
    turn = Metrics(clock)
    stream(turn, clock, 10, ttft=0.5, every=0.1, output=10)  # 0.9 s of tokens: 10 tokens
    first = own_figures(turn)
    clock.now += 3600.0  # the user thinks an hour about the tool question; the tool runs
    second = Metrics(clock)
    stream(second, clock, 10, ttft=0.25, every=0.1, output=10)
    fold(turn, second)
    steps: List[Metrics] = [first, second]
    assert turn.ttft == first.ttft == 0.5
    assert turn.output_tokens == 20 and turn.input_tokens == 20
    rate = turn.tokens_per_second
    assert rate is not None and abs(rate - 20 / 1.8) < 1e-6, rate  # 1.8 s of streaming, not an hour
    assert turn.elapsed() > 3600  # the turn's time is all of it
    assert [round(s.elapsed() or 0, 6) for s in steps] == [1.4, 1.15]  # each request's own
