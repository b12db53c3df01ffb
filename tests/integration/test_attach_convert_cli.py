"""`--pdf-as-text` and `--max-image-px` (and their profile settings) in the one-shot face, as real
subprocesses against the fake server, which checks each API's shapes: a PDF goes as a text
attachment of its extracted text (to Ollama too), an image larger than N pixels goes downscaled,
and what is sent is what history keeps. Nothing changes without the flag."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from attachment_samples import pdf, pdf_with_text, png

from llmchat.demo.server import ServerThread

APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")


def picture(fmt: str, width: int, height: int, **save: object) -> bytes:
    """A real image Pillow encodes (a gradient, so a resize has something to resample)."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def at(srv: ServerThread, api: str) -> tuple:
    """The options that send to the fake server as `api`."""
    return ("--api", api, "--base-url", srv.base_url(api), "-m", "m")


def last_body(srv: ServerThread) -> str:
    return json.dumps(srv.requests[-1].body)


# --------------------------------------------------------------------------------------------
# --pdf-as-text


@pytest.mark.parametrize("api", APIS)
def test_pdf_as_text_sends_the_pdfs_text_not_a_document_on_every_api(run, home: Path, srv: ServerThread, api: str) -> None:
    (home / "paper.pdf").write_bytes(pdf_with_text("Quarterly results\nrevenue rose", "", "Appendix (tables)"))
    code, out, err = run("-a", "paper.pdf", "--pdf-as-text", *at(srv, api), "summarise")
    assert code == 0, err
    assert "I received 1 text file, paper.pdf, the text of a PDF of 3 pages." in out.decode()
    body = last_body(srv)
    assert "File: paper.pdf" in body and "[PDF, 3 pages, its text extracted]" in body
    assert "--- page 1 ---\\nQuarterly results\\nrevenue rose" in body
    assert "--- page 2 ---\\n(no text on this page)" in body and "Appendix (tables)" in body
    assert "application/pdf" not in body and "JVBERi" not in body  # no document part (base64 of %PDF)


def test_without_pdf_as_text_ollama_refuses_a_pdf_and_names_the_flag(run, home: Path, srv: ServerThread) -> None:
    (home / "paper.pdf").write_bytes(pdf_with_text("hello"))
    before = len(srv.requests)
    code, out, err = run("-a", "paper.pdf", *at(srv, "ollama"), "summarise")
    assert code == 2 and out == b""
    assert err.strip().splitlines() == [
        "error: paper.pdf: the Ollama API takes no PDFs; send its text with --pdf-as-text, or use openai-chat, openai-responses, anthropic (--api)"
    ]
    assert len(srv.requests) == before


def test_a_pdf_without_text_is_one_line_and_nothing_is_sent(run, home: Path, srv: ServerThread) -> None:
    (home / "scan.pdf").write_bytes(pdf(2))  # pages with no text, as a scanner makes them
    before = len(srv.requests)
    code, out, err = run("-a", "scan.pdf", "--pdf-as-text", *at(srv, "ollama"), "read it")
    assert code == 2 and out == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: scan.pdf: no text to extract from its 2 pages (a scanned PDF?)"), err
    assert len(srv.requests) == before


def test_a_damaged_pdf_is_one_line(run, home: Path) -> None:
    (home / "bad.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    code, out, err = run("-a", "bad.pdf", "--pdf-as-text", "read it")
    assert code == 2 and out == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.pdf: "), err


def test_history_keeps_the_text_that_was_sent_and_continue_sends_it_to_ollama(run, home: Path, srv: ServerThread) -> None:
    (home / "paper.pdf").write_bytes(pdf_with_text("the text"))
    code, out, err = run("-a", "paper.pdf", "--pdf-as-text", "read it")
    assert code == 0, err
    shown = json.loads(run("history", "show", "1", "--json")[1])
    (meta,) = shown["messages"][0]["attachments"]
    assert (meta["name"], meta["kind"], meta["mime"]) == ("paper.pdf", "text", "text/plain")
    code, out, err = run("-c", "--api", "ollama", *at(srv, "ollama"), "and?")
    assert code == 0, err
    assert "[PDF, 1 page, its text extracted]" in last_body(srv)


def test_continuing_with_pdf_as_text_sends_an_earlier_pdf_as_text(run, home: Path, srv: ServerThread) -> None:
    (home / "paper.pdf").write_bytes(pdf_with_text("earlier page"))
    assert run("-a", "paper.pdf", "first")[0] == 0  # sent (and stored) as a PDF
    code, out, err = run("-c", "--api", "ollama", *at(srv, "ollama"), "and?")
    assert code == 2 and "--pdf-as-text" in err
    code, out, err = run("-c", "--api", "ollama", *at(srv, "ollama"), "--pdf-as-text", "and?")
    assert code == 0, err
    assert "earlier page" in last_body(srv)


def test_regenerate_with_pdf_as_text_sends_the_stored_pdf_as_text(run, home: Path, srv: ServerThread) -> None:
    (home / "paper.pdf").write_bytes(pdf_with_text("stored page"))
    assert run("-a", "paper.pdf", "first")[0] == 0
    code, out, err = run("-c", "--regenerate", *at(srv, "ollama"), "--pdf-as-text")
    assert code == 0, err
    assert "[PDF, 1 page, its text extracted]" in last_body(srv) and "stored page" in last_body(srv)


# --------------------------------------------------------------------------------------------
# --max-image-px


@pytest.mark.parametrize(
    "fmt, name, save",
    [("PNG", "PNG", {}), ("JPEG", "JPEG", {"quality": 80}), ("WEBP", "WebP", {}), ("GIF", "GIF", {})],
    ids=["png", "jpeg", "webp", "gif"],
)
def test_max_image_px_downscales_keeping_the_aspect_and_the_format(run, home: Path, fmt: str, name: str, save: Dict[str, object]) -> None:
    (home / "big.img").write_bytes(picture(fmt, 800, 600, **save))
    code, out, err = run("-a", "big.img", "--max-image-px", "100", "look")
    assert code == 0, err
    assert f"I received 1 image, {name}, 100x75, " in out.decode()


@pytest.mark.parametrize("api", APIS)
def test_the_downscaled_image_goes_in_each_apis_shape(run, home: Path, srv: ServerThread, api: str) -> None:
    (home / "shot.png").write_bytes(picture("PNG", 300, 1200))
    code, out, err = run("-a", "shot.png", "--max-image-px", "64", *at(srv, api), "look")
    assert code == 0, err
    (got,) = srv.requests[-1].received
    assert (got.fmt, got.width, got.height) == ("PNG", 16, 64)


def test_without_the_flag_or_under_the_limit_an_image_is_sent_as_it_is(run, home: Path, srv: ServerThread) -> None:
    original = picture("PNG", 120, 80)
    (home / "shot.png").write_bytes(original)
    for args in ((), ("--max-image-px", "120")):
        code, out, err = run("-a", "shot.png", *args, *at(srv, "ollama"), "look")
        assert code == 0, err
        assert srv.requests[-1].body["messages"][-1]["images"] == [__import__("base64").b64encode(original).decode()]


def test_an_animated_gif_goes_as_its_first_frame(run, home: Path) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (400, 200), colour) for colour in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (home / "anim.gif").write_bytes(out.getvalue())
    code, stdout, err = run("-a", "anim.gif", "--max-image-px", "40", "look")
    assert code == 0, err
    assert "I received 1 image, GIF, 40x20, " in stdout.decode()
    stored = json.loads(run("history", "show", "1", "--json")[1])["messages"][0]["attachments"][0]
    blob = home / "data" / "attachments" / stored["sha256"][:2] / stored["sha256"][2:]
    with Image.open(blob) as sent:
        assert sent.size == (40, 20) and getattr(sent, "n_frames", 1) == 1
        assert sent.convert("RGB").getpixel((20, 10)) == (255, 0, 0)


