"""How a command ends on an error: one line on stderr, then `CommandExit` with the exit code
(llmchat.exitcodes), which `cli.main` returns as the process's status. Shared by the chat
command and the subcommands, so neither imports the other for it."""

from __future__ import annotations

import sys
from typing import NoReturn


class CommandExit(Exception):
    """Ends the command with an exit code (the message, if any, was already printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def fail(message: str, code: int) -> NoReturn:
    """Print `error: message` (one clean line) on stderr and end the command with `code`."""
    from llmchat.sanitize import one_line  # messages quote paths, names and servers: one clean line

    print(f"error: {one_line(message)}", file=sys.stderr)
    raise CommandExit(code)
