"""Markdown laid out as terminal lines the way Textual's Markdown widget lays it out, without
mounting a widget per block.

Textual's `Markdown` mounts a widget for every paragraph, heading, list item (four widgets
each), table cell and code block; a long answer is thousands of widgets, and every layout pass
of the screen walks all of them (~70 us each here). This module renders the same blocks
straight to `Strip`s: the block tree comes from the same parser ("gfm-like" markdown-it), the
inline text from the same token-to-Content rules, code from the same highlighter, and the
spacing (margins that collapse between siblings, padding, borders, bullets, table keylines)
from the numbers in Textual's own default CSS. Colours and text styles come from component
classes of the widget that paints (see `StreamingMarkdown.DEFAULT_CSS`), which use the same
theme variables as Textual's Markdown widgets, so a theme change restyles both alike.

Where it deliberately differs from Textual's widget (issue 9: every answer shown whole and
true): a table's columns are as wide as their text (not stretched to the view), balanced by
content when too wide, their text wraps instead of ending in `…`, `:---`/`---:`/`:---:` align
them, and a table too wide for any readable grid is shown row by row; code wider than the view
wraps, with a continuation marker (Textual's code block crops unless scrolled sideways); a list
item's first block starts on its bullet's row (Textual kept a quote's or code block's top margin
there, leaving the bullet alone on a row). Also:
a table's header and cells get no tooltips; the `:ansi` variant of code blocks is not
mirrored. Tests compare the rest with Textual cell by cell (tests/tui/test_streaming_markdown.py);
they also guard the Textual internal used here (`Canvas` for keylines).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.content import Content, Span
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions

from llmchat.output import same_address
from llmchat.tui.compat import canvas_strips, style_getter

# Textual's Markdown: Unicode bullets for unordered lists, by nesting depth.
BULLETS = ["• ", "▪ ", "‣ ", "⭑ ", "◦ "]

_WHITESPACE = re.compile(r"\s+")


_PARSER: Optional[MarkdownIt] = None


def make_parser() -> MarkdownIt:
    """The parser Textual's Markdown widget uses by default ("gfm-like"), with footnotes and
    task lists (mdit-py-plugins, which Textual depends on), shared: `parse` keeps no state
    between calls, and each instance holds ~60 KB of compiled rules."""
    global _PARSER
    if _PARSER is None:
        from mdit_py_plugins.footnote import footnote_plugin
        from mdit_py_plugins.tasklists import tasklists_plugin

        _PARSER = MarkdownIt("gfm-like").use(footnote_plugin).use(tasklists_plugin)
    return _PARSER


# What linkify can make a link of (see `_bare_name`): an address with a scheme, a `www.` one, an
# e-mail address. Text with none of them is parsed without linkify: it would find nothing shown
# as a link, and its first use compiles linkify-it's expressions (big Unicode classes: 30-40 ms,
# in the first frame of a conversation opened).
_LINK_HINT = re.compile(r"://|www\.|@", re.IGNORECASE)


# --- a first frame drawn roughly --------------------------------------------------------------
#
# Opening a conversation draws the answers in view before the app's first frame. Drawn the first
# time in a process, two things cost more than everything else in that draw: linkify-it compiles
# its regular expressions (30-40 ms) at the first address it looks at, and Pygments compiles a
# lexer's (36 ms for Python) at its first code block; the other answers' drawing is ~20 ms. So
# the app draws the first frame roughly (`draw_roughly`): bare addresses are left as text, and
# code not highlighted before (in this process or kept on disk) is shown plain. Right after that
# frame (`draw_finely`) the answers that were drawn roughly are drawn again, with their links and
# colours (StreamingMarkdown.draw_again).

_rough = False
_rough_draws = 0  # things drawn roughly so far (a widget compares the count around a draw)
_lexers_ready: Set[str] = set()  # lexers that highlighted code in this process: compiled


def draw_roughly() -> None:
    """From now until `draw_finely`: no linkify, and no lexer compiled for a code block."""
    global _rough
    _rough = True


def draw_finely() -> None:
    global _rough
    _rough = False


def drawing_roughly() -> bool:
    return _rough


def rough_draws() -> int:
    """How many times something was drawn roughly: a parse without linkify, or code plain."""
    return _rough_draws


def _note_rough() -> None:
    global _rough_draws
    _rough_draws += 1


# --- the block tree ------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """A Markdown block: what Textual would mount as one MarkdownBlock widget."""

    kind: str  # h1..h6, hr, paragraph, blockquote, bullet_list, ordered_list, item, table,
    #            thead, tbody, tr, th, td, fence
    children: List["Node"] = field(default_factory=list)
    content: Optional[Content] = None  # inline text of paragraphs, headings and cells
    code: str = ""  # fence: the code as Textual shows it (trailing whitespace removed)
    raw: str = ""  # fence: the code exactly as parsed, one "\n" after every line
    lexer: str = ""  # fence: the info string
    markup: str = ""  # fence: its opening run of backticks or tildes; list item: its marker
    number: str = ""  # ordered list item: the number as written
    align: str = "left"  # table cell: from the delimiter row (`:---`, `---:`, `:---:`)
    lines: Tuple[int, int] = (0, 0)  # source line range (from the parser's map)


_OPENERS = {
    "footnote_block_open": "footnotes",
    "footnote_open": "footnote",
    "paragraph_open": "paragraph",
    "blockquote_open": "blockquote",
    "bullet_list_open": "bullet_list",
    "ordered_list_open": "ordered_list",
    "list_item_open": "item",
    "table_open": "table",
    "thead_open": "thead",
    "tbody_open": "tbody",
    "tr_open": "tr",
    "th_open": "th",
    "td_open": "td",
}


_ALIGNMENTS = {"text-align:left": "left", "text-align:right": "right", "text-align:center": "center"}


def build_nodes(tokens: Sequence[Token]) -> List[Node]:
    """The top-level blocks of a parsed document (mirrors `Markdown._parse_markdown`)."""
    out: List[Node] = []
    stack: List[Node] = []

    def place(node: Node) -> None:
        if stack:
            stack[-1].children.append(node)
        else:
            out.append(node)

    for token in tokens:
        kind = token.type
        lines = (token.map[0], token.map[1]) if token.map else (0, 0)
        if kind == "heading_open":
            stack.append(Node(token.tag, lines=lines))
        elif kind == "hr":
            place(Node("hr", lines=lines))
        elif kind in _OPENERS:
            node = Node(_OPENERS[kind], lines=lines)
            if kind == "list_item_open":
                node.number = token.info
                node.markup = token.markup
            elif kind in ("th_open", "td_open"):
                node.align = _ALIGNMENTS.get(str(token.attrs.get("style", "")), "left")
            elif kind == "footnote_open":
                node.number = str((token.meta or {}).get("label", ""))
            stack.append(node)
        elif kind.endswith("_close"):
            if stack:
                node = stack.pop()
                if node.lines == (0, 0) and node.children:  # no map (a footnote block): its first child's
                    node.lines = (node.children[0].lines[0], node.children[-1].lines[1])
                place(node)
        elif kind == "inline":
            if stack:
                stack[-1].content = inline_content(token)
        elif kind in ("fence", "code_block"):
            markup = token.markup if kind == "fence" else ""
            place(Node("fence", code=token.content.rstrip(), raw=token.content, lexer=token.info, markup=markup, lines=lines))
        # Anything else (HTML blocks, front matter) Textual leaves out too.
    return out


class Definitions:
    """The link reference definitions (`[label]: url`) and footnote definitions (`[^label]: ...`)
    found so far in an answer, for the parses of its parts: an answer is parsed a block (or a
    section) at a time, and a definition serves every part, before or after it, as it does in
    a parse of the whole text. The first definition of a label wins, as in CommonMark (parts
    are learned from in the order of the text)."""

    def __init__(self) -> None:
        self.links: Dict[str, Dict[str, Any]] = {}  # normalised label: markdown-it's {"href", "title", ...}
        self.notes: Dict[str, None] = {}  # footnote labels (ordered, as a set)
        self.new: List[str] = []  # labels learned since `take_new` (footnotes as "^label")

    def __bool__(self) -> bool:
        return bool(self.links or self.notes)

    def env(self) -> Dict[str, Any]:
        """A parser environment that knows them (a fresh one: a parse adds to it). Known
        footnotes are marked -2: a definition in the parsed text itself sets -1, a reference an id."""
        env: Dict[str, Any] = {}
        if self.links:
            env["references"] = dict(self.links)
        if self.notes:
            env["footnotes"] = {"refs": {f":{label}": -2 for label in self.notes}}
        return env

    def learn(self, env: Dict[str, Any]) -> None:
        """Take in the definitions a parse with `env` (from `env()`) found."""
        for label, definition in env.get("references", {}).items():
            if label not in self.links:
                self.links[label] = definition
                self.new.append(label)
        for key in env.get("footnotes", {}).get("refs", {}):
            label = key[1:]
            if label not in self.notes:
                self.notes[label] = None
                self.new.append("^" + label)

    def take_new(self) -> List[str]:
        new, self.new = self.new, []
        return new


def parse_blocks(parser: MarkdownIt, text: str, definitions: Optional[Definitions] = None, *, learn: bool = False) -> List[Node]:
    """The top-level blocks of `text`, its references resolved with `definitions` too (those of
    the rest of the answer), which learn the text's own definitions when `learn` is set."""
    env = definitions.env() if definitions else {}
    linkify = _LINK_HINT.search(text) is not None
    if linkify and _rough:
        _note_rough()
        linkify = False
    parser.options["linkify"] = linkify
    nodes = build_nodes(parser.parse(text, env))
    if learn and definitions is not None:
        definitions.learn(env)
    unreferenced = [label[1:] for label, index in env.get("footnotes", {}).get("refs", {}).items() if index == -1]
    if unreferenced:
        # The footnote plugin shows only notes referenced in the same parse, and a streamed
        # answer is parsed a block at a time: reference them from a last paragraph, left out.
        refs = "".join(f"[^{label}]" for label in unreferenced)
        nodes = build_nodes(parser.parse(f"{text}\n\n{refs}\n", definitions.env() if definitions else {}))
        nodes = [
            node
            for node in nodes
            if not (node.kind == "paragraph" and node.content is not None and node.content.plain == "".join(f"[{label}]" for label in unreferenced))
        ]
    if definitions is not None and definitions.notes:
        nodes = _own_notes(nodes)
    return nodes


