"""attachments.pdf_as_text and attachments.downscale on real files made here (pypdf and Pillow
read and write them): what they keep, what they change, and their one-line errors."""

from __future__ import annotations

import io

import pytest
from attachment_samples import pdf_with_text, png

from llmchat.attachments import AttachmentError, downscale, fenced, from_bytes, pdf_as_text


def picture(fmt: str, width: int, height: int, **save: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(out, fmt, **save)
    return out.getvalue()


def test_a_pdfs_text_is_a_text_attachment_headed_by_its_page_count() -> None:
    text = pdf_as_text(from_bytes("docs/r.pdf", pdf_with_text("One", "Two\nlines")))
    assert (text.name, text.kind, text.mime, text.pages) == ("docs/r.pdf", "text", "text/plain", 2)
    assert fenced(text) == "File: docs/r.pdf\n```\n[PDF, 2 pages, its text extracted]\n\n--- page 1 ---\nOne\n\n--- page 2 ---\nTwo\nlines\n```"
    assert text.describe().startswith("docs/r.pdf (text of a PDF of 2 pages, ")
    # Rebuilt from its stored bytes (history), it is the same text.
    assert from_bytes("docs/r.pdf", text.data).text() == text.text()


def test_a_pdfs_text_over_the_text_limit_is_refused() -> None:
    with pytest.raises(AttachmentError, match=r"^big.pdf: .* of text from its 1 pages is over the 100 bytes limit for a text attachment$"):
        pdf_as_text(from_bytes("big.pdf", pdf_with_text("word " * 60)), max_text=100)


def test_an_encrypted_pdf_is_refused_in_one_line() -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf_with_text("secret")))
    writer.encrypt(user_password="pw", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(AttachmentError, match=r"^locked.pdf: the PDF is encrypted with a password; llmchat cannot read its text$"):
        pdf_as_text(from_bytes("locked.pdf", out.getvalue()))


def test_other_kinds_pass_through_unchanged() -> None:
    image = from_bytes("a.png", png(4, 4))
    text = from_bytes("a.md", b"# hi\n")
    assert pdf_as_text(image) is image and pdf_as_text(text) is text
    assert downscale(text, 1) is text


def test_an_image_within_the_limit_is_not_even_decoded() -> None:
    image = from_bytes("a.png", png(100, 40))
    assert downscale(image, 100) is image


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_a_larger_image_keeps_its_aspect_and_format(fmt: str, mime: str) -> None:
    from PIL import Image

    small = downscale(from_bytes("x", picture(fmt, 640, 480)), 64)
    assert (small.mime, small.width, small.height) == (mime, 64, 48)
    with Image.open(io.BytesIO(small.data)) as decoded:
        assert decoded.size == (64, 48) and decoded.format == fmt
    assert small.size == len(small.data) and small.sha256 == __import__("hashlib").sha256(small.data).hexdigest()


def test_a_lossless_webp_stays_lossless() -> None:
    from PIL import Image

    small = downscale(from_bytes("x.webp", picture("WEBP", 300, 300, lossless=True)), 30)
    assert small.data[12:16] == b"VP8L"
    with Image.open(io.BytesIO(small.data)) as decoded:
        assert decoded.size == (30, 30)


def test_a_jpeg_turned_by_its_exif_orientation_is_sent_upright() -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (400, 200), "white").save(out, "JPEG", exif=exif.tobytes())
    small = downscale(from_bytes("phone.jpg", out.getvalue()), 100)
    assert (small.width, small.height) == (50, 100)  # as shown: portrait


def test_a_damaged_image_is_refused_in_one_line() -> None:
    with pytest.raises(AttachmentError, match=r"^cut.png: cannot downscale the image \(.+\)$"):
        downscale(from_bytes("cut.png", png(900, 900)[:60]), 10)


def test_base64_made_in_slices_is_standard_base64() -> None:
    import base64
    import os

    data = b"%PDF-1.4\n" + os.urandom(2 * 1024 * 1024 + 7)  # several slices and a ragged end
    pdf = from_bytes("big.pdf", data)
    assert pdf.base64() == base64.b64encode(data).decode("ascii")


def test_prepare_makes_the_data_url_once_for_an_openai_api_only() -> None:
    from llmchat.attachments import prepare

    shown, sent = from_bytes("a.png", png(3, 3)), from_bytes("b.png", png(3, 3))
    prepare([shown], ["anthropic"])
    prepare([sent], ["anthropic", "openai-chat"])
    assert shown.data_url() is not shown.data_url()  # made each time it is asked for
    assert sent.data_url() is sent.data_url() and sent.data_url() == "data:image/png;base64," + sent.base64()


def test_a_very_large_photo_is_shrunk_without_a_warning_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 40x40 image is a "bomb" to warn of (not yet an error)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = downscale(from_bytes("big.png", picture("PNG", 40, 40)), 10)
    assert (small.width, small.height) == (10, 10)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
