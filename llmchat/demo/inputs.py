"""The fake server's reading of attachments: each API's shapes checked as the real API checks
them, and what arrived, for the demo model to describe.

A malformed part gets the 400 the real API gives, in the API's own error JSON (OpenAI's
`error.message/type/param/code`, Anthropic's `type: error`, Ollama's `{"error"}`), with the
field path spelled the API's way. Well-formed attachments are decoded and measured: image format
and pixel size from the header, PDF pages (an estimate where the file hides its page objects).
Text files the client inlined are found by their `File: name` heading and fenced block.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from llmchat.attachments import ANTHROPIC_IMAGE, IMAGE_MIMES, PDF_MIME, human_size, image_size, pdf_pages, sniff


@dataclass(frozen=True)
class Received:
    kind: str  # image | pdf | text
    fmt: str = ""  # PNG, JPEG, GIF, WebP; "" for an image given by URL
    size: int = 0
    width: Optional[int] = None
    height: Optional[int] = None
    pages: int = 0
    pages_exact: bool = False
    name: str = ""
    lines: int = 0


class Invalid(Exception):
    """A part the API refuses: the message, and for OpenAI the param and code."""

    def __init__(self, message: str, param: Optional[str] = None, code: Optional[str] = "invalid_value", kind: str = "invalid_request_error"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


def error_body(api: str, error: Invalid) -> Dict[str, Any]:
    """The 400's JSON in the API's own error shape."""
    if api == "anthropic":
        return {"type": "error", "error": {"type": error.kind, "message": error.message}}
    if api == "ollama":
        return {"error": error.message}
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP"}
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*?);base64,(.*)", re.S)
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")


def _b64(text: Any) -> Tuple[Optional[bytes], int]:
    """(bytes, -1), or (None, the first bad byte's index) as Go's decoder reports it."""
    if not isinstance(text, str):
        return None, 0
    raw = text.encode("ascii", "replace")
    try:
        return base64.b64decode(raw, validate=True), -1
    except (binascii.Error, ValueError):
        pass
    body = raw.rstrip(b"=")
    bad = _NOT_B64.search(body)
    if bad is not None:
        return None, bad.start()
    return None, len(body) - len(body) % 4


def _image(data: bytes) -> Received:
    width, height = image_size(data)
    mime = sniff(data) or ""
    return Received("image", _FORMATS.get(mime, ""), len(data), width, height)


def _pdf(data: bytes, name: str = "") -> Received:
    pages, exact = pdf_pages(data)
    return Received("pdf", "PDF", len(data), pages=pages, pages_exact=exact, name=name)


# --- OpenAI Chat Completions ------------------------------------------------------------------

_CHAT_PARTS = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
}


def _supported(values: Tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]


def _missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _openai_image_url(url: Any, param: str) -> Received:
    if not isinstance(url, str):
        raise Invalid(f"Invalid type for '{param}': expected a string, but got {_json_type(url)} instead.", param, "invalid_type")
    if url.startswith(("http://", "https://")):
        return Received("image")
    match = _DATA_URL.fullmatch(url)
    data = _b64(match.group(3))[0] if match and match.group(1).startswith("image/") else None
    if data is None:
        raise Invalid(
            f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an invalid value.",
            param,
        )
    if sniff(data) not in IMAGE_MIMES:
        raise Invalid(
            "You uploaded an unsupported image. Please make sure your image has of one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
            None,
            "invalid_image_format",
        )
    return _image(data)


def _openai_file_data(file_data: Any, param: str, name: str) -> Received:
    match = _DATA_URL.fullmatch(file_data) if isinstance(file_data, str) else None
    mime = match.group(1) if match else ""
    data = _b64(match.group(3))[0] if match else None
    if data is None or mime != PDF_MIME:
        got = f"unsupported MIME type '{mime}'" if match and mime != PDF_MIME else "an invalid value"
        raise Invalid(
            f"Invalid file data: '{param}'. Expected a base64-encoded data URL with an application/pdf MIME type "
            f"(e.g. 'data:application/pdf;base64,SGVsbG8sIFdvcmxkIQ=='), but got {got}.",
            param,
        )
    if sniff(data) != PDF_MIME:
        raise Invalid(f"Invalid file data: '{param}'. The file is not a valid PDF.", param, "invalid_file")
    return _pdf(data, name)


def _detail(part: dict, param: str) -> None:
    detail = part.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise Invalid(f"Invalid value: '{detail}'. Supported values are: 'auto', 'low', and 'high'.", param)


def chat(body: dict) -> List[Tuple[str, List[Received]]]:
    """OpenAI Chat Completions: every message's attachments (Invalid for a malformed part)."""
    out: List[Tuple[str, List[Received]]] = []
    for i, message in enumerate(body.get("messages") or ()):
        got: List[Received] = []
        out.append((str(message.get("role")) if isinstance(message, dict) else "", got))
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, list):
            got.extend(inlined(content if isinstance(content, str) else "")[1])
            continue
        where = f"messages[{i}].content"
        if not content:
            raise Invalid(
                f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an empty array instead.", where, "empty_array"
            )
        allowed = _CHAT_PARTS.get(str(message.get("role")), ("text",))
        for j, part in enumerate(content):
            param = f"{where}[{j}]"
            if not isinstance(part, dict):
                raise Invalid(f"Invalid type for '{param}': expected an object, but got {_json_type(part)} instead.", param, "invalid_type")
            kind = part.get("type")
            if kind not in allowed:
                raise Invalid(f"Invalid value: '{kind}'. Supported values are: {_supported(allowed)}.", f"{param}.type")
            if kind in ("text", "refusal"):
                if not isinstance(part.get(kind), str):
                    raise _missing(f"{param}.{kind}")
                got.extend(inlined(part[kind])[1])
            elif kind == "image_url":
                image = part.get("image_url")
                if not isinstance(image, dict) or "url" not in image:
                    raise _missing(f"{param}.image_url" if not isinstance(image, dict) else f"{param}.image_url.url")
                _detail(image, f"{param}.image_url.detail")
                got.append(_openai_image_url(image["url"], f"{param}.image_url.url"))
            elif kind == "file":
                file = part.get("file")
                if not isinstance(file, dict):
                    raise _missing(f"{param}.file")
                if "file_id" in file and "file_data" not in file:
                    got.append(Received("pdf", "PDF", name=str(file.get("file_id"))))
                    continue
                if "file_data" not in file:
                    raise _missing(f"{param}.file.file_data")
                if not isinstance(file.get("filename"), str) or not file["filename"]:
                    raise _missing(f"{param}.file.filename")
                got.append(_openai_file_data(file["file_data"], f"{param}.file.file_data", file["filename"]))
    return out


