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
from typing import Any, Dict, List, Optional, Protocol

from llmchat.history.records import ConversationInfo, SearchHit, StoredMessage, Transcript
from llmchat.history.store import CANCELLED, ERROR, INTERRUPTED, STREAMING
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


def to_markdown(transcript: Transcript) -> str:
    info = transcript.info
    out = [f"# {one_line(info.title)}", "", _about(info), ""]
    for message in transcript.messages:
        if message.role == "user":
            out += ["## You", "", _closed(message.content), ""]
            continue
        out += [f"## {one_line(message.model or 'Assistant')}", ""]
        if message.reasoning:
            out += [_reasoning(message.reasoning), ""]
        if message.content:
            out += [_closed(message.content), ""]
        line = metrics_line(message)
        note = status_note(message)
        out.append(f"*{_escape(line)}*" + (f"  \n*{_escape(note)}*" if note else ""))
        out.append("")
    return "\n".join(out)


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
    }


def transcript_json(transcript: Transcript) -> Dict[str, Any]:
    data = conversation_json(transcript.info)
    data["messages"] = [message_json(m) for m in transcript.messages]
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
