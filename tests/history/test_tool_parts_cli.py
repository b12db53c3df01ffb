"""`llmchat history show` / `show --json` / `export` / `show --tree` of an answer that called
tools: each call where the model made it (tool, server, status, duration, arguments as pretty
JSON) with its result -- a preview in `show`, whole in `export` -- sanitised on a terminal."""

from __future__ import annotations

import json
from pathlib import Path

from history_helpers import on_a_terminal

from llmchat.history import CANCELLED, COMPLETE, HistoryStore

HOSTILE = "ok \x1b]52;c;aGk=\x07 \x1b[2J done"
LONG = "".join(f"row {i}\n" for i in range(5000))  # ~40,000 characters, 5,000 lines


def store_tool_conversation(db_path: Path) -> int:
    with HistoryStore.open(db_path) as store:
        answer = store.begin_turn(None, "Add 1 and 2, then list the rows", model="model-x", api="openai-chat")
        answer.append("Adding first.")
        answer.add_part("tool_call", '{"a":1,"b":2}', {"id": "call_1", "name": "add", "server": "calc"})
        answer.add_part("tool_result", "3", {"call_id": "call_1", "name": "add", "is_error": False, "status": "done", "duration": 1.5})
        answer.append(" Now the rows.")
        answer.add_part("tool_call", json.dumps({"table": "t", "rows": list(range(100))}), {"id": "call_2", "name": "rows", "server": "db"})
        answer.add_part("tool_call", "{}", {"id": "call_3", "name": "shout", "server": "db"})
        answer.add_part("tool_result", LONG, {"call_id": "call_2", "name": "rows", "is_error": False, "status": "done", "duration": 0.25})
        answer.add_part(
            "tool_result", HOSTILE + " ```", {"call_id": "call_3", "name": "shout", "is_error": True, "status": "error", "duration": 0.01}
        )
        answer.append(" 1 + 2 = 3, and there are 5,000 rows.")
        answer.finish(COMPLETE)
        later = store.begin_turn(answer.conversation_id, "and now?", model="model-x", api="openai-chat")
        later.add_part("tool_call", '{"q": 1}', {"id": "call_4", "name": "slow", "server": "calc"})
        later.finish(CANCELLED)
        assert answer.conversation_id is not None
        return answer.conversation_id


def test_show_renders_each_call_in_place_with_a_preview_of_its_result(run, db_path: Path) -> None:
    cid = store_tool_conversation(db_path)
    code, out, err = run("history", "show", str(cid))
    assert (code, err) == (0, "")
    text = out.decode()
    add = '**Tool** `add` on calc · done · 1.50 s\n\n```json\n{\n  "a": 1,\n  "b": 2\n}\n```\n\n*Result:*\n\n```text\n3\n```'
    assert add in text
    assert text.index("Adding first.") < text.index(add) < text.index("Now the rows.") < text.index("`rows`") < text.index("1 + 2 = 3")
    assert "**Tool** `rows` on db · done · 0.25 s" in text
    arguments = json.dumps({"table": "t", "rows": list(range(100))}, indent=2)
    head = "\n".join(arguments.split("\n")[:30])
    assert f"```json\n{head}\n```\n\n*Arguments (the first {len(head):,} of {len(arguments):,} characters).*" in text
    shown = "".join(f"row {i}\n" for i in range(30)).rstrip("\n")
    assert f"*Result (the first {len(shown):,} of {len(LONG):,} characters):*\n\n```text\n{shown}\n```" in text
    assert "row 30\n" not in text
    # A result holding a fence gets a longer one; an error is labelled so.
    assert "**Tool** `shout` on db · error · 0.01 s" in text and f"*Error:*\n\n````text\n{HOSTILE} ```\n````" in text
    # A call the user cancelled while it ran: no result.
    assert '**Tool** `slow` on calc · no result\n\n```json\n{\n  "q": 1\n}\n```' in text


def test_show_on_a_terminal_strips_control_sequences_from_tool_results(env, db_path: Path) -> None:
    cid = store_tool_conversation(db_path)
    data = on_a_terminal(["history", "show", str(cid)], env)
    assert b"\x1b" not in data and b"\x07" not in data
    assert b"ok   done ```" in data


def test_show_json_lists_the_calls_and_keeps_content_the_answer_text(run, db_path: Path) -> None:
    cid = store_tool_conversation(db_path)
    code, out, _ = run("history", "show", str(cid), "--json")
    assert code == 0
    messages = json.loads(out)["messages"]
    answer = messages[1]
    assert answer["content"] == "Adding first. Now the rows. 1 + 2 = 3, and there are 5,000 rows."
    assert [(t["name"], t["server"], t["status"], t["is_error"], t["offset"]) for t in answer["tools"]] == [
        ("add", "calc", "done", False, len("Adding first.")),
        ("rows", "db", "done", False, len("Adding first. Now the rows.")),
        ("shout", "db", "error", True, len("Adding first. Now the rows.")),
    ]
    assert answer["tools"][0] == {
        "type": "tool",
        "id": "call_1",
        "name": "add",
        "server": "calc",
        "arguments": '{"a":1,"b":2}',
        "result": "3",
        "is_error": False,
        "status": "done",
        "duration": 1.5,
        "offset": 13,
    }
    assert answer["tools"][1]["result"] == LONG  # JSON: whole
    assert messages[0]["tools"] == [] and messages[3]["tools"][0]["result"] is None and messages[3]["tools"][0]["status"] == "no result"


def test_export_writes_the_results_whole(run, home: Path, db_path: Path) -> None:
    cid = store_tool_conversation(db_path)
    target = home / "chat.md"
    code, _, _ = run("history", "export", str(cid), "-o", str(target))
    assert code == 0
    text = target.read_text()
    assert f"*Result:*\n\n```text\n{LONG.rstrip()}\n```" in text
    assert "**Tool** `add` on calc · done · 1.50 s" in text
    code, _, _ = run("history", "export", str(cid), "--json", "-o", str(target))
    assert code == 0 and json.loads(target.read_text())["messages"][1]["tools"][1]["result"] == LONG


def test_tree_counts_an_answers_tool_calls(run, db_path: Path) -> None:
    cid = store_tool_conversation(db_path)
    code, out, _ = run("history", "show", str(cid), "--tree")
    assert code == 0
    lines = out.decode().splitlines()
    assert any("assistant: Adding first." in line and "[complete · model-x · 3 tool calls]" in line for line in lines), lines
    assert any("[cancelled · model-x · 1 tool call]" in line for line in lines), lines
