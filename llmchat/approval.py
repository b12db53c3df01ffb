"""The one-shot face's question before a tool runs, asked on the terminal (/dev/tty) even when
stdout and stdin are pipes: the tool, its server and its arguments as pretty JSON, every line
sanitised (a model's arguments never reach the terminal as escapes), then

    Run it? [y]es once / [a]lways / [n]o:

answered with a line. Without a terminal (no /dev/tty: cron, CI, a detached process) nothing can
be asked: `TtyAsker.available` is False, and the face denies the call.

Reading waits on the event loop (`add_reader`), never in a thread: a Ctrl-C (the face's signal
handler cancels the turn) ends the question at once.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Optional

from llmchat.sanitize import one_line, strip_controls

TTY = "/dev/tty"
ARGUMENTS_SHOWN = 4000  # characters of the arguments shown; the rest is summarised
CHOICES = "[y]es once / [a]lways / [n]o"
_ANSWERS = {"y": "once", "yes": "once", "o": "once", "once": "once", "a": "always", "always": "always", "n": "deny", "no": "deny", "": "deny"}


def question(name: str, server: Optional[str], arguments: str) -> str:
    """The question's text (without the choices line): tool, server, arguments."""
    try:
        shown = json.dumps(json.loads(arguments or "{}"), indent=2, ensure_ascii=False)
    except ValueError:
        shown = arguments
    if len(shown) > ARGUMENTS_SHOWN:
        shown = shown[:ARGUMENTS_SHOWN] + f"\n… ({len(shown) - ARGUMENTS_SHOWN} more characters)"
    where = f" from server {one_line(server, 60)}" if server else ""
    lines = [f"llmchat: the model asks to run the tool {one_line(name, 80)}{where}, with the arguments:"]
    lines += ["  " + strip_controls(line) for line in shown.splitlines()]
    return "\n".join(lines)


def parse_answer(line: str) -> Optional[str]:
    """ "once", "always", "deny", or None for an answer that is none of them."""
    return _ANSWERS.get(line.strip().lower())


class TtyAsker:
    """Questions on the controlling terminal. `available`: it could be opened."""

    def __init__(self, path: str = TTY) -> None:
        self.path = path
        self.fd: Optional[int] = None
        self._failed = False

    @property
    def available(self) -> bool:
        if self.fd is None and not self._failed:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                self._failed = True
        return self.fd is not None

    async def ask(self, text: str) -> str:
        """Show `text` and the choices; the answer ("once", "always", "deny"). The end of the
        terminal's input, or an error reading it, is "deny"."""
        if not self.available:
            return "deny"
        self._discard_typeahead()  # keys pressed before the question do not answer it
        self._write(text + "\n")
        while True:
            self._write(f"Run it? {CHOICES}: ")
            line = await self._read_line()
            if line is None:
                self._write("\n")
                return "deny"
            answer = parse_answer(line)
            if answer is not None:
                return answer
            self._write(f"Please answer y, a or n ({CHOICES}).\n")

    def _write(self, text: str) -> None:
        assert self.fd is not None
        data = text.encode("utf-8", "replace")
        while data:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                continue  # a terminal that is slow to take it: rare, and the text is short
            except OSError:
                return
            data = data[written:]

    def _discard_typeahead(self) -> None:
        try:
            import termios

            if self.fd is not None:
                termios.tcflush(self.fd, termios.TCIFLUSH)
        except Exception:  # not a terminal after all, or no termios: nothing to discard
            pass

    async def _read_line(self) -> Optional[str]:
        fd = self.fd
        assert fd is not None
        loop = asyncio.get_running_loop()
        done: "asyncio.Future[Optional[str]]" = loop.create_future()
        got = bytearray()

        def readable() -> None:
            if done.done():
                return
            try:
                data = os.read(fd, 1024)
            except BlockingIOError:
                return
            except OSError:
                done.set_result(None)
                return
            if not data:
                done.set_result(None)
                return
            got.extend(data)
            if b"\n" in got or b"\r" in got:
                done.set_result(got.decode("utf-8", "replace").splitlines()[0] if got.strip() else "")

        loop.add_reader(fd, readable)
        try:
            return await done
        finally:
            loop.remove_reader(fd)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
