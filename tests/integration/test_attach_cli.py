"""`-a/--attach` and binary stdin in the one-shot face, as real subprocesses: the demo model says
what it received; errors are one line with the right exit code and nothing is sent or stored;
history keeps each attachment once and `-c` sends the stored bytes again. `--raw` without
attachments never imports the attachment modules."""

from __future__ import annotations

import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from attachment_samples import pdf, png

from llmchat.demo.server import ServerThread


def size(data: bytes) -> str:
    from llmchat.attachments import human_size

    return human_size(len(data))


def history(run, *args: str) -> object:
    code, out, err = run("history", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def blobs(home: Path) -> List[Path]:
    root = home / "data" / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------------------------
# what is sent


def test_two_files_are_attached_and_the_demo_model_says_what_it_received(run, home: Path) -> None:
    (home / "shot.png").write_bytes(png(800, 600))
    (home / "notes.md").write_text("# Notes\n\nline two\n", encoding="utf-8")
    code, out, err = run("-a", "shot.png", "--attach", "notes.md", "what is wrong here?")
    assert code == 0, err
    text = out.decode()
    assert f"I received 1 image, PNG, 800x600, {size(png(800, 600))} and 1 text file, notes.md, 3 lines." in text
    assert "You asked: *what is wrong here?*" in text


def test_binary_stdin_without_dash_a_is_attached_not_sent_as_text(run) -> None:
    code, out, err = run("describe", input=pdf(3))
    assert code == 0, err
    assert "I received 1 PDF of 3 pages." in out.decode()
    assert "You asked: *describe*" in out.decode()


def test_dash_a_dash_attaches_stdin_and_the_argument_is_the_prompt(run) -> None:
    code, out, err = run("-a", "-", "describe", input=png(4, 3))
    assert code == 0, err
    assert f"I received 1 image, PNG, 4x3, {size(png(4, 3))}." in out.decode()
    code, out, err = run("-a", "-", "summarise", input=b"some notes\non two lines\n")
    assert code == 0, err
    assert "I received 1 text file, stdin, 2 lines." in out.decode()


def test_text_on_stdin_is_still_part_of_the_prompt(run) -> None:
    code, out, err = run("--raw", "review this", input="def f():\n    return 1\n".encode())
    assert code == 0, err
    assert b"I received" not in out
    assert history(run, "show", "1")["messages"][0]["content"] == "review this\n\ndef f():\n    return 1\n"  # type: ignore[index]


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    class Pages(BaseHTTPRequestHandler):
        routes: Dict[str, Tuple[int, str, bytes]] = {
            "/shot.png": (200, "image/png", png(5, 4)),
            "/zip": (200, "application/zip", b"PK\x03\x04"),
        }

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def test_a_url_from_a_loopback_server_is_fetched_and_sent(run, pages: str) -> None:
    code, out, err = run("-a", f"{pages}/shot.png", "what is this?")
    assert code == 0, err
    assert f"I received 1 image, PNG, 5x4, {size(png(5, 4))}." in out.decode()


# --------------------------------------------------------------------------------------------
# errors: one line, the right code, nothing sent or stored


def assert_nothing_sent(run, srv: ServerThread, before: int) -> None:
    assert len(srv.requests) == before
    assert history(run) == []


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["-a", "missing.png"], 2, "missing.png: no such file"),
        (["-a", "archive.zip"], 2, "archive.zip: a ZIP archive"),
        (["-a", "notes.md", "-a", "paper.pdf", "--api", "ollama"], 2, "paper.pdf: the Ollama API takes no PDFs"),
        (["-a", "huge.png", "--api", "anthropic"], 2, "huge.png: 9000x2 px is over Anthropic's limit of 8000x8000 px"),
    ],
    ids=["missing", "zip", "ollama-pdf", "anthropic-pixels"],
)
def test_an_attachment_that_cannot_go_is_one_line_and_nothing_is_sent(
    run, home: Path, srv: ServerThread, args: List[str], code: int, words: str
) -> None:
    (home / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (home / "notes.md").write_text("hi\n", encoding="utf-8")
    (home / "paper.pdf").write_bytes(pdf(1))
    (home / "huge.png").write_bytes(png(9000, 2))
    api = args[args.index("--api") + 1] if "--api" in args else "openai-chat"
    before = len(srv.requests)
    got, out, err = run(*args, "--base-url", srv.base_url(api), "-m", "m", "look")
    assert got == code, err
    assert out == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert_nothing_sent(run, srv, before)


def test_a_url_that_cannot_be_fetched_exits_1_and_nothing_is_sent(run, srv: ServerThread, pages: str) -> None:
    before = len(srv.requests)
    code, out, err = run("-a", f"{pages}/gone.png", "--base-url", srv.base_url("openai-chat"), "-m", "m", "look")
    assert code == 1, err
    assert "gone.png: the server answered 404" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("-a", f"{pages}/zip", "--base-url", srv.base_url("openai-chat"), "-m", "m", "look")
    assert code == 1 and "application/zip, which llmchat cannot attach" in err
    assert_nothing_sent(run, srv, before)


def test_an_attachment_needs_a_prompt(run, home: Path) -> None:
    (home / "shot.png").write_bytes(png())
    code, out, err = run("-a", "shot.png")
    assert code == 2 and "give a prompt with the attachment" in err
    code, out, err = run(input=png())
    assert code == 2 and "give a prompt with the attachment" in err
    code, out, err = run("-a", "-", "-", input=png())
    assert code == 2 and "stdin cannot be both the prompt" in err


# --------------------------------------------------------------------------------------------
# history


def test_history_keeps_each_attachment_once_and_continue_sends_the_stored_bytes(run, home: Path) -> None:
    shot = home / "shot.png"
    shot.write_bytes(png(8, 6))
    code, out, err = run("-a", "shot.png", "-a", "shot.png", "compare")
    assert code == 0, err
    assert f"I received 2 images (PNG, 8x6, {size(png(8, 6))}; PNG, 8x6, {size(png(8, 6))})." in out.decode()
    stored = blobs(home)
    assert len(stored) == 1  # the same bytes twice: one blob
    assert stored[0].read_bytes() == png(8, 6)
    assert stored[0].parent.name + stored[0].name == __import__("hashlib").sha256(png(8, 6)).hexdigest()
    assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(stored[0].parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(stored[0].parent.parent.stat().st_mode) == 0o700

    shot.write_bytes(b"changed on disk since")  # -c sends what was stored
    code, out, err = run("-c", "and now?")
    assert code == 0, err
    assert "Earlier messages carry 2 more attachments, sent again with the conversation." in out.decode()

    shown = history(run, "show", "1")
    first = shown["messages"][0]  # type: ignore[index]
    assert [(a["name"], a["kind"], a["mime"], a["width"], a["height"]) for a in first["attachments"]] == [
        ("shot.png", "image", "image/png", 8, 6)
    ] * 2
    code, out, err = run("history", "show", "1")
    assert code == 0, err
    assert f"- `shot.png` · PNG image, 8x6, {size(png(8, 6))} · sha256 {stored[0].parent.name}" in out.decode()


def test_export_writes_the_attachments_beside_the_markdown_or_inline(run, home: Path) -> None:
    (home / "shot.png").write_bytes(png(3, 3))
    (home / "notes.txt").write_text("a note\n", encoding="utf-8")
    assert run("-a", "shot.png", "-a", "notes.txt", "look")[0] == 0
    code, _, err = run("history", "export", "1", "-o", "out/chat.md")
    assert code == 0, err
    folder = home / "out" / "chat.md.attachments"
    files = {p.name.split("-", 1)[1]: p for p in folder.iterdir()}
    assert files["shot.png"].read_bytes() == png(3, 3) and files["notes.txt"].read_bytes() == b"a note\n"
    assert stat.S_IMODE(files["shot.png"].stat().st_mode) == 0o600
    markdown = (home / "out" / "chat.md").read_text(encoding="utf-8")
    assert f"![shot.png](<chat.md.attachments/{files['shot.png'].name}>)" in markdown
    assert f"[notes.txt](<chat.md.attachments/{files['notes.txt'].name}>)" in markdown

    code, out, err = run("history", "export", "1", "--inline")
    assert code == 0, err
    import base64

    assert f"![shot.png](<data:image/png;base64,{base64.b64encode(png(3, 3)).decode()}>)" in out.decode()
    code, out, err = run("history", "export", "1", "--inline", "--json")
    assert code == 0, err
    names = [(a["name"], a["data_url"][:22]) for a in json.loads(out)["messages"][0]["attachments"]]
    assert names == [("shot.png", "data:image/png;base64,"), ("notes.txt", "data:text/plain;base64")]


def test_deleting_a_conversation_deletes_the_attachments_no_other_one_refers_to(run, home: Path) -> None:
    (home / "a.png").write_bytes(png(2, 2))
    (home / "b.pdf").write_bytes(pdf(1))
    assert run("-a", "a.png", "-a", "b.pdf", "one")[0] == 0
    assert run("-a", "a.png", "two")[0] == 0
    assert len(blobs(home)) == 2
    code, _, err = run("history", "rm", "1", "--yes")
    assert code == 0, err
    assert [p.read_bytes() for p in blobs(home)] == [png(2, 2)]  # still referenced by conversation 2
    code, _, err = run("history", "rm", "2", "--yes")
    assert code == 0, err
    assert blobs(home) == []


# --------------------------------------------------------------------------------------------
# start-up


def test_raw_without_attachments_imports_no_attachment_module(env: Dict[str, str]) -> None:
    import subprocess
    import sys

    for stdin in (b"", b"some text on stdin\n"):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "llmchat", "--raw", "hi"],
            input=stdin,
            capture_output=True,
            env=env,
            cwd=env["LLMCHAT_HOME"],
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines() if line.startswith("import time:")]
        assert "llmchat.oneshot" in imported  # the measure works
        assert "llmchat.attachments" not in imported and "llmchat.attaching" not in imported


def test_dash_a_dash_on_a_terminal_is_a_usage_error_not_a_wait(env: Dict[str, str]) -> None:
    import os
    import pty
    import subprocess
    import sys

    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "llmchat", "-a", "-", "describe"],
            stdin=secondary,
            capture_output=True,
            env=env,
            cwd=env["LLMCHAT_HOME"],
            timeout=30,
        )
    finally:
        os.close(secondary)
        os.close(main)
    assert proc.returncode == 2
    assert b"-a - attaches what is piped in, and stdin is a terminal" in proc.stderr
