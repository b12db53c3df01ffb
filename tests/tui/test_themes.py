"""The app's theme: --theme > the config's theme > Textual's default, unknown and broken themes
reported without stopping the app, and the colours reaching the widgets."""

from __future__ import annotations

import pytest
from textual.color import Color
from theme_samples import GOOD, REPO_THEMES, write  # tests/theme_samples.py

from llmchat.config import Config, ConfigError
from llmchat.tui.app import ChatApp, run_tui

SIZE = (100, 30)


async def test_the_theme_flag_selects_a_custom_theme(settings_for, tmp_path):
    app = ChatApp(settings_for(), theme="paper", themes_from=[REPO_THEMES])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "paper" and not app.current_theme.dark
        assert {"dusk", "paper", "ember", "contrast"} <= set(app.custom_themes)
        # The colours reach the widgets: the status bar is the theme's panel colour.
        assert app.status.styles.background == Color.parse("#DFD8C6")
        assert app.screen.styles.background == Color.parse("#F6F3EA")


async def test_the_flag_beats_the_config_and_the_config_beats_the_default(settings_for, isolated_home):
    config = Config(isolated_home / "config.toml", theme="ember")
    assert ChatApp(settings_for(), config=config, theme="nord", themes_from=[REPO_THEMES]).theme == "nord"
    assert ChatApp(settings_for(), config=config, themes_from=[REPO_THEMES]).theme == "ember"
    assert ChatApp(settings_for(), config=Config(isolated_home / "config.toml"), themes_from=[REPO_THEMES]).theme == "textual-dark"


def test_an_unknown_theme_flag_is_an_error_listing_the_themes(settings_for):
    with pytest.raises(ConfigError) as caught:
        ChatApp(settings_for(), theme="sunburst", themes_from=[REPO_THEMES])
    message = str(caught.value)
    assert message.startswith("unknown theme 'sunburst' (themes: ")
    assert "contrast, dracula" in message and "paper" in message and "textual-dark" in message


def test_a_theme_flag_naming_a_broken_file_says_what_is_wrong(settings_for, tmp_path):
    path = write(tmp_path, "mine.toml", 'primary = "#336699"\nprimry = "#000000"\n')
    with pytest.raises(ConfigError, match=rf"^theme 'mine' cannot be used: {path}: unknown key 'primry'"):
        ChatApp(settings_for(), theme="mine", themes_from=[tmp_path])


def test_run_tui_exits_2_with_one_line_for_an_unknown_theme(settings_for, capsys):
    assert run_tui(settings_for(), theme="sunburst") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown theme 'sunburst' (themes: ") and err.count("\n") == 1


def test_the_command_line_passes_theme_to_the_tui(monkeypatch, capsys):
    """`llmchat --theme NAME` on a terminal: the name reaches run_tui and a bad one exits 2."""
    import sys

    from llmchat import cli

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert cli.main(["--theme", "sunburst"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown theme 'sunburst' (themes: ")


async def test_a_broken_theme_file_does_not_stop_the_app(settings_for, tmp_path, isolated_home, spy_notices):
    broken = write(tmp_path, "broken.toml", 'primary = "#336699"\n[variables]\nborder = "nonsense"\n')
    write(tmp_path, "fine.toml", GOOD)
    app = ChatApp(settings_for(), themes_from=[tmp_path])
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.is_running
        assert "harbour" in app.available_themes and "broken" not in app.available_themes
        assert notices == [(f"Theme skipped: {broken}: variable 'border' is not a colour: failed to parse 'nonsense' as a color", "warning")]
        app.theme = "harbour"  # the good file from the same folder works
        await pilot.pause()
        assert app.screen.styles.background == Color.parse("#F6F3EA")


async def test_a_missing_theme_named_in_the_config_is_reported(settings_for, isolated_home, spy_notices):
    config = Config(isolated_home / "config.toml", theme="deleted-theme")
    app = ChatApp(settings_for(), config=config, themes_from=[REPO_THEMES])
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "textual-dark"
        [(message, severity)] = notices
        assert message.startswith("Theme 'deleted-theme' (from ") and message.endswith("is not available; using textual-dark.")
        assert severity == "warning"


async def test_a_users_theme_file_is_loaded_by_default(settings_for, isolated_home):
    write(isolated_home / "themes", "mine.toml", GOOD.replace('"harbour"', '"mine"'))
    app = ChatApp(settings_for(), theme="mine")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "mine" and "paper" in app.available_themes