# --- OpenAI Responses -------------------------------------------------------------------------

_RESPONSES_PARTS = ("input_text", "input_image", "output_text", "refusal", "input_file", "computer_screenshot", "summary_text")


def responses(body: dict) -> List[Tuple[str, List[Received]]]:
    """OpenAI Responses: every input message's attachments (Invalid for a malformed part)."""
    items = body.get("input")
    if isinstance(items, str):
        return [("user", list(inlined(items)[1]))]
    out: List[Tuple[str, List[Received]]] = []
    for i, item in enumerate(items or ()):
        got: List[Received] = []
        out.append((str(item.get("role")) if isinstance(item, dict) else "", got))
        if not isinstance(item, dict) or ("type" in item and item["type"] != "message"):
            continue
        content = item.get("content")
        if not isinstance(content, list):
            got.extend(inlined(content if isinstance(content, str) else "")[1])
            continue
        for j, part in enumerate(content):
            param = f"input[{i}].content[{j}]"
            if not isinstance(part, dict):
                raise Invalid(f"Invalid type for '{param}': expected an object, but got {_json_type(part)} instead.", param, "invalid_type")
            kind = part.get("type")
            if kind not in _RESPONSES_PARTS:
                raise Invalid(f"Invalid value: '{kind}'. Supported values are: {_supported(_RESPONSES_PARTS)}.", f"{param}.type")
            if kind in ("input_text", "output_text"):
                if not isinstance(part.get("text"), str):
                    raise _missing(f"{param}.text")
                got.extend(inlined(part["text"])[1])
            elif kind == "input_image":
                _detail(part, f"{param}.detail")
                if "file_id" in part and "image_url" not in part:
                    got.append(Received("image"))
                    continue
                if "image_url" not in part:
                    raise Invalid(f"Invalid '{param}': one of 'image_url' or 'file_id' must be provided.", param, "missing_required_parameter")
                got.append(_openai_image_url(part["image_url"], f"{param}.image_url"))
            elif kind == "input_file":
                if "file_data" in part:
                    if not isinstance(part.get("filename"), str) or not part["filename"]:
                        raise _missing(f"{param}.filename")
                    got.append(_openai_file_data(part["file_data"], f"{param}.file_data", part["filename"]))
                elif "file_id" in part or "file_url" in part:
                    got.append(Received("pdf", "PDF", name=str(part.get("file_id") or part.get("file_url"))))
                else:
                    raise Invalid(
                        f"Invalid '{param}': one of 'file_id', 'file_url' or 'file_data' must be provided.", param, "missing_required_parameter"
                    )
    return out


