"""Attachments: files, stdin bytes and URLs a user message carries, and the limits each API sets.

An `Attachment` is pure data (the bytes, what they are, and what can be read cheaply from their
header). `load` reads a file or stdin bytes; `fetch` reads an http(s) URL through an httpx
client the caller passes in. The kind is decided by the bytes (magic numbers), never by the file
name alone. `check_limits` holds the sizes each API documents, before anything is sent.

Imported only when a message has attachments: nothing here is on `--raw`'s start-up path, and
httpx is imported only for type checking (the caller owns the client).

Errors, one type: `AttachmentError`, a one-line message that names the file. Its `exit_code`
is what a face exits with: 2 (usage) for what the user gave -- a missing or unreadable file, an
empty one, a kind llmchat cannot attach, a size over a cap or an API's limit, a PDF for Ollama;
1 (error) for a URL that could not be fetched (`FetchError`: network, HTTP status, content).

Reading is blocking I/O: a face with an event loop calls `load` in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, List, Literal, Optional, Tuple

from llmchat.exitcodes import ERROR, USAGE

if TYPE_CHECKING:
    import httpx

Kind = Literal["text", "image", "pdf"]

KB = 1024
MB = 1024 * 1024

# Caps of llmchat's own, before any API's: an inlined text file is read by the model token by
# token (512 KB is about 130k tokens, the whole context of many models); no API takes a file
# over 50 MB inline, and reading one by mistake should fail at once, not after a long read.
TEXT_LIMIT = 512 * KB
FILE_LIMIT = 50 * MB

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF_MIME = "application/pdf"


class AttachmentError(Exception):
    """An attachment llmchat will not send; the message is one line and names the file."""

    exit_code = USAGE


class FetchError(AttachmentError):
    """A URL that could not be fetched (network, HTTP status, content type, size)."""

    exit_code = ERROR


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment as sent: its bytes and what they are.

    `name` is the file name as the user gave it (or "stdin", or the URL). `size` is len(data);
    `sha256` its hex digest (history stores attachments by it). Images carry their pixel size
    when the header gives it; PDFs an estimate of their page count (`pages_exact` says whether
    the count is sure).
    """

    name: str
    kind: Kind
    mime: str
    data: bytes = field(repr=False)  # a repr or a log line never carries megabytes
    size: int
    sha256: str
    width: Optional[int] = None
    height: Optional[int] = None
    pages: Optional[int] = None
    pages_exact: bool = False
    # The base64 text, made once: `prepare` makes it in a worker thread, so building the request
    # on an event loop does not encode megabytes there. Not part of the value.
    _base64: Optional[str] = field(default=None, init=False, repr=False, compare=False)
    _data_url: Optional[str] = field(default=None, init=False, repr=False, compare=False)

    def base64(self) -> str:
        """The bytes as standard base64 (what every API takes inline), encoded once."""
        encoded = self._base64
        if encoded is None:
            encoded = _b64(self.data)
            object.__setattr__(self, "_base64", encoded)
        return encoded

    def data_url(self) -> str:
        """`data:<mime>;base64,<data>`: OpenAI's inline form for images and files (made once
        when `prepare` was told an OpenAI API, else each time)."""
        return self._data_url or f"data:{self.mime};base64,{self.base64()}"

    def filename(self) -> str:
        """A bare file name for the APIs that take one: the path's last part; for stdin or a
        URL without one, a name with the kind's extension."""
        base = self.name.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if not base or self.name == "stdin" or (is_url(self.name) and "." not in base):
            base = "stdin" if self.name == "stdin" else "attachment"
            return base + _EXTENSIONS.get(self.mime, ".txt")
        return base

    def text(self) -> str:
        """A text attachment's content (UTF-8; undecodable bytes become U+FFFD)."""
        return _decode_text(self.data)

    def describe(self) -> str:
        """One short line for a chip or a list: `shot.png (PNG, 800x600, 41 KB)`."""
        return f"{self.name} ({self.summary()})"

    def summary(self) -> str:
        """Kind and size: `PNG, 800x600, 41 KB`, `PDF, 3 pages, 2 MB`, `text, 12 KB`."""
        if self.kind == "image":
            fmt = _IMAGE_FORMATS.get(self.mime, self.mime)
            dims = f"{self.width}x{self.height}, " if self.width and self.height else ""
            return f"{fmt}, {dims}{human_size(self.size)}"
        if self.kind == "pdf":
            if self.pages:
                count = f"{'' if self.pages_exact else 'about '}{self.pages} page{'s' if self.pages != 1 else ''}, "
            else:
                count = ""
            return f"PDF, {count}{human_size(self.size)}"
        if self.pages:  # a PDF sent as its text (`pdf_as_text`)
            return f"text of a PDF of {self.pages} page{'s' if self.pages != 1 else ''}, {human_size(self.size)}"
        return f"text, {human_size(self.size)}"


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "application/pdf": ".pdf"}
_IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP"}


