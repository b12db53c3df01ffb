"""What the demo model says, and how it is cut into tokens."""

from __future__ import annotations

import re
from typing import List

DEMO_MODEL = "demo"
# The demo model streams like a brisk real one.
DEMO_TPS = 90.0
DEMO_TTFT = 0.35

_TOKEN = re.compile(r"\n+|[ \t]*[^\s]{1,6}|[ \t]+|\s")

_ANSWER = """\
# Hello from the demo model

You asked: *{prompt}*

This answer comes from **llmchat's built-in offline demo model**. It does not understand you;
it shows what llmchat does with a real one. Set `OPENAI_API_KEY` or `ANTHROPIC_API_KEY`, use
Ollama with `--api ollama`, or pass `--base-url` to talk to a real model.

## What you are seeing

1. The answer is streamed over real HTTP on `127.0.0.1`, token by token.
2. It goes through the same client and decoders as any other model.
3. In a terminal it is rendered as Markdown while it arrives.

- Headings, **bold**, *italic* and `inline code`
- Nested lists:
  - like this one
  - and this one
- > Block quotes, too.

## A little code

```python
import asyncio


async def count_tokens(stream) -> int:
    \"\"\"Count the text deltas in a stream.\"\"\"
    total = 0
    async for event in stream:
        total += 1
    return total
```

## A table

| API | Framing | Terminal signal |
|-----|---------|-----------------|
| OpenAI Chat Completions | SSE | `[DONE]` |
| OpenAI Responses | SSE | `response.completed` |
| Anthropic Messages | SSE | `message_stop` |
| Ollama | NDJSON | `done: true` |

That is all the demo model knows. Try `llmchat --stats "…"` to see time to first token and
tokens per second.
"""

_RECEIVED = """\
# The demo model got your attachments

I received {received}.

You asked: *{prompt}*

The demo model cannot look inside them. The demo server checked that each came in the shape the
API documents, and counted and measured them, so you can see what llmchat sent.{earlier}
"""

_FILLER = """
## More, as asked

Streaming fast and correctly means reading bytes, not lines, and rendering at frame rate, \
not token rate. Each paragraph here is filler so that long answers can be tested.

- A list item with `code` and **emphasis**.
- Another item, to keep the renderer honest.

"""


def demo_answer(prompt: str, received: str = "", earlier: int = 0) -> str:
    """The demo answer; when the request had attachments (`received` describes those of the
    last user message, `earlier` counts those sent again from earlier ones), what it got."""
    first = prompt.strip().splitlines()[0] if prompt.strip() else "nothing at all"
    if len(first) > 80:
        first = first[:79] + "…"
    first = first.replace("*", "\\*")
    if received or earlier:
        again = (
            f"\n\nEarlier messages carry {earlier} more attachment{'s' if earlier != 1 else ''}, sent again with the conversation." if earlier else ""
        )
        return _RECEIVED.format(received=received or "no attachments with this message", prompt=first, earlier=again)
    return _ANSWER.format(prompt=first)


def tokenize(text: str) -> List[str]:
    """Word-ish pieces of up to six characters with their leading space, runs of newlines.

    Joined, the tokens give back the text exactly.
    """
    return _TOKEN.findall(text)


def answer_tokens(prompt: str, count: int | None = None, text: str | None = None, received: str = "", earlier: int = 0) -> List[str]:
    """The tokens of the answer: the given text, the demo answer, or exactly `count` tokens."""
    tokens = tokenize(text if text is not None else demo_answer(prompt, received, earlier))
    if count is None:
        return tokens
    if count <= len(tokens):
        return tokens[:count]
    filler = tokenize(_FILLER)
    out = list(tokens)
    while len(out) < count:
        out.extend(filler[: count - len(out)])
    return out
