"""Nothing is lost: real llmchat processes stopped by signals, killed with SIGKILL mid-stream,
run several at once on one database, kept waiting by another writer, given a key, and denied
their database -- and what each leaves in the history.
"""

from __future__ import annotations

import fcntl
import json
import resource
import signal
import sqlite3
import time
from pathlib import Path
from typing import Dict, List

import pytest
from history_helpers import WAIT, messages, poll, query, read_some, reap, saved_text, spawn

from llmchat.demo.answer import answer_tokens
from llmchat.history.store import FLUSH_INTERVAL

SECRET = "sk-test-Zq8v1SECRETkey0042"
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python has the name from 3.10
PAGE = 4096  # the least a pipe holds


def assistant(db_path: Path) -> Dict:
    answers = [m for m in messages(db_path) if m["role"] == "assistant"]
    assert len(answers) == 1, answers
    return answers[0]


def assert_quiet(err: str) -> None:
    assert "Traceback" not in err and "locked" not in err and "warning" not in err, err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stores_the_partial_answer_as_cancelled(srv, env, db_path: Path, sig: int, code: int) -> None:
    proc = spawn(["--base-url", srv.base_url("openai-chat", tokens=2000, tps=40), "tell me"], env)
    try:
        first = read_some(proc)
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        reap(proc)
    assert proc.returncode == code
    answer = assistant(db_path)
    assert answer["status"] == "cancelled"
    assert answer["content"].encode() == first + rest  # everything shown, nothing more
    assert answer["ttft"] is not None and answer["stop_reason"] is None


def test_a_reader_that_goes_away_leaves_the_answer_cancelled(srv, env, db_path: Path) -> None:
    """`llmchat ... | head -c 100`: the answer stops there, exit 0, and it is kept as cancelled."""
    proc = spawn(["--raw", "--base-url", srv.base_url("openai-chat", tokens=2000, tps=200), "tell me"], env)
    try:
        first = read_some(proc)
        proc.stdout.close()
        proc.wait(WAIT)
        err = proc.stderr.read().decode()
    finally:
        reap(proc)
    assert proc.returncode == 0 and err == ""
    answer = assistant(db_path)
    assert answer["status"] == "cancelled" and answer["content"].encode().startswith(first)


def test_a_cancelled_answer_goes_back_as_context_as_far_as_it_got(srv, env, run) -> None:
    proc = spawn(["--base-url", srv.base_url("openai-chat", tokens=2000, tps=40), "tell me"], env)
    try:
        shown = read_some(proc)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=WAIT)
    finally:
        reap(proc)
    since = len(srv.requests)
    code, _, err = run("-c", "--base-url", srv.base_url("openai-chat", tokens=3), "go on")
    assert code == 0, err
    assert srv.requests[since].body["messages"][-2:] == [
        {"role": "assistant", "content": (shown + rest).decode()},
        {"role": "user", "content": "go on"},
    ]


def answer_text(db_path: Path) -> str:
    """The one answer's text as saved so far (its row and the pieces of a streaming answer)."""
    rows = query(db_path, "SELECT id FROM messages WHERE role = 'assistant'")
    return saved_text(db_path, rows[0][0]) if rows else ""


def test_sigkill_after_a_stall_loses_nothing_that_was_shown(srv, env, run, db_path: Path) -> None:
    """The server sends 30 tokens and stalls: within the flush interval they are on disk even
    though no further token comes; then the process is killed and the next start marks the
    answer interrupted, its text intact."""
    shown_text = "".join(answer_tokens("kill me", 2000)[:30])
    proc = spawn(["--raw", "--base-url", srv.base_url("openai-chat", tokens=2000, stall_after=30), "kill me"], env)
    try:
        shown = read_some(proc, len(shown_text.encode()))
        seen_at = time.monotonic()
        poll(lambda: answer_text(db_path) == shown_text, what="the stalled answer to reach the disk")
        lag = time.monotonic() - seen_at
        proc.kill()
        proc.wait(WAIT)
    finally:
        reap(proc)
    assert shown == shown_text.encode()
    assert lag < 5 * FLUSH_INTERVAL, lag  # one interval and the timer's half, with room for load
    row = assistant(db_path)
    assert (row["status"], row["writer_pid"]) == ("streaming", proc.pid)
    code, out, err = run("history", "--json")  # any next start
    assert code == 0, err
    row = assistant(db_path)
    assert (row["status"], row["content"], row["writer_pid"]) == ("interrupted", shown_text, None)
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_sigkill_mid_stream_leaves_a_sound_database_and_a_recent_prefix(srv, env, run, db_path: Path) -> None:
    tps = 100
    tokens = answer_tokens("stream", 3000)
    proc = spawn(["--raw", "--base-url", srv.base_url("openai-chat", tokens=3000, tps=tps), "stream"], env)
    try:
        first = read_some(proc)
        sizes = set()  # wait until the answer has grown on disk twice: streaming for a while

        def grown_twice() -> bool:
            sizes.add(len(answer_text(db_path)))
            return len(sizes - {0}) >= 2

        poll(grown_twice, what="two flushes")
        proc.kill()
        proc.wait(WAIT)
        printed = (first + proc.stdout.read()).decode()  # all it wrote before the kill
    finally:
        reap(proc)
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert run("history")[0] == 0  # the next start
    row = assistant(db_path)
    assert row["status"] == "interrupted"
    saved = row["content"]
    assert saved and printed.startswith(saved)
    behind = _count_tokens(tokens, printed) - _count_tokens(tokens, saved)
    # At most about a second of the answer is lost (the bound allows for a loaded machine).
    assert 0 <= behind <= 2.5 * tps, behind


