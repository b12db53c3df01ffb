"""The fake LLM server for the TUI benchmark, in its own process, with a few long answers that
the prompt picks (so the server's work never counts as the client's CPU):

    listN      a single N-item bullet list (list500, list50, ...)
    codeN      a single N-line fenced Python code block (code2000, code200, ...)
    marks      numbered words t0001 t0002 ... (one token each), 16 to a line of ~100
               characters, four lines to a paragraph: prose-like, and a screen scraper sees
               which token is on screen (the length comes from `tokens=` in the URL)
    floodG     the demo answer (`tokens=` long) sent G tokens to a delta: a server that
               batches its output, so a flood of many MB arrives in seconds, not minutes

Any other prompt gets the usual demo answer (`tokens=` sets its length). Every answer ends
with a paragraph of its own, END_MARK, which no answer has anywhere else: a screen scraper
knows the end is painted when it sees it. Per-request options
ride in the URL as for `llmchat demo-server`: http://127.0.0.1:PORT/o/tokens=5000&tps=200/v1

    python tests/benchmarks/bench_server.py [--port 0]

prints "demo server on http://127.0.0.1:PORT" once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # the checkout

from llmchat.demo import server as demo_server  # noqa: E402
from llmchat.demo.answer import answer_tokens, tokenize  # noqa: E402


def list_answer(items: int = 500) -> str:
    lines = [f"- Item {i}: a short line about thing number {i}, with `code` and **bold**\n" for i in range(1, items + 1)]
    return "Here is the list you asked for:\n\n" + "".join(lines) + "\nThat is all.\n"


def code_answer(lines: int = 2000) -> str:
    body = []
    for i in range(1, lines + 1):
        if i % 50 == 1:
            body.append(f"def step_{i}(value: int) -> int:\n")
        elif i % 50 == 0:
            body.append("    return value\n")
        else:
            body.append(f"    value = value * 3 + {i}  # step {i}\n")
    return "Here is the code:\n\n```python\n" + "".join(body) + "```\n\nThat is all.\n"


def marks_answer(count: int) -> str:
    """`count` one-token words t0001..: 16 to a line, four lines to a paragraph."""
    out: List[str] = []
    for i in range(1, count + 1):
        out.append(f" t{i:04d}" if i % 16 != 1 else f"t{i:04d}")
        if i % 16 == 0:
            out.append("\n\n" if i % 64 == 0 else "\n")
    return "".join(out)


END_MARK = "ZZEND"
_END = ["\n\n", END_MARK, "\n"]


def named_tokens(prompt: str, count: Optional[int] = None, text: Optional[str] = None, received: str = "", earlier: int = 0) -> List[str]:
    """The demo server's `answer_tokens` (the same arguments), with the named answers above."""
    key = prompt.strip()
    named = re.fullmatch(r"(list|code)(\d+)", key)
    if text is None and named:
        make = list_answer if named.group(1) == "list" else code_answer
        return tokenize(make(int(named.group(2)))) + _END
    if text is None and key == "marks":
        return tokenize(marks_answer(count or 1000)) + _END
    flood = re.fullmatch(r"flood(\d+)", key)
    if text is None and flood:
        group = max(1, int(flood.group(1)))
        tokens = answer_tokens("flood", count, text)
        return ["".join(tokens[at : at + group]) for at in range(0, len(tokens), group)] + _END
    return answer_tokens(prompt, count, text, received, earlier) + _END


async def serve(port: int) -> None:
    server = demo_server.FakeLLMServer(demo_server.Behaviour(), port=port)
    url = await server.start()
    print(f"demo server on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    demo_server.answer_tokens = named_tokens  # the server module looks it up at each request
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
