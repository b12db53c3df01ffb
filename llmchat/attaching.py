"""The one-shot face's attachments: `-a PATH|URL|-` (and binary data on stdin) made ready to send.

Everything happens before the request: files are read in worker threads (`attachments.load`),
URLs fetched together through an httpx client with the stream client's timeouts and proxy
settings (`attachments.fetch`), the API's limits checked over all that the request carries (a
continued conversation's earlier attachments too), and the base64 made in a worker thread
(`attachments.prepare`). Any failure is one `AttachmentError`, and nothing has been sent.

What the user asked to change is changed first, in worker threads too (`convert`): PDFs sent as
their text (`--pdf-as-text`, the `pdf_as_text` setting), images larger than `--max-image-px`
downscaled. What is changed is what is sent and stored; a continued conversation's earlier
attachments are changed the same way (its `context` messages replaced in the list).

`resend` does the same for a prompt's stored attachments, sent again (`--regenerate`,
`history replay`): checked against each run's API, and encoded.

Imported only when there is something to attach: `--raw` without attachments never loads it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

from llmchat.attachments import Attachment, check_limits, downscale, fetch, is_url, load, pdf_as_text, prepare
from llmchat.conversation import Message

DEMO_API = "openai-chat"  # what the built-in demo model speaks (engine.core.DEMO_API)


def gather(sources: Sequence[str], settings: Any, *, stdin: Optional[bytes] = None, context: Sequence[Message] = ()) -> Tuple[Attachment, ...]:
    """The attachments `sources` name, in their order, checked against `settings.api`'s limits
    with the attachments of `context` (sent again), and encoded. `stdin`: the bytes `-` stands for.
    Converted first as `settings` ask (`convert`): a `context` list's messages are replaced.

    Raises:
        AttachmentError: the first source that cannot be attached, or a limit (nothing was sent).
    """
    return asyncio.run(_gather(list(sources), settings, stdin, context if isinstance(context, list) else list(context)))


async def _gather(sources: List[str], settings: Any, stdin: Optional[bytes], context: List[Message]) -> Tuple[Attachment, ...]:
    urls = [s for s in sources if is_url(s)]
    client: Any = None
    if urls:
        import httpx

        # The stream client's timeouts and proxies (trust_env); certificates always checked:
        # a fetch follows redirects, and an http URL may move to https.
        client = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout), trust_env=True, verify=True)
    try:
        jobs = [fetch(s, client) if is_url(s) else asyncio.to_thread(load, s, stdin=stdin if s == "-" else None) for s in sources]
        results = await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        if client is not None:
            await client.aclose()
    attached: List[Attachment] = []
    for result in results:  # the first failure in the command line's order
        if isinstance(result, BaseException):
            raise result
        attached.append(result)
    if wants_conversion(settings):  # one after another, in one thread: Pillow's warning filter is process-wide
        attached = await asyncio.to_thread(_convert_all, attached, context, settings)
    everything = [a for m in context for a in m.attachments] + attached
    check_limits(_api(settings), everything)
    await asyncio.to_thread(prepare, everything, [_api(settings)])
    return tuple(attached)


def _convert_all(attached: List[Attachment], context: List[Message], settings: Any) -> List[Attachment]:
    convert_context(context, settings)
    return [convert(a, settings) for a in attached]


def wants_conversion(settings: Any) -> bool:
    """Whether `settings` ask for attachments to be changed before sending (`convert`)."""
    return bool(getattr(settings, "pdf_as_text", False) or getattr(settings, "max_image_px", None))


def convert(attachment: Attachment, settings: Any) -> Attachment:
    """`attachment` as `settings` ask it sent: a PDF as its text (`pdf_as_text`), an image no
    larger than `max_image_px` on its longer side; else unchanged. Blocking: call it in a worker
    thread (the TUI's attachments too, after `attachments.load`).

    Raises:
        AttachmentError: a PDF with no text, an image that cannot be decoded (nothing was sent).
    """
    if attachment.kind == "pdf" and getattr(settings, "pdf_as_text", False):
        return pdf_as_text(attachment)
    max_px = getattr(settings, "max_image_px", None)
    if attachment.kind == "image" and max_px:
        return downscale(attachment, max_px)
    return attachment


def convert_context(context: List[Message], settings: Any) -> None:
    """Each message of `context` that carries attachments replaced by one carrying them
    converted (`convert`): the earlier messages are sent again, the way this run sends."""
    for index, message in enumerate(context):
        if message.attachments and wants_conversion(settings):
            converted = tuple(convert(a, settings) for a in message.attachments)
            if converted != message.attachments:
                context[index] = dataclasses.replace(message, attachments=converted)


def resend(stored: Sequence[Attachment], runs: Sequence[Any], context: Sequence[Message] = ()) -> Tuple[Attachment, ...]:
    """A stored prompt's attachments, to be sent again after `context` by each of `runs` (their
    settings): converted as the first run asks (`convert`; a `context` list's messages are
    replaced), every run's API limits checked over all the request carries, then encoded.

    Returns:
        The attachments to send: `stored`, converted.

    Raises:
        AttachmentError: a conversion, or a limit of one of the runs' APIs (nothing was sent).
    """
    attached = tuple(stored)
    if runs and wants_conversion(runs[0]):
        attached = tuple(convert(a, runs[0]) for a in attached)
        if isinstance(context, list):
            convert_context(context, runs[0])
    everything = [a for m in context for a in m.attachments] + list(attached)
    for settings in runs:
        check_limits(_api(settings), everything)
    prepare(everything, [_api(settings) for settings in runs])
    return attached


def _api(settings: Any) -> str:
    return DEMO_API if settings.demo else settings.api