def _own_notes(nodes: List[Node]) -> List[Node]:
    """Without the notes a parse listed only because the text refers to them: their definition
    is elsewhere in the answer (and shown there); the footnote plugin lists them empty."""
    out = []
    for node in nodes:
        if node.kind == "footnotes":
            notes = [note for note in node.children if note.children]
            if not notes:
                continue
            if len(notes) != len(node.children):
                node = replace(node, children=notes, lines=(notes[0].lines[0], notes[-1].lines[1]))
        out.append(node)
    return out


_URL_SAFE = re.compile(r"[\x21-\x7e]+")


def _bare_name(children: Any, index: int) -> bool:
    """Is the link that opens at `children[index]` one the parser's linkify found in a bare name
    (`README.md`, `setup.py`, `example.com`: `.md` and `.py` are top-level domains)? Only
    addresses with a scheme, `www.` ones and e-mail addresses are links, as in GitHub's autolinks."""
    text = children[index + 1].content if index + 1 < len(children) and children[index + 1].type == "text" else ""
    href = str(children[index].attrs.get("href", ""))
    return "://" not in text and not text.lower().startswith("www.") and not href.startswith("mailto:")


def link_style(href: str) -> Style:
    """A Markdown link: clickable, and an OSC 8 hyperlink that llmchat writes (Textual writes
    a style's `link` as one) when the target is plain printable ASCII, as markdown-it's
    normalising makes it (anything else could end the sequence early). The model's own OSC 8
    sequences never get this far: the sanitiser removes them."""
    style = Style.from_meta({"@click": f"link({href!r})"})
    if _URL_SAFE.fullmatch(href):
        style = style + Style(link=href)
    return style


