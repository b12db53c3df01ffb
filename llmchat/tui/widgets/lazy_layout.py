"""Long finished answers, laid out lazily (streaming_markdown's helpers for them).

A stored answer of megabytes (or the backlog a cancelled flood left) is not parsed and drawn
whole to know its height: its source is cut, without parsing it, into SECTION_CHARS-sized
sections at safe top-level block boundaries, each section's height is estimated from its
length and the width, and a section is parsed and drawn only when it comes near the view
(`StreamingMarkdown` corrects the estimate then, keeping the view still).

A safe boundary is the start of a line that follows a blank line, begins in column 0 with
something other than a list marker, and lies outside fenced code and the HTML blocks that may
hold blank lines: every block before it is closed there, and the parser starts afresh at
it, so the blocks of a section are exactly the blocks the whole source has there. A list or
table has no safe boundary inside it: a long one makes a long section, which is cut further,
into runs of items or groups of rows, where the parser's block pass (`long_blocks`) finds
them. Link
reference and footnote definitions serve every section: the sections that may hold one (a
line that starts like one) are parsed once when the answer is laid out, to learn them.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from llmchat.tui.widgets.markdown_render import Box, Context, Definitions, Painter, make_parser, parse_blocks, render_block, stack

# A finished backlog or stored answer of at least this many characters is laid out lazily.
LAZY_CHARS = 32_000
# Sections are cut at the first safe boundary after this many characters (a section is parsed
# and drawn as a whole: at ~10 us a character, a few ms).
SECTION_CHARS = 2_000

_ROOT = Context()

# Lines that open or close what a boundary may not be in: fences, and HTML blocks.
# (Each starts with the line end before the line: a literal the search skips to quickly.)
_BLOCKERS = re.compile(r"\n {0,3}(?:(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)(?=\n|\Z)|<)")
_FIRST_BLOCKER = re.compile(_BLOCKERS.pattern[2:])  # the same on the first line
# A blank line followed by a line that starts in column 0: a boundary is where that line starts.
_AFTER_BLANK = re.compile(r"\n[ \t]*\n(?=\S)")
_ITEM = re.compile(r"(?:[-+*]|\d{1,9}[.)])(?:[ \t\n]|$)")
# HTML blocks that end at a marker, not at a blank line (CommonMark's kinds 1 to 5).
_HTML_ENDS = (
    (re.compile(r"<(script|pre|style|textarea)(?:[\s>]|$)", re.I), None),
    (re.compile(r"<!--"), "-->"),
    (re.compile(r"<\?"), "?>"),
    (re.compile(r"<![A-Za-z]"), ">"),
    (re.compile(r"<!\[CDATA\["), "]]>"),
)


def opening_fence(line: str) -> Optional[Tuple[str, int]]:
    """The fence an opening line opens: its character and length (None if it is none)."""
    match = _BLOCKERS.match("\n" + line.rstrip("\n"))
    if match is None or not match.group("fence"):
        return None
    run = match.group("fence")
    return run[0], len(run)


def _blocked(text: str, fence: Optional[Tuple[str, int]]) -> Tuple[List[int], List[int]]:
    """The stretches of `text` no boundary may be in: fenced code and HTML blocks that may hold
    blank lines, as their starts and ends (sorted); `fence`: `text` starts in such a code
    block, opened by that run (its character and length)."""
    starts: List[int] = []
    ends: List[int] = []
    if fence is not None:
        starts.append(-1)
    skip_to = 0
    first = _FIRST_BLOCKER.match(text)
    for match in itertools.chain([first] if first else [], _BLOCKERS.finditer(text)):
        at = match.start() + (match.re is _BLOCKERS)  # where its line starts
        if at < skip_to:
            continue
        run = match.group("fence")
        if run is not None:
            if fence is None:
                if run[0] == "`" and "`" in match.group("info"):
                    continue  # not a fence: an inline code span
                fence = run[0], len(run)
                starts.append(at)
            elif run[0] == fence[0] and len(run) >= fence[1] and not match.group("info").strip():
                fence = None
                ends.append(match.end())
            continue
        if fence is not None:
            continue
        end = _html_end(text, match.end() - 1)
        if end is None:
            end = len(text) + 1  # an HTML block to the end: no boundary after it
        if end > at + 1:
            starts.append(at)
            ends.append(end)
            skip_to = end
    if fence is not None:
        ends.append(len(text) + 1)
    return starts, ends


def boundaries(
    text: str, fence: Optional[Tuple[str, int]] = None, start: int = 1, step: int = 0, blocked: Optional[Tuple[List[int], List[int]]] = None
) -> Iterator[int]:
    """Safe boundaries in `text` (offsets of line starts), in order, from `start` on, the next
    one at least `step` characters after the last; `fence`: `text` starts inside a fenced
    code block opened by that run (its character and length). (`blocked`: `_blocked(text,
    fence)`, if it is known.)"""
    starts, ends = blocked or _blocked(text, fence)
    at = start
    search = _AFTER_BLANK.search
    while True:
        match = search(text, max(0, at - 2))
        if match is None:
            return
        cut = match.end()
        if cut >= len(text):
            return
        index = bisect_right(starts, cut - 1) - 1
        if index >= 0 and cut < ends[index]:
            at = ends[index]  # in code or HTML: look after it
            continue
        if cut < at or _ITEM.match(text, cut):
            at = max(at, cut + 1)
            continue
        yield cut
        at = cut + max(1, step)


def _html_end(text: str, at: int) -> Optional[int]:
    """Where an HTML block starting at `at` ends (the start of the line after its end marker),
    if it is of a kind that may hold blank lines; else `at` (it ends at a blank line)."""
    for opener, marker in _HTML_ENDS:
        match = opener.match(text, at)
        if match is None:
            continue
        if marker is None:
            found = _find_lower(text, f"</{match.group(1).lower()}>", at)
        else:
            found = text.find(marker, at)
        if found == -1:
            return None
        line_end = text.find("\n", found)
        return len(text) if line_end == -1 else line_end + 1
    return at


def _find_lower(text: str, marker: str, at: int) -> int:
    step = 1 << 20
    for start in range(at, len(text), step):
        found = text[start : start + step + len(marker)].lower().find(marker)
        if found != -1:
            return start + found
    return -1


def split(text: str, after: int = 0, fence: Optional[Tuple[str, int]] = None, size: int = SECTION_CHARS) -> Tuple[int, List[Tuple[int, int]]]:
    """Cut `text` at its first safe boundary at or after `after`, and what follows into
    sections of about `size` characters at safe boundaries. Returns the length of the head
    (all of `text` when there is no boundary) and the sections' spans (start, end) in `text`:
    they are not copied out of it."""
    blocked = _blocked(text, fence)
    head = next(boundaries(text, start=max(1, after), blocked=blocked), None)
    if head is None:
        return len(text), []
    sections: List[Tuple[int, int]] = []
    last = head
    for cut in boundaries(text, start=head + size, step=size, blocked=blocked):
        sections.append((last, cut))
        last = cut
    if last < len(text):
        if sections and len(text) - last < size // 4:
            sections[-1] = (sections[-1][0], len(text))  # no short last section
        else:
            sections.append((last, len(text)))
    return head, sections


def long_fences(text: str, start: int, end: int, min_lines: int) -> Iterator[Tuple[int, int, int, int, str]]:
    """The fenced code blocks of more than `min_lines` lines that open in column 0 in section
    `text[start:end]` (one cut at safe boundaries, so it starts outside any block): where the
    opening line starts, where the code starts and ends, where the line after the closing line
    starts (or the section ends), and the info string, as the parser reads it."""
    section = text[start:end]
    starts, ends = _blocked(section, None)
    for opened, closing_end in zip(starts, ends):
        if section[opened : opened + 1] not in ("`", "~"):
            continue  # (an indented opening line, or an HTML block)
        line_end = section.find("\n", opened)
        if line_end == -1:
            continue
        if closing_end > len(section):  # never closed: the code runs to the end
            code_end = closed = len(section)
        else:
            code_end = section.rfind("\n", line_end, closing_end) + 1
            closed = min(len(section), closing_end + 1)
        if section.count("\n", line_end + 1, code_end) <= min_lines:
            continue
        opener = section[opened:line_end]
        nodes = parse_blocks(make_parser(), f"{opener}\n{opener[: len(opener) - len(opener.lstrip(opener[0]))]}\n")
        info = nodes[0].lexer if nodes and nodes[0].kind == "fence" else ""
        yield start + opened, start + line_end + 1, start + code_end, start + closed, info


def estimate(source: str, width: int, start: int = 0, end: Optional[int] = None) -> Tuple[int, int, int]:
    """A section's top margin, height and bottom margin at `width`, guessed from its source:
    a row per line (a blank one is the margin between two blocks; the last is the bottom
    margin), and a row per `width` characters (paragraphs wrap)."""
    end = len(source) if end is None else end
    lines = source.count("\n", start, end) + (0 if source.endswith("\n", start, end) else 1) - (1 if source.endswith("\n\n", start, end) else 0)
    return 0, max(1, lines + (end - start) // max(1, width)), 1


def render_section(source: str, width: int, painter: Painter, definitions: Optional[Definitions] = None) -> Box:
    """A section drawn: its blocks one under another, with their margins between them, the
    first one's top and the last one's bottom margin as the section's own; references resolved
    with the answer's `definitions` too."""
    boxes = [render_block(node, width, painter, _ROOT) for node in parse_blocks(make_parser(), source, definitions)]
    if not boxes:
        return Box([])
    top, bottom = boxes[0].top, boxes[-1].bottom
    boxes[0] = Box(boxes[0].lines, 0, boxes[0].bottom)
    boxes[-1] = Box(boxes[-1].lines, boxes[-1].top, 0)
    return Box(stack(boxes, width, painter, ()), top, bottom)


