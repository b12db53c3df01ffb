"""In the TUI, a `www.` address (linkified: http://www.example.com) or a link whose text is its
address shows that address once; a link with other text still shows where it goes after it."""

from __future__ import annotations

from test_answer_view import painted_widget_lines  # tests/tui/test_answer_view.py


async def test_an_address_is_shown_once_and_other_links_show_where_they_go() -> None:
    source = "See www.example.org, [www.example.net](http://www.example.net) and [the site](https://www.example.com).\n"
    lines = await painted_widget_lines(source, 100)
    text = " ".join(strip.text.strip() for strip, _ in lines)
    assert "See www.example.org, www.example.net and the site https://www.example.com." in text
    links = {segment.style.link for strip, _ in lines for segment in strip if segment.style is not None and segment.style.link}
    assert links == {"http://www.example.org", "http://www.example.net", "https://www.example.com"}  # still links