def _count_tokens(tokens: List[str], text: str) -> int:
    count = length = 0
    for token in tokens:
        if length + len(token) > len(text):
            break
        length += len(token)
        count += 1
    return count


def test_several_processes_at_once_share_the_database(srv, env, run, db_path: Path) -> None:
    """Four answers stream into one file at once while other runs read it: no "database is
    locked", no answer of a live process marked interrupted, every answer stored whole."""
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "warm up")[0] == 0
    prompts = [f"writer {i}" for i in range(4)]
    # Each answer (~4.7 KB) is more than its stdout pipe holds (made 4 KB), and nothing reads the
    # pipes until the readers are done: however slowly the readers start, no writer can end
    # before them. They stream and save for ~1.6 s (600 tokens a second) before it fills.
    procs = [spawn(["--raw", "--base-url", srv.base_url("openai-chat", tokens=1100, tps=600), p], env) for p in prompts]
    for proc in procs:
        assert proc.stdout is not None
        fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, PAGE)
    try:
        poll(
            lambda: (
                query(db_path, "SELECT count(DISTINCT m.id) FROM messages m JOIN message_parts p ON p.message_id = m.id WHERE m.status = 'streaming'")
                == [(4,)]
            ),
            what="four answers streaming",
        )
        readers = [spawn(["history", "--json"], env) for _ in range(2)]
        for reader in readers:
            out, err = reader.communicate(timeout=WAIT)
            assert reader.returncode == 0 and err == b"", err
            assert len(json.loads(out)) == 5
        reap(*readers)
        # Those starts looked for dead writers: the four live ones are still streaming.
        assert query(db_path, "SELECT count(*) FROM messages WHERE status = 'streaming'") == [(4,)]
        assert query(db_path, "SELECT count(*) FROM messages WHERE status = 'interrupted'") == [(0,)]
        results = [proc.communicate(timeout=WAIT) for proc in procs]
    finally:
        reap(*procs)
    for proc, prompt, (out, err) in zip(procs, prompts, results):
        err = err.decode()
        assert proc.returncode == 0, err
        assert_quiet(err)
        (cid,) = query(db_path, "SELECT conversation_id FROM messages WHERE content = ?", (prompt,))[0]
        answer = messages(db_path, cid)[-1]
        assert (answer["status"], answer["content"].encode()) == ("complete", out)
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_a_locked_store_never_holds_the_request_back_and_saves_once_free(srv, env, run, db_path: Path) -> None:
    """Another process holds a write transaction: the request goes out at once, stderr says
    why the turn is not stored yet, and once the lock is released (mid-answer) the whole turn
    is saved, complete."""
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "create the file")[0] == 0
    holder = sqlite3.connect(str(db_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    since = len(srv.requests)
    started = time.monotonic()
    proc = spawn(["--raw", "--base-url", srv.base_url("openai-chat", tokens=60, tps=30), "while locked"], env)
    try:
        assert srv.wait_for(lambda reqs: len(reqs) > since, timeout=WAIT)
        waited = time.monotonic() - started
        first = read_some(proc)
        holder.execute("COMMIT")
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        holder.close()
        reap(proc)
    err = err.decode()
    assert proc.returncode == 0, err
    assert waited < 6.0, waited  # the start-up of Python (slow on a loaded machine) and nothing more; it was 15 s
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "is locked by another process" in err, err
    prompt, answer = messages(db_path)[-2:]
    assert (prompt["content"], prompt["role"]) == ("while locked", "user")
    assert (answer["content"].encode(), answer["status"]) == (first + rest, "complete")


def test_a_store_locked_to_the_end_costs_a_warning_not_the_answer(srv, env, run, db_path: Path) -> None:
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "create the file")[0] == 0
    holder = sqlite3.connect(str(db_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=5), "locked all along")
        took = time.monotonic() - started
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert code == 0, err
    assert out == "".join(answer_tokens("locked all along", 5)).encode()
    assert took < WAIT, took
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 2, err
    assert "is locked by another process" in lines[0]
    assert lines[1].startswith("warning:") and "not saved" in lines[1], err
    assert [m["content"] for m in messages(db_path)][-1] != "locked all along"


def test_keys_never_reach_the_database(srv, env, run, write_config, home: Path) -> None:
    write_config('[profiles.p]\napi = "anthropic"\napi_key_env = "MY_KEY"\n')
    keyed = dict(env, OPENAI_API_KEY=SECRET, MY_KEY=SECRET + "-2")
    since = len(srv.requests)
    assert run("--base-url", srv.base_url("openai-chat", tokens=3), "one", env=keyed)[0] == 0
    assert run("-p", "p", "--base-url", srv.base_url("anthropic", tokens=3), "two", env=keyed)[0] == 0
    userinfo = srv.base_url("openai-chat", tokens=3).replace("http://", f"http://user:{SECRET}-3@")
    basic = {k: v for k, v in keyed.items() if k != "OPENAI_API_KEY"}  # user:password, no key: Basic auth
    assert run("--base-url", userinfo, "three", env=basic)[0] == 0
    code, _, err = run("-c", "four", env=basic)  # its URL was not stored: not sent elsewhere
    assert code == 2 and "give --base-url" in err
    assert run("-c", "--base-url", userinfo, "four", env=basic)[0] == 0
    sent = [r.headers.get("authorization") or r.headers.get("x-api-key") for r in srv.requests[since:]]
    assert sent[0] == f"Bearer {SECRET}" and sent[1] == SECRET + "-2"  # the keys were used
    for path in (home / "data").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
        assert b"Zq8v1SECRET" not in path.read_bytes(), path


# --- when the history cannot be stored, the answer still arrives -------------------------------


def _warning_only(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("warning: not saving this conversation:"), err
    return lines[0]


def test_an_unusable_store_costs_a_warning_not_the_answer(srv, env, run, home: Path, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=20)
    expected = run("--no-history", "--base-url", url, "q")[1]
    (home / "data").write_text("not a directory")
    code, out, err = run("--base-url", url, "q")
    assert (code, out) == (0, expected)
    assert "cannot create" in _warning_only(err)
    (home / "data").unlink()
    (home / "data").mkdir()
    db_path.write_bytes(b"garbage, not SQLite\n" * 100)
    code, out, err = run("--base-url", url, "q")
    assert (code, out) == (0, expected)
    assert "not a database" in _warning_only(err)
    db_path.unlink()
    assert run("--base-url", url, "q")[0] == 0
    db = sqlite3.connect(str(db_path))
    db.execute("PRAGMA user_version = 999")
    db.close()
    code, out, err = run("--base-url", url, "q")
    assert (code, out) == (0, expected)
    assert "newer llmchat" in _warning_only(err)
    code, out, err = run("-c", "--base-url", url, "q")
    assert code == 1 and out == b"" and "newer llmchat" in err  # without its context it cannot go on


def test_a_full_disk_mid_answer_costs_warnings_not_the_answer(srv, env, run, db_path: Path) -> None:
    """The disk fills up once part of the answer is saved (RLIMIT_FSIZE, lowered then to the
    size the write-ahead log has, makes the next write that grows it fail as a full disk would,
    EFBIG): the answer is saved while there is room, then only warned about; stdout is whole."""
    # 3 s of answer: the disk fills within the first second, and saves go on every 0.5 s after.
    url = srv.base_url("openai-chat", tokens=12000, tps=4000)
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "make the file")[0] == 0
    wal = db_path.with_name(db_path.name + "-wal")
    proc = spawn(["--raw", "--base-url", url, "long answer"], env)
    try:
        # Not a size fixed beforehand: how many saves fit in it depends on how the saves fell
        # (a slow machine makes fewer, larger ones, and all of them fitted once).
        poll(
            lambda: (
                query(db_path, "SELECT count(*) FROM message_parts p JOIN messages m ON m.id = p.message_id WHERE m.status = 'streaming'") != [(0,)]
            ),
            what="part of the answer saved",
        )
        full_now = wal.stat().st_size
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (full_now, full_now))
        out, err = proc.communicate(timeout=WAIT * 2)
    finally:
        reap(proc)
    err = err.decode()
    full = "".join(answer_tokens("long answer", 12000))
    assert proc.returncode == 0, err
    assert out == full.encode()
    assert "Traceback" not in err
    assert [line.split(":")[0] for line in err.splitlines()] == ["warning"] * 2, err
    assert "saving the answer to history failed" in err and "the answer was not saved" in err
    row = messages(db_path)[-1]
    assert row["status"] == "streaming" and 0 < len(saved_text(db_path, row["id"])) < len(full)
    assert run("history")[0] == 0  # the next start: interrupted, with what was saved
    row = messages(db_path)[-1]
    assert row["status"] == "interrupted" and full.startswith(row["content"]) and row["content"]