def inline_content(token: Token) -> Content:
    """Inline tokens to Content: the rules of Textual's `MarkdownBlock._token_to_content`."""
    if token.children is None:
        return Content("")
    pieces: List[str] = []
    spans: List[Span] = []
    stack: List[Tuple[Any, int]] = []
    links: List[Tuple[str, int]] = []
    position = 0

    def add(text: str) -> None:
        nonlocal position
        pieces.append(text)
        position += len(text)

    def close() -> None:
        if stack:
            style, start = stack.pop()
            spans.append(Span(start, position, style))

    children = token.children
    for index, child in enumerate(children):
        kind = child.type
        if kind == "text":
            add(_WHITESPACE.sub(" ", child.content))
        elif kind == "hardbreak":
            add("\n")
        elif kind == "softbreak":
            add(" ")
        elif kind == "code_inline":
            stack.append((".code_inline", position))
            add(child.content)
            close()
        elif kind == "em_open":
            stack.append((".em", position))
        elif kind == "strong_open":
            stack.append((".strong", position))
        elif kind == "s_open":
            stack.append((".s", position))
        elif kind == "link_open":
            href = str(child.attrs.get("href", ""))
            if child.markup == "linkify" and _bare_name(children, index):
                links.append(("", -1))  # a file name such as README.md: text, not a link
                continue
            stack.append((link_style(href), position))
            links.append((href, position))
        elif kind == "link_close":
            href, start = links.pop() if links else ("", position)
            if start < 0:
                continue
            close()
            if href and not same_address("".join(pieces)[start:], href):
                # Where it goes, after the text: readable in any terminal, and an unbroken
                # word that terminals detect as a URL. Italic, not dim: dimmed it fell below the
                # contrast themes promise (tests/tui/test_theme_contrast.py).
                add(" ")
                stack.append((link_style(href) + Style(italic=True), position))
                add(href)
                close()
        elif kind == "html_inline" and "task-list-item-checkbox" in child.content:
            add("☑" if "checked" in child.content else "☐")
        elif kind == "footnote_ref":
            add(f"[{(child.meta or {}).get('label', '')}]")
        elif kind == "image":
            href = str(child.attrs.get("src", ""))
            alt = child.attrs.get("alt", "")
            stack.append((Style.from_meta({"@click": f"link({href!r})"}), position))
            add("🖼  ")
            if alt:
                add(f"({alt})")
            for grandchild in child.children or ():
                add(grandchild.content)
            close()
        elif kind.endswith("_close"):
            close()
    return Content("".join(pieces), spans=spans)


# --- painting ------------------------------------------------------------------------------


class Painter:
    """Styles and text rendering for one widget at one width and theme.

    `widget` supplies `get_visual_style(*component_classes)` (the theme's colours, blended over
    the widget's background as Textual blends them) and, through compat.style_getter, Textual's
    style lookup for the `.em`-style spans
    inside inline Content.
    """

    def __init__(self, widget: Any, *, dark: bool, ansi: bool = False) -> None:
        self.widget = widget
        self.dark = dark
        self.ansi = ansi
        self._styles: Dict[Tuple[str, ...], Style] = {}
        self._rich: Dict[Tuple[str, ...], RichStyle] = {}
        self._pads: Dict[Tuple[str, ...], RichStyle] = {}
        self._get_style = style_getter(widget)
        self._link_styles: Dict[Tuple[str, ...], RichStyle] = {}

    def style(self, path: Tuple[str, ...]) -> Style:
        style = self._styles.get(path)
        if style is None:
            style = self._styles[path] = self.widget.get_visual_style(*path)
        return style

    def rich(self, path: Tuple[str, ...]) -> RichStyle:
        style = self._rich.get(path)
        if style is None:
            style = self._rich[path] = (self.style(path) + Style(reverse=False)).rich_style
        return style

    def pad(self, path: Tuple[str, ...]) -> RichStyle:
        """Padding and empty lines: background only, as Textual pads a widget's content."""
        style = self._pads.get(path)
        if style is None:
            background = self.style(path).background
            style = self._pads[path] = RichStyle(bgcolor=background.rich_color) if background is not None else RichStyle()
        return style

    def blank(self, width: int, path: Tuple[str, ...]) -> Strip:
        return Strip.blank(width, self.pad(path))

    def options(self, rules: Optional[Dict[str, Any]] = None) -> RenderOptions:
        return RenderOptions(self._get_style, rules or {})  # type: ignore[arg-type]  # a plain dict of CSS rules; RulesMap is a TypedDict

    def text(
        self,
        content: Content,
        width: int,
        path: Tuple[str, ...],
        *,
        rules: Optional[Dict[str, Any]] = None,
        align: str = "left",
        valign_height: Optional[int] = None,
        valign: str = "top",
    ) -> List[Strip]:
        """Wrapped text, every line exactly `width` cells (as a Static with `expand` paints)."""
        if width <= 0:
            return []
        style = self.style(path)
        strips = content.render_strips(width, None, style, self.options(rules))
        if content.spans:
            link_style = self.link_style(path)
            strips = [_style_links(strip, link_style) for strip in strips]
        height = len(strips) if valign_height is None else valign_height
        if align == "left" and valign == "top":
            pad = self.pad(path)
            lines = [strip.extend_cell_length(width, pad) for strip in strips]
            if len(lines) < height:
                lines.extend([Strip.blank(width, pad)] * (height - len(lines)))
            return lines
        # Aligned content is padded by Textual with the widget's full style.
        return list(Strip.align(strips, self.rich(path), width, height, align, valign))  # type: ignore[arg-type]

    def link_style(self, path: Tuple[str, ...]) -> RichStyle:
        """Textual's `Widget.link_style`, for text on the background of `path`."""
        style = self._link_styles.get(path)
        if style is None:
            from textual.color import Color

            styles = self.widget.styles
            background = self.style(path).background or Color(0, 0, 0, 0)
            link_background = background + styles.link_background
            link_color = link_background + (link_background.get_contrast_text(styles.link_color.a) if styles.auto_link_color else styles.link_color)
            style = self._link_styles[path] = styles.link_style + RichStyle.from_color(
                link_color.rich_color, link_background.rich_color if styles.link_background.a else None
            )
        return style

    def keyline(self, base_path: Tuple[str, ...]) -> Any:
        """The table keyline colour: the background below it plus `$foreground 20%`."""
        from textual.color import Color

        styles = self.widget.get_component_styles("markdown--keyline")
        color = styles.color
        background = self.style(base_path).background or Color(0, 0, 0, 0)
        return background + color


