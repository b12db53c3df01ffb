"""Secrets out of everything llmchat writes: history rows, exports and the messages it prints.

A server may echo the API key back (in an answer, an error message, a page title); a base URL
may carry a password or a key in its query string. `Redactor` replaces every known secret with
`***`, in whole text (`redact`) or in text that arrives in pieces (`feed`/`flush`: a key split
across two pieces is still found). Which secrets are known is the config's business
(`config.known_secrets`); this module only replaces. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Iterable, Tuple

MASK = "***"
MIN_SECRET = 8  # shorter values ("none", "x": what local servers take) are not secrets worth
# hiding, and replacing them would garble ordinary text


class Redactor:
    """Replaces each of `secrets` (longest first) with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self.secrets: Tuple[str, ...] = tuple(sorted(unique, key=len, reverse=True))
        self._longest = len(self.secrets[0]) if self.secrets else 0
        self._held = ""

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def feed(self, text: str) -> str:
        """Redact a piece of a longer text; the piece's end that could begin a secret is held
        back until the next piece (or `flush`) shows whether it does."""
        if not self.secrets:
            return text
        text = self.redact(self._held + text)
        self._held = ""
        keep = self._partial_tail(text)
        if keep:
            text, self._held = text[:-keep], text[-keep:]
        return text

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _partial_tail(self, text: str) -> int:
        """The length of the longest end of `text` that is a proper beginning of a secret."""
        for size in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-size:]
            if any(secret.startswith(tail) for secret in self.secrets):
                return size
        return 0
