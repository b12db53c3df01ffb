"""A stored conversation as Markdown (`llmchat history show` and `export`) and as JSON, and the
one-line description of an answer's status and figures, for any face that shows old answers.

The labels made here from stored values (title, model, API, error, stop reason) are one clean
line each (`sanitize.one_line`): a stored string may hold control sequences, and a label is
never where the model's own bytes belong. The answers themselves are left as stored.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Protocol, Tuple

from llmchat.history.records import ConversationInfo, SearchHit, StoredMessage, Transcript
from llmchat.history.store import CANCELLED, ERROR, INTERRUPTED, MAX_STEPS, STREAMING
from llmchat.sanitize import one_line

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def local_time(timestamp: Optional[float]) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def iso_time(timestamp: Optional[float]) -> Optional[str]:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_note(message: StoredMessage) -> Optional[str]:
    """What a reader must know about an answer that did not end normally, or that was asked
    again in its place; None when neither."""
    note = _ending_note(message)
    if message.superseded:
        retried = "superseded: asked again below, and not sent as context"
        return f"{note} · {retried}" if note else retried
    return note


def _ending_note(message: StoredMessage) -> Optional[str]:
    if message.status == CANCELLED:
        return "cancelled: the answer stops where it was stopped"
    if message.status == ERROR:
        return f"error: {one_line(message.error)}" if message.error else "error"
    if message.status == INTERRUPTED:
        return "interrupted: llmchat stopped before the answer ended (it is kept as far as it was saved)"
    if message.status == STREAMING:
        return "still streaming in another llmchat"
    if message.stop_reason == "length":
        return "cut short: the model reached its output token limit"
    if message.stop_reason == "content_filter":
        return "stopped early by the content filter"
    if message.stop_reason == MAX_STEPS:
        return "stopped at the limit of tool-call rounds (--max-steps): the tools the model asked for next did not run"
    return None


class Figures(Protocol):
    """What `metrics_line` reads: a `StoredMessage`, or a face's figures of an answer it shows."""

    @property
    def model(self) -> Optional[str]: ...
    @property
    def ttft(self) -> Optional[float]: ...
    @property
    def tokens_per_second(self) -> Optional[float]: ...
    @property
    def input_tokens(self) -> Optional[int]: ...
    @property
    def output_tokens(self) -> Optional[int]: ...
    @property
    def tokens_exact(self) -> Optional[bool]: ...
    @property
    def elapsed(self) -> Optional[float]: ...
    @property
    def stop_reason(self) -> Optional[str]: ...


def metrics_line(message: Figures) -> str:
    """An answer's stored figures, as `--stats` shows them: model, TTFT, tok/s, tokens, time,
    stop reason. `~` marks an estimated token count."""
    parts: List[str] = [one_line(message.model or "?")]
    if message.ttft is not None:
        parts.append(f"TTFT {message.ttft * 1000:.0f} ms")
    mark = "~" if message.tokens_exact is False else ""
    if message.tokens_per_second is not None:
        parts.append(f"{mark}{message.tokens_per_second:.1f} tok/s")
    if message.output_tokens is not None:
        tokens = f"{mark}{message.output_tokens} output tokens"
        if message.input_tokens is not None:
            tokens = f"{message.input_tokens} input, " + tokens
        parts.append(tokens)
    if message.elapsed is not None:
        parts.append(f"{message.elapsed:.2f} s")
    if message.stop_reason:
        parts.append(f"stop: {one_line(message.stop_reason)}")
    return " · ".join(parts)


def to_markdown(transcript: Transcript, links: Optional[Dict[str, str]] = None, *, preview: Optional[int] = None) -> str:
    """`links`: where each attachment (by sha256) can be opened -- a file beside the export or
    a data URL (`history export`); without one, an attachment is listed by name, kind, size and hash.
    An answer's tool calls stand where the model made them, each with its result: whole, or
    with `preview`, its first `preview` characters (and lines: `history show`)."""
    info = transcript.info
    out = [f"# {one_line(info.title)}", "", _about(info), ""]
    if any(m.sibling_count > 1 for m in transcript.messages) or len(transcript.messages) < info.message_count:
        shown = sum(1 for m in transcript.messages if not m.superseded)
        out += [f"*The current branch: {shown} of {info.message_count} messages (`llmchat history show {info.id} --tree` draws them all).*", ""]
    for message in transcript.messages:
        if message.role == "user":
            out += [f"## You{_place(message)}", "", _closed(message.content), ""]
            if message.attachments:
                out += ["*Attached:*", ""] + [f"- {attachment_line(meta, links)}" for meta in message.attachments] + [""]
            continue
        out += [f"## {one_line(message.model or 'Assistant')}{_place(message)}", ""]
        if message.reasoning:
            out += [_reasoning(message.reasoning), ""]
        if message.tool_parts:
            for _kind, value in message.segments:
                if isinstance(value, str):
                    if value.strip():
                        out += [_closed(value.lstrip("\n")), ""]
                else:
                    out += tool_markdown(value, preview)
        elif message.content:
            out += [_closed(message.content), ""]
        line = metrics_line(message)
        note = status_note(message)
        out.append(f"*{_escape(line)}*" + (f"  \n*{_escape(note)}*" if note else ""))
        out.append("")
    return "\n".join(out)