def _style_links(strip: Strip, link_style: RichStyle) -> Strip:
    """Link styling for segments with a click action (as Textual's `auto_links` does)."""
    changed = False
    segments = []
    for text, style, control in strip:
        if style is not None and "@click" in style.meta:
            style = style + link_style
            changed = True
        segments.append(Segment(text, style, control))
    return Strip(segments, strip.cell_length) if changed else strip


@dataclass
class Box:
    """A rendered block: lines exactly `width` wide, and the margins around it."""

    lines: List[Strip]
    top: int = 0
    bottom: int = 0


@dataclass(frozen=True)
class Context:
    path: Tuple[str, ...] = ()  # component classes whose backgrounds this block sits on
    root: bool = True  # a direct child of the Markdown widget (paragraphs get a margin)
    in_list: bool = False  # inside a list: nested lists lose their margin
    bullet_depth: int = 0  # enclosing unordered list items


_HEADING_MARGINS = {"h1": (2, 1), "h2": (2, 1), "h3": (1, 1), "h4": (1, 1), "h5": (1, 1), "h6": (1, 1)}


def stack(boxes: Iterable[Box], width: int, painter: Painter, path: Tuple[str, ...], *, static: bool = False) -> List[Strip]:
    """Boxes one under another, with Textual's vertical margins: the first box's top margin,
    the larger of two neighbours' margins between them, the last box's bottom margin.

    `static`: the container is a Static (a quote), whose empty lines carry its full style."""
    lines: List[Strip] = []
    previous: Optional[int] = None
    blank: Optional[Strip] = None
    for box in boxes:
        gap = box.top if previous is None else max(previous, box.top)
        if gap:
            blank = blank or _gap(width, painter, path, static)
            lines.extend([blank] * gap)
        lines.extend(box.lines)
        previous = box.bottom
    if previous:
        blank = blank or _gap(width, painter, path, static)
        lines.extend([blank] * previous)
    return lines


def _gap(width: int, painter: Painter, path: Tuple[str, ...], static: bool) -> Strip:
    return Strip.blank(width, painter.rich(path)) if static else painter.blank(width, path)


def render_block(node: Node, width: int, painter: Painter, ctx: Context) -> Box:
    kind = node.kind
    if kind == "paragraph":
        content = node.content or Content("")
        return Box(painter.text(content, width, ctx.path), 0, 1 if ctx.root else 0)
    if kind in _HEADING_MARGINS:
        return _heading(node, width, painter, ctx)
    if kind == "hr":
        return _rule(width, painter, ctx)
    if kind == "fence":
        return render_fence(node.code, node.lexer, width, painter, ctx, keep=fence_closed(node))
    if kind == "blockquote":
        return _quote(node, width, painter, ctx)
    if kind in ("bullet_list", "ordered_list"):
        return render_list(node.children, kind == "ordered_list", width, painter, ctx, number_width=None)
    if kind == "table":
        return _table(node, width, painter, ctx)
    if kind == "footnotes":
        return _footnotes(node, width, painter, ctx)
    # A stray block kind (an item or row outside its parent cannot come from the parser).
    return Box([])


def render_blocks(nodes: Iterable[Node], width: int, painter: Painter, ctx: Context) -> List[Box]:
    return [render_block(node, width, painter, ctx) for node in nodes]


def _heading(node: Node, width: int, painter: Painter, ctx: Context) -> Box:
    top, bottom = _HEADING_MARGINS[node.kind]
    path = ctx.path + (f"markdown--{node.kind}",)
    content = node.content or Content("")
    if node.kind == "h1":
        lines = painter.text(content, width, path, align="center")
    elif node.kind == "h3":
        # `width: auto`: the heading is as wide as its text; the rest of the line is the
        # background below it.
        own = max(1, min(width, content.cell_length))
        lines = painter.text(content, own, path)
        if own < width:
            rest = painter.blank(width - own, ctx.path)
            lines = [Strip.join([line, rest]) for line in lines]
    else:
        lines = painter.text(content, width, path)
    return Box(lines, top, bottom)


