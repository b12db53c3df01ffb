"""The footer (llmchat/tui/widgets/footer.py) rebuilds only when the keys it shows change:
Textual's rebuilt it at every focus change and `refresh_bindings`, each rebuild 20-60 ms of a
key's way to the screen (bench_tui.py, `locked`)."""

from __future__ import annotations

from textual.widgets import Footer

from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import ConversationList
from llmchat.tui.widgets.footer import QuietFooter, shown_bindings

SIZE = (100, 30)


def footer_keys(screen) -> list:
    return [(key.key, key.description, key.has_class("-disabled")) for key in screen.query("FooterKey")]


async def test_the_footer_rebuilds_only_when_its_keys_change(settings_for, until):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        main = app.screen.query_one(Footer)
        assert isinstance(main, QuietFooter)
        await until(pilot, lambda: footer_keys(app.screen), what="the footer's keys")
        rebuilt, shown = main.rebuilds, footer_keys(app.screen)
        widgets = list(app.screen.query("FooterKey"))
        for _ in range(3):
            app.screen.refresh_bindings()  # what Textual does at every focus change
            await pilot.pause()
        assert main.rebuilds == rebuilt  # the same keys: no rebuild
        assert list(app.screen.query("FooterKey")) == widgets  # the very same key widgets
        # The list and back: the main screen's keys are the same after it.
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConversationList), what="the list")
        listed = app.screen.query_one(Footer)
        await until(pilot, lambda: footer_keys(app.screen), what="the list's keys")
        before = footer_keys(app.screen)
        assert any(description == "Rename" for _, description, _ in before)
        # The search box takes letters: r (rename) and d (delete) leave the footer -- a rebuild.
        await pilot.press("slash")
        await until(pilot, lambda: footer_keys(app.screen) != before, what="the footer to follow the focus")
        assert not any(description == "Rename" for _, description, _ in footer_keys(app.screen))
        assert listed.rebuilds >= 2
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConversationList), what="the list to close")
        await pilot.pause()
        assert main.rebuilds == rebuilt and footer_keys(app.screen) == shown
        # A key that changes what is enabled does rebuild it.
        app.prompt.load_text("hi")
        await pilot.press("enter")
        await until(pilot, lambda: main.rebuilds > rebuilt, what="a rebuild for the answer's keys (Esc)")
        assert shown_bindings(app.screen) == main._shown