def human_size(size: int) -> str:
    """`70 bytes`, `41 KB`, `3.2 MB` (powers of 1024, as the APIs count their limits)."""
    if size < KB:
        return f"{size} byte{'s' if size != 1 else ''}"
    unit, name = (KB, "KB") if size < MB else (MB, "MB")
    whole = size >= 10 * unit or size % unit == 0
    return f"{size / unit:.0f} {name}" if whole else f"{size / unit:.1f} {name}"


# --- what the bytes are ---------------------------------------------------------------------


def sniff(data: bytes) -> Optional[str]:
    """The MIME type of an image or PDF from its first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    # A PDF's header may follow up to 1024 bytes of junk (ISO 32000-1, annex H, note 13).
    if b"%PDF-" in data[:1024]:
        return PDF_MIME
    return None


# Binary formats named in the refusal, so the user hears what llmchat saw.
_KNOWN_BINARY = (
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"BM", "a BMP image (attach PNG, JPEG, GIF or WebP)"),
    (b"II*\x00", "a TIFF image (attach PNG, JPEG, GIF or WebP)"),
    (b"MM\x00*", "a TIFF image (attach PNG, JPEG, GIF or WebP)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"%!PS", "PostScript"),
)


def _binary_name(data: bytes) -> str:
    for magic, name in _KNOWN_BINARY:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "a HEIC image (attach PNG, JPEG, GIF or WebP)"
    return "binary data"


_SAMPLE = 8192
_CONTROL = frozenset(range(0, 32)) - {9, 10, 12, 13, 27, 8}


def detect_binary(data: bytes) -> bool:
    """True when `data` is not text: an image or PDF, a NUL byte in its first 8 KB (git's
    rule), or bytes that are not UTF-8 with many control characters among them. Text in another
    8-bit encoding (Latin-1) stays text."""
    if sniff(data) is not None:
        return True
    sample = data[:_SAMPLE]
    if b"\x00" in sample:
        return not _utf16_bom(sample)
    try:
        sample.decode("utf-8")
        return False
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return False  # a character cut by the sample's end
    controls = sum(1 for byte in sample if byte in _CONTROL)
    return controls * 10 > len(sample)


def _utf16_bom(data: bytes) -> bool:
    return data[:2] in (b"\xff\xfe", b"\xfe\xff")


def _decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if _utf16_bom(data):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8", "replace")


def image_size(data: bytes) -> Tuple[Optional[int], Optional[int]]:
    """(width, height) read from a PNG, JPEG, GIF or WebP header; (None, None) when the header
    does not say (or the bytes are cut short)."""
    try:
        if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:
        pass
    return None, None


def _webp_size(data: bytes) -> Tuple[Optional[int], Optional[int]]:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and data[20:21] == b"\x2f":  # lossless: 14 bits each, after the signature
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: after the frame's start code
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None, None


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> Tuple[Optional[int], Optional[int]]:
    """Walk the segments to the first start-of-frame: its height and width."""
    at = 2
    end = len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return None, None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[at + 5 : at + 9])
            return w, h
        if marker == 0xDA:  # the scan: no frame header before it
            return None, None
        at += 2 + length
    return None, None


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_PAGES = re.compile(rb"/Type\s*/Pages\b")
_OBJSTM = re.compile(rb"/Type\s*/ObjStm\b")
_COUNT_AFTER = re.compile(rb"[^>]*?/Count\s+(\d+)")
_COUNT = re.compile(rb"/Count\s+(\d+)")
_WINDOW = 1 << 18  # the most one C call scans: a worker thread lets the GIL go between windows
_DICT = 1 << 16  # how far before its /Type a page tree's /Count is looked for (a /Kids of thousands of pages)


def _offsets(data: bytes, needle: bytes) -> Iterator[int]:
    """Where `needle` starts in `data`, found window by window: `bytes.find` is one C call that
    holds the GIL, so a 10 MB PDF read in a worker thread never stalls the TUI's loop for long."""
    start, size = 0, len(data)
    while start < size:
        at = data.find(needle, start, min(size, start + _WINDOW + len(needle) - 1))
        if at < 0:
            start += _WINDOW
        else:
            yield at
            start = at + 1