def _rule(width: int, painter: Painter, ctx: Context) -> Box:
    line = Strip([Segment("─" * width, painter.rich(ctx.path + ("markdown--hr",)))], width)
    return Box([painter.blank(width, ctx.path), line], 0, 1)


def fence_style_path(ctx: Context) -> Tuple[str, ...]:
    return ctx.path + ("markdown--fence",)


# --- code highlighting, remembered ----------------------------------------------------------
#
# Highlighting costs a conversation's first frame ~40-50 ms when code is in view -- Textual's
# Markdown module and Pygments' lexers imported and, far more, the lexer built (the Python one
# compiles ~50 states of regular expressions) -- which an empty conversation never pays. The
# highlighting of a finished code block is kept on disk (next to the history, `keep_highlights_in`):
# reopening a conversation draws the code it shows from there, and no lexer is imported or built
# until an answer needs one. What is kept is the spans only (offsets and theme style names, e.g.
# "$text-accent"), under a hash of the code, its language, the theme's kind and the Pygments and
# Textual files that made them: no code is written, and another Pygments or Textual is a miss,
# never a stale colour.

_MEMORY_ENTRIES = 256  # highlighted blocks kept in memory (a streamed block is drawn every frame)
_MEMORY_CHARS = 20_000  # longer code is not kept in memory (a long answer's code comes in chunks)
KEPT_FILES = 1_000  # kept on disk (~2 KB each); the least recently used beyond this go at save
_KEPT_FORMAT = "1"

_memory: Dict[Tuple[str, str, bool, bool], Tuple[Content, bool]] = {}  # and whether kept on disk
_kept_folder: Optional[Path] = None
_kept_signature: Optional[str] = None
_to_save: Dict[str, List[Tuple[int, int, str]]] = {}  # new on disk at the next save
_used: Set[str] = set()  # read from disk: its use time is refreshed at the next save


def keep_highlights_in(folder: Optional[Path]) -> None:
    """Where finished code blocks' highlighting is kept between runs (None: nowhere). Nothing
    is read or created until a code block is drawn."""
    global _kept_folder, _kept_signature
    _kept_folder = folder
    _kept_signature = None
    _to_save.clear()
    _used.clear()
    _memory.clear()  # (what it says was kept was kept in the folder before)


def _signature() -> str:
    """What the kept highlighting depends on besides the code: this format, and the Pygments and
    Textual files that made it (found without importing Pygments)."""
    global _kept_signature
    if _kept_signature is None:
        import importlib.util

        parts = [_KEPT_FORMAT]
        for name in ("pygments", "textual.highlight"):
            try:
                spec = importlib.util.find_spec(name)
                origin = spec.origin if spec is not None else None
                stat = os.stat(origin) if origin else None
            except (ImportError, ValueError, OSError):
                stat = origin = None
            parts.append(f"{origin}:{stat.st_mtime_ns}:{stat.st_size}" if stat is not None else "-")
        _kept_signature = "\n".join(parts)
    return _kept_signature


def _kept_name(code: str, lexer: str, ansi: bool, dark: bool) -> str:
    key = "\0".join((_signature(), lexer, "ansi" if ansi else "rgb", "dark" if dark else "light", code))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _read_kept(folder: Path, name: str, code: str) -> Optional[Content]:
    try:
        with open(folder / name, encoding="utf-8") as file:
            spans = json.load(file)
        text = "\n".join(code.splitlines())  # as Textual's highlight takes it
        out = [Span(start, end, style) for start, end, style in spans]
        # (As Textual makes them: the newline Pygments ends the code with may have a span past its end.)
        if any(not (isinstance(style, str) and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end) for start, end, style in out):
            return None
    except (OSError, ValueError, TypeError):
        return None
    _used.add(name)
    return Content(text, spans=out)


def _spans_of(content: Content) -> Optional[List[Tuple[int, int, str]]]:
    spans = []
    for span in content.spans:
        if not isinstance(span.style, str):
            return None  # (Textual's themes use names; anything else is not kept)
        spans.append((span.start, span.end, span.style))
    return spans


def save_highlights() -> int:
    """Write the finished code blocks highlighted since the last save (the app calls this when
    it quits), refresh the use time of those read, and drop the least recently used beyond
    KEPT_FILES. Never raises: a cache that cannot be written is only slower. The number written."""
    folder = _kept_folder
    written = 0
    if folder is None or not (_to_save or _used):
        return 0
    try:
        from llmchat.paths import ensure_private_dir, write_private

        ensure_private_dir(folder)
        for name, spans in list(_to_save.items()):
            write_private(folder / name, json.dumps(spans, separators=(",", ":")))
            written += 1
        for name in _used - set(_to_save):
            try:
                os.utime(folder / name)
            except OSError:
                pass
        if written:
            entries = [entry for entry in os.scandir(folder) if entry.is_file() and not entry.name.startswith(".")]
            if len(entries) > KEPT_FILES:
                entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
                for entry in entries[: len(entries) - KEPT_FILES]:
                    os.unlink(entry.path)
    except OSError:
        pass
    finally:
        _to_save.clear()
        _used.clear()
    return written


