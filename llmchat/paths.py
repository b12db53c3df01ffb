"""Where llmchat keeps its files, and the permission rules for them: the config directory, the
data directory (history, drafts, crash logs, screenshots), and private (0700) directories.

Below everything else: it imports nothing of llmchat, so the history store, crash logs and the
TUI's drafts find their folders without importing the settings. `LLMCHAT_HOME` moves the config
file and the data directory under one folder (tests, portable setups).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

CONFIG_NAME = "config.toml"


def home() -> Optional[Path]:
    """`LLMCHAT_HOME`, when set: the config file and the data directory live under it."""
    value = os.environ.get("LLMCHAT_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The config file's folder (the user's themes/ live there too)."""
    root = home()
    if root is not None:
        return root
    from platformdirs import user_config_dir  # imported only when asked: start-up

    return Path(user_config_dir("llmchat", appauthor=False))


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


def data_dir() -> Path:
    root = home()
    if root is not None:
        return root / "data"
    from platformdirs import user_data_dir

    return Path(user_data_dir("llmchat", appauthor=False))


def ensure_private_dir(path: Path) -> None:
    """Create `path` and every missing parent 0700, whatever the umask (`os.makedirs` gives
    the parents it creates 0777 less the umask: all of it under umask 000). Existing
    directories are left as they are. Raises OSError."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask, never widened: be exact


def open_to_others(path: Path) -> Optional[str]:
    """A warning when the directory `path` exists and other users may write in it, else None."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if mode & 0o022:
        return f"warning: {path} can be written by other users (mode {mode:o}); run: chmod 700 '{path}'"
    return None


def write_private(path: Path, data: Union[str, bytes], *, sync: bool = False) -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all, readable by the user only: a
    0600 file beside it (named for this process and thread), then renamed over it (a reader
    never sees half of it); `sync`: on disk before the rename. Raises OSError."""
    import threading

    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            if sync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
