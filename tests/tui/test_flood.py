"""A server sending as fast as it can must not starve the TUI: keys and a cancel are handled
while the answer floods in, the text waiting to be laid out is held compactly, and everything
that arrived is laid out in the end."""

from __future__ import annotations

import sys
import time

from llmchat.tui.app import ChatApp
from llmchat.tui.compat import painted_rows
from llmchat.tui.session import CANCELLED, STREAMING
from llmchat.tui.widgets.streaming_markdown import TextQueue

# Generous bounds (a loaded 2-core machine runs this), but far below what a starved app did:
# seconds per key. tests/benchmarks/bench_tui.py --sections flood measures the real figures.
KEY_BOUND_S = 1.0


async def test_keys_and_a_cancel_win_over_a_flood_of_text(settings_for, submit, tap, until, settled):
    app = ChatApp(settings_for(tokens=400_000))  # ~1.7 MB, as fast as the server can
    async with app.run_test(size=(100, 30)) as pilot:
        await submit(pilot, "flood")
        turn = app.session.last
        await until(pilot, lambda: turn.state == STREAMING and sum(map(len, turn.parts)) > 100_000, timeout=30, what="the flood")
        waits = []
        for character in "abc":
            started = time.perf_counter()
            await tap(pilot, character, character)
            await until(pilot, lambda: app.prompt.text.endswith(character), timeout=30, what=f"{character!r} typed")
            waits.append(time.perf_counter() - started)
        assert not turn.ended, "the flood ended before the keys were timed: make it longer"
        assert max(waits) < KEY_BOUND_S, waits
        started = time.perf_counter()
        await tap(pilot, "escape")
        await until(pilot, lambda: turn.state == CANCELLED, timeout=30, what="the cancel")
        assert time.perf_counter() - started < KEY_BOUND_S
        widget = turn.view.markdown
        assert widget.shares_text and widget._pending._chunks == []  # the engine's parts are its text: no copy
        await settled(app)
        answer = turn.answer
        assert len(turn.parts) < len(answer) / 20  # joined as it came, not a string per token
        widget = turn.view.markdown
        await until(pilot, lambda: widget.finished, timeout=120, what="what arrived, laid out")
        assert widget.source == answer and widget.shown_chars == len(answer)
        assert turn.parts[0] is widget.source and turn.answer == answer  # the turn holds the widget's string: once
        assert app.prompt.text == "abc"
        await settled(app)
        store, record = app.chat_history.store, turn.record
        stored = store.load(record.writer.conversation_id).messages[-1]
        assert (stored.role, stored.status, stored.content) == ("assistant", "cancelled", turn.answer)  # every character
        rows = painted_rows(turn.view)
        if rows is not None:  # the box's `-cancelled` border did not mark its every row dirty (a set of them)
            assert turn.view.size.height > 2_000 and len(rows[1]) < 500, len(rows[1])


def test_a_text_queue_gives_back_what_went_in_from_the_front_and_holds_it_compactly():
    queue = TextQueue()
    pieces = [f"t{i} " for i in range(100_000)]
    for piece in pieces:
        queue.append(piece)
    whole = "".join(pieces)
    assert len(queue) == len(whole)
    assert len(queue._chunks) <= len(pieces) // TextQueue.PIECES and len(queue._pieces) < TextQueue.PIECES
    assert queue.take(5) == whole[:5]
    assert queue.take(1000) == whole[5:1005] and len(queue) == len(whole) - 1005
    assert queue.text() == whole  # what was taken is still there: the text is held once
    assert len(queue._chunks) == 1 and len(queue) == len(whole) - 1005
    assert queue.take(10) == whole[1005:1015]  # the rest follows on from the one string
    assert queue.take() == whole[1015:] and len(queue) == 0 and queue.take() == ""
    queue.append("more")
    assert len(queue) == 4 and queue.take(2) == "mo" and queue.text() == whole + "more" and queue.take() == "re"