def pdf_pages(data: bytes) -> Tuple[int, bool]:
    """(pages, exact): the `/Type /Page` objects a PDF has in plain sight, and whether that
    count is sure -- it is when it matches the page tree's own `/Count` and no object streams
    (`/Type /ObjStm`: they can hide page objects in compressed form) are present.

    One search for `/Type`, in windows, and the patterns matched only there (a page tree's
    `/Count` before or after its `/Type /Pages`, in the same dictionary: no `>` between): a
    regex over the whole file, three times, held the GIL 15-45 ms for 10 MB."""
    pages, objstm = 0, False
    counts: List[int] = []
    for at in _offsets(data, b"/Type"):
        if _PAGE.match(data, at):
            pages += 1
        elif _PAGES.match(data, at):
            after = _COUNT_AFTER.match(data, at + 6)  # up to the dictionary's first ">", as ever
            gt = data.rfind(b">", max(0, at - _DICT), at)
            before = _COUNT.search(data, gt + 1 if gt >= 0 else max(0, at - _DICT), at)
            counts += [int(found.group(1)) for found in (after, before) if found]
        elif _OBJSTM.match(data, at):
            objstm = True
    tree = max(counts) if counts else None
    if objstm or tree is None or tree != pages:
        return max(pages, tree or 0), False
    return pages, True


# --- making one ------------------------------------------------------------------------------


