"""The pickers the command palette opens (themes, profiles and models, code blocks): a provider
of plain-text choices, listed in full until the user types, then fuzzy-matched. Choices that
take a moment to find (the server's model list) come from `more`, which the palette awaits
(showing itself busy) before it lists anything.

Textual's `SimpleProvider`, which this extends, reads every title and help text as markup, so
a model called `llama[8b]` or a code preview like `x = [1, 2]` would be mangled or refused.
Here the text is `Content`, never markup, and the match is highlighted on the plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional

from textual.command import DiscoveryHit, Hit, Hits, Matcher, SimpleProvider
from textual.content import Content

TYPED_SCORE = 0.01  # a choice made of what was typed comes after every real match


@dataclass(frozen=True)
class Choice:
    title: str
    help: str
    run: Callable[[], Any]


class Choices(SimpleProvider):
    """`choices` for the palette; `typed(query)` may offer one more choice made of the query
    (e.g. any model name). A `SimpleProvider` because the palette takes an instance of that
    class (not only a provider class) in its `providers`."""

    def __init__(
        self,
        screen: Any,
        choices: Iterable[Choice],
        typed: Optional[Callable[[str], Optional[Choice]]] = None,
        more: Optional[Callable[[], Awaitable[Iterable[Choice]]]] = None,
    ) -> None:
        super().__init__(screen, [])
        self._choices = list(choices)
        self._typed = typed
        self._more = more

    async def startup(self) -> None:
        if self._more is not None:
            self._choices += await self._more()

    async def discover(self) -> Hits:
        for choice in self._choices:
            yield DiscoveryHit(Content(choice.title), choice.run, text=choice.title, help=_help(choice))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for choice in self._choices:
            score = matcher.match(choice.title)
            if score > 0:
                yield Hit(score, _highlight(matcher, choice.title), choice.run, text=choice.title, help=_help(choice))
        query = query.strip()
        if self._typed is not None and query:
            typed = self._typed(query)
            if typed is None:
                return
            yield Hit(TYPED_SCORE, Content(typed.title), typed.run, text=typed.title, help=_help(typed))


def _help(choice: Choice) -> Any:
    # The palette passes help through Content.from_markup, which returns Content unchanged.
    return Content(choice.help) if choice.help else None


def _highlight(matcher: Matcher, text: str) -> Content:
    content = Content(text)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets:
        content = content.stylize(matcher.match_style, offset, offset + 1)
    return content
