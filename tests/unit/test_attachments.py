"""llmchat.attachments: kinds from magic bytes, image sizes from headers, PDF pages, the binary
rule for stdin, text inlined as fenced blocks, loading files and stdin, and the limits each API
documents, each refused in one line that names the file, its size and the limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from attachment_samples import GIF_1X1, jpeg, pdf, pdf_with_object_streams, png, webp_extended, webp_lossless, webp_lossy

from llmchat import attachments as A
from llmchat.attachments import Attachment, AttachmentError, FetchError, check_limits, detect_binary, from_bytes, load
from llmchat.conversation import Message
from llmchat.exitcodes import ERROR, USAGE

# --------------------------------------------------------------------------------------------
# kinds and headers


@pytest.mark.parametrize(
    "data, mime, size",
    [
        (png(800, 600), "image/png", (800, 600)),
        (jpeg(1024, 768), "image/jpeg", (1024, 768)),
        (GIF_1X1, "image/gif", (1, 1)),
        (webp_lossy(640, 480), "image/webp", (640, 480)),
        (webp_lossless(300, 200), "image/webp", (300, 200)),
        (webp_extended(4000, 3000), "image/webp", (4000, 3000)),
    ],
    ids=["png", "jpeg", "gif", "webp-lossy", "webp-lossless", "webp-extended"],
)
def test_an_image_is_known_by_its_bytes_and_its_pixel_size_read_from_the_header(data: bytes, mime: str, size: tuple) -> None:
    item = from_bytes("picture.bin", data)  # the name says nothing: the bytes decide
    assert (item.kind, item.mime, (item.width, item.height)) == ("image", mime, size)
    assert item.size == len(data) and len(item.sha256) == 64


def test_a_jpeg_whose_frame_header_comes_after_other_segments_is_measured() -> None:
    data = jpeg(1920, 1080)
    extra = b"\xff\xe1" + (20).to_bytes(2, "big") + b"Exif\x00\x00" + b"\x00" * 12  # an APP1 segment first
    item = from_bytes("x.jpg", data[:2] + extra + data[2:])
    assert (item.width, item.height) == (1920, 1080)


def test_a_cut_short_image_header_gives_no_size_but_is_still_an_image() -> None:
    item = from_bytes("x.png", png()[:12])
    assert item.kind == "image" and (item.width, item.height) == (None, None)


def test_a_file_named_png_that_holds_text_is_text() -> None:
    assert from_bytes("trick.png", b"just words\n").kind == "text"


def test_a_pdf_is_known_by_its_header_and_its_pages_are_counted_exactly() -> None:
    item = from_bytes("report.bin", pdf(3))
    assert (item.kind, item.mime, item.pages, item.pages_exact) == ("pdf", "application/pdf", 3, True)
    assert item.summary() == "PDF, 3 pages, " + A.human_size(item.size)


class _Scanned(bytes):
    """A PDF's bytes that record how much each `find` over them scans (one C call, GIL held):
    up to the needle found, or the whole range asked for."""

    spans: list

    def find(self, sub, start=None, end=None):  # type: ignore[no-untyped-def,override]
        begin, stop = start or 0, len(self) if end is None else end
        found = bytes.find(self, sub, start, end)
        self.spans.append(stop - begin if found < 0 else found + len(sub) - begin)
        return found

    def __contains__(self, sub) -> bool:  # type: ignore[no-untyped-def,override]
        self.spans.append(len(self))
        return bytes.__contains__(self, sub)


@pytest.mark.parametrize("window", [7, 1 << 18])
def test_counting_a_10_mb_pdfs_pages_scans_it_once_in_windows_and_counts_as_before(monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    """Counting pages is done in a worker thread, but a regex or `in` over 10 MB is one C call
    that holds the GIL (three of them: 15-45 ms, the TUI's loop stalled for as long): now one
    search for `/Type`, each call over at most a window, and the counts are as they were (also
    with a 7-byte window that cuts every needle, and a page tree whose /Count comes first)."""
    monkeypatch.setattr(A, "_WINDOW", window)
    count_first = (
        b"%PDF-1.4\n1 0 obj << /Count 2 /Kids [3 0 R 4 0 R] /Type /Pages >> endobj 3 0 obj <</Type/Page>> endobj 4 0 obj <</Type /Page>> endobj"
    )
    kids = b" ".join(b"%d 0 R" % n for n in range(3, 1503))  # a page tree of 1500 pages: 10 KB of /Kids around its /Count
    pages = b"".join(b"%d 0 obj <</Type /Page>> endobj\n" % n for n in range(3, 1503))
    long_kids = [
        b"%PDF-1.4\n2 0 obj << " + tree + b" >> endobj\n" + pages
        for tree in (b"/Type /Pages /Kids [" + kids + b"] /Count 1500", b"/Count 1500 /Kids [" + kids + b"] /Type /Pages")
    ]
    samples = [(pdf(3), (3, True)), (pdf(12), (12, True)), (pdf_with_object_streams(5), (5, False)), (count_first, (2, True))]
    samples += [(sample, (1500, True)) for sample in long_kids]
    for sample, expected in samples:
        assert A.pdf_pages(sample) == expected
    base = pdf(3)
    data = _Scanned(base[:-6] + b" " * (10 * 1024 * 1024 - len(base)) + base[-6:])
    data.spans = []
    assert A.pdf_pages(data) == (3, True)
    assert max(data.spans) < window + 16
    assert window < 1000 or sum(data.spans) < 1.01 * len(data)  # once through


def test_a_pdf_hiding_its_pages_in_object_streams_has_an_estimate_said_as_about() -> None:
    item = from_bytes("compressed.pdf", pdf_with_object_streams(5))
    assert (item.pages, item.pages_exact) == (5, False)
    assert "about 5 pages" in item.summary()


@pytest.mark.parametrize(
    "data, binary",
    [
        (b"plain text\n", False),
        ("naïve café ünïcödé\n".encode(), False),
        ("é".encode() * 5000, False),  # a two-byte character cut by the 8 KB sample's end
        ("Grüße aus Köln\n".encode("latin-1"), False),  # another 8-bit encoding is still text
        ("utf-16 text".encode("utf-16"), False),
        (b"\x00\x01\x02\x03binary", True),
        (bytes(range(256)) * 4, True),
        (png(), True),
        (pdf(1), True),
    ],
    ids=["ascii", "utf8", "utf8-cut", "latin1", "utf16-bom", "nul", "random", "png", "pdf"],
)
def test_binary_data_is_told_from_text(data: bytes, binary: bool) -> None:
    assert detect_binary(data) is binary


def test_latin1_text_is_sent_as_utf8() -> None:
    item = from_bytes("old.txt", "Grüße\n".encode("latin-1"))
    assert item.data == "Grüße\n".encode() and item.text() == "Grüße\n"


@pytest.mark.parametrize(
    "data, said",
    [
        (b"PK\x03\x04" + b"\x00" * 40, "a ZIP archive"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 40, "an executable (ELF)"),
        (b"BM" + b"\x00\x01" * 40, "a BMP image"),
        (b"\x00\x01\x02\x03\x04" * 10, "binary data"),
    ],
)
def test_an_unknown_binary_kind_is_refused_in_one_line_naming_what_it_is(data: bytes, said: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        from_bytes("thing.bin", data)
    message = str(caught.value)
    assert message.startswith(f"thing.bin: {said}") and "\n" not in message
    assert "images (PNG, JPEG, GIF, WebP) and PDFs" in message
    assert caught.value.exit_code == USAGE == 2


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(AttachmentError, match="empty.txt: nothing to attach"):
        from_bytes("empty.txt", b"")


def test_text_over_the_cap_is_refused_with_its_size_and_the_cap() -> None:
    with pytest.raises(AttachmentError) as caught:
        from_bytes("big.log", b"x" * (600 * 1024))
    assert str(caught.value) == "big.log: 600 KB of text is over the 512 KB limit for a text attachment"
    assert from_bytes("big.log", b"x" * 2000, max_text=4000).kind == "text"


def test_an_attachments_repr_never_carries_its_bytes() -> None:
    item = from_bytes("shot.png", png(300, 300))
    assert "data=" not in repr(item) and "\\x89PNG" not in repr(Message("user", "hi", (item,)))


# --------------------------------------------------------------------------------------------
# text in the prompt


def test_a_text_file_is_inlined_as_a_fenced_block_headed_by_its_name_and_language() -> None:
    item = from_bytes("src/app.py", b"print('hi')\n")
    assert A.fenced(item) == "File: src/app.py\n```python\nprint('hi')\n```"


def test_the_fence_is_longer_than_any_run_of_backticks_in_the_file() -> None:
    item = from_bytes("README.md", b"# Title\n\n````\ncode\n````\n")
    assert A.fenced(item).splitlines()[1] == "`````markdown"
    assert A.fenced(item).endswith("\n`````")


@pytest.mark.parametrize("name, lang", [("a.rs", "rust"), ("Dockerfile", "dockerfile"), ("x.unknownext", ""), ("notes", ""), ("cfg.YAML", "yaml")])
def test_the_language_is_guessed_from_the_extension(name: str, lang: str) -> None:
    assert A.language(name) == lang


def test_text_files_go_before_the_question_and_images_are_left_to_the_api() -> None:
    notes = from_bytes("notes.md", b"- a\n")
    image = from_bytes("shot.png", png())
    text = A.with_inlined_text("summarise", [image, notes])
    assert text == "File: notes.md\n```markdown\n- a\n```\n\nsummarise"
    assert A.media([image, notes]) == [image]


def test_html_is_reduced_to_its_text() -> None:
    html = (
        "<html><head><title>The Page</title><style>p{}</style><script>alert(1)</script></head>"
        "<body><h2>Section</h2><p>One &amp; two<br>three</p><ul><li>first</li><li>second</li></ul>"
        "<pre>  kept   as is</pre></body></html>"
    )
    assert A.html_to_text(html) == "# The Page\n\n## Section\n\nOne & two\nthree\n\n- first\n- second\n\nkept   as is"


# --------------------------------------------------------------------------------------------
# files and stdin


def test_a_file_is_loaded_and_named_as_given(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    path.write_bytes(png(4, 3))
    item = load(str(path))
    assert (item.name, item.kind, item.width, item.height) == (str(path), "image", 4, 3)
    assert item.filename() == "shot.png"


def test_stdin_bytes_are_loaded_for_a_dash() -> None:
    item = load("-", stdin=pdf(2))
    assert (item.name, item.kind, item.pages, item.filename()) == ("stdin", "pdf", 2, "stdin.pdf")


def test_stdin_is_read_from_the_process_when_no_bytes_are_given(tmp_path: Path) -> None:
    code = "from llmchat.attachments import load; a = load('-'); print(a.kind, a.width, a.height)"
    done = subprocess.run([sys.executable, "-c", code], input=png(7, 5), capture_output=True, timeout=60)
    assert done.stdout.decode().split() == ["image", "7", "5"], done.stderr.decode()


@pytest.mark.parametrize("setup, said", [("missing", "no such file"), ("dir", "is a directory")])
def test_a_file_that_cannot_be_attached_is_refused_in_one_line(tmp_path: Path, setup: str, said: str) -> None:
    path = tmp_path / "thing"
    if setup == "dir":
        path.mkdir()
    with pytest.raises(AttachmentError) as caught:
        load(str(path))
    assert str(caught.value).startswith(f"{path}: {said}")


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    with path.open("wb") as handle:  # sparse: the size is real, nothing is written
        handle.truncate(60 * 1024 * 1024)
    with pytest.raises(AttachmentError, match=r"huge.pdf: 60 MB is over the 50 MB limit for an attachment"):
        load(str(path))


def test_a_url_is_not_loaded_as_a_file() -> None:
    assert A.is_url("https://example.com/a.png") and not A.is_url("./https.png")
    with pytest.raises(ValueError, match="fetch"):
        load("https://example.com/a.png")


# --------------------------------------------------------------------------------------------
# each API's limits


def sized(kind: str, size: int, name: str = "") -> Attachment:
    """An attachment of `size` bytes without building the bytes' content (limits read sizes)."""
    head = png() if kind == "image" else pdf(1) if kind == "pdf" else b"x"
    data = head + b"\x00" * max(0, size - len(head))
    mime = {"image": "image/png", "pdf": "application/pdf", "text": "text/plain"}[kind]
    return Attachment(name or f"file.{kind}", kind, mime, data, len(data), "0" * 64, pages=1 if kind == "pdf" else None, pages_exact=True)  # type: ignore[arg-type]


MB = 1024 * 1024


def test_anthropic_refuses_an_image_whose_base64_is_over_5_mb() -> None:
    check_limits("anthropic", [sized("image", 3 * MB)])  # 4 MB as base64: fine
    with pytest.raises(AttachmentError) as caught:
        check_limits("anthropic", [sized("image", 4 * MB, "shot.png")])
    assert str(caught.value) == "shot.png: 4 MB (5.3 MB as base64) is over Anthropic's 5 MB limit for one image"


def test_anthropic_refuses_an_image_over_8000_px_or_over_2000_px_among_more_than_20() -> None:
    wide = from_bytes("wide.png", png(8001, 1))
    with pytest.raises(AttachmentError, match=r"^wide.png: 8001x1 px is over Anthropic's limit of 8000x8000 px$"):
        check_limits("anthropic", [wide])
    check_limits("openai-chat", [wide])  # OpenAI scales large images down itself
    shots = [from_bytes(f"s{k}.png", png(2001 if k == 20 else 10, 10)) for k in range(21)]
    check_limits("anthropic", shots[:20] + [from_bytes("s20.png", png(2000, 10))])
    with pytest.raises(
        AttachmentError, match=r"^s20.png: 2001x10 px is over Anthropic's limit of 2000x2000 px when a request has more than 20 images$"
    ):
        check_limits("anthropic", shots)


def test_anthropic_refuses_a_request_over_32_mb_naming_the_files() -> None:
    items = [sized("pdf", 9 * MB, f"part{k}.pdf") for k in range(3)]
    with pytest.raises(AttachmentError, match=r"^part0.pdf, part1.pdf, part2.pdf: 36 MB as sent is over Anthropic's 32 MB limit for one request$"):
        check_limits("anthropic", items)


def test_anthropic_and_openai_refuse_more_than_100_pdf_pages() -> None:
    book = from_bytes("book.pdf", pdf(101))
    for api, who in (("anthropic", "Anthropic"), ("openai-chat", "OpenAI"), ("openai-responses", "OpenAI")):
        with pytest.raises(AttachmentError, match=rf"^book.pdf: 101 pages is over {who}'s limit of 100 PDF pages for one request$"):
            check_limits(api, [book])


def test_an_estimated_page_count_is_not_held_against_a_pdf() -> None:
    check_limits("anthropic", [from_bytes("compressed.pdf", pdf_with_object_streams(150))])


@pytest.mark.parametrize("api", ["openai-chat", "openai-responses"])
def test_openai_refuses_an_image_over_20_mb_images_over_50_mb_and_pdfs_over_32_mb(api: str) -> None:
    check_limits(api, [sized("image", 19 * MB)])
    with pytest.raises(AttachmentError, match=r"^big.png: 21 MB is over OpenAI's 20 MB limit for one image$"):
        check_limits(api, [sized("image", 21 * MB, "big.png")])
    with pytest.raises(AttachmentError, match=r"of images is over OpenAI's 50 MB limit for one request$"):
        check_limits(api, [sized("image", 18 * MB) for _ in range(3)])
    with pytest.raises(AttachmentError, match=r"^a.pdf, b.pdf: 34 MB of PDFs is over OpenAI's 32 MB limit for one request$"):
        check_limits(api, [sized("pdf", 17 * MB, "a.pdf"), sized("pdf", 17 * MB, "b.pdf")])


def test_ollama_refuses_a_pdf_naming_the_apis_that_take_one() -> None:
    check_limits("ollama", [sized("image", 30 * MB)])  # Ollama documents no size limit
    with pytest.raises(AttachmentError) as caught:
        check_limits("ollama", [from_bytes("report.pdf", pdf(1))])
    assert str(caught.value) == (
        "report.pdf: the Ollama API takes no PDFs; send its text with --pdf-as-text, or use openai-chat, openai-responses, anthropic (--api)"
    )
    assert caught.value.exit_code == USAGE


def test_a_fetch_error_exits_1_and_is_an_attachment_error() -> None:
    assert issubclass(FetchError, AttachmentError) and FetchError.exit_code == ERROR == 1


# --------------------------------------------------------------------------------------------
# start-up


def test_a_message_without_attachments_imports_nothing_of_attachments() -> None:
    """`--raw` start-up must not import anything new: building every API's request for plain
    messages leaves llmchat.attachments (and the demo's reader of them) unimported."""
    code = (
        "import sys\n"
        "from llmchat.conversation import ChatRequest, Message\n"
        "from llmchat.providers import get_provider\n"
        "for api in ('openai-chat', 'openai-responses', 'anthropic', 'ollama'):\n"
        "    get_provider(api).build_request(ChatRequest('m', [Message('user', 'File: x')], 'http://127.0.0.1:1'))\n"
        "print(sorted(m for m in sys.modules if m in ('llmchat.attachments', 'llmchat.demo.inputs', 'html.parser')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_prepare_encodes_once_and_the_encoding_is_not_part_of_the_value() -> None:
    first, second = from_bytes("a.png", png(9, 9)), from_bytes("a.png", png(9, 9))
    A.prepare([first, from_bytes("n.txt", b"words")])
    assert first.base64() is first.base64()  # kept, not made again
    assert first == second and hash(first) == hash(second)  # one encoded, one not: still equal
    assert "_base64" not in repr(first)


def test_the_module_imports_no_face_no_ui_library_and_no_httpx_at_load() -> None:
    """The layer under the engine and the faces: only the standard library and llmchat's own
    exit codes at module level (httpx only for type checking; the caller owns the client)."""
    import ast

    tree = ast.parse(Path(A.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:  # module level only: function bodies import lazily on purpose
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not {n for n in names if n.split(".")[0] in ("textual", "rich", "httpx", "typer")}
    assert not {n for n in names if n.startswith("llmchat.") and n not in ("llmchat.exitcodes",)}