def from_bytes(name: str, data: bytes, *, max_text: int = TEXT_LIMIT) -> Attachment:
    """An attachment of `data`, its kind read from the bytes.

    Raises:
        AttachmentError: empty, a binary kind llmchat cannot attach, or text over `max_text`.
    """
    if not data:
        raise AttachmentError(f"{name}: nothing to attach (it is empty)")
    mime = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    if mime == PDF_MIME:
        pages, exact = pdf_pages(data)
        return Attachment(name, "pdf", mime, data, len(data), digest, pages=pages or None, pages_exact=exact)
    if mime is not None:
        width, height = image_size(data)
        return Attachment(name, "image", mime, data, len(data), digest, width, height)
    if detect_binary(data):
        raise AttachmentError(
            f"{name}: {_binary_name(data)} -- llmchat attaches text, images (PNG, JPEG, GIF, WebP) and PDFs only",
        )
    if len(data) > max_text:
        raise AttachmentError(
            f"{name}: {human_size(len(data))} of text is over the {human_size(max_text)} limit for a text attachment",
        )
    if not data.startswith(b"\xef\xbb\xbf") and not _utf16_bom(data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # Latin-1 and friends: sent as UTF-8, as the APIs require
            data = data.decode("latin-1").encode("utf-8")
            digest = hashlib.sha256(data).hexdigest()
    return Attachment(name, "text", _text_mime(name), data, len(data), digest)


def load(source: str, *, stdin: Optional[bytes] = None, max_text: int = TEXT_LIMIT, max_bytes: int = FILE_LIMIT) -> Attachment:
    """A file, or stdin's bytes for `-` (`stdin`, or read from sys.stdin when not given).

    Blocking: call it off an event loop. URLs go to `fetch`.

    Raises:
        AttachmentError: no such file, unreadable, a directory, too large, empty, or a kind
            llmchat cannot attach.
    """
    if source == "-":
        if stdin is None:
            import sys

            stdin = sys.stdin.buffer.read() if sys.stdin is not None else b""
        if len(stdin) > max_bytes:
            raise AttachmentError(f"stdin: {human_size(len(stdin))} is over the {human_size(max_bytes)} limit for an attachment")
        return from_bytes("stdin", stdin, max_text=max_text)
    if is_url(source):
        raise ValueError(f"{source} is a URL: fetch it with llmchat.attachments.fetch")
    path = Path(source).expanduser()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise AttachmentError(f"{source}: is a directory (attach the files in it one by one)")
        if size > max_bytes:
            raise AttachmentError(f"{source}: {human_size(size)} is over the {human_size(max_bytes)} limit for an attachment")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since stat still stops at the cap
    except FileNotFoundError:
        raise AttachmentError(f"{source}: no such file") from None
    except PermissionError:
        raise AttachmentError(f"{source}: permission denied") from None
    except OSError as exc:
        raise AttachmentError(f"{source}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise AttachmentError(f"{source}: over the {human_size(max_bytes)} limit for an attachment")
    return from_bytes(source, data, max_text=max_text)


def prepare(attachments: Iterable[Attachment], apis: Iterable[str] = ()) -> None:
    """Encode the images and PDFs now (base64, kept on each attachment): call it in a worker
    thread before the request, and the provider's build_request only assembles. With an OpenAI
    API among `apis` (the runs' APIs), the data URLs those send are made now too: a new string
    of the whole file, which a request would otherwise make while it is built."""
    openai = any(api.startswith("openai") for api in apis)
    for item in attachments:
        if item.kind != "text":
            item.base64()
            if openai and item._data_url is None:
                object.__setattr__(item, "_data_url", item.data_url())


# Base64 made a slice at a time: one b64encode of a 10 MB file is one C call of ~50 ms that holds
# the GIL, which stalls an event loop in another thread (the TUI's) for as long; slices of
# 768 KB let it run between two.
_B64_SLICE = 3 * 256 * 1024


def _b64(data: bytes) -> str:
    if len(data) <= _B64_SLICE:
        return base64.b64encode(data).decode("ascii")
    view = memoryview(data)
    return "".join(base64.b64encode(view[at : at + _B64_SLICE]).decode("ascii") for at in range(0, len(data), _B64_SLICE))


# --- what the user asked to change before sending (--pdf-as-text, --max-image-px) -------------


def pdf_as_text(attachment: Attachment, *, max_text: int = TEXT_LIMIT) -> Attachment:
    """A PDF as a text attachment of its extracted text: the way to send one to an API that
    takes no PDFs (Ollama), or to any API when the user asks (`--pdf-as-text`). Same name; the
    text starts with a line giving the page count, and each page is headed `--- page N ---`.

    Blocking and slow for a large PDF (every page is parsed): call it off an event loop. Uses
    pypdf, imported here only: nothing else in llmchat needs it.

    Raises:
        AttachmentError: not a PDF llmchat can read (damaged, encrypted), no text in it (a
            scanned PDF: its pages are pictures), or more text than `max_text`.
    """
    if attachment.kind != "pdf":
        return attachment
    pages = _pdf_page_texts(attachment)
    count = len(pages)
    if not any(text.strip() for text in pages):
        raise AttachmentError(
            f"{attachment.name}: no text to extract from its {count} page{'s' if count != 1 else ''} (a scanned PDF?);"
            f" send it as a PDF to {', '.join(PDF_APIS)} (without --pdf-as-text)"
        )
    parts = [f"[PDF, {count} page{'s' if count != 1 else ''}, its text extracted]"]
    for number, text in enumerate(pages, 1):
        parts.append(f"--- page {number} ---\n{text.strip() or '(no text on this page)'}")
    data = ("\n\n".join(parts) + "\n").encode("utf-8")
    if len(data) > max_text:
        raise AttachmentError(
            f"{attachment.name}: {human_size(len(data))} of text from its {count} pages is over the {human_size(max_text)} limit for a text attachment"
        )
    return Attachment(attachment.name, "text", "text/plain", data, len(data), hashlib.sha256(data).hexdigest(), pages=count, pages_exact=True)


def _pdf_page_texts(attachment: Attachment) -> List[str]:
    import io
    import logging

    try:
        import pypdf
    except ImportError:  # pragma: no cover - a dependency; an install without it says so
        raise AttachmentError(f"{attachment.name}: --pdf-as-text needs the pypdf package (pip install pypdf)") from None
    # pypdf logs each oddity of a PDF it can still read as a warning; the user sees one line
    # from llmchat instead (an unreadable PDF raises).
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(attachment.data))
        if reader.is_encrypted and not reader.decrypt(""):  # an owner password alone still opens
            raise AttachmentError(f"{attachment.name}: the PDF is encrypted with a password; llmchat cannot read its text")
        return [page.extract_text() or "" for page in reader.pages]
    except AttachmentError:
        raise
    except Exception as exc:  # a damaged or hostile file: pypdf raises many kinds, all one line here
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise AttachmentError(f"{attachment.name}: cannot read the PDF's text ({reason})") from None
    finally:
        log.setLevel(level)


# Pillow's names of the formats an API takes, by MIME type.
_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def downscale(attachment: Attachment, max_px: int) -> Attachment:
    """An image no larger than `max_px` pixels on its longer side: a larger one is resized
    (aspect kept) and encoded again in its own format (a GIF or WebP's first frame only); any
    other attachment, or an image small enough, is returned as it is. Only when the user asks
    (`--max-image-px`): never silently.

    Blocking (decoding and encoding): call it off an event loop. Uses Pillow, imported here only.

    Raises:
        AttachmentError: an image Pillow cannot decode, or Pillow missing.
    """
    if attachment.kind != "image" or max_px < 1:
        return attachment
    if attachment.width and attachment.height and max(attachment.width, attachment.height) <= max_px:
        return attachment  # the header says it is small enough: not even decoded
    import io

    try:
        from PIL import Image, ImageOps
    except ImportError:  # pragma: no cover - a dependency; an install without it says so
        raise AttachmentError(f"{attachment.name}: --max-image-px needs the Pillow package (pip install pillow)") from None
    import warnings

    fmt = _PIL_FORMATS[attachment.mime]
    try:
        with warnings.catch_warnings():
            # A photo of 90+ megapixels is what the user asked to shrink, not an attack (the file
            # is under the 50 MB cap): no warning on stderr. Past Pillow's error limit it fails.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(attachment.data), formats=[fmt]) as image:
                image.seek(0)  # an animation's first frame
                width, height = image.size
                if max(width, height) <= max_px:
                    if (width, height) == (attachment.width, attachment.height):
                        return attachment
                    return Attachment(attachment.name, "image", attachment.mime, attachment.data, attachment.size, attachment.sha256, width, height)
                if fmt == "JPEG":  # decoded at 1/2, 1/4 or 1/8 scale when that is still large enough: faster, less memory
                    shrink = max_px / max(width, height)
                    image.draft(None, (max(1, int(width * shrink)), max(1, int(height * shrink))))
                # A JPEG's EXIF orientation is dropped with its metadata: turn the pixels first.
                upright = ImageOps.exif_transpose(image) if fmt == "JPEG" else image
                width, height = upright.size
                scale = max_px / max(width, height)
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                frame = upright.convert("RGBA") if upright.mode in ("P", "PA", "1", "LA", "I;16") else upright
                smaller = frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
                out = io.BytesIO()
                if fmt == "JPEG":
                    smaller.save(out, "JPEG", quality=90, optimize=True)
                elif fmt == "WEBP":
                    lossless = image.info.get("lossless", False) or attachment.data[12:16] == b"VP8L"
                    smaller.save(out, "WEBP", lossless=lossless, quality=90)
                elif fmt == "GIF":
                    smaller.save(out, "GIF")
                else:
                    smaller.save(out, "PNG", optimize=True)
    except AttachmentError:
        raise
    except Exception as exc:  # a damaged image, a decompression bomb: one line
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise AttachmentError(f"{attachment.name}: cannot downscale the image ({reason})") from None
    data = out.getvalue()
    return Attachment(attachment.name, "image", attachment.mime, data, len(data), hashlib.sha256(data).hexdigest(), size[0], size[1])


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "HTTP://", "HTTPS://"))


