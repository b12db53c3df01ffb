"""Snapshots of attachments in the TUI at 80x24 and 40x15: chips above the prompt (pending for the
next message) under a sent message that lists its own, and the `@` menu open over the prompt."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llmchat.tui.app import ChatApp
from llmchat.tui.widgets.attachments import AttachmentChip, PathMenu
from tests.attachment_samples import pdf, png

SIZES = pytest.mark.parametrize("size", [(40, 15), (80, 24)], ids=["40x15", "80x24"])


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "shot.png").write_bytes(png(800, 600))
    (folder / "notes.md").write_text("# Notes\nremember the milk\n")
    (folder / "report.pdf").write_bytes(pdf(3))
    (folder / "src").mkdir()
    monkeypatch.chdir(folder)
    return folder


async def attach(pilot: Any, *paths: str) -> None:
    app = pilot.app
    before = len(app.query(AttachmentChip))
    app.prompt.post_message(app.prompt.Attach(list(paths)))
    deadline = time.monotonic() + 10
    while len(app.query(AttachmentChip)) < before + len(paths):
        assert time.monotonic() < deadline, "no chips"
        await pilot.pause(0.01)
    await pilot.pause()


@SIZES
def test_chips_above_the_prompt_under_a_message_that_lists_its_attachments(snap_compare, settings_for, step_clock, ask, work, size):
    app = ChatApp(settings_for(tokens=12), clock=step_clock, status_interval=None)

    async def run_before(pilot: Any) -> None:
        await attach(pilot, "shot.png")
        await ask(pilot, "What is wrong here?")
        await attach(pilot, "report.pdf", "notes.md")
        app.prompt.load_text("Summarise both")
        app.clear_notifications()  # "Reading…", should a read have been slow on a busy machine
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_the_at_menu_over_the_prompt(snap_compare, settings_for, step_clock, work, size):
    app = ChatApp(settings_for(tokens=12), clock=step_clock, status_interval=None)

    async def run_before(pilot: Any) -> None:
        app.prompt.cursor_blink = False
        await pilot.press(*"Read ", "@")
        deadline = time.monotonic() + 10
        while not app.query_one(PathMenu).shown:
            assert time.monotonic() < deadline, "no menu"
            await pilot.pause(0.01)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
