"""Chat runs and their history, as a user meets them: `llmchat` as a real subprocess talking to
the fake LLM server on 127.0.0.1, with its own data directory.

What is checked: every run is stored (prompt, answer, figures, status) silently; -c and
--conversation send the whole earlier conversation, checked at the server, for every API, with
stdin and --raw; -c goes to the conversation last prompted; a continued conversation keeps its
own model and URL unless flags say otherwise; unknown IDs are usage errors; --no-history and
`history = false` store nothing and never open the database.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from history_helpers import WAIT, messages, query, read_some, reap, spawn

APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")


def sent(request) -> List[Tuple[str, str]]:
    """The (role, content) messages a request carried, system prompt aside."""
    body = request.body
    items = body["input"] if request.api == "openai-responses" else body["messages"]
    return [(m["role"], m["content"]) for m in items if m["role"] != "system"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def test_a_run_is_stored_quietly_with_its_figures(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=12)
    code, out, err = run("--base-url", url, "-m", "model-a", "Why is the sky blue?\nAnswer briefly.")
    assert code == 0 and err == ""  # nothing about history on a normal run
    (conversation,) = query(db_path, "SELECT id, title, model, api, base_url, profile FROM conversations")
    assert conversation == (1, "Why is the sky blue?", "model-a", "openai-chat", url, None)
    user, answer = messages(db_path)
    assert (user["role"], user["content"], user["status"]) == ("user", "Why is the sky blue?\nAnswer briefly.", "complete")
    assert (answer["role"], answer["status"], answer["model"], answer["api"]) == ("assistant", "complete", "model-a", "openai-chat")
    assert answer["content"].encode() == out
    assert answer["output_tokens"] == 12 and answer["tokens_exact"] == 1 and answer["input_tokens"] > 0
    assert answer["ttft"] is not None and answer["ttft"] >= 0 and answer["elapsed"] >= answer["ttft"]
    assert answer["stop_reason"] == "stop" and answer["error"] is None
    assert answer["writer_pid"] is None


@pytest.mark.parametrize("api", APIS)
def test_continue_sends_the_whole_earlier_conversation(srv, run, db_path: Path, api: str) -> None:
    url = srv.base_url(api, tokens=6)
    code, first, err = run("--api", api, "--base-url", url, "-m", "m1", "first question")
    assert code == 0, err
    since = len(srv.requests)
    code, second, err = run("-c", "second question")  # the conversation's API, URL and model
    assert code == 0, err
    request = srv.requests[since]
    assert request.api == api and request.body["model"] == "m1"
    assert sent(request) == [("user", "first question"), ("assistant", first.decode()), ("user", "second question")]

    since = len(srv.requests)
    code, third, err = run("--continue", "--raw", input=b"third, from stdin\n")
    assert code == 0, err
    assert sent(srv.requests[since]) == [
        ("user", "first question"),
        ("assistant", first.decode()),
        ("user", "second question"),
        ("assistant", second.decode()),
        ("user", "third, from stdin\n"),
    ]
    assert query(db_path, "SELECT count(*) FROM conversations") == [(1,)]
    assert [(m["role"], m["status"]) for m in messages(db_path)] == [("user", "complete"), ("assistant", "complete")] * 3
    assert messages(db_path)[-1]["content"].encode() == third


def test_continue_goes_to_the_conversation_last_prompted(srv, run) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    assert run("--base-url", url, "alpha one")[0] == 0
    assert run("--base-url", url, "beta one")[0] == 0
    since = len(srv.requests)
    code, _, err = run("--conversation", "1", "alpha two")
    assert code == 0, err
    assert sent(srv.requests[since])[0] == ("user", "alpha one")
    since = len(srv.requests)
    code, _, err = run("-c", "alpha three")  # conversation 1 was prompted last, though 2 is newer
    assert code == 0, err
    assert [m for m in sent(srv.requests[since]) if m[0] == "user"] == [
        ("user", "alpha one"),
        ("user", "alpha two"),
        ("user", "alpha three"),
    ]


def test_a_continued_conversation_keeps_its_model_and_url_unless_flags_change_them(srv, run, env: Dict[str, str]) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    assert run("--base-url", url, "-m", "model-one", "hello")[0] == 0
    # Today's defaults point elsewhere: continuing must not send the conversation there.
    elsewhere = dict(env, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", LLMCHAT_MODEL="model-env")
    since = len(srv.requests)
    code, _, err = run("-c", "again", env=elsewhere)
    assert code == 0, err
    assert srv.requests[since].body["model"] == "model-one"
    code, _, err = run("-c", "-m", "model-two", "switch model", env=elsewhere)  # --model replaces just that
    assert code == 0, err
    assert srv.requests[since + 1].body["model"] == "model-two"
    code, _, err = run("-c", "and again", env=elsewhere)  # the latest model used is remembered
    assert code == 0, err
    assert srv.requests[since + 2].body["model"] == "model-two"
    other = srv.base_url("anthropic", tokens=3)
    code, _, err = run("-c", "--api", "anthropic", "--base-url", other, "-m", "claude-x", "to another API", env=elsewhere)
    assert code == 0, err
    last = srv.requests[since + 3]
    assert last.api == "anthropic" and last.body["model"] == "claude-x" and len(sent(last)) == 9


def test_demo_conversations_are_stored_and_continue_with_the_demo(srv, env: Dict[str, str], db_path: Path) -> None:
    """The demo streams at a reading pace: each run is stopped after its first bytes by closing
    the pipe (kept as cancelled), which is all this needs."""

    def demo_run(prompt: str, *args: str, env: Dict[str, str]) -> str:
        proc = spawn([*args, prompt], env)
        try:
            read_some(proc)
            proc.stdout.close()
            proc.wait(WAIT)
            err = proc.stderr.read().decode()
        finally:
            reap(proc)
        assert proc.returncode == 0, err
        return err

    assert "demo model" in demo_run("hello demo", env=env)
    assert query(db_path, "SELECT api, model, base_url FROM conversations") == [("demo", "demo", None)]
    keyed = dict(env, OPENAI_API_KEY="sk-test-key", OPENAI_BASE_URL=srv.base_url("openai-chat"))
    since = len(srv.requests)
    assert "demo model (continuing conversation 1)" in demo_run("hello again", "-c", env=keyed)
    assert len(srv.requests) == since  # the keyed server was not asked
    assert [m["content"] for m in messages(db_path)][::2] == ["hello demo", "hello again"]


def test_every_outcome_is_stored_with_its_status(srv, run, db_path: Path) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=40, error_after=10), "fails")
    assert code == 1
    code, out2, _ = run("--base-url", srv.base_url("openai-chat", tokens=30, finish="length"), "long")
    assert code == 0
    code, _, _ = run("--base-url", srv.base_url("openai-chat", status=400, error_body="json"), "refused")
    assert code == 1
    failed, cut, refused = [m for m in messages(db_path) if m["role"] == "assistant"]
    assert failed["status"] == "error" and failed["content"].encode() == out and failed["content"]
    assert failed["error"] and failed["error"] in err
    assert (cut["status"], cut["stop_reason"], cut["content"].encode()) == ("complete", "length", out2)
    assert refused["status"] == "error" and refused["content"] == "" and "400" in refused["error"]


def test_a_failed_turn_without_text_is_left_out_of_the_context(srv, run) -> None:
    assert run("--base-url", srv.base_url("openai-chat", tokens=3), "first")[0] == 0
    assert run("-c", "--base-url", srv.base_url("openai-chat", status=400), "lost")[0] == 1
    since = len(srv.requests)
    assert run("-c", "--base-url", srv.base_url("openai-chat", tokens=3), "retry")[0] == 0
    assert [role for role, _ in sent(srv.requests[since])] == ["user", "assistant", "user"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--conversation", "42", "hi"], "no conversation 42 (see `llmchat history`)"),
        (["-c", "--conversation", "1", "hi"], "not both"),
        (["--conversation", "abc", "hi"], "abc"),
    ],
)
def test_conversation_usage_errors(srv, run, args: List[str], needle: str) -> None:
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "hi")[0] == 0
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=2), *args)
    assert (code, out) == (2, b"")
    assert needle in one_error(err)
    assert len(srv.requests) == since


def test_continue_with_no_history_yet_is_a_usage_error(run) -> None:
    code, out, err = run("-c", "hi")
    assert (code, out) == (2, b"")
    assert "no conversation to continue" in one_error(err)


def test_no_history_stores_nothing_and_never_opens_the_database(srv, run, write_config, home: Path) -> None:
    url = srv.base_url("openai-chat", tokens=2)
    code, _, err = run("--no-history", "--base-url", url, "hi")
    assert code == 0 and err == ""
    assert not (home / "data").exists()
    code, _, err = run("-c", "--no-history", "--base-url", url, "hi")
    assert code == 2 and "--no-history" in one_error(err)
    write_config("history = false\n")
    code, _, err = run("--base-url", url, "hi")
    assert code == 0 and err == ""
    assert not (home / "data").exists()
    code, _, err = run("-c", "--base-url", url, "hi")
    assert code == 2 and "history = false" in one_error(err)
    write_config("history = 'no'\n")
    code, _, err = run("--base-url", url, "hi")
    assert code == 2 and "'history' must be true or false" in one_error(err)


def test_the_conversation_reaches_the_tui_settings(srv, env: Dict[str, str], home: Path) -> None:
    """-c with no prompt opens the TUI: the resolved ID travels in Settings (checked in-process,
    as the TUI is not started here)."""
    import os
    import subprocess
    import sys

    url = srv.base_url("openai-chat", tokens=2)
    subprocess.run([sys.executable, "-m", "llmchat", "--base-url", url, "hi"], env=env, cwd=home, check=True, capture_output=True)
    probe = (
        "import json, sys\n"
        "import llmchat.tui.app as app\n"
        "from llmchat import cli\n"
        "class Terminal:\n"
        "    def isatty(self): return True\n"
        "app.run_tui = lambda s, *rest: print(json.dumps([s.conversation_id, s.history, s.model, s.base_url]), file=sys.__stdout__) or 0\n"
        "sys.stdin = sys.stdout = Terminal()\n"
        "code = cli.main(sys.argv[1:])\n"
        "sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__\n"
        "raise SystemExit(code)\n"
    )
    today = srv.base_url("openai-chat", tokens=9)
    elsewhere = dict(env, LLMCHAT_MODEL="default-model", LLMCHAT_BASE_URL=today)
    results = {}
    for args in (["-c"], ["--no-history"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], env=elsewhere, cwd=home, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        results[args[0]] = json.loads(proc.stdout)
    conversation_id, history, model, base_url = results["-c"]
    assert (conversation_id, history, base_url) == (1, True, url)
    assert model != "default-model"  # the conversation's own model
    assert results["--no-history"] == [None, False, "default-model", today]
    assert os.path.exists(home / "data" / "history.db")


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "more"],
        ["--continue", "--raw", "q"],
        ["--conversation", "12", "q"],
        ["--conversation=3", "q"],
        ["--no-history", "-m", "x", "q"],
        ["q", "-c", "--no-history"],
    ],
)
def test_the_new_options_parse_on_the_fast_path_as_click_parses_them(args: List[str]) -> None:
    from llmchat.cli import _chat_command, parse_chat_args

    fast = parse_chat_args(args)
    ctx = _chat_command().make_context("llmchat", list(args))
    params = dict(ctx.params)
    params.pop("version")
    params["prompt"] = list(params["prompt"] or [])
    assert fast == params


def test_a_conversation_id_that_is_not_a_number_goes_to_click() -> None:
    from llmchat.cli import parse_chat_args

    assert parse_chat_args(["--conversation", "abc", "q"]) is None
