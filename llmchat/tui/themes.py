"""Colour themes for the TUI: Textual's built-in themes plus one TOML file per custom theme.

Textual has no theme file format, so this is a small one: the fields of `textual.theme.Theme`
at the top level and an optional `[variables]` table of Textual's theme variables (see
themes/README.md). Everything is checked before Textual sees it, because Textual only finds a
bad colour when it re-parses its stylesheet -- and then the app dies. So a file with an unknown
key, a misspelt variable or a colour Textual cannot parse is skipped with a one-line reason
that names the file, and the app starts without it.

Where the files are, in order (a later file replaces an earlier theme of the same name, and any
of them may replace a built-in one):
  1. the themes that ship with llmchat: `themes/` in the source checkout (an editable install
     runs from it), or the copy a wheel installs as data files under `<prefix>/share/llmchat/themes`;
  2. the user's own: `<config dir>/themes/` (next to config.toml; `LLMCHAT_HOME/themes`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from textual.color import Color, ColorParseError
from textual.css.constants import VALID_STYLE_FLAGS
from textual.theme import Theme

COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "warning",
    "error",
    "success",
)
NUMBER_KEYS = ("luminosity_spread", "text_alpha")
KNOWN_KEYS = ("name", "dark", *COLOUR_KEYS, *NUMBER_KEYS, "variables")

# Values Textual accepts for some variables that are not colours (e.g. link-background).
_COLOUR_WORDS = frozenset({"auto", "initial", "transparent"})
_ALPHA = re.compile(r"\d{1,3}(?:\.\d+)?%")


class ThemeFileError(Exception):
    """A theme file cannot be used; the message is one line that starts with the file's path."""


@dataclass(frozen=True)
class SkippedTheme:
    path: Path
    reason: str  # one line, starting with the path

    def __str__(self) -> str:
        return self.reason


def shipped_themes_dir() -> Optional[Path]:
    """The themes that come with llmchat, wherever this copy of llmchat was installed from."""
    root = Path(__file__).resolve().parents[2]
    checkout = root / "themes"
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout  # a source checkout or an editable install: the repository's own files
    # A wheel installs themes/*.toml as data files (pyproject: tool.setuptools.data-files). Where
    # that lands depends on the install scheme (venv, --user, system), so ask the record of the
    # installed files rather than guess a prefix.
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llmchat")
    except PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.suffix == ".toml" and file.parts[-3:-1] == ("llmchat", "themes"):
            return Path(str(dist.locate_file(file))).resolve().parent
    return None


def user_themes_dir() -> Path:
    from llmchat.paths import config_dir

    return config_dir() / "themes"


def theme_dirs() -> List[Path]:
    shipped = shipped_themes_dir()
    return [*([shipped] if shipped is not None else []), user_themes_dir()]


def load_themes(dirs: Iterable[Path]) -> Tuple[List[Theme], List[SkippedTheme]]:
    """Every `*.toml` in `dirs` (a missing directory is fine), and the files that were skipped."""
    themes: Dict[str, Theme] = {}
    skipped: List[SkippedTheme] = []
    for folder in dirs:
        try:
            paths = sorted(folder.glob("*.toml"))
        except OSError:
            continue
        for path in paths:
            try:
                theme = load_theme(path)
            except ThemeFileError as exc:
                skipped.append(SkippedTheme(path, str(exc)))
            else:
                themes[theme.name] = theme
    return list(themes.values()), skipped


def load_theme(path: Path) -> Theme:
    """One theme file as a `Theme`; `ThemeFileError` says what is wrong with it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    def fail(message: str) -> ThemeFileError:
        return ThemeFileError(f"{path}: {message}")

    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise fail(f"cannot read it: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise fail(f"not valid TOML: {exc}") from None

    for key in data:
        if key not in KNOWN_KEYS:
            raise fail(f"unknown key {key!r}{_suggest(key, KNOWN_KEYS)} (known: {', '.join(KNOWN_KEYS)})")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise fail("'name' must be letters, digits, '-', '_' or '.' (it is what --theme takes)")
    if "primary" not in data:
        raise fail("'primary' is required (the colour of the prompt's border and the user's messages)")
    fields: Dict[str, Any] = {"name": name}
    for key in COLOUR_KEYS:
        if key in data:
            fields[key] = _colour(data[key], key, fail)
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise fail("'dark' must be true or false")
    fields["dark"] = dark
    for key in NUMBER_KEYS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise fail(f"{key!r} must be a number from 0 to 1")
            fields[key] = float(value)
    fields["variables"] = _variables(data.get("variables", {}), fail)
    return Theme(**fields)


def _colour(value: Any, key: str, fail: Any) -> str:
    if not isinstance(value, str):
        raise fail(f'{key!r} must be a colour in a string, e.g. "#1e2030"')
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise fail(f"{key!r} is not a colour: {exc}") from None
    return value


def _variables(table: Any, fail: Any) -> Dict[str, str]:
    """Textual's theme variables, each checked the way Textual will use it: a text style for
    the `*-style*` variables, else a colour (or auto/initial) with an optional alpha percentage."""
    if not isinstance(table, dict):
        raise fail("'variables' must be a table of Textual theme variables")
    known = _known_variables()
    for name, value in table.items():
        if name not in known:
            raise fail(f"unknown variable {name!r}{_suggest(name, known)}")
        if not isinstance(value, str):
            raise fail(f"variable {name!r} must be a string")
        if "style" in name.split("-"):  # e.g. link-style, link-style-hover, *-text-style
            words = value.split()
            if not words or not set(words) <= VALID_STYLE_FLAGS:
                raise fail(f"variable {name!r} is not a text style: {value!r} (use words from: {', '.join(sorted(VALID_STYLE_FLAGS))})")
            continue
        colour, _, alpha = value.strip().rpartition(" ") if value.strip().endswith("%") else (value.strip(), "", "")
        if alpha and not _ALPHA.fullmatch(alpha):
            raise fail(f"variable {name!r}: {alpha!r} is not a percentage")
        if colour not in _COLOUR_WORDS:
            try:
                Color.parse(colour)
            except ColorParseError as exc:
                raise fail(f"variable {name!r} is not a colour: {exc}") from None
    return dict(table)


_KNOWN_VARIABLES: Optional[frozenset] = None


def _known_variables() -> frozenset:
    """The variables Textual generates for every theme: the ones a theme file may set."""
    global _KNOWN_VARIABLES
    if _KNOWN_VARIABLES is None:
        _KNOWN_VARIABLES = frozenset(Theme(name="probe", primary="#808080").to_color_system().generate())
    return _KNOWN_VARIABLES


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
