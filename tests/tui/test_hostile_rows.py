"""Stored rows are data, not terminal commands: a title, a model name or an error holding
control sequences reaches the TUI's conversation list, status bar and transcript as plain
text; and the TUI stores the model's reasoning with its answer."""

from __future__ import annotations

import sqlite3
from typing import List

from llmchat.demo.answer import answer_tokens
from llmchat.history import ERROR, HistoryStore, default_path
from llmchat.tui.app import ChatApp
from llmchat.tui.screens.conversations import ConversationList
from llmchat.tui.widgets.stored import StoredAnswer

SIZE = (100, 30)
ATTACK = "\x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b[2J\u202eevil\u202c\x9b1m"


def acts_on_a_terminal(text: str) -> List[str]:
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]


def seed_hostile(base_url: str) -> int:
    with HistoryStore.open() as store:
        writer = store.begin_turn(None, "q", model=f"gpt{ATTACK}", api="openai-chat", base_url=base_url)
        writer.append("partial")
        writer.finish(ERROR, error=f"502 {ATTACK} upstream")
    db = sqlite3.connect(str(default_path()))  # a title written by another tool, or an old llmchat
    db.execute("UPDATE conversations SET title = ?", (f"sky {ATTACK} blue",))
    db.commit()
    db.close()
    return writer.conversation_id


async def test_a_hostile_stored_title_model_and_error_are_shown_as_plain_text(settings_for, srv):
    cid = seed_hostile(srv.base_url("openai-chat", tokens=3))
    app = ChatApp(settings_for(tokens=3))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConversationList)
        await screen.settled()  # the rows are read on the store's syncer thread
        await pilot.pause()
        rows = [str(screen.options.get_option_at_index(i).prompt) for i in range(screen.options.option_count)]
        assert rows and all(acts_on_a_terminal(row) == [] for row in rows), rows
        assert "sky" in rows[0] and "blue" in rows[0]
        await pilot.press("enter")
        await screen.settled()
        await pilot.pause()
        assert app.chat_history.conversation_id == cid
        shown = [app.model_label, app.status.model, str(app._about.render())]
        stored = app.query_one(StoredAnswer)
        shown += [stored.metrics_text, stored.note_text or ""]
        assert all(acts_on_a_terminal(text) == [] for text in shown), shown
        assert "upstream" in (stored.note_text or "")


async def test_the_tui_stores_the_reasoning_with_its_answer(settings_for, submit, settled):
    app = ChatApp(settings_for(tokens=4, reasoning=5))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "think first")
        await settled(app)
        await pilot.pause()
    with HistoryStore.open() as store:
        (info,) = store.list_conversations()
        answer = store.load(info.id).messages[-1]
    assert answer.reasoning == "".join(answer_tokens("", 5))
    assert answer.content == "".join(answer_tokens("think first", 4))


KEY = "sk-tui-secret-0123456789"


async def test_a_live_server_error_is_one_clean_line_with_the_key_masked(tmp_path):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
    from hostile_server import HostileServer, http

    from llmchat.config import Settings
    from llmchat.tui.widgets import AssistantMessage

    body = json.dumps({"error": {"message": f"bad key {KEY}\n{ATTACK} try again"}}).encode()
    with HostileServer(http("HTTP/1.1 401 Unauthorized", "application/json", body)) as server:
        settings = Settings(api="openai-chat", base_url=server.url + "/v1", model=f"m{ATTACK}", api_key=KEY, secrets=(KEY,))
        app = ChatApp(settings)
        async with app.run_test(size=SIZE) as pilot:
            app.prompt.load_text("hi")
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            [answer] = app.query(AssistantMessage)
            note = answer.note_text
    assert note.startswith("Error: 401") and "try again" in note
    assert acts_on_a_terminal(note) == [] and KEY not in note and "***" in note
    assert acts_on_a_terminal(app.model_label) == [] and app.model_label.startswith("m")