# A line that may define a link reference or a footnote (`[label]:`, `[^label]:`), in a quote
# or a list item too (from the line end before it: a literal the search skips to quickly).
_DEFINITION = re.compile(r"\n[ \t>]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+[ \t>]*)*\[[^\]\n]{1,999}\]:")


def learn_definitions(text: str, sections: Sequence[Tuple[int, int]], definitions: Definitions) -> None:
    """Learn the definitions in the sections (spans of `text`) that may hold one: each such
    section is parsed (the parser knows code from a definition), the others are not. (Most
    answers have no "]:" at all: ~5 ms for 10 MB; else ~10 ms a MB from the first one.)"""
    if not sections:
        return
    start, end = sections[0][0], sections[-1][1]
    hit = text.find("]:", start, end)
    if hit == -1:
        return
    parser = make_parser()
    starts = [section[0] for section in sections]
    last = -1
    # (A section starts a line: the line end before it is in `text`.)
    for match in _DEFINITION.finditer(text, max(start - 1, text.rfind("\n", 0, hit)), end):
        index = bisect_right(starts, match.end() - 1) - 1
        if index > last:
            last = index
            first, stop = sections[index]
            parse_blocks(parser, text[first:stop], definitions, learn=True)


def long_blocks(text: str, min_parts: int) -> List[Tuple[str, int, int, List[int], str]]:
    """The lists of more than `min_parts` items and tables of more than `min_parts` rows among
    the top-level blocks of `text` (a section, or a part of one: it starts outside any block),
    found by the parser's block pass alone (no inline parse: ~5x faster): each as its kind
    ("bullet_list", "ordered_list", "table"), its first line and the line after its last, the
    first lines of its items (of its body rows, for a table), and an ordered list's first
    number as written."""
    parser = make_parser()
    tokens: List[Any] = []
    parser.block.parse(text.replace("\0", "\ufffd"), parser, {}, tokens)  # (the core's normalising, but for line ends: already "\n")
    found: List[Tuple[str, int, int, List[int], str]] = []
    current: Optional[Tuple[str, int, int, List[int], str]] = None
    for token in tokens:
        kind = token.type
        if token.level == 0 and kind in ("bullet_list_open", "ordered_list_open", "table_open") and token.map:
            current = (kind[: -len("_open")], token.map[0], token.map[1], [], "")
        elif current is None:
            continue
        elif kind == "list_item_open" and token.level == 1 and token.map:
            if not current[3]:
                current = (current[0], current[1], current[2], current[3], token.info)
            current[3].append(token.map[0])
        elif kind == "tr_open" and token.level == 2 and token.map and token.map[0] > current[1] + 1:
            current[3].append(token.map[0])  # (a body row: the header's is the table's first line)
        elif token.level == 0 and kind in ("bullet_list_close", "ordered_list_close", "table_close"):
            if len(current[3]) > min_parts:
                found.append(current)
            current = None
    return found
