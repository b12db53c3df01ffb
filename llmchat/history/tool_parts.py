"""An answer's tool calls and results, read back from the store (message_parts of kind
"tool_call" and "tool_result", written by `AnswerWriter.add_part`): in order with the answer's
text for a face to show (`segments`), and as the messages the model is sent again
(`answer_messages`: each API encodes that sequence its own way).

A stored part knows where it sits in the answer's text (`offset`, in characters, in its meta),
so the order survives the text being joined into one row when the answer ends. A call's result
is matched to it by the call's id (by the tool's name, in order, when the API gave no ids).

Imported by the store's readers only (plain data; no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"
TOOL_KINDS = (TOOL_CALL, TOOL_RESULT)
# What the model is told for a call whose result was never stored (the turn was cancelled or
# the process ended before the tool returned): every API wants a result for every call.
NO_RESULT = "no result: the call did not finish (the turn was cancelled or interrupted)"


@dataclass(frozen=True)
class ToolPart:
    """One stored part, as it is in the database: its kind, text and meta (JSON object)."""

    kind: str  # "tool_call" | "tool_result"
    text: str  # a call's arguments (JSON text), or a result
    meta: Dict[str, Any]
    row_id: int = 0  # its message_parts row: the order parts were stored in

    @property
    def offset(self) -> int:
        """How many characters of the answer's text came before it."""
        value = self.meta.get("offset")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


@dataclass
class ToolItem:
    """A tool call and, once stored, its result."""

    call_id: str  # the API's id for the call ("" when the API gave none: Ollama)
    name: str
    arguments: str  # JSON text, as the model wrote it
    server: Optional[str] = None  # the MCP server that has the tool
    result: Optional[str] = None  # None: no result was stored
    is_error: bool = False
    status: Optional[str] = None  # as the engine stored it ("done", "error", "denied", ...)
    duration: Optional[float] = None  # seconds the tool ran
    row_id: int = 0
    offset: int = 0  # where the call sits in the answer's text (characters before it)

    @property
    def answered(self) -> bool:
        return self.result is not None

    def state(self) -> str:
        """The status to show: the result's, else "error"/"done" from it, else "no result"."""
        if self.status:
            return self.status
        if self.result is None:
            return "no result"
        return "error" if self.is_error else "done"

    def to_json(self) -> Dict[str, Any]:
        """The item as `history show --json` and export write it."""
        return {
            "type": "tool",
            "id": self.call_id,
            "name": self.name,
            "server": self.server,
            "arguments": self.arguments,
            "result": self.result,
            "is_error": self.is_error,
            "status": self.state(),
            "duration": self.duration,
            "offset": self.offset,
        }


Segment = Tuple[str, Union[str, ToolItem]]  # ("text", text) or ("tool", ToolItem)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _events(content: str, parts: Sequence[ToolPart]) -> List[Tuple[str, Union[str, ToolPart]]]:
    """The answer's text cut where each part sits, and the parts, in order."""
    out: List[Tuple[str, Union[str, ToolPart]]] = []
    at = 0
    for part in parts:
        if part.kind not in TOOL_KINDS:
            continue
        cut = min(max(part.offset, at), len(content))  # never back, never past the end
        if cut > at:
            out.append(("text", content[at:cut]))
            at = cut
        out.append((part.kind, part))
    if at < len(content):
        out.append(("text", content[at:]))
    return out


def _item(part: ToolPart) -> ToolItem:
    meta = part.meta
    server = meta.get("server")
    return ToolItem(
        _text(meta.get("id")), _text(meta.get("name")), part.text, server if isinstance(server, str) else None, row_id=part.row_id, offset=part.offset
    )


def _match(waiting: List[ToolItem], part: ToolPart) -> Optional[ToolItem]:
    """The call a result answers (and no longer waiting): by id, else by name in call order."""
    call_id, name = _text(part.meta.get("call_id")), _text(part.meta.get("name"))
    found = None
    if call_id:
        found = next((item for item in waiting if item.call_id == call_id), None)
    if found is None:
        found = next((item for item in waiting if item.name == name and not (call_id and item.call_id)), None)
    if found is not None:
        waiting.remove(found)
    return found


