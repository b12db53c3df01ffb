"""The one sanitiser (llmchat/sanitize.py) and the redactor (llmchat/redact.py): what may reach
a terminal, and what secrets never reach anything llmchat writes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmchat.redact import MASK, Redactor
from llmchat.sanitize import Sanitizer, one_line, strip_controls

PACKAGE = Path(__file__).resolve().parents[2] / "llmchat"

# Every BiDi override, embedding and isolate control: each can make a terminal show text in an
# order other than the one it has ("Trojan Source").
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("control", BIDI, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_controls_never_reach_a_terminal(control: str) -> None:
    text = f"access {control}level = 'user'{control} granted"
    assert strip_controls(text) == "access level = 'user' granted"
    sanitizer = Sanitizer()
    assert sanitizer.feed(text[:8]) + sanitizer.feed(text[8:]) + sanitizer.flush() == "access level = 'user' granted"
    assert one_line(text) == "access level = 'user' granted"


def test_right_to_left_text_itself_is_kept() -> None:
    text = "שלום עולם مرحبا \u200f\u200e"  # letters and the implicit marks are not controls
    assert strip_controls(text) == text


@pytest.mark.parametrize(
    "text, line",
    [
        ("two\nlines", "two lines"),
        ("tab\tand  spaces", "tab and spaces"),
        ("para\u2029sep\u2028line\u0085next", "para sep line next"),
        ("\x1b]0;title\x07visible\x1b[2J", "visible"),
        ("open \x1b]52;c;never closed", "open 52;c;never closed"),
        ("\u202eevil\u202c", "evil"),
        ("", ""),
    ],
)
def test_one_line_makes_any_text_one_clean_line(text: str, line: str) -> None:
    assert one_line(text) == line


def test_one_line_cuts_long_labels() -> None:
    assert one_line("x" * 100, 10) == "x" * 9 + "…"
    assert one_line(None) == "None" and one_line(42) == "42"


@given(st.text(alphabet=st.sampled_from(list("ab \n\t\x1b[]0;2Jm\x07\\\x9b\x9d\u202e\u2066\u2028")), max_size=40))
@settings(max_examples=300, deadline=None)
def test_one_line_is_always_one_line_a_terminal_cannot_act_on(text: str) -> None:
    line = one_line(text)
    assert "\n" not in line and "\t" not in line
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in line)


@pytest.mark.parametrize("module", ["sanitize.py", "redact.py"])
def test_the_sanitiser_and_the_redactor_import_no_face_and_no_ui_library(module: str) -> None:
    """Every face and the stream client may use them: they import nothing of llmchat, Rich or Textual."""
    names = set()
    for node in ast.walk(ast.parse((PACKAGE / module).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert sorted(n for n in names if n.split(".")[0] in ("llmchat", "rich", "textual", "typer")) == []


SECRETS = ("sk-live-abcdefgh12345678", "sk-ant-zyxwvuts98765432")


@pytest.mark.parametrize("secret", SECRETS)
def test_every_known_secret_is_masked(secret: str) -> None:
    redactor = Redactor(SECRETS)
    assert redactor.redact(f"key={secret}, again {secret}.") == f"key={MASK}, again {MASK}."


def test_short_values_are_not_treated_as_secrets() -> None:
    """A local server takes any key ("none", "x"): masking those would garble ordinary text."""
    redactor = Redactor(["x", "none", ""])
    assert not redactor and redactor.redact("none of x") == "none of x"


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=6))
@settings(max_examples=200, deadline=None)
def test_a_secret_split_across_pieces_is_still_masked(cuts) -> None:
    text = f"echo {SECRETS[0]} and {SECRETS[1]} and {SECRETS[0][:10]} (a prefix is not a key)"
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    redactor = Redactor(SECRETS)
    out = "".join(redactor.feed(text[a:b]) for a, b in zip(bounds, bounds[1:])) + redactor.flush()
    assert out == Redactor(SECRETS).redact(text)
    assert SECRETS[0] not in out and SECRETS[1] not in out