def highlight_code(code: str, lexer: str, painter: Painter, *, keep: bool = False) -> Content:
    """The code block's text as Textual's MarkdownFence highlights it. `keep`: a finished block
    (never a streamed one still growing), looked up in and kept on disk when the app says where."""
    ansi, dark = painter.ansi, painter.dark
    key = (code, lexer, ansi, dark)
    folder = _kept_folder if keep else None
    remembered = _memory.get(key)
    if remembered is not None and (folder is None or remembered[1]):
        return remembered[0]
    highlighted = remembered[0] if remembered is not None else None  # (drawn while it streamed)
    if folder is not None:
        name = _kept_name(code, lexer, ansi, dark)
        kept = _read_kept(folder, name, code)
        if kept is not None:
            highlighted = kept
        elif highlighted is None and _rough and lexer not in _lexers_ready:
            _note_rough()
            return _plain_code(code)  # (neither kept in memory nor to be saved)
        else:
            if highlighted is None:
                highlighted = _pygments_highlight(code, lexer, ansi, dark)
            spans = _spans_of(highlighted)
            if spans is not None:
                if len(_to_save) >= KEPT_FILES:  # a long session keeps its newest, as the folder does
                    del _to_save[next(iter(_to_save))]
                _to_save[name] = spans
    elif highlighted is None:
        if _rough and lexer not in _lexers_ready:
            _note_rough()
            return _plain_code(code)
        highlighted = _pygments_highlight(code, lexer, ansi, dark)
    if len(code) <= _MEMORY_CHARS:
        if key not in _memory and len(_memory) >= _MEMORY_ENTRIES:
            del _memory[next(iter(_memory))]
        _memory[key] = (highlighted, folder is not None)
    return highlighted


def _pygments_highlight(code: str, lexer: str, ansi: bool, dark: bool) -> Content:
    """As Textual's `MarkdownFence.highlight` (tests/tui/test_markdown_render_highlights.py
    compares the two), without importing Textual's Markdown widgets for it (13-21 ms of a
    first code block, as of a conversation opened the first time)."""
    from textual import highlight

    theme: type = highlight.HighlightTheme
    if ansi:
        theme = highlight.ANSIDarkHighlightTheme if dark else highlight.ANSILightHighlightTheme
    highlighted = highlight.highlight(code, language=lexer or None, theme=theme)
    _lexers_ready.add(lexer)
    return highlighted


def _plain_code(code: str) -> Content:
    """Code as `_pygments_highlight` gives it, without the colours (see `draw_roughly`)."""
    return Content("\n".join(code.splitlines())).stylize_before("$text")


CONTINUED = "↪ "  # in the left padding of the rows a code line wider than the view goes on in


def code_lines(highlighted: Content, width: int, painter: Painter, path: Tuple[str, ...]) -> List[Strip]:
    """Lines of a code block's body: two cells of padding, then the code; every line `width`
    wide on the block's background. A line wider than that goes on in the next rows, each
    marked CONTINUED in its padding: nothing is cut off. (Copying a block copies its source,
    never these rows: see codeblocks.py.)

    Each line is turned into segments directly, as Content's own line rendering does
    (`style + span style`, with a selection offset), skipping the word-wrapping machinery that
    costs ~0.4 ms a line (code is cut at the edge, not between words). The offset is left at
    (0, 0): the widget sets the real one when it paints the line."""
    pad = painter.pad(path)
    style = painter.style(path)
    get_style = painter._get_style
    combined: Dict[Any, RichStyle] = {}
    out: List[Strip] = []
    left = Segment("  ", pad)
    marker: Optional[Segment] = None
    inner = max(0, width - 2)
    if not inner:
        return [Strip.blank(width, pad) for _ in highlighted.plain.split("\n")]
    for line in highlighted.split("\n", allow_blank=True):
        if "\t" in line.plain:
            line = line.expand_tabs(8)
        segments = []
        for text, text_style in line.render(style, end="", parse_style=get_style):
            rich = combined.get(text_style)
            if rich is None:
                rich = combined[text_style] = (style + text_style).rich_style_with_offset(0, 0)
            segments.append(Segment(text, rich))
        if line.cell_length <= inner:
            out.append(Strip(Segment.adjust_line_length([left, *segments], width, pad), width))
            continue
        code = Strip(segments)
        cuts = list(range(inner, code.cell_length, inner)) + [code.cell_length]
        marker = marker or Segment(CONTINUED, painter.rich(path + ("markdown--continued",)))
        for row, piece in enumerate(code.divide(cuts)):
            pieces = [left if row == 0 else marker, *piece]
            out.append(Strip(Segment.adjust_line_length(pieces, width, pad), width))
    return out


def fence_closed(node: Node) -> bool:
    """Whether a fence node's closing line was parsed (a block still streaming has none yet):
    its lines are the opening line, the code's and the closing one. (The code's last line may
    be partial, without its line end, while it streams.)"""
    raw = node.raw
    code_lines = raw.count("\n") + (1 if raw and not raw.endswith("\n") else 0)
    return bool(node.markup) and node.lines[1] - node.lines[0] >= code_lines + 2


def render_fence(code: str, lexer: str, width: int, painter: Painter, ctx: Context, *, keep: bool = False) -> Box:
    """A code block; `keep`: a finished one, whose highlighting is kept (see highlight_code)."""
    path = fence_style_path(ctx)
    body = code_lines(highlight_code(code, lexer, painter, keep=keep), width, painter, path)
    blank = painter.blank(width, path)
    return Box([blank, *body, blank], 1, 1)


def _quote(node: Node, width: int, painter: Painter, ctx: Context) -> Box:
    path = ctx.path + ("markdown--quote",)
    inner_width = max(0, width - 3)  # border 1, padding 1 each side
    inner_ctx = Context(path, root=False, in_list=ctx.in_list, bullet_depth=ctx.bullet_depth)
    inner = stack(render_blocks(node.children, inner_width, painter, inner_ctx), inner_width, painter, path, static=True)
    border = _quote_border(painter, ctx, path)
    pad = painter.blank(1, path)
    lines = [Strip.join([border, pad, line, pad]) for line in inner]
    return Box(lines, 1, 1)


