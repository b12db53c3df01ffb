"""Helpers shared by the provider modules: headers, messages, JSON payloads.

The interface itself (Provider, StreamDecoder, HttpRequest, ProtocolError, error_message) is
`llmchat.stream.protocol`, the contract the client and the providers share.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

from llmchat.conversation import ChatRequest, Message, ToolResult
from llmchat.stream.protocol import ProtocolError


def endpoint(base_url: str, path: str) -> str:
    """The API's endpoint: `path` added to the base URL's path. A query string stays after it
    (Azure OpenAI requires `?api-version=...`); a fragment is never sent."""
    base, _, _ = base_url.partition("#")
    base, mark, query = base.partition("?")
    return base.rstrip("/") + path + mark + query


def bearer_headers(accept: str, api_key: Optional[str]) -> Dict[str, str]:
    headers = {"Accept": accept}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in JSONDecoder.__init__, not in typeshed


def load_json(data: str) -> Any:
    """Parse one event's JSON payload; a malformed payload is a protocol error, not a crash.

    The C scanner is called directly: json.loads adds two regex whitespace checks and three
    layers of calls per token, about half its cost on a small chunk.
    """
    try:
        value, end = _scan_once(data, 0)
        if end == len(data):
            return value
    except (StopIteration, ValueError):
        pass
    except RecursionError:
        raise ProtocolError(_TOO_DEEP) from None
    try:
        return json.loads(data)  # surrounding white space, or an error message to quote
    except RecursionError:
        raise ProtocolError(_TOO_DEEP) from None
    except ValueError:
        shown = data if len(data) <= 80 else data[:77] + "..."
        raise ProtocolError(f"the server sent data that is not JSON: {shown!r}") from None


_TOO_DEEP = "the server sent JSON nested too deeply to read"


def json_or_text(data: str) -> Any:
    """An error payload: JSON when it parses, else the text itself."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return data


# --- values of the wrong type -------------------------------------------------------------
# Servers put lists, objects, numbers and nulls where the API has a string or a count. None of
# these may crash a face: text is read from what can hold text, the rest is left out.


def as_text(value: Any, _depth: int = 0) -> str:
    """Text from a value where the API has a string: a string itself; a list of content parts
    (`[{"type": "text", "text": "x"}]`) or strings, joined; a part's `text`; else ""."""
    if value.__class__ is str:
        return value
    if _depth > 4:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return "".join(as_text(part, _depth + 1) for part in value)
    if isinstance(value, dict):
        for key in ("text", "content", "value"):
            if key in value:
                return as_text(value[key], _depth + 1)
    return ""


_MAX_COUNT = 10**15  # more tokens than any model will see; larger is a broken server


def as_count(value: Any) -> Optional[int]:
    """A token count the server reported, or None when it is not a sane whole number."""
    if value.__class__ is int:
        return value if 0 <= value <= _MAX_COUNT else None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= _MAX_COUNT:
        return int(value)
    return None


def as_rate(value: Any) -> Optional[float]:
    """A tokens-per-second figure the server measured, or None when it is not a sane one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 10**7:
        return float(value)
    return None


def as_word(value: Any) -> Optional[str]:
    """A short identifier (a stop reason, a tool name or id), or None when it is not one."""
    if isinstance(value, str) and value and len(value) <= 200:
        return value
    return None


def as_arguments(value: Any) -> str:
    """A tool call's arguments as JSON text: a string as sent, an object serialised."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return ""


def chat_messages(
    request: ChatRequest,
    encode: Optional[Callable[[Message], dict]] = None,
    tools: Optional[Callable[[Message], List[dict]]] = None,
) -> list:
    """The conversation as role/content dicts, the system prompt first when there is one.

    A user message with attachments is `encode(message)`, the API's own shape; without an
    encoder its text attachments are inlined and the rest left to the caller. A message with
    tool calls or tool results is `tools(message)`, the API's messages for it (a tool message
    without an encoder is left out).
    """
    messages: list = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.tool_calls or m.tool_results or m.role == "tool":
            if tools is not None:
                messages.extend(tools(m))
            elif m.role != "tool":
                messages.append({"role": m.role, "content": m.content})
        elif not m.attachments or m.role != "user":
            messages.append({"role": m.role, "content": m.content})
        else:
            messages.append(encode(m) if encode is not None else {"role": m.role, "content": user_text(m)})
    return messages


# --- tools ----------------------------------------------------------------------------------


def result_text(result: ToolResult) -> str:
    """A tool result's text for an API without an error flag (all but Anthropic's): a failed
    call's text is marked, so the model knows the call failed."""
    return f"Error: {result.content}" if result.is_error else result.content


def arguments_object(arguments: str) -> dict:
    """A tool call's arguments (JSON text) as the object Anthropic and Ollama send: {} when the
    text is empty or not a JSON object (a model's broken JSON is not sent back as such)."""
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


# --- attachments ----------------------------------------------------------------------------
# llmchat.attachments is imported here, inside the functions, only for a message that has
# attachments: `--raw` start-up imports nothing new (bench_stream counts the modules).


def user_text(message: Message) -> str:
    """A user message's text with its text attachments inlined before it (fenced blocks)."""
    if not message.attachments:
        return message.content
    from llmchat.attachments import with_inlined_text

    return with_inlined_text(message.content, message.attachments)


def media(message: Message) -> list:
    """A message's images and PDFs, the attachments each API sends as parts of their own."""
    from llmchat.attachments import media as only_media

    return only_media(message.attachments)


def unsupported(api: str, attachment: Any) -> Exception:
    """The AttachmentError for an attachment `api` cannot carry (the engine checks first, with
    llmchat.attachments.check_limits; this is the providers' own guard)."""
    from llmchat.attachments import unsupported as error

    return error(api, attachment)


def names_in(data: Any, list_key: str, name_key: str, what: str) -> List[str]:
    """The `name_key` of every object in `data[list_key]` (a model list's JSON); ProtocolError
    when the JSON is not of that shape, so a wrong URL's answer is not taken for an empty list."""
    items = data.get(list_key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ProtocolError(f"the server's answer is not {what} (no {list_key!r} list)")
    return [item[name_key] for item in items if isinstance(item, dict) and isinstance(item.get(name_key), str)]