# --- URLs ------------------------------------------------------------------------------------

_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-yaml", "application/yaml", "application/toml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


async def fetch(url: str, client: "httpx.AsyncClient", *, max_bytes: int = FILE_LIMIT, max_text: int = TEXT_LIMIT) -> Attachment:
    """A URL's content as an attachment, fetched once with `client` (its timeouts, proxies and
    TLS settings are the caller's). Images, PDFs and text are taken as they are; HTML is reduced
    to its text. The content type must be one of those, the body at most `max_bytes` (a
    Content-Length over it is refused before the body is read).

    Raises:
        FetchError: the request failed, a status other than 200, a content type llmchat cannot
            attach, or a body too large.
        AttachmentError: the content, once read, is not what it said (see `from_bytes`).
    """
    import httpx  # the caller has imported it already: this costs nothing

    try:
        accept = {"Accept": "text/html, text/*, image/*, application/pdf;q=0.9, */*;q=0.1"}
        async with client.stream("GET", url, headers=accept, follow_redirects=True) as response:  # http -> https, moved pages
            if response.status_code != 200:
                raise FetchError(f"{url}: the server answered {response.status_code} {response.reason_phrase}".rstrip())
            ctype, _, params = (response.headers.get("content-type") or "").partition(";")
            ctype = ctype.strip().lower()
            if not _fetchable(ctype):
                raise FetchError(f"{url}: the server sent {ctype or 'no content type'}, which llmchat cannot attach")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url}: {human_size(int(declared))} is over the {human_size(max_bytes)} limit for an attachment")
            chunks: List[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(f"{url}: more than the {human_size(max_bytes)} limit for an attachment")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: cannot fetch it ({exc.__class__.__name__}: {exc})".rstrip(": ")) from None
    data = b"".join(chunks)
    charset = _charset(params)
    if ctype in _HTML_TYPES and sniff(data) is None:
        text = html_to_text(data.decode(charset or "utf-8", "replace"))
        encoded = text.encode("utf-8")
        if not encoded.strip():
            raise FetchError(f"{url}: the page has no text")
        if len(encoded) > max_text:
            raise AttachmentError(f"{url}: {human_size(len(encoded))} of text is over the {human_size(max_text)} limit for a text attachment")
        return Attachment(url, "text", "text/plain", encoded, len(encoded), hashlib.sha256(encoded).hexdigest())
    if charset and charset.replace("-", "").lower() != "utf8" and sniff(data) is None:
        data = data.decode(charset, "replace").encode("utf-8")
    return from_bytes(url, data, max_text=max_text)


def _fetchable(ctype: str) -> bool:
    return (
        ctype.startswith("text/")
        or ctype in IMAGE_MIMES
        or ctype == PDF_MIME
        or ctype in _TEXT_TYPES
        or ctype in _HTML_TYPES
        or ctype.endswith(("+json", "+xml"))
        or ctype in ("application/octet-stream", "binary/octet-stream")  # decided by the bytes
    )


def _charset(params: str) -> Optional[str]:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            value = value.strip().strip('"')
            try:
                "".encode(value)
            except LookupError:
                return None
            return value
    return None


class _TextOfHTML(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
    _BLOCK = frozenset(
        {"p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "blockquote", "pre", "table", "tr", "ul", "ol", "dl"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption", "hr", "form", "address", "details", "summary"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: List[str] = []
        self.title: List[str] = []
        self._skipping = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.parts.append("#" * int(tag[1]) + " ")
            elif tag == "pre":
                self._pre += 1
        elif tag in ("li", "dt", "dd"):
            self.parts.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        if self._skipping:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The readable text of an HTML page: scripts, styles and the head left out, blocks on their
    own lines, headings marked with `#`, list items with `-`, the title first."""
    parser = _TextOfHTML()
    parser.feed(html)
    parser.close()
    body = "".join(parser.parts)
    lines = [line.strip() for line in body.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    if title and not text.startswith(("# " + title, title)):
        text = f"# {title}\n\n{text}" if text else title
    return text


# --- text attachments in the prompt ----------------------------------------------------------

_LANGUAGES = {
    "py": "python", "pyi": "python", "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "jsx",
    "ts": "typescript", "tsx": "tsx", "rs": "rust", "go": "go", "c": "c", "h": "c", "cc": "cpp", "cpp": "cpp",
    "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "java": "java", "kt": "kotlin", "swift": "swift", "rb": "ruby",
    "php": "php", "cs": "csharp", "scala": "scala", "lua": "lua", "pl": "perl", "r": "r", "jl": "julia",
    "sh": "bash", "bash": "bash", "zsh": "zsh", "fish": "fish", "ps1": "powershell", "sql": "sql",
    "html": "html", "htm": "html", "css": "css", "scss": "scss", "xml": "xml", "svg": "xml",
    "json": "json", "jsonl": "json", "yaml": "yaml", "yml": "yaml", "toml": "toml", "ini": "ini", "cfg": "ini",
    "md": "markdown", "markdown": "markdown", "rst": "rst", "tex": "latex", "diff": "diff", "patch": "diff",
    "dockerfile": "dockerfile", "makefile": "makefile", "mk": "makefile", "cmake": "cmake", "vim": "vim",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "hs": "haskell", "ml": "ocaml", "clj": "clojure",
    "dart": "dart", "zig": "zig", "nim": "nim", "v": "v", "proto": "protobuf", "graphql": "graphql", "tf": "hcl",
    "csv": "csv", "tsv": "tsv", "log": "text", "txt": "text",
}  # fmt: skip
_MIMES = {"markdown": "text/markdown", "json": "application/json", "html": "text/html", "xml": "application/xml", "csv": "text/csv"}


def language(name: str) -> str:
    """The code fence's language for a file name ("" when unknown)."""
    base = name.rsplit("/", 1)[-1].lower()
    if base in ("dockerfile", "makefile", "cmakelists.txt"):
        return {"cmakelists.txt": "cmake"}.get(base, base)
    _, dot, ext = base.rpartition(".")
    return _LANGUAGES.get(ext, "") if dot else ""


def _text_mime(name: str) -> str:
    return _MIMES.get(language(name), "text/plain")


def fenced(attachment: Attachment) -> str:
    """A text attachment as the model reads it: a line naming it, then a fenced block in the
    file's language. The fence is longer than any run of backticks inside."""
    body = attachment.text()
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * max(3, longest + 1)
    label = "URL" if is_url(attachment.name) else "File"
    lang = "" if is_url(attachment.name) else language(attachment.name)
    newline = "" if body.endswith("\n") else "\n"
    return f"{label}: {attachment.name}\n{fence}{lang}\n{body}{newline}{fence}"


def with_inlined_text(content: str, attachments: Iterable[Attachment]) -> str:
    """The message's text with its text attachments before it, one fenced block each.

    Documents go before the question: Anthropic's long-context tips and vision guide both say
    models answer better so (https://platform.claude.com/docs/en/build-with-claude/vision).
    """
    blocks = [fenced(a) for a in attachments if a.kind == "text"]
    if not blocks:
        return content
    return "\n\n".join(blocks + ([content] if content else []))


def media(attachments: Iterable[Attachment]) -> List[Attachment]:
    """The attachments sent as their own parts (images and PDFs), in order."""
    return [a for a in attachments if a.kind != "text"]


# --- what each API takes ---------------------------------------------------------------------
#
# Anthropic (https://platform.claude.com/docs/en/build-with-claude/vision, "General limits" and
# FAQ; https://platform.claude.com/docs/en/build-with-claude/pdf-support, "PDF requirements"):
# 5 MB per image -- the API measures the base64 text ("image exceeds 5 MB maximum: N bytes >
# 5242880 bytes"); 8000x8000 px per image, 2000x2000 px when a request has more than 20 images;
# 32 MB per request; 100 PDF pages per request.
# OpenAI (https://platform.openai.com/docs/guides/images-vision, "Image input requirements";
# https://platform.openai.com/docs/guides/pdf-files, "Usage considerations"): images up to 20 MB
# each and 50 MB of image bytes per request; files up to 32 MB and 100 pages per request in all.
# Ollama (https://github.com/ollama/ollama/blob/main/docs/api.md, "Chat request (with images)"):
# base64 images on the message, no documented size limit, no PDFs.

ANTHROPIC_IMAGE = 5 * MB
ANTHROPIC_REQUEST = 32 * MB
ANTHROPIC_PAGES = 100
ANTHROPIC_SIDE = 8000
ANTHROPIC_SIDE_MANY = 2000
ANTHROPIC_MANY = 20
OPENAI_IMAGE = 20 * MB
OPENAI_IMAGES = 50 * MB
OPENAI_FILES = 32 * MB
OPENAI_PAGES = 100

PDF_APIS = ("openai-chat", "openai-responses", "anthropic")
_API_NAMES = {"openai-chat": "OpenAI", "openai-responses": "OpenAI", "anthropic": "Anthropic", "ollama": "Ollama"}


def encoded_size(size: int) -> int:
    """Bytes of base64 text for `size` bytes."""
    return (size + 2) // 3 * 4


def check_limits(api: str, attachments: Iterable[Attachment]) -> None:
    """Refuse, before sending, what `api` documents it will not take: every attachment of the
    request (earlier messages' too: they are sent again).

    Raises:
        AttachmentError: naming the file, its size and the limit.
    """
    items = list(attachments)
    if not items:
        return
    who = _API_NAMES.get(api, api)
    images = [a for a in items if a.kind == "image"]
    pdfs = [a for a in items if a.kind == "pdf"]
    if api == "ollama":
        if pdfs:
            raise unsupported(api, pdfs[0])
        return
    if api == "anthropic":
        side = ANTHROPIC_SIDE if len(images) <= ANTHROPIC_MANY else ANTHROPIC_SIDE_MANY
        for image in images:
            if max(image.width or 0, image.height or 0) > side:
                many = f" when a request has more than {ANTHROPIC_MANY} images" if side == ANTHROPIC_SIDE_MANY else ""
                raise AttachmentError(f"{image.name}: {image.width}x{image.height} px is over Anthropic's limit of {side}x{side} px{many}")
            if encoded_size(image.size) > ANTHROPIC_IMAGE:
                raise AttachmentError(
                    f"{image.name}: {human_size(image.size)} ({human_size(encoded_size(image.size))} as base64) is over Anthropic's "
                    f"{human_size(ANTHROPIC_IMAGE)} limit for one image"
                )
        _check_pages(pdfs, ANTHROPIC_PAGES, who)
        total = sum(encoded_size(a.size) if a.kind != "text" else a.size for a in items)
        if total > ANTHROPIC_REQUEST:
            raise AttachmentError(
                f"{_names(items)}: {human_size(total)} as sent is over Anthropic's {human_size(ANTHROPIC_REQUEST)} limit for one request"
            )
        return
    if api in ("openai-chat", "openai-responses"):
        for image in images:
            if image.size > OPENAI_IMAGE:
                raise AttachmentError(f"{image.name}: {human_size(image.size)} is over OpenAI's {human_size(OPENAI_IMAGE)} limit for one image")
        image_bytes = sum(a.size for a in images)
        if image_bytes > OPENAI_IMAGES:
            raise AttachmentError(
                f"{_names(images)}: {human_size(image_bytes)} of images is over OpenAI's {human_size(OPENAI_IMAGES)} limit for one request"
            )
        file_bytes = sum(a.size for a in pdfs)
        if file_bytes > OPENAI_FILES:
            raise AttachmentError(
                f"{_names(pdfs)}: {human_size(file_bytes)} of PDFs is over OpenAI's {human_size(OPENAI_FILES)} limit for one request"
            )
        _check_pages(pdfs, OPENAI_PAGES, who)


def _check_pages(pdfs: List[Attachment], limit: int, who: str) -> None:
    sure = [a for a in pdfs if a.pages and a.pages_exact]
    pages = sum(a.pages or 0 for a in sure)
    if pages > limit:
        raise AttachmentError(f"{_names(sure)}: {pages} pages is over {who}'s limit of {limit} PDF pages for one request")


def _names(items: List[Attachment]) -> str:
    names = [a.name for a in items]
    return ", ".join(names) if len(names) <= 3 else ", ".join(names[:3]) + f" and {len(names) - 3} more"


def unsupported(api: str, attachment: Attachment) -> AttachmentError:
    """The error a provider raises for an attachment its API cannot carry."""
    if attachment.kind == "pdf":
        return AttachmentError(
            f"{attachment.name}: the {_API_NAMES.get(api, api)} API takes no PDFs; send its text with --pdf-as-text, or use {', '.join(PDF_APIS)} (--api)"
        )
    return AttachmentError(f"{attachment.name}: the {_API_NAMES.get(api, api)} API cannot carry a {attachment.kind} attachment")
