"""The fenced code blocks of an answer, read from its Markdown source.

The source is what the session holds (the model's text with control sequences removed, as it
was shown), never the widgets: how an answer is rendered may change, what it said does not.
markdown-it (Textual's own parser) finds the fences, so a fence inside a list item or a quote,
a longer or tilde fence, or one left open at the end of a cut-off answer is found as a reader
of the rendered answer would see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from markdown_it import MarkdownIt

PREVIEW = 48  # characters of the first line shown in the picker


@dataclass(frozen=True)
class CodeBlock:
    language: str  # the first word of the info string; "" when there is none
    code: str  # without the fence and without the final newline (a shell would run it on paste)

    @property
    def lines(self) -> int:
        return self.code.count("\n") + 1 if self.code else 0

    @property
    def preview(self) -> str:
        first = next((line.strip() for line in self.code.splitlines() if line.strip()), "")
        return first if len(first) <= PREVIEW else first[: PREVIEW - 1] + "…"


def code_blocks(markdown: str) -> List[CodeBlock]:
    blocks = []
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "fence":
            language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
            code = token.content[:-1] if token.content.endswith("\n") else token.content
            blocks.append(CodeBlock(language, code))
    return blocks
