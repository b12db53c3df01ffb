"""An answer that `--max-steps` ended says so when it is read again: the reason is stored with
it (stop reason `max_steps`), and `llmchat history show` and the TUI's reopened conversation
both say why the calls the model asked for next did not run."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from test_tool_cli import args_for, run, write_config  # tests/tools/test_tool_cli.py

from llmchat.config import Settings
from llmchat.demo.server import ServerThread
from llmchat.history import COMPLETE, HistoryStore
from llmchat.history.markdown import status_note
from llmchat.history.store import MAX_STEPS
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets.stored import StoredAnswer

NOTE = "stopped at the limit of tool-call rounds (--max-steps): the tools the model asked for next did not run"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


def test_the_writer_stores_max_steps_in_place_of_the_models_reason(isolated_home: Path) -> None:
    with HistoryStore.open() as store:
        writer = store.begin_turn(None, "keep adding", model="m", api="openai-chat")
        writer.append("one more")
        writer.reached_max_steps()
        writer.finish(COMPLETE, stop_reason="tool_calls")  # the model's reason: it wanted tools
        ended = store.begin_turn(writer.conversation_id, "and cancelled", model="m", api="openai-chat")
        ended.reached_max_steps()
        ended.finish("cancelled")  # not a complete answer: its own ending says more
        first, second = [m for m in store.load(writer.conversation_id).messages if m.role == "assistant"]
    assert (first.status, first.stop_reason) == (COMPLETE, MAX_STEPS)
    assert status_note(first) == NOTE
    assert (second.status, second.stop_reason) == ("cancelled", None)


async def test_history_show_and_the_reopened_tui_say_why_the_answer_ends(srv: ServerThread, isolated_home: Path) -> None:
    write_config(isolated_home)
    args = [a for a in args_for(srv, "--allow-tools", "--max-steps", "1", tools='add:{"a":1,"b":1}', tool_rounds=3) if a != "--no-history"]
    code, _, err = run(isolated_home, args)
    assert code == 0, err
    assert "--max-steps 1" in err  # what the run itself said
    with HistoryStore.open() as store:
        (info,) = store.list_conversations()
        answer = store.load(info.id).messages[-1]
    assert (answer.role, answer.status, answer.stop_reason) == ("assistant", COMPLETE, MAX_STEPS)

    code, out, err = run(isolated_home, ["history", "show", str(info.id)])
    assert code == 0, err
    assert NOTE in out

    settings = Settings(api="openai-chat", model="m", base_url=srv.base_url("openai-chat"), conversation_id=info.id)
    app = ChatApp(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        last = list(app.query(StoredAnswer))[-1]
        assert last.note_text == NOTE