PREVIEW_CHARS = 2000  # `history show`: the most of a tool result shown...
PREVIEW_LINES = 30  # ...and of its lines (`history export` writes it whole)


def tool_markdown(item: Any, preview: Optional[int] = None) -> List[str]:
    """A tool call and its result as Markdown lines: a heading line (tool, server, status,
    duration), the arguments as pretty JSON, the result in a fence of its own (cut to `preview`
    characters and PREVIEW_LINES lines when given, saying how much was left out)."""
    head = f"**Tool** `{_tick(one_line(item.name or '?', 80))}`"
    if item.server:
        head += f" on {_escape(one_line(item.server, 60))}"
    head += f" · {_escape(one_line(item.state(), 60))}"
    if item.duration is not None:
        head += f" · {item.duration:.2f} s"
    arguments, note = _cut(_pretty(item.arguments), preview)
    out = [head, "", *_fenced(arguments, "json"), ""]
    if note:
        out += [f"*Arguments{note}.*", ""]
    if item.result is None:
        return out
    text, note = _cut(item.result, preview)
    label = "Error" if item.is_error else "Result"
    out += [f"*{label}{note}:*", "", *_fenced(text, "text"), ""]
    return out


def _cut(text: str, preview: Optional[int]) -> Tuple[str, str]:
    """`text`, or with `preview`, its first `preview` characters and PREVIEW_LINES lines; and a
    note saying how much that is (empty when it is all of it)."""
    if preview is None:
        return text, ""
    cut = "\n".join(text.split("\n", PREVIEW_LINES)[:PREVIEW_LINES])[:preview]
    if len(cut) == len(text):
        return text, ""
    return cut, f" (the first {len(cut):,} of {len(text):,} characters)"


def _pretty(arguments: str) -> str:
    """Arguments (JSON text) indented; as they are when they are not JSON."""
    import json

    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False) if arguments.strip() else "{}"
    except (ValueError, RecursionError):
        return arguments


def _fenced(text: str, info: str) -> List[str]:
    """`text` in a code fence longer than any run of backticks in it (it cannot close early)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", text.rstrip("\n"), fence]


def _tick(text: str) -> str:
    return text.replace("`", "'")


def attachment_summary(meta: Dict[str, Any]) -> str:
    """An attachment's kind and size from its stored description: `PNG, 800x600, 41 KB`."""
    from llmchat.attachments import human_size  # only for a conversation with attachments

    kind = meta.get("kind")
    size = human_size(int(meta.get("size") or 0))
    if kind == "image":
        mime = str(meta.get("mime") or "image")
        fmt = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP"}.get(mime, mime)
        dims = f"{meta['width']}x{meta['height']}, " if meta.get("width") and meta.get("height") else ""
        return f"{fmt} image, {dims}{size}"
    if kind == "pdf":
        pages = meta.get("pages")
        return f"PDF, {pages} page{'s' if pages != 1 else ''}, {size}" if pages else f"PDF, {size}"
    return f"text, {size}"


def attachment_line(meta: Dict[str, Any], links: Optional[Dict[str, str]] = None) -> str:
    """One attachment of a prompt, for Markdown: its name (a link when `links` has its hash),
    kind, size and the start of its sha256 (the name of its stored file)."""
    name = _escape(one_line(str(meta.get("name") or "attachment")))
    digest = str(meta.get("sha256") or "")
    target = (links or {}).get(digest)
    if target is not None:
        shown = f"![{name}](<{target}>)" if meta.get("kind") == "image" else f"[{name}](<{target}>)"
    else:
        shown = f"`{one_line(str(meta.get('name') or 'attachment')).replace('`', chr(39))}`"
    return f"{shown} · {attachment_summary(meta)} · sha256 {digest[:12]}"


