"""Attachments end to end: the real StreamingClient sends them to the fake server for all four
APIs and the demo model says what it received; a malformed part gets the 400 the real API
gives, in its error JSON, and the client shows the API's words; a URL is fetched from a loopback
HTTP server with its size cap and content-type check."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Tuple

import httpx
import pytest
from attachment_samples import GIF_1X1, jpeg, pdf, pdf_with_object_streams, png

from llmchat.attachments import AttachmentError, FetchError, fetch, from_bytes
from llmchat.conversation import ChatRequest, Message
from llmchat.demo.answer import demo_answer
from llmchat.demo.server import ServerThread
from llmchat.providers import get_provider
from llmchat.stream.client import StreamingClient
from llmchat.stream.events import Finish, StreamError, TextDelta

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]
PDF_APIS = ["openai-chat", "openai-responses", "anthropic"]
PATHS = {"openai-chat": "/v1/chat/completions", "openai-responses": "/v1/responses", "anthropic": "/v1/messages", "ollama": "/api/chat"}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


async def ask(server: ServerThread, api: str, *messages: Message) -> Tuple[str, object]:
    """The answer's text and its last event, through the real client."""
    request = ChatRequest(model="demo", messages=list(messages), base_url=server.base_url(api))
    text: List[str] = []
    last = None
    async with StreamingClient() as client:
        async for event in client.stream(get_provider(api), request):
            if type(event) is TextDelta:
                text.append(event.text)
            last = event
    return "".join(text), last


# --------------------------------------------------------------------------------------------
# the demo model says what it received


@pytest.mark.parametrize("api", PDF_APIS)
async def test_the_demo_model_says_what_images_and_pdfs_it_received(server: ServerThread, api: str) -> None:
    attachments = (from_bytes("shot.png", png(800, 600)), from_bytes("report.pdf", pdf(3)))
    text, last = await ask(server, api, Message("user", "what is wrong here?", attachments))
    size = f"{len(png(800, 600)) / 1024:.1f} KB"
    assert f"I received 1 image, PNG, 800x600, {size} and 1 PDF of 3 pages." in text
    assert "You asked: *what is wrong here?*" in text
    assert isinstance(last, Finish) and last.reason == "stop"


async def test_ollama_gets_images_and_the_demo_model_measures_each(server: ServerThread) -> None:
    attachments = (from_bytes("a.png", png(2, 2)), from_bytes("b.jpg", jpeg(1024, 768)), from_bytes("c.gif", GIF_1X1))
    text, _ = await ask(server, "ollama", Message("user", "compare", attachments))
    assert "I received 3 images (PNG, 2x2, " in text and "; JPEG, 1024x768, " in text and "; GIF, 1x1, " in text


@pytest.mark.parametrize("api", APIS)
async def test_inlined_text_files_are_counted_and_the_question_is_still_what_was_asked(server: ServerThread, api: str) -> None:
    notes = from_bytes("notes.md", b"# Notes\n\n```py\nprint(1)\n```\n")
    text, _ = await ask(server, api, Message("user", "summarise", (notes,)))
    assert "I received 1 text file, notes.md, 5 lines." in text
    assert "You asked: *summarise*" in text


@pytest.mark.parametrize("api", PDF_APIS)
async def test_a_pdf_whose_pages_are_hidden_is_said_to_have_about_so_many(server: ServerThread, api: str) -> None:
    text, _ = await ask(server, api, Message("user", "read", (from_bytes("c.pdf", pdf_with_object_streams(4)),)))
    assert "I received 1 PDF of about 4 pages." in text


@pytest.mark.parametrize("api", APIS)
async def test_attachments_sent_again_from_earlier_messages_are_counted(server: ServerThread, api: str) -> None:
    first = Message("user", "look", (from_bytes("a.png", png()),))
    text, _ = await ask(server, api, first, Message("assistant", "a red square"), Message("user", "and now?"))
    assert "Earlier messages carry 1 more attachment, sent again with the conversation." in text
    assert "You asked: *and now?*" in text


@pytest.mark.parametrize("api", APIS)
async def test_without_attachments_the_demo_answer_is_unchanged(server: ServerThread, api: str) -> None:
    text, _ = await ask(server, api, Message("user", "hello there"))
    assert text == demo_answer("hello there")


@pytest.mark.parametrize("api", APIS)
async def test_a_whole_json_answer_says_what_was_received_too(server: ServerThread, api: str) -> None:
    request = ChatRequest(model="demo", messages=[Message("user", "x", (from_bytes("a.png", png(3, 3)),))], base_url=server.base_url(api, whole=1))
    text = []
    async with StreamingClient() as client:
        async for event in client.stream(get_provider(api), request):
            if type(event) is TextDelta:
                text.append(event.text)
    assert "I received 1 image, PNG, 3x3, " in "".join(text)


# --------------------------------------------------------------------------------------------
# malformed parts get the real API's 400


def post(server: ServerThread, api: str, messages: list) -> Tuple[int, Dict]:
    body = {"model": "demo", "stream": True, ("input" if api == "openai-responses" else "messages"): messages}
    if api == "anthropic":
        body["max_tokens"] = 100
    response = httpx.post(server.url + PATHS[api], json=body, timeout=10)
    return response.status_code, response.json()


