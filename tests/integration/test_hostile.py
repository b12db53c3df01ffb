"""Hostile input, from servers, stored rows, the command line and the process's own streams:
llmchat as a real subprocess must answer each with one clear line (or its answer), a sane exit
code, and nothing a terminal would act on -- never a traceback, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from commands import RUN_TIMEOUT, llmchat_command  # tests/commands.py
from hostile_server import HostileServer, http

KEY = "sk-hostile-0123456789abcdef"
OTHER_KEY = "sk-ant-other-9876543210fedcba"

# What a terminal would act on: a title change, a clipboard write, a screen clear, a
# hyperlink, an 8-bit CSI, a right-to-left override and an isolate.
ATTACKS = "\x1b]0;pwned\x07 \x1b]52;c;aGVsbG8=\x07 \x1b[2J\x1b[H \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ \x9b2J \u202eevil\u202c \u2067iso\u2069"


def acts_on_a_terminal(text: str) -> list:
    """Every character in `text` a terminal would act on (C0 but TAB and LF, DEL, C1, BiDi)."""
    return [
        c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069
    ]


def assert_one_clean_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert acts_on_a_terminal(lines[0]) == [], repr(lines[0])
    return lines[0]


def spawn_run(args, env, *, stdin=b"", preexec=None, stdout=subprocess.PIPE):
    proc = subprocess.run(
        llmchat_command(*args),
        input=stdin if stdin is not None else None,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        cwd=env["LLMCHAT_HOME"],
        timeout=RUN_TIMEOUT,
        preexec_fn=preexec,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


# --- server error messages -----------------------------------------------------------------


def _json_error() -> bytes:
    body = json.dumps({"error": {"message": f"bad request {ATTACKS}", "type": "invalid_request_error"}}).encode()
    return http("HTTP/1.1 400 Bad Request", "application/json", body)


def _html_title(raw: bool) -> bytes:
    title = ATTACKS if raw else "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in ATTACKS)
    body = f"<html><head><title>Gateway {title}</title></head><body>x</body></html>".encode()
    return http("HTTP/1.1 404 Not Found", "text/html", body)


def _text_body() -> bytes:
    return http("HTTP/1.1 403 Forbidden", "text/plain", f"denied {ATTACKS}\n".encode())


def _reason_phrase() -> bytes:
    return http(b"HTTP/1.1 403 Forbidden \x9b2J \xe2\x80\xae evil", "text/plain", b"")


def _stream_error_event() -> bytes:
    events = (
        'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'
        + "data: "
        + json.dumps({"error": {"message": f"overloaded {ATTACKS}"}})
        + "\n\n"
    ).encode()
    return http("HTTP/1.1 200 OK", "text/event-stream", events)


SERVER_ERRORS = {
    "JSON error message": _json_error(),
    "HTML title": _html_title(raw=True),
    "HTML title as entities": _html_title(raw=False),
    "plain text body": _text_body(),
    "reason phrase": _reason_phrase(),
    "mid-stream error event": _stream_error_event(),
}


@pytest.mark.parametrize("name", list(SERVER_ERRORS))
def test_a_server_error_message_reaches_stderr_as_one_clean_line(env: Dict[str, str], name: str) -> None:
    with HostileServer(SERVER_ERRORS[name]) as server:
        code, out, err = spawn_run(["--no-history", "--raw", "--base-url", server.url + "/v1", "-m", "m", "hi"], env)
    assert code == 1, err
    line = assert_one_clean_line(err)
    assert line.startswith("error:")
    if name not in ("reason phrase", "HTML title as entities"):  # (entities of controls decode to nothing)
        assert "pwned" not in line and "aGVsbG8" not in line  # the payloads go with their sequences
    assert out in (b"", b"partial")


@pytest.mark.parametrize("name", ["JSON error message", "mid-stream error event"])
def test_a_stored_server_error_is_clean_in_history_show(env: Dict[str, str], name: str) -> None:
    with HostileServer(SERVER_ERRORS[name]) as server:
        assert spawn_run(["--raw", "--base-url", server.url + "/v1", "-m", "m", "hi"], env)[0] == 1
    code, out, err = spawn_run(["history", "show", "1"], env)
    assert code == 0, err
    text = out.decode()
    (note,) = [line for line in text.splitlines() if "error:" in line]
    assert acts_on_a_terminal(note) == [], repr(note)


@pytest.mark.parametrize("where", ["--stats line", "history list", "history show", "history search"])
def test_a_hostile_model_name_never_reaches_a_terminal_as_sequences(srv, env: Dict[str, str], where: str) -> None:
    model = f"gpt{ATTACKS}"
    url = srv.base_url("openai-chat", text="the blue sky")
    code, _, err = spawn_run(["--stats", "--raw", "--base-url", url, "-m", model, "sky"], env)
    assert code == 0, err
    if where == "--stats line":
        assert_one_clean_line(err)
        return
    args = {"history list": ["history"], "history show": ["history", "show", "1"], "history search": ["history", "search", "blue"]}[where]
    code, out, err = spawn_run(args, env)
    assert code == 0, err
    labels = [line for line in out.decode().splitlines() if "gpt" in line]
    assert labels and all(acts_on_a_terminal(line) == [] for line in labels), labels


# --- no traceback, ever ----------------------------------------------------------------------

BIG = str(2**64 + 5)


@pytest.mark.parametrize(
    "args",
    [
        ["history", "show", BIG],
        ["history", "export", BIG],
        ["history", "rename", BIG, "new"],
        ["history", "rm", "--yes", BIG],
        ["--conversation", BIG, "hi"],
        ["history", "show", str(2**63)],
    ],
    ids=lambda a: " ".join(a[:2]) + (" 2^63" if a[-1] == str(2**63) else ""),
)
def test_ids_beyond_what_sqlite_can_hold_are_unknown_conversations(srv, env: Dict[str, str], args) -> None:
    assert spawn_run(["--base-url", srv.base_url("openai-chat", tokens=2), "one"], env)[0] == 0
    code, _, err = spawn_run(args, env)
    assert code == 2
    assert "no conversation" in assert_one_clean_line(err)


@pytest.mark.parametrize("args", [["history", "-n", BIG], ["history", "search", "-n", BIG, "one"], ["history", "--json", "-n", BIG]])
def test_a_limit_beyond_what_sqlite_can_hold_means_no_limit(srv, env: Dict[str, str], args) -> None:
    assert spawn_run(["--base-url", srv.base_url("openai-chat", tokens=2), "one"], env)[0] == 0
    code, out, err = spawn_run(args, env)
    assert code == 0 and "Traceback" not in err, err
    assert b"one" in out


@pytest.mark.parametrize("args", [[], ["-"], ["--raw"], ["history", "rm", "1"]], ids=["no prompt", "dash", "raw", "rm asks"])
def test_a_closed_stdin_is_one_line_not_a_traceback(srv, env: Dict[str, str], args) -> None:
    assert spawn_run(["--base-url", srv.base_url("openai-chat", tokens=2), "one"], env)[0] == 0
    code, _, err = spawn_run(args, env, stdin=None, preexec=lambda: os.close(0))
    assert code in (1, 2), err
    assert "Traceback" not in err and "Exception ignored" not in err, err


HISTORY_VERBS = [
    ["history"],
    ["history", "--json"],
    ["history", "show", "1"],
    ["history", "show", "1", "--json"],
    ["history", "export", "1"],
    ["history", "search", "one"],
    ["history", "path"],
    ["config", "path"],
]


@pytest.mark.parametrize("args", HISTORY_VERBS, ids=" ".join)
def test_a_full_stdout_is_one_error_line(srv, env: Dict[str, str], args) -> None:
    assert spawn_run(["--base-url", srv.base_url("openai-chat", tokens=2), "one"], env)[0] == 0
    with open("/dev/full", "wb") as full:
        code, _, err = spawn_run(args, env, stdout=full)
    assert code == 1, err
    assert "No space left" in assert_one_clean_line(err)


@pytest.mark.parametrize("args", HISTORY_VERBS, ids=" ".join)
def test_a_closed_stdout_is_one_error_line(srv, env: Dict[str, str], args) -> None:
    assert spawn_run(["--base-url", srv.base_url("openai-chat", tokens=2), "one"], env)[0] == 0
    code, _, err = spawn_run(args, env, stdout=None, preexec=lambda: os.close(1))
    assert code == 1, err
    assert "stdout" in assert_one_clean_line(err)


def fill(home: Path, conversations: int = 1500) -> None:
    """More history than a pipe holds (64 KiB) for every verb: many conversations, a long answer."""
    from llmchat.history import COMPLETE, HistoryStore

    with HistoryStore.open(home / "data" / "history.db") as store:
        for i in range(conversations):
            writer = store.begin_turn(None, f"one {i} " + "title " * 10, model="m")
            writer.append("one answer " * (20_000 if i == 0 else 1))
            writer.finish(COMPLETE)


@pytest.mark.parametrize(
    "args",
    [
        ["history"],
        ["history", "--json"],
        ["history", "show", "1"],
        ["history", "show", "1", "--json"],
        ["history", "export", "1"],
        ["history", "search", "-n", "5000", "one"],
    ],
    ids=" ".join,
)
def test_a_reader_that_goes_away_ends_the_history_verbs_quietly(env: Dict[str, str], home: Path, args) -> None:
    fill(home)
    proc = subprocess.Popen(llmchat_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=env["LLMCHAT_HOME"])
    proc.stdout.read(1)
    proc.stdout.close()  # as `| head -c1` does
    err = proc.stderr.read().decode()
    proc.wait(RUN_TIMEOUT)
    proc.stderr.close()
    assert proc.returncode == 0, err
    assert err == ""


CRASHERS = {
    "chat": "import llmchat.cli as cli\ndef boom(values):\n    raise RuntimeError('boom ' + os.environ['OPENAI_API_KEY'])\ncli.chat = boom\n",
    "history": "import llmchat.history as h\ndef boom(*a, **k):\n    raise RuntimeError('boom ' + os.environ['OPENAI_API_KEY'])\nh.default_path = boom\n",
}


@pytest.mark.parametrize("face, args", [("chat", ["hi"]), ("history", ["history"])])
def test_a_bug_is_logged_with_its_traceback_and_reported_in_one_line(env: Dict[str, str], home: Path, face: str, args) -> None:
    script = "import os, sys\n" + CRASHERS[face] + f"import llmchat.cli\nraise SystemExit(llmchat.cli.main({args!r}))\n"
    proc = subprocess.run([sys.executable, "-c", script], env=dict(env, OPENAI_API_KEY=KEY), capture_output=True, timeout=RUN_TIMEOUT)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    line = assert_one_clean_line(err)
    (log,) = (home / "data" / "crashes").iterdir()
    assert str(log) in line and "RuntimeError" in line and KEY not in line
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom ***" in text
    assert KEY not in text
    assert log.stat().st_mode & 0o777 == 0o600


# --- base URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai-chat", "openai-responses", "anthropic", "ollama"])
def test_a_query_string_in_the_base_url_stays_after_the_endpoint(srv, env: Dict[str, str], api: str) -> None:
    base = srv.base_url(api, tokens=3) + "?api-version=2024-10-21"
    since = len(srv.requests)
    code, out, err = spawn_run(["--no-history", "--api", api, "--base-url", base, "-m", "m", "hi"], env)
    assert code == 0, err
    (request,) = srv.requests[since:]
    assert request.target.endswith("?api-version=2024-10-21")
    assert request.api == api


@pytest.mark.parametrize(
    "url",
    [
        "http://u:{pw}@127.0.0.1:99999/v1?key={k}",  # a port out of range
        "http://u:{pw}@127.0.0.1:0/v1?key={k}",  # port 0
        "ftp://u:{pw}@127.0.0.1/v1?key={k}",  # not http
        "http://u:{pw}@[::1/v1?key={k}",  # an unclosed IPv6 address
        "http://u:{pw}@127.0.0.1/v1\x1b]0;t\x07?key={k}",  # a control sequence
        "http://u:{pw}@127.0.0.1/v 1?key={k}",  # a space
        "http://u:{pw}@127.0.0.1/v1\n?key={k}",  # a newline
        "http://u:{pw}@127.0.0.1/v1\x7f?key={k}",  # DEL
        "http://u:{pw}@127.0.0.1/v1\u0085?key={k}",  # NEL
    ],
    ids=["port", "port 0", "scheme", "ipv6", "escape", "space", "newline", "DEL", "NEL"],
)
def test_a_bad_base_url_is_a_usage_error_that_shows_no_credentials(env: Dict[str, str], url: str) -> None:
    password, key = "pw-Secret-4242", "K-query-secret-77"
    code, out, err = spawn_run(["--no-history", "--base-url", url.format(pw=password, k=key), "hi"], env)
    assert code == 2, err
    line = assert_one_clean_line(err)
    assert "base URL" in line
    assert password not in line and key not in line


@pytest.mark.parametrize(
    "api, variable", [("openai-chat", "OPENAI_API_KEY"), ("openai-responses", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_a_password_in_the_base_url_never_silently_replaces_the_key(srv, env: Dict[str, str], api: str, variable: str) -> None:
    url = srv.base_url(api, tokens=3).replace("http://", "http://user:url-password-123@")
    since = len(srv.requests)
    code, _, err = spawn_run(["--no-history", "--api", api, "--base-url", url, "hi"], dict(env, **{variable: KEY}))
    assert code == 2
    line = assert_one_clean_line(err)
    assert variable in line and KEY not in line and "url-password-123" not in line
    assert len(srv.requests) == since  # nothing was sent


# --- secrets in what is printed ---------------------------------------------------------------


@pytest.mark.parametrize("echoed", ["the key in use", "another API's key", "a profile's key"])
def test_a_key_echoed_in_a_server_error_is_masked_on_stderr(env: Dict[str, str], write_config, echoed: str) -> None:
    write_config('[profiles.other]\napi = "anthropic"\napi_key_env = "MY_OTHER_KEY"\n')
    secret = {"the key in use": KEY, "another API's key": OTHER_KEY, "a profile's key": "sk-profile-5555aaaa"}[echoed]
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {secret}. Check it."}}).encode()
    keyed = dict(env, OPENAI_API_KEY=KEY, ANTHROPIC_API_KEY=OTHER_KEY, MY_OTHER_KEY="sk-profile-5555aaaa")
    with HostileServer(http("HTTP/1.1 401 Unauthorized", "application/json", body)) as server:
        code, _, err = spawn_run(["--raw", "--base-url", server.url + "/v1", "-m", "m", "hi"], keyed)
    assert code == 1
    line = assert_one_clean_line(err)
    assert secret not in line and "***" in line
    code, out, err = spawn_run(["history", "show", "1", "--json"], keyed)
    assert code == 0 and secret.encode() not in out
    for path in (Path(env["LLMCHAT_HOME"]) / "data").iterdir():
        assert secret.encode() not in path.read_bytes(), path
