"""A Markdown widget for answers that arrive a few characters at a time.

Why not Textual's `Markdown` + `MarkdownStream`: every append re-parses the last top-level
block (a long list or code block is one block, so the cost per token grows with its length),
and every block is several mounted widgets, which the screen's layout walks on every frame.
Here the whole answer is ONE widget that paints lines (the Line API), and:

- text is queued by `append()` and taken in by the widget's own frames (at most MIN_FRAME
  apart, further apart when taking it in and painting it is slow), not per token; a frame
  repaints the lines of the live tail that changed, and asks for a layout of the screen only
  when the height changes;
- however fast text comes, a frame takes in at most TAKE_WORK seconds' worth; the rest waits
  in a compact queue (TextQueue: a few strings, not one per token) and the next frames follow
  at once, painted a few times a second, so keys, a cancel and the worker run between them,
  and `finish()` with a backlog returns at once (the answer is final when it is laid out);
- the source is split into finished top-level blocks and a growing tail (a block is finished
  once a later block has begun on a complete line); finished blocks are drawn once and
  frozen; only the tail is parsed and drawn again;
- a growing list freezes its finished items, a growing table its complete rows, a growing
  fenced code block its complete lines in chunks, so none is re-parsed whole per frame (each
  run of items or rows is drawn the first time from the parse that froze it);
- frozen parts keep their source and height; their drawn lines live in a cache shared by all
  answers (DRAWN) and are drawn again from source when they come back into view;
- `finish()` freezes the rest. What it shows then is exactly what rendering the whole source at
  once shows (a code block that was frozen in chunks is highlighted again as a whole; one of
  more than BIG_CODE_LINES lines stays in parts of CODE_UNIT_LINES lines, each highlighted on
  its own and drawn only near the view: the same rows, a string across two parts may be
  coloured differently). Likewise a long list stays in runs of LIST_UNIT_ITEMS items, a long
  table in groups of TABLE_UNIT_ROWS rows drawn with the whole table's column widths: the
  same rows as the list or table drawn whole.
- a long answer is laid out lazily: the units near its end and near the view are drawn, the
  others only have heights estimated from their source until they are painted (then drawn, and
  the layout corrected without moving what the view shows); a long finished backlog (a stored
  answer, what a cancelled flood left) is not even parsed: it is cut into sections at safe
  block boundaries (lazy_layout.py), each parsed when it is first drawn.

While an answer streams, what is shown differs from a one-shot render of the text so far only
in this: a long code block's lines are highlighted in chunks of CODE_CHUNK lines, so a string
or comment that spans two chunks may be coloured differently until the block closes. Blocks
are parsed one by one, but a link reference or footnote definition (`[x]: http://...`,
`[^x]: ...`) serves every block, as in a parse of the whole text: the document learns each
definition once its line is complete, parses later blocks with it, and has the blocks drawn
before it that use its label drawn again (`take_redraws`); the others stay as they are.

The room kept for growth (see `height_shown`) is never shown under the text: while the view
follows the answer and the answer fills the view, the room sits *above* the text, scrolled out
of view, so the newest line is the widget's last row; otherwise there is no room (a short
answer grows a line at a time, which costs little: it is short). The last block's bottom margin
is left out, so nothing but the transcript's own padding sits under the newest line.

Rendering is `markdown_render`: Textual's Markdown layout and theme styles, painted to strips.
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from rich.segment import Segment
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from llmchat.tui.compat import (
    RowsKeptOnResize,
    forget_painted_lines,
    install_tall_regions,
    painted_rows,
    repaint_waiting,
    still_virtual_size,
    use_tall_styles_cache,
)
from llmchat.tui.widgets import lazy_layout
from llmchat.tui.widgets.markdown_render import (
    Box,
    Context,
    Definitions,
    Measures,
    Node,
    Painter,
    code_lines,
    drawing_roughly,
    fence_style_path,
    highlight_code,
    list_start,
    make_parser,
    merge_measures,
    ordered_number_width,
    parse_blocks,
    render_block,
    render_list,
    rough_draws,
    stack,
    table_cells,
    table_measures,
    table_part,
)

# A growing code block keeps between CODE_CHUNK and 2 * CODE_CHUNK complete lines live;
# older lines are frozen CODE_CHUNK at a time.
CODE_CHUNK = 16
# A finished code block of more than BIG_CODE_LINES lines stays in units of CODE_UNIT_LINES
# lines, each highlighted on its own, drawn only near the view: highlighted and drawn whole,
# a block of 20,000 lines (a model printing a file) held the app ~30 s at its end and when its
# conversation was opened (~0.7 ms a line, drawn twice).
BIG_CODE_LINES = 400
CODE_UNIT_LINES = 100
# Likewise a list is kept in runs of at most LIST_UNIT_ITEMS items, a table of more than
# TABLE_UNIT_ROWS rows in groups of that many (its columns as wide as the whole table's: see
# TableShape): drawn whole, a list of 3,000 items held the app ~2 s, a table of 5,000 rows ~4 s
# (and, streamed, a table was parsed and drawn whole every frame: 5,000 rows took 44 s).
LIST_UNIT_ITEMS = 50
TABLE_UNIT_ROWS = 50
# A section of a long answer laid out lazily (lazy_layout) longer than this has no safe boundary
# in it: it may be a long list or table (found by the parser's block pass, ~1 us a character).
LONG_SECTION_CHARS = 4 * lazy_layout.SECTION_CHARS
# A growing table keeps between TABLE_LIVE_ROWS and 2 * TABLE_LIVE_ROWS rows live.
TABLE_LIVE_ROWS = 8
# A frozen run's parse is kept for its first drawing (then let go) when it is among the last
# PARSED_UNITS units one freeze made: those near the end, drawn at once. (A list streamed was
# parsed twice: when its items were frozen and when they were drawn.)
PARSED_UNITS = 4
# Drawing a table row costs several times what prose does per character (a list item too, ~4x,
# but an answer's short lists are left as they were): a group of rows counts as this many
# characters of prose, deciding what is drawn at once (a table of 1,000 rows is 12 KB).
DRAW_WEIGHT = {"rows": 5}
# While an answer grows, its height grows in steps of this many lines (see height_shown).
GROW_STEP = 4
# Lines arriving faster than GROW_STEP every GROW_EVERY seconds grow it in larger steps (up to
# MAX_GROW_STEP): each growth is a layout of the whole screen and a repaint of the transcript
# (~10 ms; 12-15 ms at 120 x 40 in tmux), so a fast answer grows in fewer, larger steps. (The room
# is above the text, out of sight while the view follows it. At 200 tok/s, ~15 lines a second:
# 0.5 s grew it by 8 lines twice a second.)
GROW_EVERY = 1.0
MAX_GROW_STEP = 12
# Frames: at most this often, and far enough apart that taking text in and painting it use at
# most 1 / BUSY_SHARE of the time (slow frames push the next one back). At 200 tok/s in tmux
# every frame is due at MIN_FRAME: at 1/40 s the app took 32% of a core (28% before the answer
# kept its newest line on the last row: a new line moves every row on screen, and lays the
# screen out while the answer is shorter than the view); at 1/32 s ~3 points less, the
# arrival -> screen time ~3.5 ms more at the median (a token waits half a frame on average).
# (Spacing only the costly frames instead, BUSY_SHARE 5 at 1/40 s, saved half as much and
# spread the 99th percentile.)
MIN_FRAME = 1 / 32
BUSY_SHARE = 4.0
MAX_FRAME_GAP = 0.25  # however slow the frames, never further apart than this
# A frame that finds the answer outgrowing its container waits this long for the screen's
# layout (a tick), whatever MIN_FRAME is: a backlog's frames are not spaced by MIN_FRAME.
OUTGROW_WAIT = 1 / 40
# However fast text comes, a frame takes it in slices for at most about TAKE_WORK seconds, so
# keys and a cancel wait at most that long; the rest waits, compactly (see TextQueue). A slice
# is sized by what the last slices cost per character (between MIN_TAKE and MAX_TAKE; TAKE_CHUNK
# before any is measured): taking a code block in costs several times what prose does, and a
# fixed 2 KB made a fast code block's frames 50-80 ms, a fixed 8 KB the flood's (demo answers)
# key -> frame 120 ms. While such a backlog lasts, frames follow each other BACKLOG_GAP
# apart (keys, the worker and the screen run in between) and are painted at most every
# BACKLOG_PAINT seconds (a paint of the moving transcript costs about as much as a frame: at
# 0.1 s, a 20k-token answer sent as fast as the server can was painted twice as often as before
# the slices, ~30% more CPU and time; the text still grows five times a second).
TAKE_WORK = 0.012
TAKE_CHUNK = 2048
MIN_TAKE = 2048
MAX_TAKE = 32768
# Once the answer is finished (no more text, no cancel to wait for), what is left is taken in at
# once when that costs at most about FINISH_WORK seconds (at the slices' cost per character):
# in slices, a fast answer's last few KB took 0.2-0.4 s of frames, paints and layouts between
# them (2k tokens of the demo answer, sent at once, took half as long again as before the
# slices). More is taken in by frames first.
FINISH_WORK = 0.1
BACKLOG_GAP = 0.001
BACKLOG_PAINT = 0.2

install_tall_regions()  # (Textual's spatial maps, for answers of megabytes)

# Pseudo-classes that say where the widget is among its siblings, not how it looks.
_PLACE_CLASSES = frozenset({"first-child", "last-child", "first-of-type", "last-of-type", "odd", "even", "empty"})

STRIPS = 400  # lines kept ready to paint per answer (see StreamingMarkdown._strips)
# A layout draws the units of the last EXACT_PAGES pages (of the app's height, at least
# MIN_PAGE rows) and those the view showed; the others' heights are estimated until they are
# painted (see StreamingMarkdown._lay_out_units).
EXACT_PAGES = 2
MIN_PAGE = 40
# A selection is copied as drawn; units it spans that were never drawn are drawn for it, up to
# this many characters of them (~0.5 s). Beyond that (a select-all in an answer of megabytes:
# ~6 ms a KB, a minute for 12 MB) those that lie wholly inside it give their Markdown source.
SELECTION_DRAW_CHARS = 100_000

_ROOT = Context()


# --- the document: frozen units and a growing tail ---------------------------------------------


@dataclass(eq=False)
class Unit:
    """A frozen piece of the answer, laid out on its own.

    kind "block": one top-level block. "items": a run of a list's items (`first_index` of the
    first; `final` when the run ends the list). "code": lines of a code block (`first` for the
    part that opens the block, `final` for the one that closes it). "rows": a group of a table's
    rows (`head`, the table's header and delimiter lines; `first`: the group shows the header;
    `final`: it ends the table), drawn with the whole table's column widths (`table`).
    "section": top-level blocks of a long finished answer, cut at a safe boundary without
    parsing (lazy_layout).

    A unit keeps its Markdown source, not its parse: it is parsed again when it has to be drawn
    again (a new width or theme, or scrolled back into view after its lines were let go), so
    a long session holds text, not trees of nodes.
    """

    kind: str
    source: str = ""
    node: Optional[Node] = None  # a block given ready-made (a code block put back together)
    ordered: bool = False
    start: int = 1
    first_index: int = 0
    number_width: Optional[int] = None
    final: bool = False
    code: str = ""
    language: str = ""
    first: bool = False
    # A section: its source is whole[start_at:end_at] (a long answer's text, shared, not copied).
    whole: str = ""
    start_at: int = 0
    end_at: int = 0
    # The answer's link and footnote definitions (shared by its units; None: it has none).
    definitions: Optional[Definitions] = None
    # Rows: the table's header and delimiter lines, and what the whole table's columns need.
    head: str = ""
    table: Optional["TableShape"] = None
    measures: Optional[Measures] = None  # (of its own rows)
    # Items or rows just parsed (their nodes), for the first drawing only (then let go).
    parsed: Any = None

    def __post_init__(self) -> None:
        if self.parsed is not None and drawing_roughly():
            # Parsed for a first frame drawn roughly (no links): drawn finely, it is parsed again.
            self.parsed = None

    def render(self, width: int, painter: Painter) -> Box:
        parsed, self.parsed = self.parsed, None
        if self.kind == "rows":
            if parsed is None:
                nodes = parse_blocks(make_parser(), self.head + self.source, self.definitions)
                parsed = table_cells(nodes[0]) if nodes and nodes[0].kind == "table" else ([], [])
            headers, rows = parsed
            measures = self.table.measured() if self.table is not None else None
            return table_part(headers, rows, width, painter, _ROOT, measures=measures, head=self.first, final=self.final)
        if self.kind == "section":
            return lazy_layout.render_section(self.whole[self.start_at : self.end_at], width, painter, self.definitions)
        if self.kind == "block":
            nodes = [self.node] if self.node is not None else parse_blocks(make_parser(), self.source, self.definitions)
            return render_block(nodes[0], width, painter, _ROOT) if nodes else Box([])
        if self.kind == "items":
            if parsed is None:
                nodes = parse_blocks(make_parser(), self.source, self.definitions)
                parsed = nodes[0].children if nodes else []
            items = parsed
            return render_list(
                items,
                self.ordered,
                width,
                painter,
                _ROOT,
                number_width=self.number_width,
                first_index=self.first_index,
                start=self.start,
                final=self.final,
            )
        path = fence_style_path(_ROOT)
        body = code_lines(highlight_code(self.code, self.language, painter), width, painter, path)
        # (The block's padding rows: above its first part, and below its last once it closed.)
        top = [painter.blank(width, path)] if self.first else []
        bottom = [painter.blank(width, path)] if self.final else []
        return Box([*top, *body, *bottom], 1 if self.first else 0, 1 if self.final else 0)

    @property
    def chars(self) -> int:
        if self.kind == "section":
            return self.end_at - self.start_at
        if self.kind == "rows" and self.first:
            return len(self.head) + len(self.source)
        return len(self.code) if self.kind == "code" else len(self.node.raw) if self.node is not None else len(self.source)

    @property
    def cost(self) -> int:
        """What drawing it costs, as characters of prose."""
        return self.chars * DRAW_WEIGHT.get(self.kind, 1)

    def estimate(self, width: int) -> Tuple[int, int, int]:
        """Its top margin, height and bottom margin at `width`, guessed without drawing it."""
        if self.kind == "code":
            first, final = int(self.first), int(self.final)
            return first, self.code.count("\n") + 1 + first + final, final
        if self.node is not None:
            return 0, self.node.raw.count("\n") + 2, 1
        if self.kind == "section":
            return lazy_layout.estimate(self.whole, width, self.start_at, self.end_at)
        bottom = 1 if self.final else 0
        if self.kind == "rows":  # a line and a rule per row (and the top, the header and its rule)
            rows = sum(1 for line in self.source.split("\n") if line.strip())
            return 0, 2 * rows + (3 if self.first else 0), bottom
        if self.kind == "items":  # a row per line, more where it wraps (beside its bullet)
            inner = max(1, width - 4)
            return 0, max(1, sum(1 + (len(line) - 1) // inner for line in self.source.split("\n") if line.strip())), bottom
        return lazy_layout.estimate(self.source, width)


@dataclass(eq=False)
class TableShape:
    """What a table kept in groups of rows needs: its columns' measures (`table_measures`), of
    all its rows, for every group to be as wide as the whole table's. While it grows, those of
    its live rows too (`frozen`: of the header and frozen rows only)."""

    measures: Measures
    frozen: Measures
    # A table in a lazily laid-out section: its source, measured when a group is first drawn.
    source: str = ""
    definitions: Optional[Definitions] = None

    def measured(self) -> Measures:
        if self.source:
            nodes = parse_blocks(make_parser(), self.source, self.definitions)
            self.measures = self.frozen = table_measures(*table_cells(nodes[0])) if nodes and nodes[0].kind == "table" else ([], [])
            self.source = ""
        return self.measures


@dataclass
class _ListState:
    ordered: bool
    marker: str
    start: int
    count: int  # items frozen so far
    first_unit: int  # index of this list's first frozen unit


@dataclass
class _TableState:
    head: str  # the header and delimiter lines, with their line ends
    shape: TableShape
    count: int  # rows frozen so far
    first_unit: int


@dataclass
class _FenceState:
    opener: str  # the opening line, with its line end
    lexer: str  # its info string
    language: str  # what the chunks are highlighted as while the block grows
    lines: List[str]  # frozen code lines
    first_unit: int
    closing: "re.Pattern[str]"


class _Lines:
    """Offsets of the line starts of a text (line n of the parser's map starts at `[n]`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        find = text.find
        at = find("\n")
        while at != -1:
            starts.append(at + 1)
            at = find("\n", at + 1)
        self.starts = starts

    def __getitem__(self, line: int) -> int:
        starts = self.starts
        return starts[line] if line < len(starts) else len(self.text)

    def slice(self, first_line: int, end_line: Optional[int]) -> str:
        return self.text[self[first_line] : (len(self.text) if end_line is None else self[end_line])]


class StreamingDocument:
    """The answer's source as frozen units plus a tail still growing. No Textual here: it
    decides what is final; `StreamingMarkdown` paints."""

    def __init__(self, code_chunk: int = CODE_CHUNK) -> None:
        self.parser = make_parser()
        self.code_chunk = code_chunk
        self.units: List[Unit] = []
        self.changed_from = 0  # the first unit replaced or added since `take_changes()`
        self.tail = ""  # source not frozen yet; always starts at a line start
        self.finished = False
        self._list: Optional[_ListState] = None
        self._fence: Optional[_FenceState] = None
        self._table: Optional[_TableState] = None
        self._checked = -1  # length of the tail's complete lines when last examined
        self._tail_nodes: Optional[List[Node]] = None
        self.definitions = Definitions()
        self._redraws: Set[int] = set()  # units drawn before a definition they use came

    # - input -

    def feed(self, text: str) -> None:
        if text:
            self.tail += text
            self._tail_nodes = None

    def take_changes(self) -> int:
        """Index of the first unit that is new or different since the last call."""
        first, self.changed_from = self.changed_from, len(self.units)
        return first

    @property
    def mode(self) -> str:
        """ "list", "code" or "table" while a long list, code block or table grows in parts, else "blocks"."""
        if self._table is not None:
            return "table"
        return "list" if self._list is not None else "code" if self._fence is not None else "blocks"

    def _parse(self, text: str, learn: bool = True) -> List[Node]:
        """Parse with the definitions known; `learn`: `text` is complete lines (a definition
        there is final), learn its definitions."""
        nodes = parse_blocks(self.parser, text, self.definitions, learn=learn)
        if self.definitions.new:
            self._learned()
        return nodes

    def _learned(self) -> None:
        """Labels were just defined: the units the widget has been given (those before
        `changed_from`; the later ones are drawn afresh) that use one are drawn again. Found in
        their source (a text search per unit, no parse): a unit that only seems to use one (an
        inline link's text, say) is drawn again for nothing."""
        uses = _uses(self.definitions.take_new())
        given = min(self.changed_from, len(self.units))
        for index in range(len(self.units) - 1, given - 1, -1):
            unit = self.units[index]  # (not given yet: drawn afresh, but not from a parse from before)
            if unit.parsed is not None and uses.search(unit.source):
                unit.parsed = None
        for index in range(given):
            unit = self.units[index]
            if unit.parsed is not None and uses.search(unit.source):
                unit.parsed = None
            if unit.kind == "section":
                if uses.search(unit.whole, unit.start_at, unit.end_at):
                    self._redraws.add(index)
            elif unit.kind != "code" and unit.node is None and uses.search(unit.source):
                self._redraws.add(index)

    def take_redraws(self) -> List[int]:
        """Units, of those the widget was given before its last `take_changes()`, to draw
        again (same source and height as far as the document knows: a definition they use came)."""
        if not self._redraws:
            return []
        redraws = sorted(self._redraws)
        self._redraws.clear()
        return redraws

    def _replace_from(self, index: int, units: List[Unit]) -> None:
        del self.units[index:]
        self.units.extend(units)
        self.changed_from = min(self.changed_from, index)

    def _freeze_blocks(self, lines: _Lines, nodes: List[Node], end_line: Optional[int], keep_parse: bool = True) -> None:
        """Freeze top-level blocks, each with its source (up to the next block's start); a long
        list or table in runs of items or groups of rows (`keep_parse`: see `_freeze_items`)."""
        for index, node in enumerate(nodes):
            following = nodes[index + 1].lines[0] if index + 1 < len(nodes) else end_line
            if node.kind == "fence" and node.raw.count("\n") > BIG_CODE_LINES:
                self.units.extend(code_units(node.raw, node.lexer))
                continue
            if node.kind == "table" and len(_body_rows(node)) > TABLE_UNIT_ROWS:
                self.units.extend(self._table_units(lines, node, following, keep_parse))
                continue
            if node.kind in ("bullet_list", "ordered_list") and len(node.children) > LIST_UNIT_ITEMS:
                items, state = node.children, self._list
                self._list = _ListState(node.kind == "ordered_list", items[0].markup, list_start(items), 0, len(self.units))
                self._freeze_items(lines, items, following, final=True, keep_parse=keep_parse)
                self._list = state
                continue
            self.units.append(Unit("block", source=lines.slice(node.lines[0], following), definitions=self.definitions))

    # - finding what is finished -

    def update(self) -> None:
        """Freeze what can no longer change (only complete lines are considered)."""
        if self.finished:
            return
        while True:
            end = self.tail.rfind("\n") + 1
            if end == 0 or end == self._checked:
                return
            complete = self.tail[:end]
            if self._table is not None:
                text = self._table.head + complete
                if not self._update_table(_Lines(text), self._parse(text)):
                    self._checked = end
                    return
                continue
            if self._fence is not None:
                if not self._update_fence(complete):
                    self._checked = self.tail.rfind("\n") + 1
                    return
                continue  # the block closed: look at what follows it
            nodes = self._parse(complete)
            lines = _Lines(complete)
            if self._list is not None:
                if not self._update_list(lines, nodes):
                    self._checked = end
                    return
                continue
            if len(nodes) >= 2 and nodes[-1].lines[0] > 0:
                cut_line = nodes[-1].lines[0]
                self._freeze_blocks(lines, nodes[:-1], cut_line)
                self._cut(lines[cut_line])
                continue
            if nodes and self._enter_mode(lines, nodes[0]):
                continue
            self._checked = end
            return

    def _cut(self, offset: int) -> None:
        self.tail = self.tail[offset:]
        self._tail_nodes = None
        self._checked = -1

    def _enter_mode(self, lines: _Lines, node: Node) -> bool:
        """The growing block is a list with finished items, or a long code block: freeze
        those items / lines and follow the block in its own mode. True if entered."""
        if node.kind in ("bullet_list", "ordered_list") and len(node.children) >= 2:
            items = node.children
            ordered = node.kind == "ordered_list"
            self._list = _ListState(ordered, items[0].markup, list_start(items), 0, len(self.units))
            last = items[-1].lines[0]
            self._freeze_items(lines, items[:-1], last, final=False)
            self._cut(lines[last])
            return True
        if node.kind == "table" and len(_body_rows(node)) > 2 * TABLE_LIVE_ROWS:
            rows = _body_rows(node)
            head = lines.slice(node.lines[0], rows[0].lines[0])
            headers, _ = table_cells(node)
            measures = table_measures(headers, [])
            self._table = _TableState(head, TableShape(measures, measures), 0, len(self.units))
            last = rows[-TABLE_LIVE_ROWS].lines[0]
            self._freeze_rows(lines, headers, rows[:-TABLE_LIVE_ROWS], last, final=False)
            self._cut(lines[last])
            return True
        if node.kind == "fence" and node.markup:
            code = node.raw.split("\n")[:-1]
            first = node.lines[0]
            closed = node.lines[1] - first >= len(code) + 2  # the closing line is in its range
            if closed or len(code) < 2 * self.code_chunk:
                return False
            marker = re.escape(node.markup[0]) + "{%d,}" % len(node.markup)
            closing = re.compile(r"^ {0,3}" + marker + r"[ \t]*$")
            language = node.lexer or _guess(node.raw)
            opener = lines.slice(first, first + 1)
            self._fence = _FenceState(opener, node.lexer, language, [], len(self.units), closing)
            self._freeze_code(code[: self.code_chunk])
            # The tail goes on at the first live code line; the opening line is kept aside.
            self._cut(lines[first + 1 + self.code_chunk])
            return True
        return False

    def _freeze_items(self, lines: _Lines, items: Sequence[Node], end: Optional[int], final: bool, keep_parse: bool = True) -> None:
        """Freeze the list's `items` (their source: from the first's line in `lines` up to the
        next's, or to line `end` for the last), in runs of at most LIST_UNIT_ITEMS items; or,
        with none, mark the last frozen run as the list's end. `keep_parse`: the last runs keep
        the items' nodes for their first drawing."""
        state = self._list
        assert state is not None
        if items:
            count = len(items)
            width = ordered_number_width(state.start, state.count + count) if state.ordered else None
            runs = range(0, count, LIST_UNIT_ITEMS)
            for at in runs:
                run = items[at : at + LIST_UNIT_ITEMS]
                stop = items[at + LIST_UNIT_ITEMS].lines[0] if at + LIST_UNIT_ITEMS < count else end
                self.units.append(
                    Unit(
                        "items",
                        source=lines.slice(run[0].lines[0], stop),
                        ordered=state.ordered,
                        start=state.start,
                        first_index=state.count + at,
                        number_width=width,
                        final=final and at == runs[-1],
                        definitions=self.definitions,
                        parsed=list(run) if keep_parse and at >= runs[-1] - (PARSED_UNITS - 1) * LIST_UNIT_ITEMS else None,
                    )
                )
            state.count += count
            self._widen_numbers(state.count)
        elif final and len(self.units) > state.first_unit:
            last = self.units[-1]
            self._replace_from(len(self.units) - 1, [replace(last, final=True)])

    def _widen_numbers(self, count: int) -> None:
        """Textual aligns an ordered list's numbers to the widest: when the list reaches 10,
        100, ... items, its frozen items are laid out again."""
        state = self._list
        if state is None or not state.ordered:
            return
        width = ordered_number_width(state.start, count)
        units = self.units[state.first_unit :]
        if any(unit.number_width != width for unit in units):
            self._replace_from(state.first_unit, [replace(unit, number_width=width) for unit in units])

    def _update_list(self, lines: _Lines, nodes: List[Node]) -> bool:
        """In list mode (the tail starts at the list's first unfrozen item). True if the tail
        was cut (something more was frozen)."""
        state = self._list
        assert state is not None
        first = nodes[0] if nodes else None
        if (
            first is None
            or first.kind != ("ordered_list" if state.ordered else "bullet_list")
            or not first.children
            or first.children[0].markup != state.marker
        ):  # cannot happen for parser-made items; end the list to stay safe
            self._freeze_items(lines, [], None, final=True)
            self._list = None
            return True
        items = first.children
        if len(nodes) >= 2:  # a block after the list began: the list is finished
            after = nodes[1].lines[0]
            self._freeze_items(lines, items, after, final=True)
            self._list = None
            self._cut(lines[after])
            return True
        if len(items) >= 2:
            last = items[-1].lines[0]
            self._freeze_items(lines, items[:-1], last, final=False)
            self._cut(lines[last])
            return True
        return False

    # - tables -

    def _table_units(self, lines: _Lines, node: Node, end: Optional[int], keep_parse: bool = True) -> List[Unit]:
        """A long finished table (parsed: `node`) as groups of TABLE_UNIT_ROWS rows."""
        rows = _body_rows(node)
        head = lines.slice(node.lines[0], rows[0].lines[0])
        headers, _ = table_cells(node)
        measures = table_measures(headers, [])
        shape = TableShape(measures, measures)
        units = _row_groups(lines, head, shape, headers, rows, end, True, True, self.definitions, keep_parse)
        shape.measures = shape.frozen
        return units

    def _freeze_rows(
        self, lines: _Lines, headers: List[Node], rows: Sequence[Node], end: Optional[int], final: bool, keep_parse: bool = True
    ) -> None:
        """In table mode: freeze `rows` (tr nodes of a parse of the head and what follows, in
        `lines`), up to line `end`; or, with none, mark the last group as the table's end."""
        state = self._table
        assert state is not None
        if rows:
            units = _row_groups(lines, state.head, state.shape, headers, rows, end, state.count == 0, final, self.definitions, keep_parse)
            self.units.extend(units)
            state.count += len(rows)
        elif final and len(self.units) > state.first_unit:
            last = self.units[-1]
            self._replace_from(len(self.units) - 1, [replace(last, final=True)])
        self._fit_table()

    def _fit_table(self, live: Optional[Measures] = None) -> None:
        """The table's columns as wide as its frozen rows (and the `live` ones) need: when
        that changes, its groups are drawn again."""
        state = self._table
        assert state is not None
        shape = state.shape
        measures = merge_measures(shape.frozen, live) if live is not None else shape.frozen
        if measures != shape.measures:
            shape.measures = measures
            units = self.units[state.first_unit :]
            self._replace_from(state.first_unit, [replace(unit, measures=unit.measures) for unit in units])

    def _update_table(self, lines: _Lines, nodes: List[Node]) -> bool:
        """In table mode (the text parsed is the head and the tail, which starts at the first
        unfrozen row). True if the tail was cut."""
        state = self._table
        assert state is not None
        skip = len(state.head)
        first = nodes[0] if nodes else None
        if first is None or first.kind != "table":  # cannot happen: the head makes a table
            self._freeze_rows(lines, [], [], None, final=True)
            self._table = None
            return True
        headers, _ = table_cells(first)
        rows = _body_rows(first)
        if len(nodes) >= 2:  # a block after the table began: the table is finished
            after = nodes[1].lines[0]
            self._freeze_rows(lines, headers, rows, after, final=True)
            self._table = None
            self._cut(lines[after] - skip)
            return True
        if len(rows) >= 2 * TABLE_LIVE_ROWS:
            last = rows[-TABLE_LIVE_ROWS].lines[0]
            self._freeze_rows(lines, headers, rows[:-TABLE_LIVE_ROWS], last, final=False)
            self._cut(lines[last] - skip)
            return True
        return False

    def _freeze_code(self, code: List[str]) -> None:
        state = self._fence
        assert state is not None
        first = not state.lines
        state.lines.extend(code)
        self.units.append(Unit("code", code="\n".join(code), language=state.language, first=first))

    def _update_fence(self, complete: str) -> bool:
        """In code mode (the tail starts at a code line). True if the block closed."""
        state = self._fence
        assert state is not None
        lines = _Lines(complete)
        for index, line in enumerate(complete.split("\n")[:-1]):
            if state.closing.match(line):
                nodes = self._parse(state.opener + lines.slice(0, index + 1))
                self._close_fence(nodes[0] if nodes else None)
                self._cut(lines[index + 1])
                return True
        # Still open: freeze whole chunks, keeping at least one chunk live.
        nodes = self._parse(state.opener + complete)
        code = nodes[0].raw.split("\n")[:-1] if nodes and nodes[0].kind == "fence" else []
        frozen = 0
        while len(code) - frozen >= 2 * self.code_chunk:
            self._freeze_code(code[frozen : frozen + self.code_chunk])
            frozen += self.code_chunk
        if frozen:
            self._cut(lines[frozen])
        return False

    def _close_fence(self, tail_node: Optional[Node]) -> None:
        """The code block is complete: lay it out again as one block, highlighted whole (a long
        one as parts: `code_units`)."""
        state = self._fence
        assert state is not None
        raw = "".join(line + "\n" for line in state.lines) + (tail_node.raw if tail_node else "")
        if raw.count("\n") > BIG_CODE_LINES:
            self._replace_from(state.first_unit, code_units(raw, state.lexer, state.language))
        else:
            node = Node("fence", code=raw.rstrip(), raw=raw, lexer=state.lexer)
            self._replace_from(state.first_unit, [Unit("block", node=node)])
        self._fence = None

    # - the live tail -

    def _tail_text(self) -> str:
        """What the tail is parsed as: in code mode, the opening line is put back in front so
        the parser sees a code block."""
        if self._table is not None:
            return self._table.head + self.tail
        return (self._fence.opener if self._fence is not None else "") + self.tail

    def tail_nodes(self) -> List[Node]:
        """The tail parsed, partial last line included."""
        if self._tail_nodes is None:
            text = self._tail_text()
            self._tail_nodes = self._parse(text, learn=False) if text else []
        return self._tail_nodes

    def tail_boxes(self, width: int, painter: Painter) -> List[Box]:
        nodes = self.tail_nodes()
        boxes: List[Box] = []
        rest = nodes
        if self._fence is not None and nodes and nodes[0].kind == "fence":
            path = fence_style_path(_ROOT)
            code = nodes[0].code
            body = code_lines(highlight_code(code, self._fence.language, painter), width, painter, path) if code else []
            boxes.append(Box([*body, painter.blank(width, path)], 0, 1))
            rest = nodes[1:]
        elif self._table is not None and nodes and nodes[0].kind == "table":
            headers, rows = table_cells(nodes[0])
            measures = self._table.shape.measures
            boxes.append(table_part(headers, rows, width, painter, _ROOT, measures=measures, head=False, final=True))
            rest = nodes[1:]
        elif self._list is not None and nodes and nodes[0].kind in ("bullet_list", "ordered_list"):
            state = self._list
            items = nodes[0].children
            number_width = ordered_number_width(state.start, state.count + len(items)) if state.ordered else None
            boxes.append(
                render_list(
                    items, state.ordered, width, painter, _ROOT, number_width=number_width, first_index=state.count, start=state.start, final=True
                )
            )
            rest = nodes[1:]
        boxes.extend(render_block(node, width, painter, _ROOT) for node in rest)
        return boxes

    def tail_number_width(self) -> None:
        """Keep frozen ordered items as wide as the live ones (10th item arriving, say), and a
        growing table's frozen rows as wide as its live ones."""
        if self._table is not None:
            nodes = self.tail_nodes()
            if nodes and nodes[0].kind == "table":
                headers, rows = table_cells(nodes[0])
                self._fit_table(table_measures(headers, rows))
        if self._list is not None and self._list.ordered:
            nodes = self.tail_nodes()
            live = len(nodes[0].children) if nodes and nodes[0].kind == "ordered_list" else 0
            self._widen_numbers(self._list.count + live)

    # - the end -

    def finish(self, sections: Sequence[Tuple[int, int]] = (), whole: str = "") -> None:
        """Everything is final: freeze the tail as the whole source would be laid out, then
        `sections`, the rest of a long source cut at safe boundaries (lazy_layout.split): spans
        of `whole`, each a unit parsed only when it is drawn."""
        if self.finished:
            return
        self.update()
        text = self._tail_text()
        if not text.endswith("\n") and "]:" in text[text.rfind("\n") + 1 :]:
            self._tail_nodes = self._parse(text)  # a definition on the last line, without its line end
        nodes = self.tail_nodes()
        lines = _Lines(text)
        if self._fence is not None:
            head = nodes[0] if nodes and nodes[0].kind == "fence" else None
            self._close_fence(head)
            nodes = nodes[1:] if head is not None else nodes
        elif self._list is not None:
            first = nodes[0] if nodes and nodes[0].kind in ("bullet_list", "ordered_list") else None
            if first is not None:
                after = nodes[1].lines[0] if len(nodes) > 1 else None
                self._freeze_items(lines, first.children, after, final=True, keep_parse=False)
                nodes = nodes[1:]
            else:
                self._freeze_items(lines, [], None, final=True)
            self._list = None
        elif self._table is not None:
            first = nodes[0] if nodes and nodes[0].kind == "table" else None
            after = nodes[1].lines[0] if first is not None and len(nodes) > 1 else None
            self._freeze_rows(lines, table_cells(first)[0] if first else [], _body_rows(first) if first else [], after, final=True, keep_parse=False)
            self._table = None
            nodes = nodes[1:] if first is not None else nodes
        self._freeze_blocks(lines, nodes, None, keep_parse=False)  # (the tail's parse may be from before a definition came)
        self.changed_from = min(self.changed_from, len(self.units))
        for start, end in sections:
            self.units.extend(_section_units(whole, start, end, self.definitions))
        lazy_layout.learn_definitions(whole, sections, self.definitions)
        if self.definitions.new:
            self._learned()
        self.tail = ""
        self._tail_nodes = []
        self.finished = True


def _uses(labels: Sequence[str]) -> "re.Pattern[str]":
    """What finds a use of one of `labels` (normalised link labels, "^label" for footnotes) in
    a source: `[label]` with any case and spacing (as markdown-it compares labels)."""
    patterns = []
    for label in labels:
        if label.startswith("^"):
            patterns.append(r"\[" + re.escape(label) + r"\]")
        else:
            words = r"\s+".join(re.escape(word) for word in label.split())
            patterns.append(r"\[\s*(?i:" + words + r")\s*\]")
    return re.compile("|".join(patterns))


def _body_rows(node: Node) -> List[Node]:
    """A table's body rows (tr nodes, with their lines)."""
    return [row for part in node.children if part.kind == "tbody" for row in part.children if row.kind == "tr"]


def _row_groups(
    lines: _Lines,
    head: str,
    shape: TableShape,
    headers: List[Node],
    rows: Sequence[Node],
    end: Optional[int],
    first: bool,
    final: bool,
    definitions: Optional[Definitions],
    keep_parse: bool = True,
) -> List[Unit]:
    """Rows of a table (tr nodes, their source in `lines`, the last's up to line `end`) as
    units of at most TABLE_UNIT_ROWS rows; `first`: they begin the table, `final`: they end it.
    The last groups keep their rows' nodes for their first drawing."""
    units: List[Unit] = []
    groups = range(0, len(rows), TABLE_UNIT_ROWS)
    for at in groups:
        group = rows[at : at + TABLE_UNIT_ROWS]
        stop = rows[at + TABLE_UNIT_ROWS].lines[0] if at + TABLE_UNIT_ROWS < len(rows) else end
        cells = [[cell for cell in row.children if cell.kind == "td"] for row in group]
        measures = table_measures(headers, cells)
        keep = keep_parse and at >= groups[-1] - (PARSED_UNITS - 1) * TABLE_UNIT_ROWS
        shape.frozen = merge_measures(shape.frozen, measures)
        units.append(
            Unit(
                "rows",
                source=lines.slice(group[0].lines[0], stop),
                head=head,
                table=shape,
                measures=measures,
                first=first and at == 0,
                final=final and at == groups[-1],
                definitions=definitions,
                parsed=(headers, cells) if keep else None,
            )
        )
    return units


def _changed_lines(old: List[Strip], new: List[Strip]) -> Optional[Tuple[int, int]]:
    """The first and one past the last line that differ between two drawings (a line only
    one of them has differs), or None if they are the same."""
    count = max(len(old), len(new))

    def differs(y: int) -> bool:
        return y >= len(old) or y >= len(new) or old[y] != new[y]

    first = next((y for y in range(count) if differs(y)), None)
    if first is None:
        return None
    last = next(y for y in range(count - 1, first - 1, -1) if differs(y))
    return first, last + 1


def code_units(raw: str, lexer: str, language: str = "") -> List[Unit]:
    """A long finished code block (its code `raw`, info string `lexer`) as units of
    CODE_UNIT_LINES lines: the block's rows as one drawn whole (the same text and padding), each
    part highlighted as `language` (`lexer`, else guessed from the whole) on its own -- a string
    or comment across two parts may be coloured differently, as while a block streams."""
    code = raw.rstrip()  # (as the block drawn whole: markdown_render's Node.code)
    language = language or lexer or _guess(code)
    lines = code.split("\n")
    parts = range(0, len(lines), CODE_UNIT_LINES)
    return [Unit("code", code="\n".join(lines[at : at + CODE_UNIT_LINES]), language=language, first=at == 0, final=at == parts[-1]) for at in parts]


def _section_units(whole: str, start: int, end: int, definitions: Optional[Definitions]) -> List[Unit]:
    """A lazily laid-out section as units: itself, or, when it holds long code blocks, the
    text around them as sections and each long block as code units; and a long stretch
    between them that holds a long list or table, that as runs of items or groups of rows."""
    units: List[Unit] = []
    at = start
    for opened, code_start, code_end, closed, info in lazy_layout.long_fences(whole, start, end, BIG_CODE_LINES):
        units.extend(_long_parts(whole, at, opened, definitions))
        units.extend(code_units(whole[code_start:code_end], info))
        at = closed
    units.extend(_long_parts(whole, at, end, definitions))
    if not units:
        units.append(Unit("section", whole=whole, start_at=at, end_at=end, definitions=definitions))
    return units


def _long_parts(whole: str, start: int, end: int, definitions: Optional[Definitions]) -> List[Unit]:
    """`whole[start:end]` (top-level blocks) as units: a section, or, when it is long (no safe
    boundary in it: a long list or table has none) and holds long lists or tables (found by
    the parser's block pass: `lazy_layout.long_blocks`), those as runs of items and groups of
    rows, the rest as sections. A blank stretch is no unit (it is no block: a section of it
    would add its margin)."""
    if start >= end or not whole[start:end].strip():
        return []
    if end - start <= LONG_SECTION_CHARS:
        return [Unit("section", whole=whole, start_at=start, end_at=end, definitions=definitions)]
    text = whole[start:end]
    lines = _Lines(text)
    units: List[Unit] = []
    at = 0
    for kind, first, stop, parts, number in lazy_layout.long_blocks(text, min(LIST_UNIT_ITEMS, TABLE_UNIT_ROWS)):
        if text[at : lines[first]].strip():
            units.append(Unit("section", whole=whole, start_at=start + at, end_at=start + lines[first], definitions=definitions))
        at = lines[stop]
        if kind == "table":
            head = lines.slice(first, parts[0])
            shape = TableShape(([], []), ([], []), source=lines.slice(first, stop), definitions=definitions)
            groups = range(0, len(parts), TABLE_UNIT_ROWS)
            for index in groups:
                until = parts[index + TABLE_UNIT_ROWS] if index + TABLE_UNIT_ROWS < len(parts) else stop
                source = lines.slice(parts[index], until)
                units.append(
                    Unit("rows", source=source, head=head, table=shape, first=index == 0, final=index == groups[-1], definitions=definitions)
                )
            continue
        ordered = kind == "ordered_list"
        try:
            begin = int(number) if ordered else 1
        except ValueError:
            begin = 1
        width = ordered_number_width(begin, len(parts)) if ordered else None
        runs = range(0, len(parts), LIST_UNIT_ITEMS)
        for index in runs:
            until = parts[index + LIST_UNIT_ITEMS] if index + LIST_UNIT_ITEMS < len(parts) else stop
            source = lines.slice(parts[index], until)
            units.append(
                Unit(
                    "items",
                    source=source,
                    ordered=ordered,
                    start=begin,
                    first_index=index,
                    number_width=width,
                    final=index == runs[-1],
                    definitions=definitions,
                )
            )
    if text[at:].strip():
        units.append(Unit("section", whole=whole, start_at=start + at, end_at=end, definitions=definitions))
    return units


def _unit_source(unit: Unit) -> str:
    """A frozen unit's Markdown source, as a selection copies it when it is not drawn for it."""
    if unit.kind == "section":
        return unit.whole[unit.start_at : unit.end_at].strip("\n")
    if unit.kind == "code":
        return unit.code.rstrip("\n")
    if unit.kind == "rows":
        return ((unit.head if unit.first else "") + unit.source).strip("\n")
    return (unit.node.raw if unit.node is not None else unit.source).strip("\n")


def _guess(code: str) -> str:
    from textual.highlight import guess_language

    return guess_language(code, None)


# --- the widget ------------------------------------------------------------------------------


def _content_height(container: Widget) -> int:
    """The rows its children take, margins included (its virtual size is at least its own)."""
    top, bottom = None, None
    for child in container.displayed_children:
        if isinstance(child, Widget):
            region, margin = child.region, child.styles.margin
            top = region.y - margin.top if top is None else min(top, region.y - margin.top)
            bottom = region.bottom + margin.bottom if bottom is None else max(bottom, region.bottom + margin.bottom)
    return 0 if top is None or bottom is None else bottom - top


def _offsets(strip: Strip, y: int) -> Strip:
    """Selection offsets, (character, line) in this widget, on the segments that carry text
    offsets (Content puts them there, relative to its own block; padding has none, as in
    Textual's Markdown). The screen maps the mouse to text through them."""
    from rich.style import Style as RichStyle

    segments = []
    x = 0
    changed = False
    for text, style, control in strip:
        if style is not None and "offset" in style.meta:
            style = style + RichStyle.from_meta({"offset": (x, y)})
            changed = True
        segments.append(Segment(text, style, control))
        x += len(text)
    return Strip(segments, strip.cell_length) if changed else strip


class DrawnLines:
    """Lines of recently drawn units, across every answer: least recently used let go first.

    A long session keeps each answer's source and the height of each of its parts; the lines
    themselves (~1 KB each as segments) are kept for about `budget` lines in all, and drawn
    again from the source when they come back into view.
    """

    def __init__(self, budget: int = 20_000) -> None:
        self.budget = budget
        self.lines = 0
        self._entries: "OrderedDict[Any, List[List[Segment]]]" = OrderedDict()

    def get(self, key: Any) -> Optional[List[List[Segment]]]:
        lines = self._entries.get(key)
        if lines is not None:
            self._entries.move_to_end(key)
        return lines

    def put(self, key: Any, lines: List[List[Segment]]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.lines -= len(old)
        self._entries[key] = lines
        self.lines += len(lines)
        entries = self._entries
        while self.lines > self.budget and len(entries) > 1:
            _, dropped = entries.popitem(last=False)
            self.lines -= len(dropped)

    def clear(self) -> None:
        self._entries.clear()
        self.lines = 0

    def discard(self, token: Any, count: int) -> None:
        """Let go of the lines of units 0 .. count - 1 drawn under `token` now: nothing will read
        them again (their widget is gone, or draws at another width or in another style). Kept
        until the budget pushed them out, they were most of what a full collection walked while
        a long conversation was scrolled (a line is a list of tuples the collector tracks)."""
        entries = self._entries
        for index in range(count):
            lines = entries.pop((token, index), None)
            if lines is not None:
                self.lines -= len(lines)


DRAWN = DrawnLines()


def _read(items: List[str], at: int, offset: int, count: int) -> Tuple[str, int, int]:
    """`count` characters of the strings `items`, from character `offset` of item `at` on;
    and the item and offset where they end."""
    out: List[str] = []
    need = count
    while need > 0:
        item = items[at]
        piece = item[offset : offset + need]
        out.append(piece)
        need -= len(piece)
        offset += len(piece)
        if offset >= len(item):
            at, offset = at + 1, 0
    return (out[0] if len(out) == 1 else "".join(out)), at, offset


class TextQueue:
    """Text appended a token at a time, held once and compactly: the pieces are joined into a
    chunk every PIECES appends (a million short strings would cost ~60 MB; their chunks cost
    about the text's length). `take` reads it from the front without letting it go (`text()`
    is still all of it: the answer's source is not a second copy); `len()` is what has not
    been taken yet.

    Or the text is another's list of strings (`share`: the engine's answer, which the engine
    appends to and joins runs of): then `append` only counts what was appended there, and the
    queue holds no copy of it until `unshare` (or `text()`, at the end) makes one; `adopt`, if
    given, is then offered that one string, to hold in place of the items it was made of."""

    PIECES = 256

    def __init__(self) -> None:
        self._chunks: List[str] = []
        self._pieces: List[str] = []
        self.chars = 0  # appended
        self.taken = 0  # taken from the front
        self._at = 0  # the chunk the next take starts in...
        self._offset = 0  # ...and where in it
        self._shared: Optional[List[str]] = None
        self._adopt: Optional[Callable[[str, int], None]] = None
        # Shared: the part the next take starts in, the offset of its start in the text, and
        # the part itself (the owner may have joined it with others since: then it is found again).
        self._cursor: Tuple[int, int, Optional[str]] = (0, 0, None)

    def __len__(self) -> int:
        return self.chars - self.taken

    def append(self, text: str) -> None:
        if self._shared is not None and not self._shared:  # its owner keeps no text: hold it here
            self._shared = None
        self.chars += len(text)
        if self._shared is not None:
            return
        pieces = self._pieces
        pieces.append(text)
        if len(pieces) >= self.PIECES:
            self._chunks.append("".join(pieces))
            pieces.clear()

    @property
    def shared(self) -> bool:
        return self._shared is not None

    def share(self, parts: List[str], adopt: Optional[Callable[[str, int], None]] = None) -> None:
        """The text is `parts` from now on (empty so far, as the queue): each `append` is of
        the text just appended to it. `adopt(text, count)`: the queue holds `text` from now on,
        the first `count` items of `parts` joined (the list's owner may put it in their place)."""
        if self.chars or parts:
            raise ValueError("only an empty queue shares an empty list")
        self._shared = parts
        self._adopt = adopt
        self._cursor = (0, 0, None)

    def unshare(self) -> None:
        """Hold the text from now on (what is appended next is not what goes into the list)."""
        if self._shared is None:
            return
        whole, count = self._shared_text()
        adopt, self._shared, self._adopt = self._adopt, None, None
        self._chunks = [whole] if whole else []
        self._at, self._offset = (0, self.taken) if self.taken < self.chars else (len(self._chunks), 0)
        if adopt is not None and count:
            adopt(whole, count)

    def _shared_text(self) -> Tuple[str, int]:
        """The first `chars` characters of the shared list (its owner may have added more), and
        how many of its items they are (0 when they end inside one)."""
        assert self._shared is not None
        out: List[str] = []
        need = self.chars
        whole_items = True
        for part in self._shared:
            if need <= 0:
                break
            if len(part) > need:
                part = part[:need]
                whole_items = False
            out.append(part)
            need -= len(part)
        return (out[0] if len(out) == 1 else "".join(out)), (len(out) if whole_items else 0)

    def _seal(self) -> None:
        if self._pieces:
            self._chunks.append("".join(self._pieces))
            self._pieces.clear()

    def text(self) -> str:
        """Everything appended (taken or not), as one string: the chunks are replaced by it
        (a shared text: it is held from now on)."""
        self.unshare()
        self._seal()
        chunks = self._chunks
        if len(chunks) > 1:
            whole = "".join(chunks)
            chunks[:] = [whole]
            self._at, self._offset = (0, self.taken) if self.taken < self.chars else (1, 0)
        return chunks[0] if chunks else ""

    def take(self, limit: Optional[int] = None) -> str:
        """The next `limit` characters not taken yet (all of them with None)."""
        count = len(self) if limit is None else min(limit, len(self))
        if count <= 0:
            return ""
        if self._shared is not None:
            return self._take_shared(count)
        self._seal()
        text, self._at, self._offset = _read(self._chunks, self._at, self._offset, count)
        self.taken += count
        return text

    def _take_shared(self, count: int) -> str:
        parts = self._shared
        assert parts is not None
        at, start, part = self._cursor
        if at >= len(parts) or parts[at] is not part:  # joined since: find it again
            at, start = 0, 0
            while start + len(parts[at]) <= self.taken:
                start += len(parts[at])
                at += 1
        text, at, offset = _read(parts, at, self.taken - start, count)
        self.taken += count
        self._cursor = (at, self.taken - offset, parts[at] if at < len(parts) else None)
        return text

    def skip(self) -> None:
        """Count everything as taken, without a copy of it (see StreamingMarkdown._lazy_rest)."""
        self.unshare()
        self._seal()
        self._at, self._offset = len(self._chunks), 0
        self.taken = self.chars


class MarkdownFeed:
    """What the app's worker writes the answer into (the shape of Textual's MarkdownStream,
    without its per-write yield to the event loop: frames are the widget's business)."""

    def __init__(self, widget: "StreamingMarkdown") -> None:
        self.widget = widget

    async def write(self, text: str) -> None:
        self.widget.append(text)

    async def stop(self) -> None:
        self.widget.finish()


class StreamingMarkdown(RowsKeptOnResize, Widget):
    """Markdown that can grow, painted line by line; looks like Textual's `Markdown`."""

    # Not scrollable: a change of virtual size needs no second layout, nor a second paint (see
    # compat.still_virtual_size).
    virtual_size = still_virtual_size()

    DEFAULT_CSS = """
    StreamingMarkdown {
        height: auto;
        padding: 0 2 0 2;
        color: $foreground;

        & > .markdown--h1 { color: $markdown-h1-color; background: $markdown-h1-background; text-style: $markdown-h1-text-style not underline; }
        & > .markdown--h2 { color: $markdown-h2-color; background: $markdown-h2-background; text-style: $markdown-h2-text-style not underline; }
        & > .markdown--h3 { color: $markdown-h3-color; background: $markdown-h3-background; text-style: $markdown-h3-text-style not underline; }
        & > .markdown--h4 { color: $markdown-h4-color; background: $markdown-h4-background; text-style: $markdown-h4-text-style not underline; }
        & > .markdown--h5 { color: $markdown-h5-color; background: $markdown-h5-background; text-style: $markdown-h5-text-style not underline; }
        & > .markdown--h6 { color: $markdown-h6-color; background: $markdown-h6-background; text-style: $markdown-h6-text-style not underline; }
        & > .markdown--hr { color: $secondary; }
        & > .markdown--fence { color: rgb(210,210,210); background: black 10%; }
        & > .markdown--continued { color: $text-muted; }
        &:light > .markdown--fence { background: white 30%; }
        & > .markdown--quote { background: $boost; }
        & > .markdown--quote-border { color: $text-primary 50%; }
        &:light > .markdown--quote-border { color: $text-secondary; }
        & > .markdown--bullet { color: $text-primary; }
        &:light > .markdown--bullet { color: $text-secondary; }
        & > .markdown--table { }
        &:light > .markdown--table { background: white 30%; }
        & > .markdown--table-header { color: $primary; }
        & > .markdown--keyline { color: $foreground 20%; }
        &:dark > .code_inline { background: $warning 10%; color: $text-warning 95%; }
        &:light > .code_inline { background: $error 5%; color: $text-error 95%; }
        &:ansi > .code_inline { background: ansi_default; }
        & > .em { text-style: italic; }
        & > .strong { text-style: bold; }
        & > .s { text-style: strike; }
    }
    """

    COMPONENT_CLASSES = {
        "markdown--h1",
        "markdown--h2",
        "markdown--h3",
        "markdown--h4",
        "markdown--h5",
        "markdown--h6",
        "markdown--hr",
        "markdown--fence",
        "markdown--continued",
        "markdown--quote",
        "markdown--quote-border",
        "markdown--bullet",
        "markdown--table",
        "markdown--table-header",
        "markdown--keyline",
        "code_inline",
        "em",
        "strong",
        "s",
    }

    def __init__(
        self,
        markdown: str = "",
        *,
        clock: Callable[[], float] = time.perf_counter,
        min_frame: float = MIN_FRAME,
        code_chunk: int = CODE_CHUNK,
        grow_step: int = GROW_STEP,
        name: Optional[str] = None,
        id: Optional[str] = None,
        classes: Optional[str] = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        use_tall_styles_cache(self)
        self.document = StreamingDocument(code_chunk=code_chunk)
        # Everything appended, held once (the source); its len() is what is not taken in yet.
        self._pending = TextQueue()
        self._finishing = False  # finish() was called; the last of the text is being taken in
        self._quiet = False  # lay out without asking the screen to paint (a backlog's frames)
        self._owed_paint = False  # laid out quietly since the last paint
        self._painted_at = -math.inf  # perf_counter() of the last frame that asked for a paint
        self._painted_height = 0  # the height the screen was last told of
        self._taken = 0  # characters taken into the layout
        self._held_cr = False
        self._clock = clock
        self._min_frame = min_frame
        self._grow_step = max(1, grow_step)
        self._reserved = 0  # the height while the answer grows, room included (see height_shown)
        self._above = 0  # rows of that room above the text (see _reserve_room)
        self._painted_above = 0  # ...when the rows in Textual's cache were painted (see _moved)
        self._following = False  # at the last frame, the view was at its end...
        self._view_rows = 0  # ...and this many rows high
        # At the last frame, the height at which the answer outgrows the container around it, when
        # it does not fill it yet (see _outgrowing), else None.
        self._overflow_at: Optional[int] = None
        self._grown: Optional[Tuple[float, int]] = None  # when the room last grew, and the lines then
        self._next_frame = 0.0
        self._frame_requested = False
        # What taking text in and laying it out cost lately: seconds and characters, older
        # slices weighing less (see _slice).
        self._slice_cost = (TAKE_WORK, float(TAKE_CHUNK))
        # The layout at one width and style: frozen units' lines, then the live tail's.
        self._width = -1
        self._style_key: Any = None
        self._fingerprint: Any = None
        self._painter: Optional[Painter] = None
        # Per laid-out unit: its first line (the gap above it included), that gap, its height
        # and bottom margin. Its lines live in DRAWN, as bare segment lists: a Strip carries
        # seven small caches (~1 KB a line) and only lines on screen need to be Strips.
        self._token: Any = None
        self._starts: List[int] = []
        self._gaps: List[int] = []
        self._heights: List[int] = []
        self._bottoms: List[int] = []
        # And its top margin, and whether it is drawn (else its height is estimated: see _lay_out_units).
        self._tops: List[int] = []
        self._exact = bytearray()
        self._estimated = 0  # units with estimated heights
        self._view_units = (0, 0)  # the units the last paint showed
        self._view_top = 0  # and its first line (as painted: see _view_line)
        self._interned: dict = {}
        self._rough: Set[int] = set()  # units drawn roughly, for a first frame (draw_again)
        self._tail_lines: List[Strip] = []
        # Lines as render_line gives them (selection offsets on), by line: while the answer
        # grows, the text moves up a row in the room above it at each new line and every row on
        # screen is painted again; the lines themselves did not change. (At most STRIPS kept.)
        self._strips: Dict[int, Strip] = {}
        self._tail_stale = True
        self._tail_start = 0  # the first line of the live tail (where the frozen lines end)
        # Called when a frame is due, before the screen paints it: whatever should change on
        # screen with the answer (the status bar's figures) changes in the same paint. (A
        # second source of repaints on its own clock costs paints of its own, and a frame
        # asked for just after one of them waits a frame period.)
        self.on_frame: Optional[Callable[[], None]] = None
        self.frames = 0  # frames that took text in
        self.shown_chars = 0  # characters taken into the layout (on screen from the next paint)
        if markdown:
            # A finished answer (a stored one): final at once, however long, as before it is
            # shown nothing waits on it (frames are for text arriving while the app runs).
            self.append(markdown)
            self._finishing = True
            self._complete()

    # --- input ---

    @property
    def source(self) -> str:
        """Everything appended so far (also what has not been laid out yet)."""
        return self._pending.text()

    @property
    def finished(self) -> bool:
        return self.document.finished

    def get_stream(self) -> MarkdownFeed:
        return MarkdownFeed(self)

    @property
    def backlog(self) -> int:
        """Characters appended but not taken in yet."""
        return len(self._pending)

    def share_text(self, parts: List[str], adopt: Optional[Callable[[str, int], None]] = None) -> None:
        """The answer's text is `parts` (the engine's, joined as it comes): every `append` from
        now on is of the text just appended to it, and is not copied (see TextQueue.share)."""
        self._pending.share(parts, adopt)

    @property
    def shares_text(self) -> bool:
        return self._pending.shared

    def keep_own_text(self) -> None:
        """What is appended next is not what goes into the shared list (sanitised): copy it."""
        self._pending.unshare()

    def append(self, text: str) -> None:
        """Queue text; it is laid out at the next frame."""
        if not text or self._finishing:
            return
        self._pending.append(text)
        if not self._frame_requested:
            self._request_frame()

    def finish(self) -> None:
        """No more text: freeze the rest. At once (so what is shown is final) unless more
        than FINISH_WORK's worth waits: then frames take it in first, as they do while text
        streams, and the answer is final after the last of them."""
        if self._finishing:
            return
        self._finishing = True
        waiting = len(self._pending)
        if waiting < lazy_layout.LAZY_CHARS and waiting <= self._slice(FINISH_WORK) or not self.is_attached:
            self._complete()
        elif len(self._pending) >= lazy_layout.LAZY_CHARS:
            # A long backlog (a cancelled flood) is final at once, laid out lazily (~0.1 s for
            # 10 MB): once what the end changed elsewhere (`cancelled`) is painted. (Not on a
            # timer: one that came before that paint held it back by the layout, 60-100 ms.)
            self.call_after_refresh(self._complete_if_attached)
        else:
            # No more text comes to gather by waiting: the frame is due now, not a frame period
            # after the last (a short answer's last frame waited up to 0.1 s for its time).
            self._next_frame = self._clock()
            self._frame_requested = False  # (a frame asked for later finds nothing left, or a backlog)
            self._request_frame()

    def _complete_if_attached(self) -> None:
        if self.is_attached:
            self._complete()

    def _complete(self) -> None:
        if self.document.finished:
            return
        before = self._painted_height  # the room reserved while growing: it goes with the finish
        whole, sections = self._lazy_rest()
        self._take_in(force=True)
        if self._held_cr:
            self._held_cr = False
            self.document.feed("\n")
        self.document.finish(sections, whole)
        self._tail_stale = True
        self._show(before)

    def _lazy_rest(self) -> Tuple[str, List[Tuple[int, int]]]:
        """A long backlog (a stored answer, what a cancelled flood left): its head, up to its
        first safe boundary, goes into the document; the rest is returned as sections (spans of
        the text returned: the source itself, a stored answer's own string, not a copy), parsed
        and drawn only when they come near the view (lazy_layout)."""
        pending = self._pending
        if len(pending) < lazy_layout.LAZY_CHARS:
            return "", []
        document = self.document
        taken = pending.taken
        whole = pending.text()  # (the queue's chunks become this one string: held once)
        if "\r" not in whole and whole.startswith(document.tail, taken - len(document.tail)):
            # The document's text is the source's (no line ends to normalise): the sections
            # are spans of the source, cut as a stored answer's are (from its start).
            self._taken += len(pending)
            pending.skip()
            head, sections = lazy_layout.split(whole, after=taken)
            document.feed(whole[taken:head])
            return whole, sections
        del whole
        raw = pending.take()
        self._taken += len(raw)
        rest = self._normalised(raw)
        del raw
        if self._held_cr:  # a CR at the very end: a line end
            self._held_cr = False
            rest += "\n"
        text = document.tail + rest if document.tail else rest
        del rest
        state = document._fence
        fence = lazy_layout.opening_fence(state.opener) if state is not None else None
        head, sections = lazy_layout.split(text, after=len(document.tail), fence=fence)
        document.feed(text[len(document.tail) : head])
        return text, sections

    # --- frames ---
    #
    # A frame is due at most MIN_FRAME after the last. When it is due, the widget takes the
    # queued text in, lays it out, and asks the screen to repaint the lines that changed (and
    # for a layout when the height changed): the screen paints them at once, or a frame period
    # after its last paint (see ../screen.py), so the paint and the layout are in one tick.
    # (Taking text in while the screen paints instead would catch a little more text per frame,
    # but a height found to change then needs another tick for the layout, and that tick
    # came one to two frame periods later: the largest part of the latency at the 99th
    # percentile.)

    def _request_frame(self) -> None:
        """Take the queued text in as soon as the next frame is due."""
        if self._frame_requested:
            return
        self._frame_requested = True
        delay = self._next_frame - self._clock()
        if delay <= 0:
            self.call_later(self._due)
        else:
            self.set_timer(delay, self._due)

    def _due(self) -> None:
        self._frame_requested = False
        if self._pending:
            self._frame()

    def _frame(self) -> None:
        self._frame_requested = False
        if not self._pending:
            return
        now = self._clock()
        if now < self._next_frame:
            self._request_frame()
            return
        started = time.perf_counter()
        if self._outgrowing() and started - self._painted_at < MAX_FRAME_GAP:
            # Painted for it already: the screen lays it out at its next tick; taken in before,
            # more text is drawn at a width about to change (and a tail a frame).
            self._frame_requested = True
            self.set_timer(min(self._min_frame, OUTGROW_WAIT), self._due)
            return
        if self._finishing and len(self._pending) <= self._slice(FINISH_WORK):
            self._complete()
            return
        width = self.size.width
        laid_out = width and width == self._width
        paints = started - self._painted_at >= BACKLOG_PAINT
        left = TAKE_WORK
        while True:
            at = time.perf_counter()
            taken = self._take_in(force=True, limit=self._slice(left))
            if not laid_out or paints or not self._pending:
                # Painted now: _show lays it out. (Laid out quietly first, the paint would be
                # of every row, not of the lines that changed: a quiet layout leaves no record
                # of what it changed. At 200 tok/s every frame is a single slice.)
                break
            # What was taken in is drawn as it goes (its tail once, at the end), so a slice's
            # cost is known, and the next frame finds the units laid out.
            self._lay_out_quietly(width, with_tail=False)
            done = time.perf_counter()
            self._learn_cost(done - at, taken)
            left = TAKE_WORK - (done - started)
            if left <= 0 or self._outgrowing():
                break
        if self._finishing and len(self._pending) <= self._slice(FINISH_WORK):
            self._complete()
            return
        if not self._pending or paints or self._outgrowing():
            if self.on_frame is not None:
                # Only before a frame that paints: a backlog's quiet frames follow each other
                # every few ms, and the bar changed on its own clock then, a paint of its own
                # between two of the answer's (twice the paints for the same frames).
                self.on_frame()
            self._show()
        cost = self._clock() - now + self._paint_cost()
        self._next_frame = now + min(MAX_FRAME_GAP, max(self._min_frame, BUSY_SHARE * cost))
        if self._pending:
            # A backlog: the next frame once what waits (keys, the worker, a paint) has run. On
            # a timer, not `call_later`: our own message queue is read without yielding to the
            # event loop, so a frame asked for from a frame would run before anything else.
            self._next_frame = now
            self._frame_requested = True
            self.set_timer(BACKLOG_GAP, self._due)

    def _slice(self, budget: float) -> int:
        """How many characters to take in for about `budget` seconds of work, at what the last
        slices cost per character."""
        seconds, chars = self._slice_cost
        return max(MIN_TAKE, min(MAX_TAKE, int(budget * chars / max(seconds, 1e-9))))

    def _learn_cost(self, seconds: float, chars: int) -> None:
        """A slice of `chars` characters took `seconds` to take in and lay out. The cost per
        character is that of the last few slices, weighed by their size (a single slice is
        lumpy: a code chunk or a paragraph is drawn when it is finished, in the slice that
        finishes it)."""
        if chars <= 0:
            return
        old_seconds, old_chars = self._slice_cost
        self._slice_cost = (old_seconds / 2 + seconds, old_chars / 2 + chars)

    def _lay_out_quietly(self, width: int, with_tail: bool = True) -> None:
        self._quiet = True
        try:
            self._lay_out(width, with_tail)
        finally:
            self._quiet = False

    def _show(self, before: Optional[int] = None) -> None:
        """Lay out what was taken in and ask the screen to paint it at its next tick: the tail
        only (lines above it stay in Textual's line cache), and a layout only when the height
        changed (a layout of the whole screen costs several ms a frame)."""
        self._following, self._view_rows, self._overflow_at = self._view_state()
        self._painted_at = time.perf_counter()
        self.shown_chars = self._taken
        width = self.size.width
        if not width or width != self._width:
            self.refresh(layout=True)  # not laid out at this width yet: layout will do it all
            return
        if before is None:
            before = self._painted_height
        self._lay_out(width)  # marks the lines that changed for repainting
        self._painted_height = self.height_shown
        if self.height_shown != before:
            self.refresh(layout=True, repaint=False)

    def _view_state(self) -> Tuple[bool, int, Optional[int]]:
        """Whether the scrolling container around the answer is at its end (following it),
        the rows it shows, and while the container is not full yet, the answer's height at
        which it will be (None when it is)."""
        for node in self.ancestors:
            if isinstance(node, Widget) and node.styles.overflow_y in ("auto", "scroll"):
                # (Not `is_vertical_scroll_end`: an anchored container with less than a view of
                # content is left at a negative offset.)
                end = node.max_scroll_y
                rows = node.scrollable_content_region.height
                overflow_at = self.size.height + rows - _content_height(node) if end == 0 else None
                return end == 0 or node.scroll_offset.y >= end, rows, overflow_at
        return False, 0, None

    def _outgrowing(self) -> bool:
        """The answer has grown past what its container shows: the screen is to lay it out
        before more is taken in, as a scrollbar may come and narrow the answer (every line
        drawn so far is drawn again at the new width: a backlog's frames drew 0.2 s of text
        before the first layout, the first 10-13 parts of a long code block drawn twice)."""
        if self._overflow_at is None or self.line_count <= self._overflow_at:
            return False
        self._overflow_at = self._view_state()[2]  # as the screen last laid it out
        return self._overflow_at is not None and self.line_count > self._overflow_at

    def _normalised(self, text: str) -> str:
        """Line ends as the parser counts them (CR LF and lone CR are LF); a CR at the end of
        a fragment waits for the next one, which may start with LF."""
        if self._held_cr:
            text = "\r" + text
            self._held_cr = False
        if "\r" in text:
            if text.endswith("\r"):
                self._held_cr = True
                text = text[:-1]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _take_in(self, force: bool = False, limit: Optional[int] = None) -> int:
        """Lay queued text into the document: the first `limit` characters, or all of it.
        Returns how many characters; 0 when it is too early (a frame is then requested for
        when it is due)."""
        if not self._pending:
            return 0
        now = self._clock()
        if not force and now < self._next_frame:
            self._request_frame()
            return 0
        text = self._pending.take(limit)
        self._taken += len(text)
        document = self.document
        document.feed(self._normalised(text))
        document.update()
        document.tail_number_width()
        self._tail_stale = True
        # What a frame costs: taking the text in, and painting it (the screen's average, when
        # it keeps one: screen.py).
        cost = self._clock() - now + self._paint_cost()
        self.frames += 1
        self._next_frame = now + min(MAX_FRAME_GAP, max(self._min_frame, BUSY_SHARE * cost))
        return len(text)

    def _paint_cost(self) -> float:
        try:
            return float(getattr(self.screen, "paint_cost", 0.0))
        except NoScreen:
            return 0.0

    # --- layout and painting ---

    def _style_fingerprint(self) -> Any:
        """What the drawn lines depend on besides the width. Worked out again only after
        Textual said our styles changed (a theme, a class on an ancestor): it walks the
        ancestors, and layout asks for our height twice a frame.

        Of the pseudo-classes, not those of the widget's place among its siblings (no style of
        ours depends on them): the figures line shown under an answer made it lose `:last-child`
        in the middle of streaming, and every line was let go and drawn again (a 2,000-line code
        block highlighted twice more when that came after its end)."""
        if self._fingerprint is None:
            app = self.app
            pseudo = self.pseudo_classes - _PLACE_CLASSES
            self._fingerprint = (app.theme, app.ansi_color, self.background_colors, self.styles.color, pseudo)
        return self._fingerprint

    def notify_style_update(self) -> None:
        self._fingerprint = None
        super().notify_style_update()
        self.refresh()  # painting checks the fingerprint and draws again in the new style

    def _lay_out(self, width: int, with_tail: bool = True) -> None:
        """Bring the layout up to date for `width`: every frozen unit's height is known (it is
        drawn once per width and style), its lines are kept only while they are in the shared
        cache of drawn lines; the live tail is drawn again when it changed. Lines that may have
        changed are marked for repainting; the others stay in Textual's line cache.

        With `with_tail` False (quietly, between the slices of one frame) only the new frozen units
        are drawn: the tail is drawn once, at the frame's end, not once per slice."""
        key = self._style_fingerprint()
        document = self.document
        dirty_from: Optional[int] = None
        held: Optional[Tuple[int, float]] = None
        if width != self._width and self._starts:
            # Where the view is, first: it comes from the screen's map of regions, which Textual
            # arranges again when it is stale (as after any scroll). Asked from inside a layout,
            # that arranges the screen again, and lays this widget out at this width (the view
            # held there): then there is nothing left to do here (it was all drawn twice).
            held = self._view_held()
            if width == self._width and key == self._style_key:
                held = None
        if width != self._width or key != self._style_key or self._painter is None:
            app = self.app
            self._painter = Painter(self, dark=app.current_theme.dark, ansi=app.native_ansi_color)
            self._let_go_of_lines()
            self._token = object()  # lines drawn for an earlier width or style are never read
            self._interned = {}
            if width != self._width:
                # Every height may change: lay every unit out again (those away from the view
                # and the end only estimated).
                self._starts, self._gaps, self._heights, self._bottoms = [], [], [], []
                self._tops, self._exact, self._estimated = [], bytearray(), 0
                document.take_changes()
                first = 0
            else:
                # Only colours changed (a theme): heights stay, lines are drawn again when shown.
                first = document.take_changes()
            self._width = width
            self._style_key = key
            self._tail_stale = True
            dirty_from = 0
        else:
            first = document.take_changes()
        units = document.units
        if first < len(self._starts):
            dirty_from = self._starts[first]
            self._estimated -= self._exact[first:].count(0)
            del self._starts[first:], self._gaps[first:], self._heights[first:], self._bottoms[first:]
            del self._tops[first:], self._exact[first:]
            self._tail_stale = True
        if len(self._starts) < len(units):
            self._lay_out_units(len(self._starts), drawn_later=not with_tail)
            self._tail_stale = True
        dirty_from = self._redraw(document.take_redraws(), first, dirty_from)
        if held is not None and held[0] < len(self._starts):
            # A new width: the line the view showed at its top stays there (as near as a new
            # wrapping allows).
            index, part = held
            y = self._starts[index] + self._gaps[index] + round(part * self._heights[index])
            if y != self._view_top:
                self.call_later(self._laid_out_again, y - self._view_top)
                self._view_top = y
        if not with_tail:
            assert self._quiet, "a layout without its tail is never painted"
            self._owe_paint()
            # The old tail's lines become frozen lines (and replaced units' lines change).
            self._forget_strips(self._tail_start if dirty_from is None else min(dirty_from, self._tail_start))
            return
        dirty_end: Optional[int] = None
        if self._tail_stale:
            boxes = [] if document.finished else document.tail_boxes(width, self._painter)
            old_lines, old_start = self._tail_lines, self._tail_start
            if boxes:
                # No margin under the last block, and while it grows no empty rows at its end
                # (a code block's bottom padding): the newest line is the answer's last row.
                boxes[-1] = replace(boxes[-1], bottom=0)
                margin = [Box([], 0, self._bottoms[-1])] if self._bottoms else []
                tail = stack(margin + boxes, width, self._painter, ())
                while tail and not tail[-1].text.strip():
                    tail.pop()
                self._tail_lines = tail
            else:
                self._tail_lines = []
            self._tail_stale = False
            if dirty_from is None and self._frozen_height() == old_start:
                # Only the tail changed, where it was: repaint the lines that differ (text
                # appended to a paragraph usually changes its last line or two).
                changed = _changed_lines(old_lines, self._tail_lines)
                if changed is not None:
                    dirty_from, dirty_end = old_start + changed[0], old_start + changed[1]
            else:
                dirty_from = self._tail_start if dirty_from is None else min(dirty_from, self._tail_start)
        self._tail_start = self._frozen_height()
        if dirty_from is not None:
            self._forget_strips(dirty_from)
        self._reserve_room()
        if self._quiet:
            self._owe_paint()
        elif self._owed_paint:
            self._owed_paint = False
            self._painted_above = self._above
            self.refresh()  # laid out quietly (the text may have moved, lines changed): all of it
        elif self._above != self._painted_above:
            # The text moved within the room: the rows on screen all change, but not the lines.
            end = self.line_count if dirty_end is None else dirty_end
            changed = None if dirty_from is None else (dirty_from, max(end, dirty_from + 1))
            self._moved(self._painted_above - self._above, changed)
            self._painted_above = self._above
        elif dirty_from is not None:
            # Only these lines may differ: the others stay in Textual's line cache.
            end = self.line_count if dirty_end is None else dirty_end
            self.refresh(Region(0, dirty_from + self._above, width, max(1, end - dirty_from)))

    def _owe_paint(self) -> None:
        """Laid out without a paint (a backlog's frame): the next paint of the widget paints all
        of it. A part of it already waiting to be painted (lines a frame before marked changed)
        becomes all of it: painted alone, with the rows around it from before, the text could
        show a row too high or low there (the room above it changed in between)."""
        if not self._owed_paint and repaint_waiting(self):
            self.refresh()
        self._owed_paint = True

    def _moved(self, rows: int, changed: Optional[Tuple[int, int]]) -> None:
        """The text moved `rows` rows up (down when negative) within the widget, and text lines
        `changed` (start, end) differ: repaint every row, but draw again only the changed lines
        (or, where the terminal moves the rows itself, paint only the rows that move exposes and
        the changed lines: compat.PacedScreen.scroll_rows).
        Textual keeps the lines it painted in a cache by row (`_styles_cache`), which a plain
        `refresh()` empties: every row of the widget on screen would be drawn and styled again
        each time a line is added (the text moves up a row then). The cached rows are moved
        with the text instead; a row's line is the same, with the same selection offsets (they
        count text lines, not rows)."""
        rows_painted = painted_rows(self)
        gutter = self.styles.gutter
        if rows_painted is None or gutter.top or gutter.bottom:
            self.refresh()  # not the cache this was written for (Textual 8): paint all of it
            return
        lines, dirty = rows_painted
        kept = {y - rows: strip for y, strip in lines.items() if y - rows >= 0}
        stale = {y - rows for y in dirty if y - rows >= 0}
        few = True
        if changed is not None:
            start, end = changed[0] + self._above, changed[1] + self._above
            few = end - start <= len(kept)
            if not few:  # (a huge answer's end: not a set of 500,000 row numbers, ~30 MB)
                kept = {y: strip for y, strip in kept.items() if not start <= y < end}  # drawn again all the same
            else:
                stale.update(range(start, end))
        scroll = getattr(self.screen, "scroll_rows", None)
        shown = scroll(self, rows) if few and scroll is not None else None
        if shown is None:
            self.refresh()  # every row on screen (this empties the cache: refill it)
        else:
            # The terminal moves the rows (compat.PacedScreen.scroll_rows): paint those that
            # changed, and the rows the move exposed.
            top, bottom = shown
            exposed = range(bottom - rows, bottom) if rows > 0 else range(top, top - rows)
            self._refresh_rows(top, bottom, stale.union(exposed))
        lines.clear()
        lines.update(kept)
        dirty.clear()
        dirty.update(stale)

    def _refresh_rows(self, top: int, bottom: int, wanted: Set[int]) -> None:
        """Mark the rows in `wanted` from `top` to `bottom` (excluded; the widget's own rows, as
        Textual counts them) to be painted, each run of them as one region."""
        if len(wanted) < bottom - top:
            marked = sorted(y for y in wanted if top <= y < bottom)
        else:
            marked = [y for y in range(top, bottom) if y in wanted]
        left, width = self.styles.gutter.left, self.outer_size.width
        regions: List[Region] = []
        for y in marked:
            if regions and regions[-1].bottom == y:
                regions[-1] = regions[-1].grow((0, 0, 1, 0))
            else:
                regions.append(Region(-left, y, width, 1))
        if regions:
            self.refresh(*regions)

    def rows_kept_on_resize(self) -> bool:
        """A new height (a line added, the room grown) at the same width: the rows not marked
        as changed are the same, unless a paint is owed (then all of them are drawn again)."""
        return not self._owed_paint

    # --- laying out long answers lazily ---
    #
    # Units near the end (where a conversation opens, and where a streamed answer grows) and
    # near the last view are drawn when laid out; the others only have estimated heights
    # (`_exact` 0) until they come near the view: painting (`render_lines`) draws them then
    # and corrects the layout, moving the view with the lines it showed.

    def _lay_out_units(self, first: int, drawn_later: bool = False) -> None:
        """Lay out units `first` on (those before are laid out).

        `drawn_later` (a backlog's quiet slice): the chunks of a growing code block are not
        drawn, unless the view shows them; their heights are estimated from their lines (exact
        unless a line wraps), and painting draws those that come into view (render_lines). A
        fast code block had every chunk drawn as it came, most never seen (a paint comes every
        BACKLOG_PAINT) and all of them drawn again whole when the block closes."""
        units = self.document.units
        end = len(units)
        width = self._width
        guesses = [units[index].estimate(width) for index in range(first, end)]
        exact: Set[int] = set()
        if sum(units[index].cost for index in range(first, end)) < lazy_layout.LAZY_CHARS:
            exact.update(range(first, end))  # little to draw: all of it, at once
        rows, index = EXACT_PAGES * self._page_rows(), end - 1
        while index >= first and rows > 0:
            exact.add(index)
            rows -= guesses[index - first][1] + 1
            index -= 1
        lo, hi = self._view_units
        if drawn_later:
            exact = {index for index in exact if units[index].kind != "code"}
        exact.update(range(max(first, lo), min(end, hi)))
        starts, gaps, heights, bottoms, tops = self._starts, self._gaps, self._heights, self._bottoms, self._tops
        for index in range(first, end):
            if index in exact:
                top, lines, bottom = self._draw(index)
                height = len(lines)
            else:
                top, height, bottom = guesses[index - first]
                self._estimated += 1
            gap = max(bottoms[-1], top) if bottoms else top
            starts.append(starts[-1] + gaps[-1] + heights[-1] if starts else 0)
            gaps.append(gap)
            heights.append(height)
            bottoms.append(bottom)
            tops.append(top)
            self._exact.append(index in exact)

    def _view_line(self) -> int:
        """The line at the top of the view, as the last layout placed it (0 when the view
        begins above this widget, or there is no view)."""
        scroller = self._scroller()
        if scroller is None:
            return 0
        mine, view = self.content_region, scroller.scrollable_content_region
        return max(0, view.y - mine.y - self._above) if mine.bottom > view.y else 0

    def _view_held(self) -> Optional[Tuple[int, float]]:
        """The unit at the top of the view, as the last layout placed it, when the view began
        inside this widget, and how far into it."""
        top = self._view_line()
        if top <= 0 or not self._starts or top >= self._frozen_height():
            return None
        self._view_top = top
        index = self._unit_at(top)
        return index, max(0, top - self._starts[index] - self._gaps[index]) / max(1, self._heights[index])

    def _page_rows(self) -> int:
        try:
            return max(MIN_PAGE, self.app.size.height)
        except Exception:
            return MIN_PAGE

    def _unit_at(self, y: int) -> int:
        return max(0, bisect_right(self._starts, y) - 1)

    def _hold(self, anchor: int) -> Tuple[int, int]:
        """What keeps line `anchor` where it is while estimated units are drawn: (unit, offset
        from its first line), or (-1, offset from the end), or (-2, 0): nothing moves it (it
        is the first line). A unit of estimated height under it holds the lines after it."""
        if anchor <= 0 or not self._starts:
            return -2, 0
        starts, gaps = self._starts, self._gaps
        held = self._unit_at(anchor)
        if self._exact[held] or anchor <= starts[held] + gaps[held]:
            return held, anchor - starts[held]
        if held + 1 < len(starts):
            return held + 1, anchor - starts[held + 1]
        return -1, anchor - self._frozen_height()

    def _correct(self, indices: Iterable[int], anchors: Sequence[int] = ()) -> List[int]:
        """Draw units `indices` that have estimated heights, and lay out again what follows
        them. Returns how far each line of `anchors` moved (see `_hold`)."""
        todo = sorted(index for index in set(indices) if 0 <= index < len(self._exact) and not self._exact[index])
        if not todo:
            return [0 for _ in anchors]
        holds = [self._hold(anchor) for anchor in anchors]
        starts, gaps, heights, bottoms, tops = self._starts, self._gaps, self._heights, self._bottoms, self._tops
        for index in todo:
            top, lines, bottom = self._draw(index)
            heights[index], tops[index], bottoms[index] = len(lines), top, bottom
            self._exact[index] = 1
            self._estimated -= 1
        first = todo[0]
        self._forget_strips(starts[first])
        for index in range(first, len(starts)):
            if index:
                gaps[index] = max(bottoms[index - 1], tops[index])
                starts[index] = starts[index - 1] + gaps[index - 1] + heights[index - 1]
            else:
                gaps[index] = tops[index]
        self._tail_start = self._frozen_height()
        moved = []
        for anchor, (held, offset) in zip(anchors, holds):
            if held == -2:
                moved.append(0)
            else:
                moved.append((self._frozen_height() if held < 0 else starts[held]) + offset - anchor)
        return moved

    def _redraw(self, indices: List[int], first: int, dirty_from: Optional[int]) -> Optional[int]:
        """Draw units `indices` again (a definition they use came: see
        `StreamingDocument.take_redraws`), those before `first` (the later ones were just laid
        out); the units after them only move if a height changed, and the view with what it
        showed. Returns the first line that may differ (or `dirty_from`)."""
        todo = [index for index in indices if index < min(first, len(self._exact)) and self._exact[index]]
        if not todo:
            return dirty_from  # (units of estimated height are drawn, from their source, when shown)
        for index in todo:
            self._exact[index] = 0
            self._estimated += 1
        [shift] = self._correct(todo, [self._view_line()])
        if shift:
            self.call_later(self._laid_out_again, shift)
        self._tail_stale = True
        line = self._starts[todo[0]]
        return line if dirty_from is None else min(line, dirty_from)

    @property
    def drawn_roughly(self) -> bool:
        return bool(self._rough)

    def draw_again(self) -> None:
        """Draw again, now, the units drawn roughly for a first frame (markdown_render's
        `draw_roughly`: bare addresses as text, code plain), with their links and colours. What
        follows them moves if a height changed (a link is kept on one row), the view with
        what it showed."""
        rough = [index for index in sorted(self._rough) if index < len(self._exact)]
        self._rough.clear()
        line = self._redraw(rough, len(self._exact), None)
        if line is not None:
            self.refresh(layout=True)

    def _exact_around(self, first: int, end: int) -> int:
        """Make every unit that lines `first` .. `end` - 1 show (and a page around them) exact.
        Returns how far those lines moved (see `_correct`)."""
        shift = 0
        page = max(end - first, 1)
        for _ in range(8):  # (each round only moves the range by what it corrected)
            lo = self._unit_at(max(0, first + shift - page))
            hi = self._unit_at(end + shift + page) + 1
            todo = [index for index in range(lo, min(hi, len(self._exact))) if not self._exact[index]]
            if not todo:
                break
            shift += self._correct(todo, [first + shift])[0]
        self._view_top = first + shift
        self._view_units = (self._unit_at(max(0, first + shift)), self._unit_at(end + shift) + 1)
        return shift

    def render_lines(self, crop: Region) -> List[Strip]:
        """Before any row is painted, the layout is brought up to date (a new width, or the
        tail owed since a backlog's quiet frames): done at the first row, the rows painted
        from Textual's row cache for the others would be from before, a row off when the text
        moved in the room. Rows painted before a quiet layout are all drawn again.

        Then the units of a long answer these rows show (and a page around them) that only
        have estimated heights are drawn, and the layout corrected: the rows are painted where
        they will be after the layout that follows (`_laid_out_again`), the view moved with them."""
        width = self.size.width
        if width != self._width or self._fingerprint is None:
            self._lay_out(width)
        elif self._tail_stale and self._owed_paint:
            self._lay_out_quietly(width)
            forget_painted_lines(self)
        if self._estimated and self._painter is not None and self._width == width:
            top = self.styles.gutter.top + self._above
            estimated = self._estimated
            shift = self._exact_around(crop.y - top, crop.bottom - top)
            if self._estimated != estimated:
                self.call_later(self._laid_out_again, shift)
                forget_painted_lines(self)
                # What the view keeps showing is painted where it will be after that layout.
                crop = crop.translate((0, shift))
        elif self._starts:
            top = self.styles.gutter.top + self._above
            self._view_top = crop.y - top
            self._view_units = (self._unit_at(crop.y - top), self._unit_at(crop.bottom - top) + 1)
        return super().render_lines(crop)

    def _laid_out_again(self, shift: int) -> None:
        """Units were drawn and their heights corrected while painting: lay the screen out
        again, the view moved by `shift` lines so that what it showed stays where it was."""
        node = self._scroller() if shift else None
        if node is not None:
            # As Textual's compositor moves an anchored view: no watcher, no repaint of its own.
            y = max(0.0, node.scroll_y + shift)
            node.set_reactive(Widget.scroll_y, y)
            node.set_reactive(Widget.scroll_target_y, y)
            node.vertical_scrollbar.position = y
        self.refresh(layout=True)

    def _scroller(self) -> Optional[Widget]:
        """The scrolling container the answer is in."""
        for node in self.ancestors:
            if isinstance(node, Widget) and node.styles.overflow_y in ("auto", "scroll"):
                return node
        return None

    def on_unmount(self) -> None:
        self._let_go_of_lines()  # removed (scrolled far away, a new conversation): never painted again
        self._strips.clear()

    def _forget_strips(self, first: int) -> None:
        """Lines from `first` on may have changed: their finished strips go."""
        strips = self._strips
        if strips and first <= max(strips):
            for y in [y for y in strips if y >= first]:
                del strips[y]

    def _let_go_of_lines(self) -> None:
        if self._token is not None:
            DRAWN.discard(self._token, len(self.document.units))

    def _frozen_height(self) -> int:
        return self._starts[-1] + self._gaps[-1] + self._heights[-1] if self._starts else 0

    def _draw(self, index: int, keep: bool = True) -> Tuple[int, List[List[Segment]], int]:
        """Draw frozen unit `index` (its top margin, lines, bottom margin) and remember the
        lines in the shared cache."""
        assert self._painter is not None
        rough = rough_draws()
        box = self.document.units[index].render(self._width, self._painter)
        if rough_draws() != rough:
            self._rough.add(index)
        styles = self._interned
        # One style object per distinct style: drawing makes a new one per segment, and an
        # answer has few distinct styles.
        lines = [[Segment(text, styles.setdefault(style, style), control) for text, style, control in line] for line in box.lines]
        if keep:
            DRAWN.put((self._token, index), lines)
        return box.top, lines, box.bottom

    def _unit_lines(self, index: int, keep: bool = True) -> List[List[Segment]]:
        lines = DRAWN.get((self._token, index))
        if lines is None:
            lines = self._draw(index, keep)[1]
        return lines

    def _frozen_line(self, y: int, keep: bool = True) -> List[Segment]:
        index = bisect_right(self._starts, y) - 1
        if not self._exact[index]:
            # Not drawn yet, and not seen by render_lines (which draws what it paints first).
            [shift] = self._correct([index], [self._view_line()])
            self.call_later(self._laid_out_again, shift)
        offset = y - self._starts[index] - self._gaps[index]
        if offset < 0:
            return self._blank_line()
        lines = self._unit_lines(index, keep)
        return lines[offset] if offset < len(lines) else self._blank_line()

    def _blank_line(self) -> List[Segment]:
        assert self._painter is not None
        return list(self._painter.blank(self._width, ()))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._lay_out(width)
        return self.height_shown

    @property
    def height_shown(self) -> int:
        """The height the widget takes: its lines, and while the answer grows, the room
        reserved for it (`_reserve_room`) above them. A new line then usually lands in room
        already there (the text moves up a row: the rows are painted again from Textual's
        cache, see `_moved`) instead of changing the height, which costs a layout of the whole
        screen as well (~10 ms)."""
        lines = self.line_count
        if self.document.finished or not lines:
            return lines
        return lines + self._above

    def _reserve_room(self) -> None:
        """Keep room for the answer to grow into, above its text, only while the view follows
        the answer and the text fills the view (so the room is out of sight above it).

        The room grows when the lines outgrow it, by a step: GROW_STEP lines, or more when
        lines arrive fast enough that steps of GROW_STEP would grow it more often than every
        GROW_EVERY seconds. When the view does not follow (the reader scrolled up), the room
        left stays where it is and the text does not move: the height grows with the lines."""
        lines = self.line_count
        if self.document.finished or not lines:
            self._above = 0
            self._reserved = lines
            return
        if self._following and lines >= self._view_rows > 0:
            if lines > self._reserved:
                now = self._clock()
                step = self._grow_step
                if self._grown is not None:
                    then, lines_then = self._grown
                    rate = (lines - lines_then) / max(now - then, 1e-3)
                    step = max(step, min(MAX_GROW_STEP, math.ceil(rate * GROW_EVERY)))
                self._reserved = lines + step - 1  # room for `step` new lines from the last one
                self._grown = (now, lines)
            self._above = self._reserved - lines
            return
        if self._following:
            self._above = 0  # all of the answer is in view: keep no room
        self._reserved = lines + self._above

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._width or self._fingerprint is None:
            self._lay_out(width)
        elif self._tail_stale and self._owed_paint:
            self._lay_out_quietly(width)  # painted between a backlog's frames: the tail as it is now
        y -= self._above  # the room kept for growing, above the text
        strip = self._strips.get(y)
        if strip is None:
            frozen = self._frozen_height()
            if y < 0 or y >= self.line_count:
                return Strip.blank(width, self.rich_style)
            if y < frozen:
                strip = _offsets(Strip(self._frozen_line(y), width), y)
            else:
                strip = _offsets(self._tail_lines[y - frozen], y)
            if len(self._strips) >= STRIPS:
                self._strips.clear()
            self._strips[y] = strip
        selection = self.text_selection
        if selection is not None:
            span = selection.get_span(y)
            if span is not None:
                strip = self._highlight(strip, *span)
        return strip

    def _highlight(self, strip: Strip, start: int, end: int) -> Strip:
        from rich.cells import cell_len

        text = strip.text
        end = len(text) if end == -1 else min(end, len(text))
        if start >= end:
            return strip
        left, right = cell_len(text[:start]), cell_len(text[:end])
        style = self.screen.get_component_rich_style("screen--selection")
        before, middle, after = strip.divide([left, right, strip.cell_length])[:3]
        middle = Strip(Segment.apply_style(middle, post_style=style), middle.cell_length)
        return Strip.join([before, middle, after])

    def get_selection(self, selection: Any) -> Optional[Tuple[str, str]]:
        """The selected part of the answer as it is shown (bullets, numbers and code indent
        included, the padding at line ends left out). In an answer of megabytes, the units
        wholly inside the selection that were never drawn give their source instead, beyond
        SELECTION_DRAW_CHARS of them (drawing them all would hold the app for a minute)."""
        from textual.geometry import Offset
        from textual.selection import Selection

        first = 0 if selection.start is None else selection.start.y
        last = self.line_count - 1 if selection.end is None else selection.end.y
        as_source = False
        if self._estimated and self._starts:
            # Draw the units it spans that only have estimated heights: its end moves with them.
            spanned = range(self._unit_at(first), self._unit_at(last) + 1)
            units, exact = self.document.units, self._exact
            undrawn = sum(units[index].chars for index in spanned if index < len(exact) and not exact[index])
            as_source = undrawn > SELECTION_DRAW_CHARS
            estimated = self._estimated
            moved, shift = self._correct([spanned[0], spanned[-1]] if as_source else spanned, [last, self._view_line()])
            if self._estimated != estimated:
                self.call_later(self._laid_out_again, shift)
            last = self.line_count - 1 if selection.end is None else last + moved
        lines = self._selected_lines(first, last, as_source)
        start = None if selection.start is None else Offset(selection.start.x, 0)
        end = None if selection.end is None else Offset(selection.end.x, len(lines) - 1)
        chosen = Selection(start, end).extract("\n".join(lines))
        return "\n".join(line.rstrip() for line in chosen.split("\n")).rstrip("\n"), "\n"

    def _selected_lines(self, first: int, last: int, as_source: bool) -> List[str]:
        """The text of lines `first` to `last` as laid out now, each unit drawn at most once
        (not once per line); `as_source`: units between the first and the last that were never
        drawn give the lines of their source."""
        out: List[str] = []
        frozen = self._frozen_height()
        starts, gaps = self._starts, self._gaps
        if first < frozen and starts:
            lo, hi = self._unit_at(first), self._unit_at(min(last, frozen - 1))
            for index in range(lo, hi + 1):
                if as_source and lo < index < hi and not self._exact[index]:
                    out.extend(_unit_source(self.document.units[index]).split("\n"))
                    continue
                top = starts[index] + gaps[index]
                end = starts[index + 1] if index + 1 < len(starts) else frozen
                drawn: Optional[List[List[Segment]]] = None
                for y in range(max(first, starts[index]), min(last + 1, end)):
                    if y < top:
                        out.append("")  # (the margin above it)
                        continue
                    if drawn is None:
                        drawn = self._unit_lines(index, keep=False)
                    out.append("".join(segment.text for segment in drawn[y - top]) if y - top < len(drawn) else "")
        tail = self._tail_lines
        out.extend(tail[y - frozen].text for y in range(max(first, frozen), last + 1) if y - frozen < len(tail))
        return out

    def selection_updated(self, selection: Any) -> None:
        self.refresh()

    @property
    def line_count(self) -> int:
        return self._frozen_height() + len(self._tail_lines)

    def line_text(self, y: int) -> str:
        """The text of line `y` as laid out now."""
        frozen = self._frozen_height()
        if y < frozen:
            return "".join(segment.text for segment in self._frozen_line(y, keep=False))
        return self._tail_lines[y - frozen].text

    def rendered_lines(self) -> List[Strip]:
        """Every line as laid out now, every unit drawn (tests compare them)."""
        self._correct(range(len(self._exact)))
        frozen = self._frozen_height()
        lines = [Strip(self._frozen_line(y, keep=False), self._width) for y in range(frozen)]
        return lines + self._tail_lines

    async def action_link(self, href: str) -> None:
        self.app.open_url(href)
