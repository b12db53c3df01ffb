"""Theme files: the TOML loader (good files, broken files, unknown keys) and where the files are
found (the checkout, a wheel's data files, the user's config directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from theme_samples import GOOD, REPO_THEMES, write  # tests/theme_samples.py

from llmchat.tui import themes as theme_module
from llmchat.tui.themes import ThemeFileError, load_theme, load_themes, shipped_themes_dir, theme_dirs


def test_a_good_file_becomes_a_theme(tmp_path):
    theme = load_theme(write(tmp_path, "whatever.toml", GOOD))
    assert theme.name == "harbour"
    assert theme.dark is False
    assert theme.primary == "#2B62A6" and theme.panel == "rgb(223, 216, 198)"
    assert theme.text_alpha == 0.9
    assert theme.variables == {
        "border-blurred": "#C8C0AA",
        "input-selection-background": "#2B62A6 25%",
        "block-cursor-text-style": "bold underline",
        "link-color": "auto 87%",
    }
    # Textual can build every colour of it.
    assert theme.to_color_system().generate()["primary"] == "#2B62A6"


def test_the_name_defaults_to_the_file_name(tmp_path):
    theme = load_theme(write(tmp_path, "minimal.toml", 'primary = "#336699"\n'))
    assert theme.name == "minimal" and theme.dark is True


@pytest.mark.parametrize(
    "text, reason",
    [
        ('primary = "#336699"\nprimery = "#000000"\n', "unknown key 'primery' (did you mean 'primary'?) (known: name, dark, primary,"),
        ('primary = "bleu"\n', "'primary' is not a colour: failed to parse 'bleu' as a color; did you mean 'blue'?"),
        ('primary = "#12345"\n', "'primary' is not a colour"),
        ("primary = 336699\n", "'primary' must be a colour in a string"),
        ('background = "#000000"\n', "'primary' is required"),
        ('primary = "#336699"\ndark = "yes"\n', "'dark' must be true or false"),
        ('primary = "#336699"\ntext_alpha = 2\n', "'text_alpha' must be a number from 0 to 1"),
        ('primary = "#336699"\nname = "two words"\n', "'name' must be letters, digits"),
        ('primary = "#336699"\n[variables]\nbordr = "#000000"\n', "unknown variable 'bordr' (did you mean 'border'?)"),
        ('primary = "#336699"\n[variables]\nborder = "nonsense"\n', "variable 'border' is not a colour"),
        ('primary = "#336699"\n[variables]\nborder = "#000000 lots%"\n', "variable 'border': 'lots%' is not a percentage"),
        ('primary = "#336699"\n[variables]\nlink-style-hover = "wobbly"\n', "variable 'link-style-hover' is not a text style"),
        ('primary = "#336699"\nvariables = 3\n', "'variables' must be a table"),
        ('primary = "#336699\n', "not valid TOML"),
    ],
)
def test_a_broken_file_is_refused_with_one_line_naming_it(tmp_path, text, reason):
    path = write(tmp_path, "broken.toml", text)
    with pytest.raises(ThemeFileError) as caught:
        load_theme(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message


def test_broken_files_are_skipped_and_the_rest_load(tmp_path):
    write(tmp_path, "good.toml", GOOD)
    broken = write(tmp_path, "bad.toml", 'primary = "#336699"\ncolour = "red"\n')
    write(tmp_path, "notes.md", "not a theme")
    themes, skipped = load_themes([tmp_path, tmp_path / "missing"])
    assert [theme.name for theme in themes] == ["harbour"]
    assert [problem.path for problem in skipped] == [broken]
    assert str(skipped[0]).startswith(f"{broken}: unknown key 'colour'")


def test_a_later_folder_replaces_a_theme_of_the_same_name(tmp_path):
    write(tmp_path / "shipped", "dusk.toml", 'primary = "#111111"\n')
    write(tmp_path / "mine", "dusk.toml", 'primary = "#222222"\n')
    themes, skipped = load_themes([tmp_path / "shipped", tmp_path / "mine"])
    assert [(theme.name, theme.primary) for theme in themes] == [("dusk", "#222222")] and not skipped


def test_the_shipped_themes_all_load():
    themes, skipped = load_themes([REPO_THEMES])
    assert not skipped
    kinds = {theme.name: theme.dark for theme in themes}
    assert kinds == {"contrast": True, "dusk": True, "ember": True, "paper": False}
    for theme in themes:
        variables = theme.to_color_system().generate()
        assert {"primary", "background", "surface", "panel", "foreground"} <= set(variables)


def test_theme_files_are_found_in_the_checkout_and_next_to_the_config(isolated_home):
    # Running from the source checkout (an editable install): the repository's themes/.
    assert shipped_themes_dir() == REPO_THEMES
    assert theme_dirs() == [REPO_THEMES, isolated_home / "themes"]


def test_without_a_checkout_the_wheels_data_files_are_found(tmp_path, monkeypatch):
    """A wheel puts themes/*.toml under <prefix>/share/llmchat/themes and records them among
    the distribution's files; the loader follows that record."""
    prefix = tmp_path / "venv"
    site = prefix / "lib" / "python3" / "site-packages"
    package = site / "llmchat" / "tui"
    package.mkdir(parents=True)
    (package / "themes.py").write_text("")
    data = write(prefix / "share" / "llmchat" / "themes", "dusk.toml", 'primary = "#336699"\n')

    class Dist:
        files = [Path("llmchat/tui/themes.py"), Path("../../../share/llmchat/themes/dusk.toml")]

        def locate_file(self, file):
            return site / file

    monkeypatch.setattr(theme_module, "__file__", str(package / "themes.py"))
    monkeypatch.setattr("importlib.metadata.distribution", lambda name: Dist())
    assert shipped_themes_dir() == data.parent