def test_a_text_queue_can_read_another_list_of_strings_that_its_owner_joins():
    """Shared: the queue reads the engine's parts, which the engine joins in runs as they come
    (and may have one more of than the queue was told of: a delta after a cancel)."""
    parts: list = []
    queue = TextQueue()
    queue.share(parts)
    pieces = [f"t{i} " for i in range(20_000)]
    whole = "".join(pieces)
    taken = []
    for n, piece in enumerate(pieces, 1):
        parts.append(piece)
        queue.append(piece)
        if n % 300 == 0:
            taken.append(queue.take(700))
        if n % 1000 == 0:  # as the engine joins its parts (from some index on)
            parts[len(parts) // 2 :] = ["".join(parts[len(parts) // 2 :])]
    parts.append("after the cancel")
    assert queue.shared and queue._chunks == [] and queue._pieces == []
    assert "".join(taken) == whole[: len("".join(taken))] and len(queue) == len(whole) - len("".join(taken))
    assert queue.take(5) == whole[len("".join(taken)) : len("".join(taken)) + 5]
    assert queue.text() == whole and not queue.shared  # held from now on: one string
    queue.append("more")
    assert queue.take() == whole[len("".join(taken)) + 5 :] + "more"


def test_a_shared_queue_copies_the_text_when_what_is_appended_differs():
    parts: list = []
    queue = TextQueue()
    queue.share(parts)
    for piece in ("one ", "two ", "three "):
        parts.append(piece)
        queue.append(piece)
    assert queue.take(5) == "one t"
    parts.append("\x1b[2Jfour ")
    queue.unshare()  # (the sanitiser took the escape out)
    queue.append("four ")
    assert queue.take() == "wo three four " and queue.text() == "one two three four "
    assert parts[-1] == "\x1b[2Jfour "  # the engine's text is the model's, untouched


async def test_a_huge_backlog_is_final_at_once_and_keys_are_handled(until, tap):
    """The end of an answer with megabytes not yet laid out (a cancelled flood): finish()
    returns at once, and the answer is final right after, laid out lazily (streaming_markdown,
    lazy_layout), with no frames left taking it in; keys typed next are handled at once."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Input

    from llmchat.demo.answer import answer_tokens
    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    widget = StreamingMarkdown()

    class Flooded(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield widget
            yield Input()

    source = "".join(answer_tokens("flood", 150_000))  # ~650 KB
    app = Flooded()
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(Input).focus()
        widget.append(source)
        started = time.perf_counter()
        widget.finish()
        assert time.perf_counter() - started < KEY_BOUND_S
        await until(pilot, lambda: widget.finished, timeout=10, what="the answer final")
        assert widget.backlog == 0
        assert widget.shown_chars == len(source) == len(widget.source)
        field = app.query_one(Input)
        for character in "xyz":
            started = time.perf_counter()
            await tap(pilot, character, character)
            await until(pilot, lambda: field.value.endswith(character), timeout=60, what=f"{character!r} typed")
            assert time.perf_counter() - started < KEY_BOUND_S
        assert field.value == "xyz"
        assert sum(widget._exact) < len(widget._exact) // 10  # what is near the view only


async def test_what_the_end_of_a_flood_changed_is_painted_before_its_backlog_is_laid_out(until):
    """Esc on a flood: the `cancelled` that comes with the end is painted first, then the
    backlog is laid out (~0.1 s for 10 MB). A timer for it could fire before that paint and
    hold it back by the layout."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Static

    from llmchat.demo.answer import answer_tokens
    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    order = []

    class State(Static):
        def render_line(self, y):
            if "cancelled" in str(self.render()) and "painted" not in order:
                order.append("painted")
            return super().render_line(y)

    class Answer(StreamingMarkdown):
        def _complete(self):
            if self._finishing and not self.document.finished:
                order.append("laid out")
            super()._complete()

    widget, state = Answer(), State("streaming")

    class Flooded(App[None]):
        def compose(self) -> ComposeResult:
            yield state
            with VerticalScroll():
                yield widget

    app = Flooded()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        widget.append("".join(answer_tokens("flood", 150_000)))  # ~650 KB, none taken in yet
        state.update("cancelled")
        widget.finish()
        for _ in range(5):  # the app busy a while (a flood's messages, the end's handlers)
            app.call_later(lambda: time.sleep(0.005))
        await until(pilot, lambda: widget.finished, timeout=10, what="the answer final")
    assert order == ["painted", "laid out"]


def test_an_answer_given_whole_is_final_at_once_however_long():
    """A stored answer, reopened: nothing streams, so nothing waits for frames."""
    from llmchat.demo.answer import answer_tokens
    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    source = "".join(answer_tokens("stored", 20_000))
    widget = StreamingMarkdown(source)
    assert widget.finished and widget.backlog == 0 and widget.source == source


async def test_a_flood_is_held_once_while_it_waits_and_after_it_is_laid_out(until):
    """The text that arrived is held once: not once as the source and again as the backlog
    waiting to be laid out, nor again as the lazily laid-out rest (its sections are spans of
    the source itself)."""
    import tracemalloc

    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll

    from llmchat.demo.answer import answer_tokens
    from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown

    widget = StreamingMarkdown()

    class Flooded(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield widget

    tokens = answer_tokens("flood", 400_000)  # ~1.7 MB
    pieces = ["".join(tokens[i : i + 64]) for i in range(0, len(tokens), 64)]  # deltas as a fast server sends them
    source = "".join(pieces)
    size = sum(sys.getsizeof("".join(pieces[i : i + TextQueue.PIECES])) for i in range(0, len(pieces), TextQueue.PIECES))  # held compactly
    del tokens
    app = Flooded()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for piece in pieces:  # no frame runs in between: all of it waits
                widget.append(piece)
            held = tracemalloc.get_traced_memory()[0] - before
            assert widget.backlog == len(source)
            assert held < 1.3 * size, (held, size)  # before: twice (the source, and the backlog)
            widget.finish()
            await until(pilot, lambda: widget.finished, timeout=30, what="the answer final")
        finally:
            tracemalloc.stop()
        assert widget.source == source and widget.shown_chars == len(source)
        sections = [unit for unit in widget.document.units if unit.kind == "section"]
        assert sections and all(unit.whole is widget.source for unit in sections)  # spans of it, not a copy
        rows = painted_rows(widget)
        if rows is not None:  # text that moved in its room with every line changed (a finish): no set of every row
            widget._moved(1, (0, widget.line_count))
            assert widget.line_count > 20_000 and len(rows[1]) < 1_000, len(rows[1])


def test_a_turn_adopts_its_widgets_string_only_when_nothing_else_counts_its_parts():
    """The parts are replaced only once the turn ended with one step and history was handed
    all of them (its count of them stays true: what it is handed next is what followed)."""
    from llmchat.engine import CANCELLED, STREAMING, Turn
    from llmchat.engine.turns import Step, TurnRecord
    from llmchat.stream.metrics import Metrics
    from llmchat.tui.app import _adopt

    def turn(state: str, saved: int, steps: int = 1) -> Turn:
        made = Turn("q", Metrics(), state=state)
        made.parts[:] = ["a", "b", "c", "late"]
        made.record = TurnRecord(saved=saved)
        made.steps.extend(Step(n, 2, Metrics()) for n in range(1, steps))
        return made

    for kept in (turn(STREAMING, 4), turn(CANCELLED, 2), turn(CANCELLED, 4, steps=2)):
        _adopt(kept, "abc", 3)
        assert kept.parts == ["a", "b", "c", "late"]
    adopting = turn(CANCELLED, 4)
    _adopt(adopting, "abc", 3)
    assert adopting.parts == ["abc", "late"] and adopting.record is not None and adopting.record.saved == 2
    assert adopting.answer == "abclate"