B64_PNG = base64.b64encode(png()).decode()
B64_JPEG = base64.b64encode(jpeg()).decode()
B64_PDF = base64.b64encode(pdf(1)).decode()


@pytest.mark.parametrize(
    "part, param, code, words",
    [
        (
            {"type": "image", "image_url": {"url": "x"}},
            "messages[0].content[0].type",
            "invalid_value",
            "Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', and 'file'.",
        ),
        (
            {"type": "image_url"},
            "messages[0].content[0].image_url",
            "missing_required_parameter",
            "Missing required parameter: 'messages[0].content[0].image_url'.",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}},
            "messages[0].content[0].image_url.url",
            "invalid_value",
            "Expected a base64-encoded data URL with an image MIME type",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
            None,
            "invalid_image_format",
            "You uploaded an unsupported image.",
        ),
        (
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}", "detail": "max"}},
            "messages[0].content[0].image_url.detail",
            "invalid_value",
            "Invalid value: 'max'.",
        ),
        (
            {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{B64_PDF}"}},
            "messages[0].content[0].file.filename",
            "missing_required_parameter",
            "Missing required parameter",
        ),
        (
            {"type": "file", "file": {"filename": "a.pdf", "file_data": B64_PDF}},
            "messages[0].content[0].file.file_data",
            "invalid_value",
            "Invalid file data",
        ),
    ],
    ids=["type", "no-image_url", "not-image-mime", "not-an-image", "detail", "no-filename", "bare-base64"],
)
def test_openai_chat_answers_a_malformed_part_with_its_400(server: ServerThread, part: dict, param: str, code: str, words: str) -> None:
    status, error = post(server, "openai-chat", [{"role": "user", "content": [part]}])
    assert status == 400
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["param"] == param and error["error"]["code"] == code
    assert words in error["error"]["message"]


def test_openai_chat_refuses_an_image_in_an_assistant_message(server: ServerThread) -> None:
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}"}}
    status, error = post(server, "openai-chat", [{"role": "user", "content": "a"}, {"role": "assistant", "content": [image]}])
    assert status == 400 and error["error"]["message"] == "Invalid value: 'image_url'. Supported values are: 'text' and 'refusal'."


@pytest.mark.parametrize(
    "part, words",
    [
        ({"type": "image_url", "image_url": "x"}, "Invalid value: 'image_url'. Supported values are: 'input_text', 'input_image'"),
        ({"type": "input_image"}, "one of 'image_url' or 'file_id' must be provided"),
        (
            {"type": "input_file", "file_data": f"data:application/pdf;base64,{B64_PDF}"},
            "Missing required parameter: 'input[0].content[0].filename'.",
        ),
        ({"type": "input_file", "filename": "a.pdf", "file_data": f"data:image/png;base64,{B64_PNG}"}, "but got unsupported MIME type 'image/png'"),
    ],
    ids=["type", "no-image", "no-filename", "wrong-mime"],
)
def test_openai_responses_answers_a_malformed_part_with_its_400(server: ServerThread, part: dict, words: str) -> None:
    status, error = post(server, "openai-responses", [{"role": "user", "content": [part]}])
    assert status == 400 and words in error["error"]["message"] and error["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "block, words",
    [
        ({"type": "picture"}, "messages.0.content.0: Input tag 'picture' found using 'type' does not match any of the expected tags"),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": B64_PNG}},
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/png', 'image/jpeg', 'image/gif' or 'image/webp'",
        ),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64_JPEG}},
            "The image was specified using the image/png media type, but the image appears to be a image/jpeg image",
        ),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "***"}},
            "messages.0.content.0.image.source.base64.data: Invalid base64 data",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "image/png", "data": B64_PDF}},
            "messages.0.content.0.document.source.base64.media_type: Input should be 'application/pdf'",
        ),
        ({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": B64_PNG}}, "The PDF specified was not valid."),
        ({"type": "text", "text": ""}, "messages: text content blocks must be non-empty"),
    ],
    ids=["tag", "media-type", "mismatch", "base64", "doc-media-type", "not-pdf", "empty-text"],
)
def test_anthropic_answers_a_malformed_block_with_its_400(server: ServerThread, block: dict, words: str) -> None:
    status, error = post(server, "anthropic", [{"role": "user", "content": [block]}])
    assert status == 400 and error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"]


def test_anthropic_refuses_an_image_over_5_mb_of_base64(server: ServerThread) -> None:
    big = png() + b"\x00" * (4 * 1024 * 1024)
    data = base64.b64encode(big).decode()
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    status, error = post(server, "anthropic", [{"role": "user", "content": [block]}])
    assert status == 400 and error["error"]["message"].endswith(f"image exceeds 5 MB maximum: {len(data)} bytes > 5242880 bytes")


@pytest.mark.parametrize(
    "images, words",
    [
        (["iVBOR$$"], "illegal base64 data at input byte 5"),
        ([base64.b64encode(b"not an image").decode()], "image: unknown format"),
        ("x", "cannot unmarshal"),
    ],
)
def test_ollama_answers_a_bad_image_with_its_400(server: ServerThread, images: object, words: str) -> None:
    status, error = post(server, "ollama", [{"role": "user", "content": "x", "images": images}])
    assert status == 400 and words in error["error"]


