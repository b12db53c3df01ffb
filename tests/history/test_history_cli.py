"""`llmchat history` and its verbs as a user meets them: real subprocesses on an isolated data
directory, filled through the store's own API.

What is checked: the list (newest first, counts, last used, --json, -n); show and export as
Markdown with each answer's figures and status (and --json); stdout byte-exact through a pipe and
stripped of control sequences on a terminal; rename; rm with its confirmation; path; unknown IDs
are one-line usage errors (exit 2); an unreadable store is a one-line error (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from history_helpers import on_a_terminal

from llmchat.history import CANCELLED, COMPLETE, ERROR, HistoryStore
from llmchat.stream.events import Finish, StreamError, TextDelta, Usage
from llmchat.stream.metrics import Metrics

Turn = Tuple[str, str, str]  # prompt, answer, status
STEP = 1 / 32


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def store_conversation(
    db_path: Path, turns: List[Turn], *, model: str = "model-x", api: str = "openai-chat", conversation_id: Optional[int] = None
) -> int:
    """Store turns as a face would: a real Metrics per answer (TTFT 0.25 s, then a word every
    STEP seconds; binary-exact times)."""
    with HistoryStore.open(db_path) as store:
        for prompt, answer, status in turns:
            clock = Clock()
            metrics = Metrics(clock=clock)
            writer = store.begin_turn(conversation_id, prompt, model=model, api=api)
            conversation_id = writer.conversation_id
            metrics.start()
            clock.now += 0.25
            for i, word in enumerate(answer.split(" ")):
                metrics.observe(TextDelta(word))
                writer.append(" " + word if i else word)
                clock.now += STEP
            if status == COMPLETE:
                metrics.observe(Usage(input_tokens=11, output_tokens=len(answer.split(" "))))
                metrics.observe(Finish("stop"))
            elif status == ERROR:
                metrics.observe(StreamError("the server gave up"))
            else:
                metrics.stop()
            writer.finish(status, metrics)
    assert conversation_id is not None
    return conversation_id


def one_line(err: str, prefix: str = "error:") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return lines[0]


def test_nothing_stored_yet(run, db_path: Path) -> None:
    assert run("history") == (0, b"", "No conversations yet.\n")
    assert run("history", "--json") == (0, b"[]\n", "")
    assert not db_path.exists()  # reading creates nothing
    code, out, err = run("history", "show", "1")
    assert (code, out) == (2, b"") and "no conversations yet" in one_line(err)


def test_the_list_is_newest_first_with_counts_and_json(run, db_path: Path) -> None:
    first = store_conversation(db_path, [("How do tides work?", "The moon.", COMPLETE)], model="gpt-x")
    second = store_conversation(db_path, [("Second\nline two", "Yes.", COMPLETE), ("More", "Ok.", COMPLETE)], model="claude-y", api="anthropic")
    store_conversation(db_path, [("Tides, again", "Still the moon.", COMPLETE)], conversation_id=first, model="gpt-x")
    code, out, err = run("history")
    assert code == 0 and err == ""
    header, *rows = out.decode().splitlines()
    assert header.split() == ["ID", "LAST", "USED", "MSGS", "MODEL", "TITLE"]
    assert [row.split()[0] for row in rows] == [str(first), str(second)]  # the last prompted first
    assert rows[0].split()[3:] == ["4", "gpt-x", "How", "do", "tides", "work?"]
    assert rows[1].split()[3:] == ["4", "claude-y", "Second"]

    code, out, err = run("history", "--json")
    listed = json.loads(out)
    assert [c["id"] for c in listed] == [first, second]
    assert listed[1] == {
        "id": second,
        "title": "Second",
        "model": "claude-y",
        "api": "anthropic",
        "profile": None,
        "messages": 4,
        "created_at": listed[1]["created_at"],
        "last_used_at": listed[1]["last_used_at"],
    }
    assert listed[0]["last_used_at"] >= listed[1]["last_used_at"] and listed[0]["last_used_at"].endswith("Z")
    code, out, _ = run("history", "-n", "1", "--json")
    assert [c["id"] for c in json.loads(out)] == [first]


def test_show_prints_markdown_with_figures_and_statuses(run, db_path: Path) -> None:
    cid = store_conversation(
        db_path,
        [
            ("Explain *tides*", "Gravity of the moon pulls the oceans twice a day.", COMPLETE),
            ("And code?", "```python\nprint('high tide')", CANCELLED),
            ("Again", "Half an", ERROR),
        ],
    )
    code, out, err = run("history", "show", str(cid))
    assert code == 0 and err == ""
    text = out.decode()
    assert text.startswith("# Explain *tides*\n\nConversation 1 · model-x (openai-chat) · started ")
    assert "· 6 messages\n" in text
    assert "## You\n\nExplain *tides*\n\n## model-x\n\nGravity of the moon pulls the oceans twice a day.\n\n" in text
    words = 10  # enough words, over long enough, for a tok/s figure (8 tokens, 0.1 s)
    rate, total = words / ((words - 1) * STEP), 0.25 + words * STEP
    assert f"*model-x · TTFT 250 ms · {rate:.1f} tok/s · 11 input, {words} output tokens · {total:.2f} s · stop: stop*\n" in text
    # A cut-off code block is closed so it does not swallow the rest; the status is said.
    assert "```python\nprint('high tide')\n```\n\n*model-x · TTFT 250 ms · ~" in text
    assert "*cancelled: the answer stops where it was stopped*" in text
    assert "Half an\n\n*model-x · TTFT 250 ms" in text and "*error: the server gave up*" in text

    code, out, err = run("history", "show", str(cid), "--json")
    data = json.loads(out)
    assert [m["status"] for m in data["messages"]] == ["complete", "complete", "complete", "cancelled", "complete", "error"]
    answer = data["messages"][1]
    assert answer["content"] == "Gravity of the moon pulls the oceans twice a day."
    assert (answer["ttft"], answer["tokens_per_second"], answer["output_tokens"], answer["tokens_exact"]) == (0.25, rate, words, True)
    assert answer["elapsed"] == total and answer["stop_reason"] == "stop"
    assert data["messages"][5]["error"] == "the server gave up"


def test_show_is_byte_exact_in_a_pipe_and_clean_on_a_terminal(run, env, db_path: Path) -> None:
    answer = "red \x1b[31mtext\x1b[0m and a clipboard write \x1b]52;c;aGk=\x07 done"
    cid = store_conversation(db_path, [("colours", answer, COMPLETE)])
    code, out, _ = run("history", "show", str(cid))
    assert code == 0 and answer.encode() in out
    data = on_a_terminal(["history", "show", str(cid)], env)
    assert b"\x1b" not in data and b"red text and a clipboard write  done" in data


def test_export_writes_a_private_file(run, home: Path, db_path: Path) -> None:
    cid = store_conversation(db_path, [("Export me", "Exported.", COMPLETE)])
    shown = run("history", "show", str(cid))[1]
    target = home / "notes" / "chat.md"
    code, out, err = run("history", "export", str(cid), "-o", str(target))
    assert (code, out) == (1, b"") and "cannot write" in one_line(err)  # the folder does not exist
    target.parent.mkdir()
    code, out, err = run("history", "export", str(cid), "-o", str(target))
    assert (code, out) == (0, b"")
    assert err == f"Conversation {cid} written to {target}.\n"
    assert target.read_bytes() == shown
    assert target.stat().st_mode & 0o777 == 0o600
    assert run("history", "export", str(cid))[1] == shown  # no -o: stdout
    code, _, _ = run("history", "export", str(cid), "--json", "-o", str(target))
    assert code == 0 and json.loads(target.read_text())["title"] == "Export me"


def test_rename(run, db_path: Path) -> None:
    cid = store_conversation(db_path, [("old title", "a", COMPLETE)])
    assert run("history", "rename", str(cid), "A", "better", "title")[0] == 0
    assert json.loads(run("history", "--json")[1])[0]["title"] == "A better title"
    code, _, err = run("history", "rename", str(cid), " ")
    assert code == 2 and "empty" in one_line(err)


@pytest.mark.parametrize("stdin, deleted", [(b"y\n", True), (b"yes\n", True), (b"n\n", False), (b"", False), (b"maybe\n", False)])
def test_rm_asks_first(run, db_path: Path, stdin: bytes, deleted: bool) -> None:
    keep = store_conversation(db_path, [("keep me", "a", COMPLETE)])
    cid = store_conversation(db_path, [("delete me", "b", COMPLETE)])
    code, out, err = run("history", "rm", str(cid), input=stdin)
    assert out == b""
    assert err.startswith(f'Delete conversation {cid} "delete me" (2 messages)? [y/N] ')
    assert (code == 0) is deleted
    assert err.rstrip().endswith(f"Deleted conversation {cid}." if deleted else "Not deleted.")
    remaining = [c["id"] for c in json.loads(run("history", "--json")[1])]
    assert remaining == ([keep] if deleted else [cid, keep])


def test_rm_yes_does_not_ask_and_the_id_is_gone(run, db_path: Path) -> None:
    cid = store_conversation(db_path, [("gone", "b", COMPLETE)])
    assert run("history", "rm", "--yes", str(cid)) == (0, b"", f"Deleted conversation {cid}.\n")
    for verb in (["show"], ["export"], ["rm", "-y"], ["rename"]):
        args = ["history", *verb, str(cid)] + (["x"] if verb == ["rename"] else [])
        code, out, err = run(*args)
        assert (code, out) == (2, b""), args
        assert one_line(err) == f"error: no conversation {cid} (see `llmchat history`)"


def test_bad_ids_are_usage_errors(run, db_path: Path) -> None:
    store_conversation(db_path, [("q", "a", COMPLETE)])
    code, out, err = run("history", "show", "one")
    assert (code, out) == (2, b"") and "one" in one_line(err)
    code, out, err = run("history", "show", "99")
    assert (code, out) == (2, b"") and "no conversation 99" in one_line(err)


def test_path(run, db_path: Path) -> None:
    assert run("history", "path") == (0, f"{db_path}\n".encode(), "")


def test_an_unreadable_store_is_one_error_line(run, db_path: Path) -> None:
    db_path.parent.mkdir(mode=0o700)
    db_path.write_bytes(b"not SQLite " * 100)
    for args in (["history"], ["history", "show", "1"]):
        code, out, err = run(*args)
        assert (code, out) == (1, b"")
        assert "not a database" in one_line(err)


def test_search_groups_matches_by_conversation(run, db_path: Path) -> None:
    sea = store_conversation(db_path, [("Why is the sea salty?", "Rivers carry minerals.", COMPLETE)], model="gpt-x")
    tide = store_conversation(db_path, [("Tides and the sea", "The moon pulls the sea.", COMPLETE)], model="claude-y")
    code, out, err = run("history", "search", "sea")
    assert code == 0 and err == ""
    lines = out.decode().splitlines()
    assert lines[0] == f"{tide}  Tides and the sea"
    assert lines[1].endswith("  claude-y: The moon pulls the sea.") and lines[2].endswith("  you: Tides and the sea")
    assert lines[3] == f"{sea}  Why is the sea salty?"
    assert lines[4].endswith("  you: Why is the sea salty?") and len(lines) == 5
    code, out, _ = run("history", "search", "--json", "minerals")
    (hit,) = json.loads(out)
    assert (hit["conversation_id"], hit["role"], hit["model"], hit["snippet"]) == (sea, "assistant", "gpt-x", "Rivers carry minerals.")
    assert run("history", "search", "nowhere") == (0, b"", "No matches.\n")
    assert run("history", "search", "nowhere", "--json") == (0, b"[]\n", "")
    code, out, err = run("history", "search", " ")
    assert (code, out) == (2, b"") and "nothing to search for" in one_line(err)
