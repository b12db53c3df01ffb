"""Saving the theme chosen in the TUI: one top-level line changes, everything else is kept, a new
file is private, and an edit that could change anything else is refused."""

from __future__ import annotations

import os
import stat

import pytest

from llmchat.config import ConfigError, config_path, load_config, save_theme

USER_FILE = """\
# my llmchat settings
default = "local"   # the one I use most

# a server on my desk
[profiles.local]
api = "openai-chat"
base_url = "http://127.0.0.1:8000/v1"
model = "qwen"   # fast enough
"""


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_holds_the_theme_and_is_private(isolated_home):
    path = save_theme("dusk")
    assert path == config_path() == isolated_home / "config.toml"
    assert path.read_text() == 'theme = "dusk"\n'
    assert mode(path) == 0o600
    assert load_config().theme == "dusk"


def test_the_config_directory_is_created(tmp_path):
    path = tmp_path / "new" / "dir" / "config.toml"
    save_theme("paper", path)
    assert load_config(path).theme == "paper"


def test_the_users_file_is_kept_and_the_line_goes_above_the_tables(isolated_home):
    path = isolated_home / "config.toml"
    path.write_text(USER_FILE)
    save_theme("ember")
    text = path.read_text()
    # Above the first table and the comment that introduces it; every other line as it was.
    assert text == USER_FILE.replace("\n# a server", '\ntheme = "ember"\n\n# a server')
    config = load_config()
    assert config.theme == "ember" and config.default == "local" and config.profiles["local"].model == "qwen"


def test_an_existing_theme_line_is_replaced_in_place(isolated_home):
    path = isolated_home / "config.toml"
    path.write_text('theme = "nord"\n' + USER_FILE)
    save_theme("contrast")
    save_theme("paper")
    assert path.read_text() == 'theme = "paper"\n' + USER_FILE


def test_a_theme_key_inside_a_table_is_not_the_top_level_one(isolated_home):
    path = isolated_home / "config.toml"
    path.write_text('[profiles.theme]\nmodel = "theme"\n')
    save_theme("dusk")
    assert path.read_text() == 'theme = "dusk"\n\n[profiles.theme]\nmodel = "theme"\n'


def test_crlf_line_endings_are_kept(isolated_home):
    path = isolated_home / "config.toml"
    path.write_bytes(b'default = "a"\r\n\r\n[profiles.a]\r\nmodel = "m"\r\n')
    save_theme("dusk")
    assert path.read_bytes() == b'default = "a"\r\n\r\ntheme = "dusk"\r\n\r\n[profiles.a]\r\nmodel = "m"\r\n'


def test_an_existing_files_mode_is_kept(isolated_home):
    path = isolated_home / "config.toml"
    path.write_text(USER_FILE)
    os.chmod(path, 0o640)
    save_theme("dusk")
    assert mode(path) == 0o640


def test_a_symlinked_config_stays_a_symlink(isolated_home, tmp_path):
    real = tmp_path / "dotfiles" / "llmchat.toml"
    real.parent.mkdir()
    real.write_text(USER_FILE)
    (isolated_home / "config.toml").symlink_to(real)
    save_theme("dusk")
    assert (isolated_home / "config.toml").is_symlink()
    assert load_config(real).theme == "dusk"


def test_an_edit_that_would_change_more_than_the_theme_is_refused(isolated_home):
    # A multi-line string whose second line looks like a top-level theme assignment.
    original = 'default = """x\ntheme = "old" """\n'
    path = isolated_home / "config.toml"
    path.write_text(original)
    with pytest.raises(ConfigError, match='set theme = "dusk" by hand'):
        save_theme("dusk")
    assert path.read_text() == original
    assert [p.name for p in isolated_home.iterdir()] == ["config.toml"]  # no temporary file left


def test_a_broken_file_is_not_touched(isolated_home):
    path = isolated_home / "config.toml"
    path.write_text("default = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_theme("dusk")
    assert path.read_text() == "default = \n"


def test_an_unwritable_place_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="^cannot (read|write) .*config.toml: Not a directory$"):
        save_theme("dusk", blocker / "config.toml")
