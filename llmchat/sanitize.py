"""What may reach a terminal: one sanitiser for every face and every string, whoever wrote it.

A terminal obeys the bytes it is sent, so text from a server or a database (an answer, an error
message, a model name, a stored title) can clear the screen, set the window title, write the
clipboard (OSC 52), forge hyperlinks (OSC 8), or reorder what is shown (BiDi overrides and
isolates, U+202A-U+202E and U+2066-U+2069, the "Trojan Source" trick). `strip_controls` removes
all of that from whole text, `Sanitizer` from text that arrives in pieces, and `one_line` makes
a label or a message one clean line. Imports nothing but `re`: the stream client, the one-shot
face and the TUI all use it, and `--raw` pays nothing for it.

Only terminals get sanitised text: an answer written to a pipe or a file stays byte-exact.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"

# One left-to-right scan: complete sequences are removed; a sequence still open at the very
# end of the text (it may complete in the next delta) is held back.
_SCAN = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c)"  # OSC, DCS, SOS, PM, APC up to BEL or ST
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f].*?(?:\x07|\x1b\\|\x9c)"  # 8-bit string introducers
    r"|(?P<open>"  # unfinished, at the end only
    r"\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x9c\x1b]*\x1b?|[ -/]*)"
    r"|\x9b[0-?]*[ -/]*"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x9c\x1b]*\x1b?"
    r")\Z"
    r"|\x1b[ -/]*[0-~]"  # other escape sequences (ESC c, ESC 7, ...)
    rf"|[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]",  # C0 except TAB and LF, DEL, C1, BiDi controls
    re.S,
)
_ANY_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_HOLD_LIMIT = 4096


def strip_controls(text: str) -> str:
    """Remove control sequences, control characters (keeping TAB and LF) and BiDi controls
    from whole text."""
    if not _ANY_CONTROL.search(text):
        return text
    sanitizer = Sanitizer()
    return sanitizer.feed(text) + sanitizer.flush()


def one_line(text: object, limit: int = 0) -> str:
    """`text` (anything: str() is taken) as one line safe for a terminal: sanitised, every run
    of white space (newlines, tabs, U+2028...) one space; cut to `limit` characters with `…`
    when `limit` is given. For labels, titles, model names and messages, never for answers."""
    # White space first (CR, NEL and the like become spaces, not nothing), then again for the
    # gaps that removed sequences leave.
    line = " ".join(strip_controls(" ".join(str(text).split())).split())
    if limit and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


class Sanitizer:
    """Streaming `strip_controls`: a sequence split across deltas is held until it completes."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        if self._held:
            text = self._held + text
            self._held = ""
        if not _ANY_CONTROL.search(text):
            return text
        return _SCAN.sub(self._replace, text)

    def _replace(self, match: "re.Match[str]") -> str:
        if match.group("open") is not None:
            held = match.group()
            if len(held) <= _HOLD_LIMIT:
                self._held = held
                return ""
            # Too long to be a real sequence (an introducer from mojibake, say): show its text
            # rather than hold the rest of the answer back, rescanning it on every delta.
            return _drop_introducer(held)
        return ""

    def flush(self) -> str:
        """End of answer: a sequence never finished loses its introducer; its text is kept."""
        held, self._held = self._held, ""
        return _drop_introducer(held) if held else ""


def _drop_introducer(sequence: str) -> str:
    """An unfinished sequence given up on: its introducer goes, its text stays (sanitised)."""
    body = sequence[2:] if sequence[0] == "\x1b" else sequence[1:]
    return _SCAN.sub(lambda m: "", body)  # nothing can be held any more
