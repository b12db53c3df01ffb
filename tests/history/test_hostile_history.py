"""The history against hostile servers and careless set-ups, through real llmchat processes:
reasoning kept with its answer, keys a server echoes never stored or exported, stored rows
that cannot move a terminal's cursor, private directories under any umask."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Dict

import pytest
from history_helpers import WAIT, command

from llmchat.demo.answer import answer_tokens

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]


@pytest.mark.parametrize("api", APIS)
def test_reasoning_is_stored_and_shown_labelled_before_its_answer(srv, run, api: str, tmp_path: Path) -> None:
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, tokens=4, reasoning=6), "-m", "m", "think")
    assert code == 0, err
    reasoning, answer = "".join(answer_tokens("", 6)), "".join(answer_tokens("think", 4))
    assert out.decode() == answer  # stdout: the answer only
    code, shown, err = run("history", "show", "1")
    assert code == 0, err
    text = shown.decode()
    label = text.index("> *Reasoning*")
    assert label < text.index(f"> {reasoning.splitlines()[0]}") < text.index(answer.splitlines()[0])
    code, data, err = run("history", "show", "1", "--json")
    assert json.loads(data)["messages"][1]["reasoning"] == reasoning
    assert run("history", "export", "1", "-o", str(tmp_path / "out.md"))[0] == 0
    assert "> *Reasoning*" in (tmp_path / "out.md").read_text()


KEY = "sk-proj-echoed0123456789abcd"


@pytest.mark.parametrize("source", ["key in use", "another API's key", "a profile's key", "password in the URL", "key in the query"])
def test_a_key_the_server_echoes_is_never_stored_nor_exported(
    srv, run, env: Dict[str, str], write_config, home: Path, tmp_path: Path, source: str
) -> None:
    write_config('[profiles.other]\napi = "anthropic"\napi_key_env = "OTHER_KEY"\n')
    keys = {"key in use": "OPENAI_API_KEY", "another API's key": "ANTHROPIC_API_KEY", "a profile's key": "OTHER_KEY"}
    use = dict(env)
    url = srv.base_url("openai-chat", text=f"Your key is {KEY}. Keep it safe.")
    if source in keys:
        use[keys[source]] = KEY
    elif source == "password in the URL":
        url = url.replace("http://", f"http://me:{KEY}@")
    else:
        url += f"?key={KEY}"
    code, out, err = run("--base-url", url, "-m", "m", f"echo {KEY} back", env=use)
    assert code == 0, err
    assert KEY.encode() in out  # the answer on stdout is the server's, byte for byte
    for path in (home / "data").iterdir():
        assert KEY.encode() not in path.read_bytes(), path
    for args in (["history", "show", "1"], ["history", "show", "1", "--json"], ["history", "--json"], ["history", "search", "key"]):
        code, shown, err = run(*args, env=use)
        assert code == 0 and KEY.encode() not in shown, (args, shown)
    assert run("history", "export", "1", "-o", str(tmp_path / "x.md"), env=use)[0] == 0
    assert KEY not in (tmp_path / "x.md").read_text() and "***" in (tmp_path / "x.md").read_text()


def test_a_key_stored_before_masking_is_masked_in_exports(srv, run, env: Dict[str, str], db_path: Path, tmp_path: Path) -> None:
    """Rows an older llmchat stored with a key in them: the history verbs mask it on the way out."""
    assert run("--base-url", srv.base_url("openai-chat", tokens=3), "hello")[0] == 0
    db = sqlite3.connect(str(db_path))
    db.execute("UPDATE messages SET content = ? WHERE role = 'assistant'", (f"old row with {KEY}",))
    db.commit()
    db.close()
    use = dict(env, OPENAI_API_KEY=KEY)
    for args in (["history", "show", "1"], ["history", "show", "1", "--json"], ["history", "export", "1"]):
        code, shown, err = run(*args, env=use)
        assert code == 0 and KEY.encode() not in shown and b"old row with ***" in shown, args


def on_a_terminal(args, env: Dict[str, str]) -> str:
    """Run llmchat with stdout on a pseudo-terminal; everything it showed there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(command(*args), stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=env["LLMCHAT_HOME"])
    os.close(slave)
    data = b""
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other end closed
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.wait(WAIT)
        proc.stderr.close()
    assert proc.returncode == 0
    return data.decode("utf-8", "replace")