def _answer(item: ToolItem, part: ToolPart) -> None:
    meta = part.meta
    item.result = part.text
    item.is_error = meta.get("is_error") is True
    status = meta.get("status")
    item.status = status if isinstance(status, str) and status else None
    item.duration = _number(meta.get("duration"))


def read(content: str, parts: Sequence[ToolPart]) -> Tuple[List[Segment], List[Tuple[str, List[ToolItem]]]]:
    """(segments, steps): the answer in order, each call where the model made it with its
    result; and the answer in model steps, each the text written and the calls made before
    their results came (the last step: the text after the last results, no calls)."""
    segments: List[Segment] = []
    steps: List[Tuple[str, List[ToolItem]]] = []
    waiting: List[ToolItem] = []
    text: List[str] = []
    calls: List[ToolItem] = []
    answered = False

    def close() -> None:
        nonlocal text, calls, answered
        if text or calls:
            steps.append(("".join(text), calls))
        text, calls, answered = [], [], False

    for kind, value in _events(content, parts):
        if isinstance(value, str):
            if segments and segments[-1][0] == "text":
                segments[-1] = ("text", str(segments[-1][1]) + value)
            else:
                segments.append(("text", value))
            if answered:
                close()
            text.append(value)
        elif kind == TOOL_CALL:
            item = _item(value)
            segments.append(("tool", item))
            if answered:
                close()
            calls.append(item)
            waiting.append(item)
        else:
            matched = _match(waiting, value)
            if matched is None:  # a result for no stored call: shown, never sent
                orphan = ToolItem(_text(value.meta.get("call_id")), _text(value.meta.get("name")), "", row_id=value.row_id, offset=value.offset)
                _answer(orphan, value)
                segments.append(("tool", orphan))
                continue
            _answer(matched, value)
            answered = answered or any(call is matched for call in calls)
    close()
    return segments, steps


def segments(content: str, parts: Sequence[ToolPart]) -> List[Segment]:
    """The answer in order: ("text", text) and ("tool", ToolItem) -- a call where the model
    made it, with its result. Only ("text", content) when there are no tool parts."""
    if not parts:
        return [("text", content)] if content else []
    return read(content, parts)[0]


def answer_messages(content: str, parts: Sequence[ToolPart]) -> List[Any]:
    """The answer as the model is sent it again: for each step, the assistant's message (its
    text and `tool_calls`) and a "tool" message with the step's results in the calls' order
    (a call with no stored result gets an error result, NO_RESULT: every API wants one), then
    the answer's last text. Just the assistant's text when there are no tool parts."""
    from llmchat.conversation import Message, ToolResult
    from llmchat.stream.events import ToolCall

    if not parts:
        return [Message("assistant", content)] if content else []
    out: List[Any] = []
    for text, calls in read(content, parts)[1]:
        if not calls:
            if text:
                out.append(Message("assistant", text))
            continue
        # An id for a call the API gave none (Ollama), so that an API that needs one (continued
        # with another API) can match the result; unique in the database (the part's row).
        ids = [item.call_id or f"call_llmchat_{item.row_id}" for item in calls]
        out.append(Message("assistant", text, tool_calls=tuple(ToolCall(i, item.name, item.arguments) for i, item in zip(ids, calls))))
        results = tuple(
            ToolResult(i, item.name, item.result, item.is_error) if item.result is not None else ToolResult(i, item.name, NO_RESULT, True)
            for i, item in zip(ids, calls)
        )
        out.append(Message("tool", "", tool_results=results))
    return out


def parts_from_rows(rows: Sequence[Tuple[int, str, str, Optional[str]]]) -> List[ToolPart]:
    """ToolParts from (row id, kind, content, meta JSON) rows, in the order given."""
    import json

    out = []
    for row_id, kind, text, meta_text in rows:
        try:
            meta = json.loads(meta_text or "{}")
        except ValueError:
            meta = {}
        out.append(ToolPart(kind, text, meta if isinstance(meta, dict) else {}, row_id))
    return out