def export_name(meta: Dict[str, Any]) -> str:
    """A safe file name for an exported attachment: the start of its hash, then its own name's
    last part (letters, digits, `.`, `-`, `_` only), with the kind's extension when it has none."""
    name = str(meta.get("name") or "")
    base = name.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if name.startswith(("http://", "https://")) and "." not in base:
        base = ""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:80] or "attachment"
    if "." not in base:
        base += {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "application/pdf": ".pdf"}.get(
            str(meta.get("mime")), ".txt"
        )
    return f"{str(meta.get('sha256') or '')[:12]}-{base}"


def _place(message: StoredMessage) -> str:
    """` ‹ 2/3 ›` for a message with siblings (other branches from the same point), with its ID
    (what `history switch`, `fork` and `diff` take); nothing for one without."""
    if message.sibling_count <= 1:
        return ""
    return f" ‹ {message.sibling_index}/{message.sibling_count} › (message {message.id})"


def sibling_mark(message: StoredMessage) -> str:
    """`‹ 2/3 ›`, or "" for a message without siblings."""
    return f"‹ {message.sibling_index}/{message.sibling_count} ›" if message.sibling_count > 1 else ""


def tree_lines(transcript: Transcript, width: int = 48) -> List[str]:
    """Every message of a transcript read with `branches=True`, one line each, drawn as a tree
    (a chain stays in its column; only a fork indents): the current path marked `*`, then the
    ID, who wrote it, its first words, and for an answer its status and model."""
    children: Dict[Optional[int], List[StoredMessage]] = {}
    for message in transcript.messages:
        children.setdefault(message.parent_id, []).append(message)
    lines: List[str] = []
    id_width = max((len(str(m.id)) for m in transcript.messages), default=1)
    # Depth first, without recursion (a chain may be thousands of messages deep).
    stack: List[Tuple[StoredMessage, str, str]] = []

    def push(kids: List[StoredMessage], rest: str) -> None:
        if len(kids) == 1:
            stack.append((kids[0], rest, rest))
            return
        for index in range(len(kids) - 1, -1, -1):
            last = index == len(kids) - 1
            stack.append((kids[index], rest + ("└─ " if last else "├─ "), rest + ("   " if last else "│  ")))

    push(children.get(None, []), "")
    while stack:
        message, first, rest = stack.pop()
        mark = " " if message.superseded else "*"
        who = "you" if message.role == "user" else "assistant"
        words = one_line(" ".join(message.content.split()))
        if len(words) > width:
            words = words[: width - 1].rstrip() + "…"
        line = f"{mark} {first}{message.id:>{id_width}} {who}: {words}"
        if message.role != "user":
            calls = sum(1 for part in message.tool_parts if part.kind == "tool_call")
            tools = f" · {calls} tool call{'s' if calls != 1 else ''}" if calls else ""
            line += f"  [{message.status}{' · ' + one_line(message.model) if message.model else ''}{tools}]"
        elif message.attachments:
            count = len(message.attachments)
            line += f"  [{count} attachment{'s' if count != 1 else ''}]"
        lines.append(line)
        push(children.get(message.id, []), rest)
    return lines


def word_diff(old: str, new: str) -> List[Tuple[str, str]]:
    """The two texts as runs of ("=", same), ("-", only in old), ("+", only in new), compared
    word by word (whitespace kept with the words, so the runs join back into each text)."""
    import difflib

    a = re.findall(r"\s+|\S+", old)
    b = re.findall(r"\s+|\S+", new)
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    # Only whitespace in common between two changes joins them into one ("[-a b-]{+c d+}",
    # not "[-a-]{+c+} [-b-]{+d+}"), as git's word diff reads.
    runs: List[Tuple[str, str]] = []
    old_side: List[str] = []
    new_side: List[str] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        same = "".join(a[i1:i2])
        inner = 0 < index < len(opcodes) - 1
        if tag == "equal" and not (inner and not same.strip() and (old_side or new_side)):
            _flush_change(runs, old_side, new_side)
            runs.append(("=", same))
            continue
        old_side.append(same)
        new_side.append("".join(b[j1:j2]))
    _flush_change(runs, old_side, new_side)
    return runs


