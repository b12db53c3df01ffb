"""The reference reader for the benchmark: minimal httpx streaming plus a hand-written SSE split.

    python tests/benchmarks/baseline_httpx.py BASE_URL [PROMPT] [--model M] [--async]

It speaks only the OpenAI Chat Completions stream, the happy path of it: POST, read the raw
body, split events on a blank line (`buf.split(b"\\n\\n")`), `json.loads` each `data: ` line,
write the content to stdout. No error handling beyond the status check, no CR handling, no
WHATWG details: it is the floor a real client is measured against, not a client.

The content of each network read is written with one write and one flush (every token in a read
arrived at the same moment, so batching them delays nothing).

The request body matches what `llmchat` sends for the same prompt, so the fake server answers
both with the same text and their stdout can be compared byte for byte.
"""

from __future__ import annotations

import json
import sys


def _request(base_url: str, model: str, prompt: str):
    url = base_url.rstrip("/") + "/chat/completions"
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return url, body, {"Accept": "text/event-stream"}


class _Splitter:
    """bytes in, answer text out; `done` once `data: [DONE]` arrived."""

    def __init__(self) -> None:
        self.buf = b""
        self.done = False

    def feed(self, chunk: bytes) -> str:
        self.buf += chunk
        *events, self.buf = self.buf.split(b"\n\n")
        parts = []
        loads = json.loads
        for event in events:
            for line in event.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    self.done = True
                    return "".join(parts)
                choices = loads(data).get("choices")
                if choices:
                    content = choices[0].get("delta", {}).get("content")
                    if content:
                        parts.append(content)
        return "".join(parts)


def run_sync(base_url: str, model: str, prompt: str) -> int:
    import httpx

    url, body, headers = _request(base_url, model, prompt)
    out = sys.stdout.buffer
    splitter = _Splitter()
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                print(f"baseline: HTTP {response.status_code}", file=sys.stderr)
                return 1
            for chunk in response.iter_raw():
                text = splitter.feed(chunk)
                if text:
                    out.write(text.encode("utf-8"))
                    out.flush()
                if splitter.done:
                    return 0
    print("baseline: the stream ended without [DONE]", file=sys.stderr)
    return 1


async def run_async(base_url: str, model: str, prompt: str) -> int:
    import httpx

    url, body, headers = _request(base_url, model, prompt)
    out = sys.stdout.buffer
    splitter = _Splitter()
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                print(f"baseline: HTTP {response.status_code}", file=sys.stderr)
                return 1
            async for chunk in response.aiter_raw():
                text = splitter.feed(chunk)
                if text:
                    out.write(text.encode("utf-8"))
                    out.flush()
                if splitter.done:
                    return 0
    print("baseline: the stream ended without [DONE]", file=sys.stderr)
    return 1


def main(argv: list) -> int:
    # The same two import skips llmchat's command makes (llmchat/cli.py), so the start-up ratio
    # compares the reading code, not which optional packages happen to be installed.
    sys.modules.setdefault("httpx._main", None)
    if "trio" not in sys.modules:
        sys.modules["trio"] = None
    use_async = "--async" in argv
    args = [a for a in argv if a != "--async"]
    model = "x"
    if "--model" in args:
        i = args.index("--model")
        model = args[i + 1]
        del args[i : i + 2]
    if not args:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    base_url = args[0]
    prompt = args[1] if len(args) > 1 else "hi"
    if use_async:
        import asyncio

        return asyncio.run(run_async(base_url, model, prompt))
    return run_sync(base_url, model, prompt)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
