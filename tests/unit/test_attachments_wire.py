"""Each provider encodes a user message's attachments exactly as its API documents, checked
against request shapes written out from the APIs' own docs and examples:

- OpenAI Chat Completions: `image_url` parts with data URLs; PDFs as `file` parts with
  `file_data` (a data URL) and `filename` (platform.openai.com/docs/guides/images-vision,
  /docs/guides/pdf-files).
- OpenAI Responses: `input_image` with `image_url`; `input_file` with `filename` and `file_data`.
- Anthropic Messages: `image` blocks and `document` blocks with a base64 `source`
  (platform.claude.com/docs/en/build-with-claude/vision, /pdf-support).
- Ollama: `images`, base64 strings, on the message (ollama docs/api.md); no PDFs.

Text files are inlined into the message's text for all four; messages without attachments keep
their plain string content.
"""

from __future__ import annotations

import base64

import pytest
from attachment_samples import jpeg, pdf, png

from llmchat.attachments import AttachmentError, from_bytes
from llmchat.conversation import ChatRequest, Message
from llmchat.providers import get_provider

PNG = png(2, 2)
JPEG = jpeg(800, 600)
PDF = pdf(3)
B64_PNG = base64.b64encode(PNG).decode()
B64_JPEG = base64.b64encode(JPEG).decode()
B64_PDF = base64.b64encode(PDF).decode()

IMAGE = from_bytes("shots/screen.png", PNG)
PHOTO = from_bytes("photo.jpg", JPEG)
REPORT = from_bytes("docs/report.pdf", PDF)
NOTES = from_bytes("notes.md", b"# Notes\n- one\n")
NOTES_TEXT = "File: notes.md\n```markdown\n# Notes\n- one\n```"


def body(api: str, *messages: Message) -> dict:
    request = ChatRequest(model="m", messages=list(messages), base_url="http://127.0.0.1:9/v1")
    return get_provider(api).build_request(request).json


def conversation(api: str, *attachments) -> list:
    """The request's messages for: a plain earlier turn, then a user message with attachments."""
    sent = body(
        api,
        Message("user", "hello"),
        Message("assistant", "hi"),
        Message("user", "what is here?", tuple(attachments)),
    )
    return sent["input"] if api == "openai-responses" else sent["messages"]


# --------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def test_openai_chat_sends_images_as_image_url_parts_and_pdfs_as_file_parts() -> None:
    messages = conversation("openai-chat", IMAGE, PHOTO, REPORT, NOTES)
    assert messages[:2] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64_PNG}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{B64_JPEG}"}},
            {"type": "file", "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{B64_PDF}"}},
            {"type": "text", "text": NOTES_TEXT + "\n\nwhat is here?"},
        ],
    }


# --------------------------------------------------------------------------------------------
# OpenAI Responses


def test_openai_responses_sends_input_image_and_input_file_parts() -> None:
    messages = conversation("openai-responses", IMAGE, REPORT, NOTES)
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{B64_PNG}", "detail": "auto"},
            {"type": "input_file", "filename": "report.pdf", "file_data": f"data:application/pdf;base64,{B64_PDF}"},
            {"type": "input_text", "text": NOTES_TEXT + "\n\nwhat is here?"},
        ],
    }


# --------------------------------------------------------------------------------------------
# Anthropic


def test_anthropic_sends_image_and_document_blocks_with_base64_sources_before_the_text() -> None:
    messages = conversation("anthropic", IMAGE, REPORT, NOTES)
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64_PNG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": B64_PDF}, "title": "report.pdf"},
            {"type": "text", "text": NOTES_TEXT + "\n\nwhat is here?"},
        ],
    }


def test_anthropic_sends_no_empty_text_block_for_attachments_without_words() -> None:
    sent = body("anthropic", Message("user", "", (IMAGE,)))
    assert sent["messages"][0]["content"] == [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64_PNG}}]


# --------------------------------------------------------------------------------------------
# Ollama


def test_ollama_sends_images_as_base64_strings_on_the_message() -> None:
    messages = conversation("ollama", IMAGE, PHOTO, NOTES)
    assert messages[2] == {"role": "user", "content": NOTES_TEXT + "\n\nwhat is here?", "images": [B64_PNG, B64_JPEG]}


def test_ollama_refuses_a_pdf_naming_the_apis_that_take_one() -> None:
    with pytest.raises(
        AttachmentError,
        match=r"^docs/report.pdf: the Ollama API takes no PDFs; send its text with --pdf-as-text, or use openai-chat, openai-responses, anthropic",
    ):
        body("ollama", Message("user", "summarise", (REPORT,)))


# --------------------------------------------------------------------------------------------
# all four


APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]


@pytest.mark.parametrize("api", APIS)
def test_text_files_alone_are_inlined_into_plain_string_content(api: str) -> None:
    messages = conversation(api, NOTES)
    assert messages[2] == {"role": "user", "content": NOTES_TEXT + "\n\nwhat is here?"}


@pytest.mark.parametrize("api", APIS)
def test_a_conversation_without_attachments_is_sent_as_before(api: str) -> None:
    sent = body(api, Message("user", "hello"), Message("assistant", "hi"), Message("user", "more"))
    messages = sent["input"] if api == "openai-responses" else sent["messages"]
    assert messages == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]


@pytest.mark.parametrize("api", APIS)
def test_attachments_of_earlier_user_messages_are_sent_again(api: str) -> None:
    sent = body(api, Message("user", "look", (IMAGE,)), Message("assistant", "a red square"), Message("user", "and now?"))
    messages = sent["input"] if api == "openai-responses" else sent["messages"]
    assert B64_PNG in str(messages[0]) and messages[2] == {"role": "user", "content": "and now?"}


def test_a_stdin_pdf_gets_a_file_name_with_its_extension() -> None:
    piped = from_bytes("stdin", PDF)
    part = conversation("openai-chat", piped)[2]["content"][0]
    assert part["file"]["filename"] == "stdin.pdf"
