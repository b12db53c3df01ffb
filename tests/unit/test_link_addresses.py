"""A link whose text is its address (`www.example.com` for http://www.example.com) shows it once,
in the one-shot rendered writer; any other link still shows where it goes after its text."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from llmchat.output import RenderedWriter, same_address


def _rendered(text: str, width: int = 80) -> str:
    console = Console(file=io.StringIO(), force_terminal=False, width=width)
    writer = RenderedWriter(console, live=False)
    writer.write(text)
    writer.close()
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text, href, same",
    [
        ("https://example.com/a", "https://example.com/a", True),
        ("www.example.com", "http://www.example.com", True),  # the scheme a linkifier adds
        (" www.example.com ", "https://www.example.com", True),
        ("me@example.net", "mailto:me@example.net", True),
        ("example.com", "http://evil.example", False),
        ("www.example.com", "ftp://www.example.com", False),
        ("the guide", "https://example.com/guide", False),
        ("//www.example.com", "http://www.example.com", False),
    ],
)
def test_same_address(text: str, href: str, same: bool) -> None:
    assert same_address(text, href) is same


def test_a_link_whose_text_is_its_address_but_for_the_scheme_is_printed_once() -> None:
    out = _rendered("See [www.example.com](http://www.example.com) now.\n")
    assert "See www.example.com now." in out and "http://" not in out


def test_a_link_whose_text_is_another_address_still_shows_where_it_goes() -> None:
    out = _rendered("See [www.example.com](http://evil.example) and [site](http://www.example.com).\n")
    assert "www.example.com (http://evil.example)" in out and "site (http://www.example.com)" in out