def test_history_keeps_the_downscaled_image(run, home: Path) -> None:
    (home / "shot.jpg").write_bytes(picture("JPEG", 1000, 500))
    assert run("-a", "shot.jpg", "--max-image-px", "200", "look")[0] == 0
    (meta,) = json.loads(run("history", "show", "1", "--json")[1])["messages"][0]["attachments"]
    assert (meta["mime"], meta["width"], meta["height"]) == ("image/jpeg", 200, 100)


def test_an_image_that_cannot_be_decoded_is_one_line(run, home: Path) -> None:
    (home / "cut.png").write_bytes(png(900, 900)[:60])  # the header says 900x900; the pixels are gone
    code, out, err = run("-a", "cut.png", "--max-image-px", "100", "look")
    assert code == 2 and out == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cut.png: cannot downscale the image"), err


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_image_px_must_be_positive(run, home: Path, value: str) -> None:
    (home / "shot.png").write_bytes(png(4, 4))
    code, out, err = run("-a", "shot.png", f"--max-image-px={value}", "look")
    assert code == 2 and f"max image px must be at least 1, not {value}" in err


# --------------------------------------------------------------------------------------------
# per profile


def test_a_profile_turns_both_on(run, home: Path, srv: ServerThread, write_config) -> None:
    write_config(
        f'default = "local"\n[profiles.local]\napi = "ollama"\nbase_url = "{srv.base_url("ollama")}"\nmodel = "m"\npdf_as_text = true\nmax_image_px = 50\n'
    )
    (home / "paper.pdf").write_bytes(pdf_with_text("from the profile"))
    (home / "shot.png").write_bytes(picture("PNG", 500, 100))
    code, out, err = run("-a", "paper.pdf", "-a", "shot.png", "look")
    assert code == 0, err
    assert "I received 1 image, PNG, 50x10, " in out.decode()
    assert "from the profile" in last_body(srv)


def test_a_profile_setting_of_the_wrong_type_is_a_config_error(run, write_config) -> None:
    write_config('[profiles.local]\npdf_as_text = "yes"\n')
    code, _, err = run("hi")
    assert code == 2 and "profile 'local': pdf_as_text must be true or false" in err
    write_config("[profiles.local]\nmax_image_px = true\n")
    code, _, err = run("hi")
    assert code == 2 and "profile 'local': max_image_px must be a int" in err


# --------------------------------------------------------------------------------------------
# start-up: the libraries are imported only when asked for


def test_pypdf_and_pillow_are_imported_only_with_their_flags(env: Dict[str, str], home: Path) -> None:
    (home / "shot.png").write_bytes(png(8, 8))
    (home / "paper.pdf").write_bytes(pdf_with_text("x"))

    def imported(*args: str) -> set:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "llmchat", *args, "look"], capture_output=True, env=env, cwd=home, timeout=60
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines() if line.startswith("import time:")}

    plain = imported("-a", "shot.png", "-a", "paper.pdf")
    assert "llmchat.attaching" in plain and "pypdf" not in plain and "PIL" not in plain
    both = imported("-a", "shot.png", "-a", "paper.pdf", "--pdf-as-text", "--max-image-px", "4")
    assert "pypdf" in both and "PIL" in both