def _quote_border(painter: Painter, ctx: Context, path: Tuple[str, ...]) -> Strip:
    """The quote's left border: `outer` style, `$text-primary 50%` over the quote's background."""
    from textual.color import Color

    styles = painter.widget.get_component_styles("markdown--quote-border")
    below = painter.style(ctx.path).background or Color(0, 0, 0, 0)
    inner = painter.style(path).background or below
    color = below + styles.color  # Textual blends a border colour over what is beneath the widget
    style = RichStyle(color=color.rich_color, bgcolor=inner.rich_color)
    return Strip([Segment("▌", style)], 1)


def ordered_number_width(start: int, count: int) -> int:
    """Cells of an ordered list's numbers: Textual right-aligns them all to the widest."""
    return len(f"{start + max(0, count - 1)}. ") + 1


def list_start(items: Sequence[Node]) -> int:
    try:
        return int(items[0].number) if items else 1
    except ValueError:
        return 1


def render_list(
    items: Sequence[Node],
    ordered: bool,
    width: int,
    painter: Painter,
    ctx: Context,
    *,
    number_width: Optional[int],
    first_index: int = 0,
    start: Optional[int] = None,
    final: bool = True,
) -> Box:
    """A list, or a run of its items (`first_index`: the index of the first of them in the
    whole list; `final`: the run ends the list, so the list's bottom margin follows it)."""
    if start is None:
        start = list_start(items)
    if ordered and number_width is None:
        number_width = ordered_number_width(start, first_index + len(items))
    lines: List[Strip] = []
    for index, item in enumerate(items, first_index):
        if ordered:
            symbol = f"{start + index}. ".rjust(number_width or 0)
        else:
            symbol = BULLETS[ctx.bullet_depth % len(BULLETS)]
        lines.extend(render_item(item, symbol, not ordered, width, painter, ctx))
    bottom = 0 if ctx.in_list or not final else 1
    return Box(lines, 0, bottom)


def render_item(item: Node, symbol: str, unordered: bool, width: int, painter: Painter, ctx: Context) -> List[Strip]:
    from rich.cells import cell_len

    bullet_width = cell_len(symbol)
    inner_width = max(0, width - bullet_width)
    inner_ctx = Context(ctx.path, root=False, in_list=True, bullet_depth=ctx.bullet_depth + (1 if unordered else 0))
    boxes = render_blocks(item.children, inner_width, painter, inner_ctx)
    if boxes:
        # The item's first block starts on its bullet's row. Textual keeps that block's top margin
        # (a quote's, a code block's, a heading's), which left the bullet alone on a row above it.
        boxes[0] = Box(boxes[0].lines, 0, boxes[0].bottom)
    inner = stack(boxes, inner_width, painter, ctx.path)
    bullet_style = painter.rich(ctx.path + ("markdown--bullet",))
    bullet = Strip([Segment(symbol, bullet_style)], bullet_width)
    blank = Strip.blank(bullet_width, bullet_style)  # the bullet widget's own empty lines
    if not inner:  # Textual lays out an item with nothing in it as no line at all
        return []
    return [Strip.join([bullet if row == 0 else blank, line]) for row, line in enumerate(inner)]


def column_widths(optimal: Sequence[int], minimal: Sequence[int], available: int) -> Optional[List[int]]:
    """Widths of a table's columns (their text, padding aside) within `available` cells:
    as wide as their text when it fits (a small table is not stretched); else the widest
    columns give way first, down to their longest word. None when even that does not fit:
    the rows are stacked instead (words cut in two across a narrow column read worse)."""
    widths = [max(1, w) for w in optimal]
    floors = [min(max(m, 1), w) for m, w in zip(minimal, widths)]
    excess = sum(widths) - available
    while excess > 0:
        # The widest column that may still give way loses one cell.
        candidates = [i for i, w in enumerate(widths) if w > floors[i]]
        if not candidates:
            return None
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def table_cells(node: Node) -> Tuple[List[Node], List[List[Node]]]:
    """A table's header cells and its rows' cells (rows with none left out)."""
    headers: List[Node] = []
    rows: List[List[Node]] = []
    for child in _flatten(node):  # Textual's order: a block's children before the block
        if child.kind == "th":
            headers.append(child)
        elif child.kind == "tr":
            rows.append([])
        elif child.kind == "td" and rows:
            rows[-1].append(child)
    if rows and not rows[-1]:
        rows.pop()
    return headers, [row for row in rows if row]


Measures = Tuple[List[int], List[int]]


def table_measures(headers: Sequence[Node], rows: Sequence[Sequence[Node]]) -> Measures:
    """What a table's columns need, whatever the width: the widest text (optimal) and the
    longest word (minimal) of each column's cells, the header's included."""
    columns = max(1, len(headers))
    optimal = [0] * columns
    minimal = [1] * columns
    for row in itertools.chain([headers], rows):
        for index, cell in enumerate(row[:columns]):
            content = cell.content or Content("")
            optimal[index] = max(optimal[index], content.cell_length)
            minimal[index] = max(minimal[index], content.get_minimal_width({}))
    return optimal, minimal


def merge_measures(a: Measures, b: Measures) -> Measures:
    """The measures of two parts of one table: each column as wide as the wider part needs."""
    return [max(x, y) for x, y in zip(a[0], b[0])], [max(x, y) for x, y in zip(a[1], b[1])]


def _table(node: Node, width: int, painter: Painter, ctx: Context) -> Box:
    headers, rows = table_cells(node)
    return table_part(headers, rows, width, painter, ctx)


