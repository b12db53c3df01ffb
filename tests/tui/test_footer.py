"""The footer (llmchat/tui/widgets/footer.py) rebuilds only when the keys it shows change:
Textual's rebuilt it at every focus change and `refresh_bindings`, each rebuild 20-60 ms of a
key's way to the screen (bench_tui.py, `locked`)."""

from __future__ import annotations

from textual._context import active_message_pump
from textual.widgets import Footer

from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import ConversationList
from llmchat.tui.widgets.footer import QuietFooter, fitted, key_width, shown_bindings

SIZE = (100, 30)


def footer_keys(screen) -> list:
    return [(key.key, key.description, key.has_class("-disabled")) for key in screen.query("FooterKey") if key.display]


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
        assert listed.rebuilds + listed.changes >= 2
        assert footer_keys(app.screen) == [(key[0], key[2], key[4]) for key in composed_keys(listed)]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConversationList), what="the list to close")
        await pilot.pause()
        assert main.rebuilds == rebuilt and footer_keys(app.screen) == shown
        # A key that changes what is shown changes the footer (in place: see below).
        app.prompt.load_text("hi")
        await pilot.press("enter")
        await until(pilot, lambda: main.changes, what="a change for the answer's keys (Esc)")
        assert shown_bindings(app.screen) == main._shown


def shown_keys(footer) -> list:
    """The keys on screen, each as what it is built from."""
    return [(key.key, key.key_display, key.description, key.action, key._disabled, key.tooltip) for key in footer.children if key.display]


def composed_keys(footer) -> list:
    """The keys Textual's own footer would compose now (not mounted)."""
    token = active_message_pump.set(footer)  # (as in the footer's own compose: it binds them to it)
    try:
        return [(key.key, key.key_display, key.description, key.action, key._disabled, key.tooltip) for key in Footer.compose(footer)]
    finally:
        active_message_pump.reset(token)


async def test_an_answers_keys_change_the_footer_in_place_as_textual_would_show_them(settings_for, until, settled, tap):
    """An answer's start shows Esc (Cancel) and hides Ctrl+R (Retry), its end the reverse: keys
    hidden and shown again, not a rebuild (15-40 ms each, twice per answer), and what is
    shown is what Textual's footer composes, in its order."""
    app = ChatApp(settings_for(tokens=100, tps=50))
    async with app.run_test(size=SIZE) as pilot:
        footer = app.screen.query_one(QuietFooter)
        await until(pilot, lambda: shown_keys(footer), what="the footer's keys")
        assert shown_keys(footer) == composed_keys(footer)
        rebuilt = footer.rebuilds
        seen = []
        for round_ in range(2):
            app.prompt.load_text(f"question {round_}")
            await tap(pilot, "enter", "\r")
            await until(pilot, lambda: app.check_action("cancel_stream", ()), what="the answer to start")
            await pilot.pause()
            streaming = shown_keys(footer)
            assert streaming == composed_keys(footer)
            assert "cancel_stream" in [key[3] for key in streaming] and "retry" not in [key[3] for key in streaming]
            await settled(app)
            await pilot.pause()
            done = shown_keys(footer)
            assert done == composed_keys(footer)
            assert "retry" in [key[3] for key in done] and "cancel_stream" not in [key[3] for key in done]
            seen.append(list(footer.children))
        assert footer.rebuilds == rebuilt  # never rebuilt for an answer
        assert footer.changes >= 4
        assert seen[0] == seen[1]  # the second answer mounted no key: the same widgets, shown or hidden
        assert len(footer.children) == len({(k.key, k.action) for k in footer.children})


async def test_keys_that_would_come_in_another_order_rebuild_the_footer(settings_for, until):
    """Keeping a hidden key in its place only works while the keys keep their order: another
    order (here: two of the footer's keys swapped behind its back) rebuilds it, as Textual would."""
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        footer = app.screen.query_one(QuietFooter)
        await until(pilot, lambda: len(shown_keys(footer)) > 2, what="the footer's keys")
        rebuilt = footer.rebuilds
        first, second = [key for key in footer.children if key.display][:2]
        footer.move_child(second, before=first)
        footer._shown = None
        app.screen.refresh_bindings()
        await until(pilot, lambda: footer.rebuilds > rebuilt, what="a rebuild")
        await until(pilot, lambda: shown_keys(footer) == composed_keys(footer), what="Textual's order again")


def laid_out_keys(footer) -> list:
    """(key widget, its region) for each key on screen, left to right."""
    keys = [(key, key.region) for key in footer.query_children("FooterKey") if key.display]
    return sorted(keys, key=lambda pair: pair[1].x)


