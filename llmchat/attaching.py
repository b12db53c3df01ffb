"""The one-shot face's attachments: `-a PATH|URL|-` (and binary data on stdin) made ready to send.

Everything happens before the request: files are read in worker threads (`attachments.load`),
URLs fetched together through an httpx client with the stream client's timeouts and proxy
settings (`attachments.fetch`), the API's limits checked over all that the request carries (a
continued conversation's earlier attachments too), and the base64 made in a worker thread
(`attachments.prepare`). Any failure is one `AttachmentError`, and nothing has been sent.

`resend` does the same for a prompt's stored attachments, sent again (`--regenerate`,
`history replay`): checked against each run's API, and encoded.

Imported only when there is something to attach: `--raw` without attachments never loads it.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Sequence, Tuple

from llmchat.attachments import Attachment, check_limits, fetch, is_url, load, prepare
from llmchat.conversation import Message

DEMO_API = "openai-chat"  # what the built-in demo model speaks (engine.core.DEMO_API)


def gather(sources: Sequence[str], settings: Any, *, stdin: Optional[bytes] = None, context: Sequence[Message] = ()) -> Tuple[Attachment, ...]:
    """The attachments `sources` name, in their order, checked against `settings.api`'s limits
    with the attachments of `context` (sent again), and encoded. `stdin`: the bytes `-` stands for.

    Raises:
        AttachmentError: the first source that cannot be attached, or a limit (nothing was sent).
    """
    return asyncio.run(_gather(list(sources), settings, stdin, list(context)))


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
    everything = [a for m in context for a in m.attachments] + attached
    check_limits(_api(settings), everything)
    await asyncio.to_thread(prepare, everything)
    return tuple(attached)


def resend(stored: Sequence[Attachment], runs: Sequence[Any], context: Sequence[Message] = ()) -> None:
    """A stored prompt's attachments, to be sent again after `context` by each of `runs` (their
    settings): every run's API limits checked over all the request carries, then encoded.

    Raises:
        AttachmentError: a limit of one of the runs' APIs (nothing was sent).
    """
    everything = [a for m in context for a in m.attachments] + list(stored)
    for settings in runs:
        check_limits(_api(settings), everything)
    prepare(everything)


def _api(settings: Any) -> str:
    return DEMO_API if settings.demo else settings.api
