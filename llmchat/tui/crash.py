"""Crash logs: a bug caught at the top of the TUI is written, with its traceback, to a file in the
data dir, and the user sees one line that says where (never the traceback itself)."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Optional

from llmchat.output import strip_controls

CRASH_DIR = "crashes"


def crash_dir() -> Path:
    from llmchat.config import data_dir

    return data_dir() / CRASH_DIR


def write_crash_log(error: BaseException, folder: Optional[Path] = None) -> Optional[Path]:
    """Write `error` and its traceback to a new file in `folder` (the data dir's crashes/);
    the file, or None when it could not be written (the line shown says so)."""
    from llmchat import __version__

    folder = crash_dir() if folder is None else folder
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = (
        f"llmchat {__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n\n"
        + "".join(traceback.format_exception(type(error), error, error.__traceback__))
    )
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for n in range(100):
            path = folder / (f"crash-{stamp}.log" if n == 0 else f"crash-{stamp}-{n}.log")
            try:
                # 0600 and never over another: the traceback may quote a prompt.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as file:
                file.write(text)
            return path
    except OSError:
        pass
    return None


def crash_line(error: BaseException, log: Optional[Path]) -> str:
    """The one line the user sees: what broke, and where the details are."""
    what = strip_controls(f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__)
    if len(what) > 200:
        what = what[:199] + "…"
    where = f"details in {log}" if log is not None else "the crash log could not be written"
    return f"error: llmchat stopped on an internal error ({what}); {where}"