def table_part(
    headers: List[Node],
    rows: List[List[Node]],
    width: int,
    painter: Painter,
    ctx: Context,
    *,
    measures: Optional[Measures] = None,
    head: bool = True,
    final: bool = True,
) -> Box:
    """A grid of cells inside thin keylines. Columns are as wide as their text, balanced by
    content when the table is wider than the view (see `column_widths`); cell text wraps
    between words, nothing is cut off; `:---`, `---:` and `:---:` align
    a column. A table too wide for any readable grid is shown row by row, each cell as
    "header: text".

    Or a part of a long table (`rows`, some of its rows): `measures` are the whole table's
    (`table_measures`), so its columns are as wide as the whole table's; `head`: the part
    begins the table (its top and header); `final`: it ends the table (its bottom border and
    margin). The parts, one under another, are the rows of the table drawn whole."""
    from textual.canvas import Canvas, Rectangle
    from textual.geometry import Offset

    path = ctx.path + ("markdown--table",)
    header_path = path + ("markdown--table-header",)
    columns = max(1, len(headers))
    cells = ([(h, True) for h in headers] if head else []) + [(c, False) for row in rows for c in row]
    grid = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    if not grid:
        return Box([], 0, 1 if final else 0)
    optimal, minimal = measures if measures is not None else table_measures(headers, rows)
    widths = column_widths(optimal, minimal, width - 3 * columns - 1)  # keylines and padding
    if widths is None:
        return _stacked_table(headers, rows, width, painter, ctx, head=head, final=final)
    spans: List[Tuple[int, int]] = []
    x = 0
    for column_width in widths:
        spans.append((x, column_width + 2))
        x += column_width + 3
    table_width = x + 1
    rules = {"text_overflow": "fold"}
    rendered_rows: List[List[List[Strip]]] = []
    heights: List[int] = []
    for row in grid:

        def draw(cell: Node, header: bool, index: int, height: Optional[int] = None) -> List[Strip]:
            content = cell.content or Content("")
            cell_path = header_path if header else path
            return painter.text(
                content, widths[index], cell_path, rules=rules, align=cell.align, valign="bottom" if header else "top", valign_height=height
            )

        rendered = [draw(cell, header, index) for index, (cell, header) in enumerate(row)]
        height = max([len(lines) for lines in rendered] + [1])
        if row[0][1]:  # the header row: `content-align: left bottom`
            rendered = [draw(cell, header, index, height) for index, (cell, header) in enumerate(row)]
        heights.append(height)
        rendered_rows.append(rendered)

    # The keylines of every row are alike: a canvas of two rows one line high draws them all --
    # the top, a row's line, the line between two rows, the bottom. (A canvas the height of
    # the table took ~0.5 ms a row, more than the cells: 2,000 rows 1 s.)
    canvas = Canvas(table_width, 5)
    color = painter.keyline(path)
    rectangles = [Rectangle(Offset(x, y), column_width + 2, 3, color, "thin") for y in (0, 2) for x, column_width in spans]
    top, row_line, between, _, bottom = canvas_strips(canvas.render(rectangles, painter.rich(path)), table_width)
    lines: List[Strip] = [top] if head else []
    for height in heights:
        lines.extend([row_line] * height)
        lines.append(between)
    if final:
        lines[-1] = bottom

    y = 1 if head else 0
    for row_index, (rendered, height) in enumerate(zip(rendered_rows, heights)):
        for line_no in range(height):
            keyline = lines[y + line_no]
            pieces: List[Strip] = []
            cursor = 0
            for index, cell_lines in enumerate(rendered):
                x, column_width = spans[index]
                x += 1
                header = grid[row_index][index][1]
                cell_path = header_path if header else path
                if line_no < len(cell_lines):
                    text = cell_lines[line_no]
                else:  # a cell's own empty lines (stretched to the row's height)
                    text = Strip.blank(max(0, column_width - 2), painter.rich(cell_path))
                pad = painter.blank(1, cell_path)
                pieces.append(keyline.crop(cursor, x))
                pieces.append(Strip.join([pad, text, pad]).crop(0, column_width))
                cursor = x + column_width
            pieces.append(keyline.crop(cursor, table_width))
            lines[y + line_no] = Strip.join(pieces)
        y += height + 1
    if table_width < width:
        rest = painter.blank(width - table_width, ctx.path)
        lines = [Strip.join([line, rest]) for line in lines]
    return Box(lines, 0, 1 if final else 0)


def _stacked_table(
    headers: List[Node], rows: List[List[Node]], width: int, painter: Painter, ctx: Context, *, head: bool = True, final: bool = True
) -> Box:
    """Each row as lines of "header: text", rows between thin rules: every cell readable in a
    view too narrow for the grid. (`head`, `final`: as for `table_part`.)"""
    path = ctx.path + ("markdown--table",)
    rule = Strip([Segment("─" * width, painter.rich(ctx.path + ("markdown--keyline",)))], width)
    lines: List[Strip] = [rule] if head else []
    rules = {"text_overflow": "fold"}
    for row in rows:
        for index, cell in enumerate(row):
            label = header if index < len(headers) and (header := headers[index].content) is not None else Content("")
            text = Content.assemble(label.stylize(".strong"), ": " if label.plain else "", cell.content or Content(""))
            lines.extend(painter.text(text, width, path, rules=rules))
        lines.append(rule)
    return Box(lines, 0, 1 if final else 0)


def _footnotes(node: Node, width: int, painter: Painter, ctx: Context) -> Box:
    """Footnote definitions: a thin rule, then each note as an item labelled `[label]`."""
    rule = Strip([Segment("─" * width, painter.rich(ctx.path + ("markdown--keyline",)))], width)
    labels = [f"[{note.number}] " for note in node.children]
    widest = max((len(label) for label in labels), default=0)
    lines = [rule]
    for note, label in zip(node.children, labels):
        lines.extend(render_item(note, label.ljust(widest), False, width, painter, ctx))
    return Box(lines, 1, 1)


def _flatten(block: Node) -> Iterable[Node]:
    for child in block.children:
        if child.children:
            yield from _flatten(child)
        yield child