# --- Anthropic Messages -----------------------------------------------------------------------

_BLOCKS = (
    "document",
    "image",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "text",
    "thinking",
    "tool_result",
    "tool_use",
    "web_search_tool_result",
)


def _anthropic_source(source: Any, where: str, block: str) -> Tuple[str, bytes]:
    if not isinstance(source, dict):
        raise Invalid(f"{where}.source: Field required")
    kind = source.get("type")
    allowed = ("base64", "url", "file") if block == "image" else ("base64", "content", "file", "text", "url")
    if kind not in allowed:
        tags = ", ".join(f"'{t}'" for t in allowed)
        raise Invalid(f"{where}.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: {tags}")
    if kind != "base64":
        return str(kind), b""
    media_type = source.get("media_type")
    expected = IMAGE_MIMES if block == "image" else (PDF_MIME,)
    if media_type not in expected:
        choices = " or ".join(", ".join(f"'{m}'" for m in expected).rsplit(", ", 1))
        raise Invalid(f"{where}.source.base64.media_type: Input should be {choices}")
    data, _ = _b64(source.get("data"))
    if data is None:
        raise Invalid(f"{where}.source.base64.data: Invalid base64 data" if "data" in source else f"{where}.source.base64.data: Field required")
    return str(media_type), data


def anthropic(body: dict) -> List[Tuple[str, List[Received]]]:
    """Anthropic Messages: every message's attachments (Invalid for a malformed block)."""
    out: List[Tuple[str, List[Received]]] = []
    for i, message in enumerate(body.get("messages") or ()):
        got: List[Received] = []
        out.append((str(message.get("role")) if isinstance(message, dict) else "", got))
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, list):
            got.extend(inlined(content if isinstance(content, str) else "")[1])
            continue
        for j, block in enumerate(content):
            where = f"messages.{i}.content.{j}"
            if not isinstance(block, dict):
                raise Invalid(f"{where}: Input should be a valid dictionary or object to extract fields from")
            kind = block.get("type")
            if kind not in _BLOCKS:
                tags = ", ".join(f"'{t}'" for t in _BLOCKS)
                raise Invalid(f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {tags}")
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise Invalid(f"{where}.text.text: Field required")
                if not block["text"]:
                    raise Invalid("messages: text content blocks must be non-empty")
                got.extend(inlined(block["text"])[1])
            elif kind == "image":
                media_type, data = _anthropic_source(block.get("source"), f"{where}.image", "image")
                if not data:
                    got.append(Received("image"))
                    continue
                encoded = len(block["source"]["data"])
                if encoded > ANTHROPIC_IMAGE:
                    raise Invalid(f"{where}.image.source.base64: image exceeds 5 MB maximum: {encoded} bytes > {ANTHROPIC_IMAGE} bytes")
                actual = sniff(data)
                if actual not in IMAGE_MIMES:
                    raise Invalid(f"{where}.image.source.base64: Could not process image")
                if actual != media_type:
                    raise Invalid(
                        f"{where}.image.source.base64.data: The image was specified using the {media_type} media type, but the image appears to be a {actual} image"
                    )
                got.append(_image(data))
            elif kind == "document":
                _, data = _anthropic_source(block.get("source"), f"{where}.document", "document")
                if not data:
                    got.append(Received("pdf", "PDF"))
                    continue
                if sniff(data) != PDF_MIME:
                    raise Invalid(f"{where}.document.source.base64.data: The PDF specified was not valid.")
                title = block.get("title")
                got.append(_pdf(data, title if isinstance(title, str) else ""))
    return out


# --- Ollama -----------------------------------------------------------------------------------


def ollama(body: dict) -> List[Tuple[str, List[Received]]]:
    """Ollama: every message's `images` (Invalid, in Ollama's words, for a bad one)."""
    out: List[Tuple[str, List[Received]]] = []
    for message in body.get("messages") or ():
        got: List[Received] = []
        out.append((str(message.get("role")) if isinstance(message, dict) else "", got))
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        got.extend(inlined(content if isinstance(content, str) else "")[1])
        images = message.get("images")
        if images is None:
            continue
        if not isinstance(images, list):
            raise Invalid(f"json: cannot unmarshal {_json_type(images)} into Go struct field Message.messages.images of type []api.ImageData")
        for image in images:
            if not isinstance(image, str):
                raise Invalid(f"json: cannot unmarshal {_json_type(image)} into Go struct field Message.messages.images of type api.ImageData")
            data, bad = _b64(image)
            if data is None:
                raise Invalid(f"illegal base64 data at input byte {bad}")
            if sniff(data) not in IMAGE_MIMES:
                raise Invalid("image: unknown format")
            got.append(_image(data))
    return out


READERS = {"openai-chat": chat, "openai-responses": responses, "anthropic": anthropic, "ollama": ollama}


def received(api: str, body: dict) -> Tuple[List[Received], int]:
    """The last user message's attachments and how many earlier user messages carry (sent
    again with the conversation). Raises Invalid for a part the API refuses."""
    users = [got for role, got in READERS[api](body) if role == "user"]
    if not users:
        return [], 0
    return users[-1], sum(len(got) for got in users[:-1])


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- text files inlined by the client --------------------------------------------------------

_INLINED = re.compile(r"^(?:File|URL): ([^\n]+)\n(`{3,})[^\n`]*\n(.*?)^\2[ \t]*(?:\n|\Z)", re.S | re.M)


_PDF_TEXT = re.compile(r"\[PDF, (\d+) pages?, its text extracted\]\n")  # attachments.pdf_as_text's first line


def inlined(text: str) -> Tuple[str, List[Received]]:
    """The text without the `File: name` fenced blocks llmchat inlines, and those files."""
    if "File: " not in text and "URL: " not in text:
        return text, []
    files: List[Received] = []

    def take(match: re.Match) -> str:
        body = match.group(3)
        pdf = _PDF_TEXT.match(body)  # a PDF sent as its text (--pdf-as-text)
        pages = int(pdf.group(1)) if pdf else 0
        files.append(Received("text", size=len(body.encode()), name=match.group(1), lines=body.count("\n"), pages=pages, pages_exact=bool(pdf)))
        return ""

    rest = _INLINED.sub(take, text)
    return rest.strip(), files


# --- what the demo model says ----------------------------------------------------------------


def describe(items: List[Received]) -> str:
    """`1 image, PNG, 800x600, 41 KB and 1 PDF of 3 pages`; three kinds: `A; B and C`."""
    groups = []
    images = [r for r in items if r.kind == "image"]
    pdfs = [r for r in items if r.kind == "pdf"]
    texts = [r for r in items if r.kind == "text"]
    if images:
        groups.append(_group(images, "image", _image_words))
    if pdfs:
        groups.append(_group(pdfs, "PDF", _pdf_words))
    if texts:
        groups.append(_group(texts, "text file", _text_words))
    if len(groups) <= 1:
        return "".join(groups)
    separator = "; " if any("," in g for g in groups) else ", "  # groups with commas of their own
    return separator.join(groups[:-1]) + " and " + groups[-1]


def _group(items: List[Received], noun: str, words: Any) -> str:
    if len(items) == 1:
        said = words(items[0])
        joiner = " " if said.startswith("of ") else ", "
        return f"1 {noun}{joiner}{said}" if said else f"1 {noun}"
    return f"{len(items)} {noun}s ({'; '.join(words(r) or 'by reference' for r in items)})"


def _image_words(r: Received) -> str:
    if not r.fmt:
        return "by URL or file id"
    dims = f", {r.width}x{r.height}" if r.width and r.height else ""
    return f"{r.fmt}{dims}, {human_size(r.size)}"


def _pdf_words(r: Received) -> str:
    if not r.size:
        return "by reference"
    if not r.pages:
        return f"of an unknown number of pages, {human_size(r.size)}"
    about = "" if r.pages_exact else "about "
    return f"of {about}{r.pages} page{'s' if r.pages != 1 else ''}"


def _text_words(r: Received) -> str:
    if r.pages_exact:
        return f"{r.name}, the text of a PDF of {r.pages} page{'s' if r.pages != 1 else ''}"
    return f"{r.name}, {r.lines} line{'s' if r.lines != 1 else ''}"
