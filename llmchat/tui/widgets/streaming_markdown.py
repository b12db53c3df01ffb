"""A Markdown widget for answers that arrive a few characters at a time.

Why not Textual's `Markdown` + `MarkdownStream`: every append re-parses the last top-level
block (a long list or code block is one block, so the cost per token grows with its length),
and every block is several mounted widgets, which the screen's layout walks on every frame.
Here the whole answer is ONE widget that paints lines (the Line API), and:

- text is queued by `append()` and taken in at frame rate, when the screen next lays out, not
  per token; when taking it in is slow, frames are spaced out so it stays a bounded share of
  the time;
- the source is split into finished top-level blocks and a growing tail (a block is finished
  once a later block has begun on a complete line); finished blocks are rendered once and
  frozen as lines; only the tail is parsed and rendered again;
- a growing list freezes its finished items, a growing fenced code block its complete lines in
  chunks, so neither is re-parsed whole per frame;
- `finish()` freezes the rest. What it shows then is exactly what rendering the whole source at
  once shows (a code block that was frozen in chunks is highlighted again as a whole, so a
  string or comment spanning two chunks gets its final colours).

Rendering is `markdown_render`: Textual's Markdown layout and theme styles, painted to strips.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from llmchat.tui.widgets.markdown_render import (
    Box,
    Context,
    Node,
    Painter,
    code_lines,
    fence_style_path,
    highlight_code,
    list_start,
    make_parser,
    ordered_number_width,
    render_block,
    render_list,
    stack,
)

# A growing code block keeps between CODE_CHUNK and 2 * CODE_CHUNK complete lines live;
# older lines are frozen CODE_CHUNK at a time.
CODE_CHUNK = 32
# Frames: at most this often, and far enough apart that taking text in uses at most
# 1 / BUSY_SHARE of the time (a slow frame pushes the next one back).
MIN_FRAME = 1 / 60
BUSY_SHARE = 4.0

_ROOT = Context()


# --- the document: frozen units and a growing tail ---------------------------------------------


@dataclass(eq=False)
class Unit:
    """A frozen piece of the answer, laid out on its own.

    kind "block": one top-level block. "items": a run of a list's items (`first_index` of the
    first; `final` when the run ends the list). "code": lines of a code block still growing
    (`first` for the chunk that opens the block).
    """

    kind: str
    node: Optional[Node] = None
    items: List[Node] = field(default_factory=list)
    ordered: bool = False
    start: int = 1
    first_index: int = 0
    number_width: Optional[int] = None
    final: bool = False
    code: str = ""
    language: str = ""
    first: bool = False

    def render(self, width: int, painter: Painter) -> Box:
        if self.kind == "block":
            assert self.node is not None
            return render_block(self.node, width, painter, _ROOT)
        if self.kind == "items":
            return render_list(
                self.items,
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
        if self.first:
            return Box([painter.blank(width, path), *body], 1, 0)
        return Box(body, 0, 0)


@dataclass
class _ListState:
    ordered: bool
    marker: str
    start: int
    count: int  # items frozen so far
    first_unit: int  # index of this list's first frozen unit


@dataclass
class _FenceState:
    opener: str  # the opening line, with its line end
    lexer: str  # its info string
    language: str  # what the chunks are highlighted as while the block grows
    lines: List[str]  # frozen code lines
    first_unit: int
    closing: "re.Pattern[str]"


def _line_offset(text: str, line: int) -> int:
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


class StreamingDocument:
    """The answer's source as frozen units plus a tail still growing. No Textual here: it
    decides what is final; `StreamingMarkdown` paints."""

    def __init__(self, parser: Any = None, code_chunk: int = CODE_CHUNK) -> None:
        self.parser = parser or make_parser()
        self.code_chunk = code_chunk
        self.units: List[Unit] = []
        self.changed_from = 0  # the first unit replaced or added since `take_changes()`
        self.tail = ""  # source not frozen yet; always starts at a line start
        self.finished = False
        self._list: Optional[_ListState] = None
        self._fence: Optional[_FenceState] = None
        self._checked = -1  # length of the tail's complete lines when last examined
        self._tail_nodes: Optional[List[Node]] = None

    # - input -

    def feed(self, text: str) -> None:
        if text:
            self.tail += text
            self._tail_nodes = None

    def take_changes(self) -> int:
        """Index of the first unit that is new or different since the last call."""
        first, self.changed_from = self.changed_from, len(self.units)
        return first

    def _parse(self, text: str) -> List[Node]:
        from llmchat.tui.widgets.markdown_render import build_nodes

        return build_nodes(self.parser.parse(text))

    def _freeze(self, unit: Unit) -> None:
        self.units.append(unit)

    def _replace_from(self, index: int, units: List[Unit]) -> None:
        del self.units[index:]
        self.units.extend(units)
        self.changed_from = min(self.changed_from, index)

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
            if self._fence is not None:
                if not self._update_fence(complete):
                    self._checked = self.tail.rfind("\n") + 1
                    return
                continue  # the block closed: look at what follows it
            nodes = self._parse(complete)
            if self._list is not None:
                if not self._update_list(complete, nodes):
                    self._checked = end
                    return
                continue
            if len(nodes) >= 2:
                cut_line = nodes[-1].lines[0]
                for node in nodes[:-1]:
                    self._freeze(Unit("block", node=node))
                self._cut(_line_offset(complete, cut_line))
                continue
            if nodes and self._enter_mode(complete, nodes[0]):
                continue
            self._checked = end
            return

    def _cut(self, offset: int) -> None:
        self.tail = self.tail[offset:]
        self._tail_nodes = None
        self._checked = -1

    def _enter_mode(self, complete: str, node: Node) -> bool:
        """The growing block is a list with finished items, or a long code block: freeze
        those items / lines and follow the block in its own mode. True if entered."""
        if node.kind in ("bullet_list", "ordered_list") and len(node.children) >= 2:
            items = node.children
            ordered = node.kind == "ordered_list"
            state = _ListState(ordered, items[0].markup, list_start(items), 0, len(self.units))
            self._list = state
            self._freeze_items(items[:-1], final=False)
            self._cut(_line_offset(complete, items[-1].lines[0]))
            return True
        if node.kind == "fence" and node.markup:
            code = node.raw.split("\n")[:-1]
            first = node.lines[0]
            closed = node.lines[1] - first >= len(code) + 2  # the closing line is in its range
            if closed or len(code) < 2 * self.code_chunk:
                return False
            start, opener_end = _line_offset(complete, first), _line_offset(complete, first + 1)
            marker = re.escape(node.markup[0]) + "{%d,}" % len(node.markup)
            closing = re.compile(r"^ {0,3}" + marker + r"[ \t]*$")
            language = node.lexer or _guess(node.raw)
            self._fence = _FenceState(complete[start:opener_end], node.lexer, language, [], len(self.units), closing)
            self._freeze_code(code[: self.code_chunk])
            # The tail goes on at the first live code line; the opening line is kept aside.
            self._cut(_line_offset(complete, first + 1 + self.code_chunk))
            return True
        return False

    def _freeze_items(self, items: List[Node], final: bool) -> None:
        state = self._list
        assert state is not None
        if items:
            width = ordered_number_width(state.start, state.count + len(items)) if state.ordered else None
            self._freeze(Unit("items", items=list(items), ordered=state.ordered, start=state.start, first_index=state.count, number_width=width, final=final))
            state.count += len(items)
            self._widen_numbers(state.count)
        elif final and len(self.units) > state.first_unit:
            last = self.units[-1]
            self._replace_from(len(self.units) - 1, [_replace(last, final=True)])

    def _widen_numbers(self, count: int) -> None:
        """Textual aligns an ordered list's numbers to the widest: when the list reaches 10,
        100, ... items, its frozen items are laid out again."""
        state = self._list
        if state is None or not state.ordered:
            return
        width = ordered_number_width(state.start, count)
        units = self.units[state.first_unit :]
        if any(unit.number_width != width for unit in units):
            self._replace_from(state.first_unit, [_replace(unit, number_width=width) for unit in units])

    def _update_list(self, complete: str, nodes: List[Node]) -> bool:
        """In list mode (the tail starts at the list's first unfrozen item). True if the tail
        was cut (something more was frozen)."""
        state = self._list
        assert state is not None
        first = nodes[0] if nodes else None
        same = (
            first is not None
            and first.kind == ("ordered_list" if state.ordered else "bullet_list")
            and first.children
            and first.children[0].markup == state.marker
        )
        if not same:  # cannot happen for parser-made items; end the list to stay safe
            self._freeze_items([], final=True)
            self._list = None
            return True
        assert first is not None
        items = first.children
        if len(nodes) >= 2:  # a block after the list began: the list is finished
            self._freeze_items(items, final=True)
            self._list = None
            self._cut(_line_offset(complete, nodes[1].lines[0]))
            return True
        if len(items) >= 2:
            self._freeze_items(items[:-1], final=False)
            self._cut(_line_offset(complete, items[-1].lines[0]))
            return True
        return False

    def _freeze_code(self, lines: List[str]) -> None:
        state = self._fence
        assert state is not None
        first = not state.lines
        state.lines.extend(lines)
        self._freeze(Unit("code", code="\n".join(lines), language=state.language, first=first))

    def _update_fence(self, complete: str) -> bool:
        """In code mode (the tail starts at a code line). True if the block closed."""
        state = self._fence
        assert state is not None
        lines = complete.split("\n")[:-1]
        for index, line in enumerate(lines):
            if state.closing.match(line):
                nodes = self._parse(state.opener + complete[: _line_offset(complete, index + 1)])
                self._close_fence(nodes[0] if nodes else None)
                self._cut(_line_offset(complete, index + 1))
                return True
        # Still open: freeze whole chunks, keeping at least one chunk live.
        code = self._tail_code(complete)
        while len(code) >= 2 * self.code_chunk:
            self._freeze_code(code[: self.code_chunk])
            code = code[self.code_chunk :]
            self._cut(_line_offset(self.tail, self.code_chunk))
        return False

    def _tail_code(self, complete: str) -> List[str]:
        nodes = self._parse(self._fence.opener + complete) if self._fence else []
        if not nodes or nodes[0].kind != "fence":
            return []
        return nodes[0].raw.split("\n")[:-1]

    def _close_fence(self, tail_node: Optional[Node]) -> None:
        """The code block is complete: lay it out again as one block, highlighted whole."""
        state = self._fence
        assert state is not None
        raw = "".join(line + "\n" for line in state.lines) + (tail_node.raw if tail_node else "")
        node = Node("fence", code=raw.rstrip(), raw=raw, lexer=state.lexer)
        self._replace_from(state.first_unit, [Unit("block", node=node)])
        self._fence = None

    # - the live tail -

    def tail_nodes(self) -> List[Node]:
        """The tail parsed (partial last line included); in code mode, the opening line is
        put back in front so the parser sees a code block."""
        if self._tail_nodes is None:
            prefix = self._fence.opener if self._fence is not None else ""
            self._tail_nodes = self._parse(prefix + self.tail) if (self.tail or prefix) else []
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
        elif self._list is not None and nodes and nodes[0].kind in ("bullet_list", "ordered_list"):
            state = self._list
            items = nodes[0].children
            number_width = ordered_number_width(state.start, state.count + len(items)) if state.ordered else None
            boxes.append(
                render_list(items, state.ordered, width, painter, _ROOT, number_width=number_width, first_index=state.count, start=state.start, final=True)
            )
            rest = nodes[1:]
        boxes.extend(render_block(node, width, painter, _ROOT) for node in rest)
        return boxes

    def tail_number_width(self) -> None:
        """Keep frozen ordered items as wide as the live ones (10th item arriving, say)."""
        if self._list is not None and self._list.ordered:
            nodes = self.tail_nodes()
            live = len(nodes[0].children) if nodes and nodes[0].kind == "ordered_list" else 0
            self._widen_numbers(self._list.count + live)

    # - the end -

    def finish(self) -> None:
        """Everything is final: freeze the tail as the whole source would be laid out."""
        if self.finished:
            return
        self.update()
        nodes = self.tail_nodes()
        if self._fence is not None:
            head = nodes[0] if nodes and nodes[0].kind == "fence" else None
            self._close_fence(head)
            nodes = nodes[1:] if head is not None else nodes
        elif self._list is not None:
            first = nodes[0] if nodes and nodes[0].kind in ("bullet_list", "ordered_list") else None
            self._freeze_items(first.children if first is not None else [], final=True)
            self._list = None
            nodes = nodes[1:] if first is not None else nodes
        for node in nodes:
            self._freeze(Unit("block", node=node))
        self.tail = ""
        self._tail_nodes = []
        self.finished = True


def _replace(unit: Unit, **changes: Any) -> Unit:
    from dataclasses import replace

    return replace(unit, **changes)


def _guess(code: str) -> str:
    from textual.highlight import guess_language

    return guess_language(code, None)


# --- the widget ------------------------------------------------------------------------------


class MarkdownFeed:
    """What the app's worker writes the answer into (the shape of Textual's MarkdownStream,
    without its per-write yield to the event loop: frames are the widget's business)."""

    def __init__(self, widget: "StreamingMarkdown") -> None:
        self.widget = widget

    async def write(self, text: str) -> None:
        self.widget.append(text)

    async def stop(self) -> None:
        self.widget.finish()


class StreamingMarkdown(Widget):
    """Markdown that can grow, painted line by line; looks like Textual's `Markdown`."""

    DEFAULT_CSS = """
    StreamingMarkdown {
        height: auto;
        padding: 0 2 0 2;
        color: $foreground;

        & > .markdown--h1 { color: $markdown-h1-color; background: $markdown-h1-background; text-style: $markdown-h1-text-style; }
        & > .markdown--h2 { color: $markdown-h2-color; background: $markdown-h2-background; text-style: $markdown-h2-text-style; }
        & > .markdown--h3 { color: $markdown-h3-color; background: $markdown-h3-background; text-style: $markdown-h3-text-style; }
        & > .markdown--h4 { color: $markdown-h4-color; background: $markdown-h4-background; text-style: $markdown-h4-text-style; }
        & > .markdown--h5 { color: $markdown-h5-color; background: $markdown-h5-background; text-style: $markdown-h5-text-style; }
        & > .markdown--h6 { color: $markdown-h6-color; background: $markdown-h6-background; text-style: $markdown-h6-text-style; }
        & > .markdown--hr { color: $secondary; }
        & > .markdown--fence { color: rgb(210,210,210); background: black 10%; }
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
        name: Optional[str] = None,
        id: Optional[str] = None,
        classes: Optional[str] = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.document = StreamingDocument(code_chunk=code_chunk)
        self._parts: List[str] = []
        self._pending: List[str] = []
        self._held_cr = False
        self._clock = clock
        self._min_frame = min_frame
        self._next_frame = 0.0
        self._wake_timer: Any = None
        # The layout at one width and style: frozen units' lines, then the live tail's.
        self._width = -1
        self._style_key: Any = None
        self._painter: Optional[Painter] = None
        self._lines: List[Strip] = []
        self._starts: List[int] = []  # per laid-out unit: its first line (the gap above it included)
        self._bottoms: List[int] = []  # per laid-out unit: its bottom margin
        self._tail_lines: List[Strip] = []
        self._tail_stale = True
        self.frames = 0  # frames that took text in
        self.frame_cost = 0.0  # seconds the last of them took
        if markdown:
            self.append(markdown)
            self.finish()

    # --- input ---

    @property
    def source(self) -> str:
        """Everything appended so far (also what has not been laid out yet)."""
        return "".join(self._parts)

    @property
    def finished(self) -> bool:
        return self.document.finished

    def get_stream(self) -> MarkdownFeed:
        return MarkdownFeed(self)

    def append(self, text: str) -> None:
        """Queue text; it is laid out at the next frame."""
        if not text or self.document.finished:
            return
        self._parts.append(text)
        self._pending.append(text)
        if len(self._pending) == 1:
            self.refresh(layout=True)  # the screen lays out at its next tick and asks our height

    def finish(self) -> None:
        """No more text: freeze the rest (at once, so what is shown is final)."""
        if self.document.finished:
            return
        self._take_in(force=True)
        if self._held_cr:
            self._held_cr = False
            self.document.feed("\n")
        self.document.finish()
        self._tail_stale = True
        self.refresh(layout=True)

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

    def _take_in(self, force: bool = False) -> bool:
        """A frame: lay the queued text into the document. False when it is too early (a
        wake-up is then set for when it is due)."""
        if not self._pending:
            return False
        now = self._clock()
        if not force and now < self._next_frame:
            if self._wake_timer is None:
                self._wake_timer = self.set_timer(self._next_frame - now, self._wake)
            return False
        text = "".join(self._pending)
        self._pending.clear()
        document = self.document
        document.feed(self._normalised(text))
        document.update()
        document.tail_number_width()
        self._tail_stale = True
        cost = self._clock() - now
        self.frames += 1
        self.frame_cost = cost
        self._next_frame = now + max(self._min_frame, BUSY_SHARE * cost)
        return True

    def _wake(self) -> None:
        self._wake_timer = None
        if self._pending:
            self.refresh(layout=True)

    # --- layout and painting ---

    def _style_fingerprint(self) -> Any:
        app = self.app
        return (app.theme, app.ansi_color, self.background_colors, self.styles.color, self.pseudo_classes)

    def _lay_out(self, width: int) -> None:
        """Bring the lines up to date for `width` (frozen units are laid out once per width)."""
        key = self._style_fingerprint()
        document = self.document
        if width != self._width or key != self._style_key or self._painter is None:
            self._width = width
            self._style_key = key
            app = self.app
            self._painter = Painter(self, dark=app.current_theme.dark, ansi=app.native_ansi_color)
            self._lines, self._starts, self._bottoms = [], [], []
            document.take_changes()
            first = 0
            self._tail_stale = True
        else:
            first = document.take_changes()
        painter = self._painter
        units = document.units
        if first < len(self._starts):
            del self._lines[self._starts[first] :]
            del self._starts[first:]
            del self._bottoms[first:]
            self._tail_stale = True
        if len(self._starts) < len(units):
            lines = self._lines
            blank = painter.blank(width, ())
            for unit in units[len(self._starts) :]:
                box = unit.render(width, painter)
                gap = max(self._bottoms[-1], box.top) if self._bottoms else box.top
                self._starts.append(len(lines))
                lines.extend([blank] * gap)
                lines.extend(box.lines)
                self._bottoms.append(box.bottom)
            self._tail_stale = True
        if self._tail_stale:
            boxes = [] if document.finished else document.tail_boxes(width, painter)
            above = [Box([], 0, self._bottoms[-1])] if self._bottoms else []
            self._tail_lines = stack(above + boxes, width, painter, ())
            self._tail_stale = False

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._take_in()
        self._lay_out(width)
        return len(self._lines) + len(self._tail_lines)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._width:
            self._lay_out(width)
        lines = self._lines
        if y < len(lines):
            return lines[y]
        y -= len(lines)
        tail = self._tail_lines
        if y < len(tail):
            return tail[y]
        return Strip.blank(width, self.rich_style)

    @property
    def line_count(self) -> int:
        return len(self._lines) + len(self._tail_lines)

    def rendered_lines(self) -> List[Strip]:
        """Every line as laid out now (tests compare them)."""
        return self._lines + self._tail_lines

    async def action_link(self, href: str) -> None:
        self.app.open_url(href)