def assert_keys_fit(footer) -> None:
    """Each key shown is whole, inside the footer, and over no other key; `key_width` is what
    Textual lays each out to (margin included)."""
    keys = laid_out_keys(footer)
    assert keys
    right = footer.region.right
    for index, (key, region) in enumerate(keys):
        after = keys[index + 1] if index + 1 < len(keys) else None
        assert region.width == key.get_content_width(footer.size, footer.size) + key.styles.gutter.width, key.key
        assert region.x >= footer.region.x and region.right <= right, (key.key, region, right)
        if after is not None:
            assert region.right + key.styles.margin.right <= after[1].x, (key.key, region, after[0].key, after[1])
        assert key_width(key, footer.compact) == region.width + key.styles.margin.right, (key.key, footer.compact)


async def test_at_any_width_the_keys_shown_fit_whole_and_over_no_other(settings_for, until, settled, tap):
    """Textual docks the palette's key at the right, over the keys that reach it: at 40 columns
    the bar read `^q Qui▏^p palette`. The keys are spaced as Textual spaces them when they fit,
    compact when only that fits, and when even that is too wide, those that matter most stay
    (Enter, Esc while an answer streams, Ctrl+Q), beside the palette's key."""
    app = ChatApp(settings_for(tokens=400, tps=100))
    async with app.run_test(size=(120, 20)) as pilot:
        footer = app.screen.query_one(QuietFooter)
        await until(pilot, lambda: laid_out_keys(footer), what="the footer's keys")
        assert not footer.compact and shown_keys(footer) == composed_keys(footer)  # all of them, as Textual shows them
        assert_keys_fit(footer)
        seen = {}
        for width in (80, 60, 40, 30, 120):
            await pilot.resize_terminal(width, 20)
            await until(pilot, lambda: footer.size.width == width, what=f"the footer at {width}")
            await pilot.pause()
            assert_keys_fit(footer)
            seen[width] = [key.description for key, _ in laid_out_keys(footer)], footer.compact
        assert seen[120][0] == [key[2] for key in composed_keys(footer)]
        assert seen[40] == (["Send", "New line", "Quit", "palette"], True)
        assert seen[30] == (["Send", "Quit", "palette"], True)
        await pilot.resize_terminal(40, 20)
        await until(pilot, lambda: footer.size.width == 40, what="the footer at 40")
        app.prompt.load_text("hi")
        await tap(pilot, "enter", "\r")
        await until(pilot, lambda: app.check_action("cancel_stream", ()), what="the answer to start")
        await until(pilot, lambda: "Cancel" in [key.description for key, _ in laid_out_keys(footer)], what="Esc in the bar")
        assert [key.description for key, _ in laid_out_keys(footer)] == ["Send", "Quit", "Cancel", "palette"]
        assert_keys_fit(footer)
        await settled(app)
        await until(pilot, lambda: "Cancel" not in [key.description for key, _ in laid_out_keys(footer)], what="Esc to leave")
        assert [key.description for key, _ in laid_out_keys(footer)] == ["Send", "New line", "Quit", "palette"]
        await pilot.resize_terminal(120, 20)
        await until(pilot, lambda: footer.size.width == 120, what="the footer at 120")
        await pilot.pause()
        assert not footer.compact and shown_keys(footer) == composed_keys(footer)
        assert_keys_fit(footer)


def test_what_fits_is_the_roomiest_way_then_what_matters_first():
    class Key:
        def __init__(self, display: str, description: str, action: str, palette: bool = False) -> None:
            self.key_display, self.description, self.action, self.palette = display, description, action, palette

        def has_class(self, name: str) -> bool:
            return self.palette and name == "-command-palette"

    keys = [Key("⏎", "Send", "submit"), Key("^j", "New line", "newline"), Key("^q", "Quit", "quit"), Key("^r", "Retry", "retry")]
    palette = Key("^p", "palette", "command_palette", palette=True)
    assert [key_width(key, False) for key in keys] == [8, 13, 9, 10] and key_width(palette, False) == 12
    assert [key_width(key, True) for key in keys] == [7, 12, 8, 9] and key_width(palette, True) == 12
    assert fitted(keys, palette, 52) == (False, keys, True)
    assert fitted(keys, palette, 51) == (True, keys, True)
    assert fitted(keys, palette, 40, ("submit", "quit")) == (True, [keys[0], keys[1], keys[2]], True)
    assert fitted(keys, palette, 30, ("submit", "quit")) == (True, [keys[0], keys[2]], True)
    assert fitted(keys, palette, 36, ("submit", "quit")) == (True, [keys[0], keys[2], keys[3]], True)  # Retry fits where New line does not
    assert fitted(keys, palette, 12, ("quit",)) == (True, [keys[2]], False)  # no key beside the palette's: the key
    assert fitted(keys, None, 5) == (True, [], False)