def _flush_change(runs: List[Tuple[str, str]], old_side: List[str], new_side: List[str]) -> None:
    for op, side in (("-", old_side), ("+", new_side)):
        text = "".join(side)
        if text:
            runs.append((op, text))
        side.clear()


def figures(message: StoredMessage) -> Dict[str, str]:
    """An answer's figures as the cells of a comparison: model, status, TTFT, tok/s, tokens, time."""
    mark = "~" if message.tokens_exact is False else ""
    return {
        "message": f"{message.id} ({'you' if message.role == 'user' else 'answer'}{', ' + sibling_mark(message) if sibling_mark(message) else ''})",
        "model": one_line(message.model or "-"),
        "status": message.status + (f" ({one_line(message.stop_reason)})" if message.stop_reason and message.stop_reason != "stop" else ""),
        "TTFT": f"{message.ttft * 1000:.0f} ms" if message.ttft is not None else "-",
        "tok/s": f"{mark}{message.tokens_per_second:.1f}" if message.tokens_per_second is not None else "-",
        "tokens": f"{mark}{message.output_tokens}" if message.output_tokens is not None else "-",
        "time": f"{message.elapsed:.2f} s" if message.elapsed is not None else "-",
    }


def _reasoning(text: str) -> str:
    """The model's reasoning, labelled, as a quote before its answer (so it never reads as
    part of the answer)."""
    lines = _closed(text).split("\n")
    return "\n".join(["> *Reasoning*", ">"] + [f"> {line}" if line else ">" for line in lines])


def _about(info: ConversationInfo) -> str:
    model = one_line(info.model or "?")
    if info.api and info.api != model:
        model += f" ({one_line(info.api)})"
    return (
        f"Conversation {info.id} · {model} · started {local_time(info.created_at)}"
        f" · last used {local_time(info.last_used_at)} · {info.message_count} messages"
    )


def _closed(text: str) -> str:
    """The text, with a code fence that a cut-off answer left open closed, so it does not
    swallow the rest of the document."""
    text = text.rstrip("\n")
    opened: Optional[str] = None
    for match in _FENCE.finditer(text):
        fence = match.group(1)
        if opened is None:
            opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened):
            opened = None
    return text + f"\n{opened}" if opened else text


def _escape(text: str) -> str:
    return re.sub(r"([*_`\\])", r"\\\1", text)


def conversation_json(info: ConversationInfo) -> Dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "model": info.model,
        "api": info.api,
        "profile": info.profile,
        "messages": info.message_count,
        "created_at": iso_time(info.created_at),
        "last_used_at": iso_time(info.last_used_at),
    }


def message_json(message: StoredMessage) -> Dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "api": message.api,
        "created_at": iso_time(message.created_at),
        "finished_at": iso_time(message.finished_at),
        "ttft": message.ttft,
        "tokens_per_second": message.tokens_per_second,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "tokens_exact": message.tokens_exact,
        "elapsed": message.elapsed,
        "stop_reason": message.stop_reason,
        "error": message.error,
        "superseded": message.superseded,
        "reasoning": message.reasoning,
        "parent_id": message.parent_id,
        "sibling_index": message.sibling_index,
        "sibling_count": message.sibling_count,
        "attachments": [dict(meta) for meta in message.attachments],
        # An answer's tool calls in order, each with its result and where it sits in `content`.
        "tools": [value.to_json() for _kind, value in message.segments if not isinstance(value, str)] if message.tool_parts else [],
    }


def transcript_json(transcript: Transcript, links: Optional[Dict[str, str]] = None, link_key: str = "file") -> Dict[str, Any]:
    """`links` (see `to_markdown`): each attachment gets its link under `link_key`."""
    data = conversation_json(transcript.info)
    data["current_leaf_id"] = transcript.info.current_leaf_id
    data["messages"] = [message_json(m) for m in transcript.messages]
    if links:
        for message in data["messages"]:
            for meta in message["attachments"]:
                if meta.get("sha256") in links:
                    meta[link_key] = links[meta["sha256"]]
    return data


def hit_json(hit: SearchHit) -> Dict[str, Any]:
    return {
        "conversation_id": hit.conversation_id,
        "title": hit.title,
        "message_id": hit.message_id,
        "role": hit.role if hit.message_id is not None else "title",
        "model": hit.model,
        "snippet": hit.snippet,
        "created_at": iso_time(hit.created_at),
    }