async def test_the_client_shows_the_apis_own_words_for_a_refused_part(server: ServerThread) -> None:
    """A malformed part reaches the user as the API's message, in one line, not retried."""

    class Broken(type(get_provider("anthropic"))):  # type: ignore[misc]
        def build_request(self, request):  # type: ignore[no-untyped-def]
            spec = super().build_request(request)
            spec.json["messages"][0]["content"][0]["source"]["media_type"] = "image/tiff"
            return spec

    request = ChatRequest(model="demo", messages=[Message("user", "x", (from_bytes("a.png", png()),))], base_url=server.base_url("anthropic"))
    before = len(server.requests)
    events = []
    async with StreamingClient() as client:
        async for event in client.stream(Broken(), request):
            events.append(event)
    assert isinstance(events[-1], StreamError) and events[-1].status == 400
    assert "media_type: Input should be 'image/png'" in events[-1].message
    assert len(server.requests) == before + 1


# --------------------------------------------------------------------------------------------
# URLs


class _Pages(BaseHTTPRequestHandler):
    routes: Dict[str, Tuple[int, str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", body.decode())
            body = b""
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    _Pages.routes = {
        "/shot.png": (200, "image/png", png(5, 4)),
        "/paper.pdf": (200, "application/pdf", pdf(2)),
        "/page": (200, "text/html; charset=utf-8", "<html><head><title>Hi</title></head><body><p>Caf\u00e9 &amp; cake</p></body></html>".encode()),
        "/latin": (200, "text/plain; charset=iso-8859-1", "Grüße".encode("latin-1")),
        "/zip": (200, "application/zip", b"PK\x03\x04"),
        "/lying": (200, "application/octet-stream", b"PK\x03\x04" + b"\x00" * 30),
        "/big": (200, "text/plain", b"x" * 5000),
        "/moved": (301, "text/html", b"/shot.png"),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


async def fetched(url: str, **caps: int):
    async with httpx.AsyncClient(timeout=10) as client:
        return await fetch(url, client, **caps)


async def test_an_image_and_a_pdf_are_fetched_by_url(pages: str) -> None:
    image = await fetched(pages + "/shot.png")
    document = await fetched(pages + "/paper.pdf")
    assert (image.kind, image.width, image.height, image.name) == ("image", 5, 4, pages + "/shot.png")
    assert (document.kind, document.pages, document.filename()) == ("pdf", 2, "paper.pdf")


async def test_a_moved_url_is_followed(pages: str) -> None:
    image = await fetched(pages + "/moved")
    assert (image.kind, image.width, image.name) == ("image", 5, pages + "/moved")


async def test_an_html_page_is_reduced_to_text_and_inlined_under_its_url(pages: str) -> None:
    page = await fetched(pages + "/page")
    assert (page.kind, page.text()) == ("text", "# Hi\n\nCafé & cake")


async def test_a_declared_charset_is_read_and_sent_as_utf8(pages: str) -> None:
    assert (await fetched(pages + "/latin")).text() == "Grüße"


@pytest.mark.parametrize(
    "path, error, words",
    [
        ("/zip", FetchError, "the server sent application/zip, which llmchat cannot attach"),
        ("/lying", AttachmentError, "a ZIP archive"),
        ("/missing", FetchError, "the server answered 404 Not Found"),
        ("/big", FetchError, "4.9 KB is over the 1 KB limit for an attachment"),
    ],
)
async def test_a_url_that_cannot_be_attached_is_refused_in_one_line(pages: str, path: str, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        await fetched(pages + path, max_bytes=1024)
    assert str(caught.value).startswith(f"{pages}{path}: ") and words in str(caught.value)


async def test_an_unreachable_url_is_a_fetch_error_that_exits_1() -> None:
    with pytest.raises(FetchError) as caught:
        await fetched("http://127.0.0.1:9/nothing")
    assert caught.value.exit_code == 1 and str(caught.value).startswith("http://127.0.0.1:9/nothing: cannot fetch it (ConnectError")


async def test_a_fetched_image_goes_to_the_demo_model(pages: str, server: ServerThread) -> None:
    image = await fetched(pages + "/shot.png")
    text, _ = await ask(server, "anthropic", Message("user", "what?", (image,)))
    assert "I received 1 image, PNG, 5x4, " in text


def test_the_samples_are_what_they_claim() -> None:
    """The oracles themselves: the PNG decodes with zlib, the PDF's xref offsets point at its objects."""
    import zlib

    data = png(3, 2)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    assert len(zlib.decompress(data[idat + 4 : idat + 4 + length])) == 2 * (1 + 3 * 3)
    document = pdf(2)
    table = document[document.index(b"xref") :].split(b"\n")[3:7]
    offsets = [int(line.split()[0]) for line in table]
    assert [document[o : o + 7] for o in offsets] == [b"1 0 obj", b"2 0 obj", b"3 0 obj", b"4 0 obj"]
