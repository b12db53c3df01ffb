"""A tiny terminal for tests: the text (not the colours) a terminal would show after the bytes an
app wrote to it. It knows what Textual and llmchat write: cursor moves (CUP), the scroll region
(DECSTBM), scrolling it up and down (SU, SD), line feeds (which scroll at the region's bottom),
and text, wide characters taking two cells. Other sequences (colours, modes) are skipped."""

from __future__ import annotations

import re
from typing import List

from rich.cells import cell_len

CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z@])")


class Terminal:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows: List[List[str]] = [[" "] * width for _ in range(height)]
        self.x = self.y = 0
        self.top, self.bottom = 0, height  # the scroll region, bottom excluded

    def text(self) -> List[str]:
        return ["".join(row).rstrip() for row in self.rows]

    def _scroll(self, rows: int) -> None:
        region = self.rows[self.top : self.bottom]
        blank = [[" "] * self.width for _ in range(min(abs(rows), len(region)))]
        region = region[rows:] + blank if rows > 0 else blank + region[: len(region) + rows]
        self.rows[self.top : self.bottom] = region

    def _control(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # modes (synchronized output, the cursor shown)
        numbers = [int(part) if part else 0 for part in params.split(";")] if params else []
        if final == "H":
            row, column = (numbers + [1, 1])[:2]
            self.y, self.x = max(row, 1) - 1, max(column, 1) - 1
        elif final == "r":
            top, bottom = (numbers + [0, 0])[:2]
            self.top, self.bottom = (top or 1) - 1, bottom or self.height
            self.x = self.y = 0
        elif final == "S":
            self._scroll(numbers[0] if numbers else 1)
        elif final == "T":
            self._scroll(-(numbers[0] if numbers else 1))
        elif final in "ABCD":
            step = numbers[0] if numbers and numbers[0] else 1
            if final == "A":
                self.y = max(0, self.y - step)
            elif final == "B":
                self.y = min(self.height - 1, self.y + step)
            elif final == "C":
                self.x = min(self.width - 1, self.x + step)
            else:
                self.x = max(0, self.x - step)
        elif final in "mlhKJ":
            if final == "J" and numbers[:1] == [2]:
                self.rows = [[" "] * self.width for _ in range(self.height)]
        else:
            raise AssertionError(f"a sequence this terminal does not know: CSI {params}{final}")

    def feed(self, data: str) -> None:
        at = 0
        while at < len(data):
            char = data[at]
            if char == "\x1b":
                match = CSI.match(data, at)
                if match is None:
                    # Other escapes (OSC hyperlinks, ESC 7/8): skip to their end.
                    end = data.find("\x1b\\", at + 1)
                    bell = data.find("\x07", at + 1)
                    if data.startswith("\x1b]", at):
                        ends = [e for e in (end + 2 if end >= 0 else -1, bell + 1 if bell >= 0 else -1) if e > 0]
                        at = min(ends) if ends else len(data)
                    else:
                        at += 2
                    continue
                self._control(match.group(1), match.group(2))
                at = match.end()
                continue
            at += 1
            if char == "\n":
                if self.y == self.bottom - 1:
                    self._scroll(1)
                else:
                    self.y = min(self.height - 1, self.y + 1)
                continue
            if char == "\r":
                self.x = 0
                continue
            width = cell_len(char)
            if width == 0:
                continue
            if self.x + width <= self.width:
                self.rows[self.y][self.x] = char
                if width == 2:
                    self.rows[self.y][self.x + 1] = ""
            self.x = min(self.width, self.x + width)
