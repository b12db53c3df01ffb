"""Crash logs: a bug caught at the top of either face is written, with its traceback and with
every secret llmchat knows masked, to a new 0600 file in the data dir's crashes/; the user reads
one line that says where (never the traceback itself)."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Iterable, Optional

from llmchat.sanitize import one_line

CRASH_DIR = "crashes"


def crash_dir() -> Path:
    from llmchat.paths import data_dir

    return data_dir() / CRASH_DIR


def write_crash_log(error: BaseException, secrets: Optional[Iterable[str]] = None, folder: Optional[Path] = None) -> Optional[Path]:
    """Write `error` and its traceback to a new file in `folder` (the data dir's crashes/),
    `secrets` masked (None: every secret the environment and the config name); the file, or
    None when it could not be written (the line shown says so)."""
    from llmchat import __version__
    from llmchat.redact import Redactor

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        if secrets is None:
            secrets = _known_secrets()
        text = Redactor(secrets).redact(text)  # a traceback may quote a key or a prompt
        folder = crash_dir() if folder is None else folder
        from llmchat.paths import ensure_private_dir

        ensure_private_dir(folder)
        for n in range(100):
            path = folder / (f"crash-{stamp}.log" if n == 0 else f"crash-{stamp}-{n}.log")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never over another
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as file:
                file.write(f"llmchat {__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n\n{text}")
            return path
    except Exception:  # the log itself failed: the one line still goes out, and says so
        pass
    return None


def crash_line(error: BaseException, log: Optional[Path], secrets: Optional[Iterable[str]] = None) -> str:
    """The one line the user sees: what broke (`secrets` masked; None: every secret the
    environment and the config name), and where the details are."""
    from llmchat.redact import Redactor

    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    try:
        what = Redactor(_known_secrets() if secrets is None else secrets).redact(what)
    except Exception:  # a broken config: say only what kind of error it was
        what = type(error).__name__
    what = one_line(what, 200)
    where = f"details in {log}" if log is not None else "the crash log could not be written"
    return f"error: llmchat stopped on an internal error ({what}); {where}"


def _known_secrets() -> Iterable[str]:
    from llmchat.config import Config, config_path, known_secrets

    return known_secrets(os.environ, Config(config_path()))
