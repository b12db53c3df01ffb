"""llmchat.paths: where the files are, private whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmchat import paths
from llmchat.crash import write_crash_log
from llmchat.tui.drafts import save_draft, take_draft


@pytest.fixture
def umask_000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_the_home_variable_holds_the_config_file_and_the_data(isolated_home: Path) -> None:
    assert paths.config_path() == isolated_home / "config.toml"
    assert paths.config_dir() == isolated_home
    assert paths.data_dir() == isolated_home / "data"


def test_a_draft_saved_before_anything_else_makes_private_folders(isolated_home: Path, umask_000, monkeypatch) -> None:
    home = isolated_home / "fresh" / "home"
    monkeypatch.setenv("LLMCHAT_HOME", str(home))
    assert save_draft(7, "half a thought") is not None
    for folder in (home, home / "data", home / "data" / "drafts"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((home / "data" / "drafts" / "7.txt").stat().st_mode) == 0o600
    assert take_draft(7) == "half a thought"


def test_a_crash_log_before_anything_else_makes_private_folders(isolated_home: Path, umask_000, monkeypatch) -> None:
    home = isolated_home / "other"
    monkeypatch.setenv("LLMCHAT_HOME", str(home))
    log = write_crash_log(RuntimeError("boom"), secrets=())
    assert log is not None and log.parent == home / "data" / "crashes"
    for folder in (home, home / "data", log.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
