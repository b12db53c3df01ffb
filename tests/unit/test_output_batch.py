"""The one batcher both the raw and the JSON writer use (output.Batch): what arrives before the
reader waits goes out in one write, at most BATCH_BOUND pieces wait, and a write that fails in
the scheduled flush reaches the writer at its next piece."""

from __future__ import annotations

import io
import json
from typing import Any, Callable, List

import pytest

from llmchat.output import BATCH_BOUND, JsonWriter, RawWriter


class CountingOut(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


def raw(out: io.BytesIO, schedule: Callable[[Callable[[], None]], Any]) -> Any:
    return RawWriter(out, sanitize=False, schedule=schedule)


def as_json(out: io.BytesIO, schedule: Callable[[Callable[[], None]], Any]) -> Any:
    writer = JsonWriter(out, start=lambda: {"model": "m"}, schedule=schedule)
    writer.begin()
    return writer


@pytest.mark.parametrize("make", [raw, as_json], ids=["raw", "json"])
def test_one_write_per_wait_and_a_bound_on_what_waits(make: Any) -> None:
    scheduled: List[Callable[[], None]] = []
    out = CountingOut()
    writer = make(out, scheduled.append)
    before = out.writes
    for _ in range(10):
        writer.write("x")
    assert out.writes == before and len(scheduled) == 1  # nothing yet: one flush asked for
    scheduled.pop()()
    assert out.writes == before + 1  # ten deltas, one write
    for _ in range(BATCH_BOUND):
        writer.write("y")
    assert out.writes == before + 2  # the bound flushed without waiting for the reader to wait
    writer.close()
    text = out.getvalue().decode()
    if make is as_json:
        text = "".join(json.loads(line).get("text", "") for line in text.splitlines())
    assert text == "x" * 10 + "y" * BATCH_BOUND


@pytest.mark.parametrize("make", [raw, as_json], ids=["raw", "json"])
def test_a_failed_scheduled_write_reaches_the_writer(make: Any) -> None:
    scheduled: List[Callable[[], None]] = []
    writer = make(io.BytesIO(), scheduled.append)

    def broken(data: Any) -> int:
        raise BrokenPipeError

    writer._out.write = broken
    writer.write("x")
    scheduled.pop()()  # fails inside the event loop's callback...
    assert isinstance(writer.error, BrokenPipeError)
    with pytest.raises(BrokenPipeError):  # ...and is raised at the next delta
        writer.write("y")