def test_a_hostile_title_neither_acts_on_the_terminal_nor_hides_other_rows(srv, run, env: Dict[str, str], db_path: Path) -> None:
    for i in range(3):
        assert run("--base-url", srv.base_url("openai-chat", tokens=2), f"row {i}")[0] == 0
    db = sqlite3.connect(str(db_path))
    db.execute("UPDATE conversations SET title = ? WHERE id = 2", ("middle \x1b]0;set title ... \u202eevil",))
    db.execute("UPDATE conversations SET title = ? WHERE id = 1", ("oldest\x07 ends a sequence",))
    db.commit()
    db.close()
    shown = on_a_terminal(["history"], env)
    assert "\x1b]" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "row 2" in shown and "middle" in shown and "oldest" in shown, shown  # every row is there
    shown = on_a_terminal(["history", "search", "row"], env)
    assert "\x1b]" not in shown and "oldest" in shown


@pytest.mark.parametrize("args", [["hi"], ["history", "rename", "1", "x"]], ids=["chat", "history verb"])
def test_directories_llmchat_creates_under_umask_000_are_private(srv, env: Dict[str, str], tmp_path: Path, args) -> None:
    home = tmp_path / "new" / "llmchat-home"
    use = dict(env, LLMCHAT_HOME=str(home))
    (tmp_path / "new").mkdir()
    proc = subprocess.run(
        command("--base-url", srv.base_url("openai-chat", tokens=2), *args) if args == ["hi"] else command(*args),
        env=use,
        cwd=tmp_path,
        capture_output=True,
        timeout=WAIT,
        preexec_fn=lambda: os.umask(0),
    )
    if args != ["hi"]:
        assert proc.returncode == 2  # no conversation 1 yet: nothing is created for it
        assert not home.exists() or stat.S_IMODE(home.stat().st_mode) == 0o700
        return
    assert proc.returncode == 0, proc.stderr
    for path in (home, home / "data"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((home / "data" / "history.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [["hi"], ["history"]], ids=["chat", "history verb"])
def test_a_data_directory_others_can_write_in_is_warned_about(srv, run, home: Path, args) -> None:
    assert run("--base-url", srv.base_url("openai-chat", tokens=2), "make it")[0] == 0
    (home / "data").chmod(0o777)
    code, out, err = run(*(["--base-url", srv.base_url("openai-chat", tokens=2)] if args == ["hi"] else []), *args)
    assert code == 0
    (warning,) = err.splitlines()[-1:]
    assert warning.startswith("warning:") and str(home / "data") in warning and "777" in warning and "chmod 700" in warning


def test_a_huge_answer_costs_memory_far_below_its_size_with_history_on(env: Dict[str, str], tmp_path: Path) -> None:
    """96 MiB in 64 KiB deltas from a loopback server: history on may add less than the
    answer's size to the peak (it added four times the size when every save rewrote it)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
    from hostile_server import HostileServer

    delta = "word " * (64 * 1024 // 5)
    event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": delta}}]}).encode() + b"\n\n"
    count = 96 * 1024 * 1024 // len(delta)
    body = event * count + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + body
    del body
    peaks = {}
    with HostileServer(response) as server:
        for history in (False, True):
            args = command("--raw", "--base-url", server.url + "/v1", "-m", "m", "huge")
            if not history:
                args.insert(3, "--no-history")
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=env["LLMCHAT_HOME"])
            _, status, usage = os.wait4(proc.pid, 0)
            err = proc.stderr.read()
            proc.stderr.close()
            assert os.waitstatus_to_exitcode(status) == 0, err
            peaks[history] = usage.ru_maxrss * 1024
    size = count * len(delta)
    assert peaks[True] - peaks[False] < size * 0.75, {k: v // 2**20 for k, v in peaks.items()}
    db = sqlite3.connect(str(Path(env["LLMCHAT_HOME"]) / "data" / "history.db"))
    stored = db.execute("SELECT sum(length(content)) FROM message_parts").fetchone()[0] or 0
    stored += db.execute("SELECT length(content) FROM messages WHERE role = 'assistant'").fetchone()[0]
    db.close()
    assert stored == size  # all of it, in pieces
