"""The fake server's tool calling: a scripted tool-calling turn, and each API's tool shapes in a
request checked as the real API checks them.

The server option `tools=add:{"a":1,"b":2};echo:{"text":"hi"}` scripts the model: while the
request carries no tool results after its last prompt, the answer is those calls (several: in
parallel), and nothing else; once it carries results, the answer is a text that quotes them
(`Tool add returned 3. Tool echo returned hi.`), so a whole tool loop runs against it.

A request whose tool shapes the API would refuse (a result for a call id it never made, a call
left without its result, arguments of the wrong type, a tool without a name) gets the API's
own 400, in its words where they are known.

Imported only for a request that has tools or tool messages, or when tools are scripted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from llmchat.demo.inputs import Invalid, _json_type


@dataclass(frozen=True)
class Result:
    """A tool result the request carried."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Call:
    """A call the scripted model makes: its id (as the API spells them), name and arguments."""

    id: str
    name: str
    arguments: str  # JSON text


@dataclass
class Read:
    tools: List[str]  # the names of the tools the request declared
    results: List[Result]  # the tool results after the last prompt (none: the model should call)
    steps: int  # how many answers with tool calls the conversation already holds


def parse(option: str) -> List[Tuple[str, str]]:
    """`name:{json};name:{json}` as [(name, arguments JSON text)]; ValueError when malformed.
    A name alone (`now`) calls that tool with no arguments (`{}`)."""
    calls: List[Tuple[str, str]] = []
    decoder = json.JSONDecoder()
    rest = option.strip()
    while rest:
        marks = [i for i in (rest.find(":"), rest.find(";")) if i >= 0]
        if not marks:
            calls.append((_name(rest), "{}"))
            break
        at = min(marks)
        name = _name(rest[:at])
        if rest[at] == ";":
            calls.append((name, "{}"))
            rest = rest[at + 1 :].strip()
            continue
        tail = rest[at + 1 :].lstrip()
        try:
            value, end = decoder.raw_decode(tail)
        except ValueError:
            raise ValueError(f"tools: the arguments of {name!r} are not JSON") from None
        if not isinstance(value, dict):
            raise ValueError(f"tools: the arguments of {name!r} are not a JSON object")
        calls.append((name, json.dumps(value)))
        rest = tail[end:].strip()
        if rest and not rest.startswith(";"):
            raise ValueError(f"tools: expected ';' after the arguments of {name!r}")
        rest = rest[1:].strip()
    return calls


def _name(text: str) -> str:
    name = text.strip()
    if not name:
        raise ValueError("tools: a call without a tool name")
    return name


def calls_for(api: str, script: List[Tuple[str, str]], step: int) -> List[Call]:
    """The scripted calls with ids for this step: `call_S_K` (Anthropic: `toolu_S_K`; Ollama,
    whose calls carry no ids: "")."""
    prefix = "toolu" if api == "anthropic" else "call"
    return [Call("" if api == "ollama" else f"{prefix}_{step}_{k}", name, arguments) for k, (name, arguments) in enumerate(script)]


def quote(results: List[Result]) -> str:
    """The final answer: what each tool returned, in the order the results came."""
    said = []
    for r in results:
        text = " ".join(r.content.split())
        said.append(f"Tool {r.name} failed: {text}." if r.is_error else f"Tool {r.name} returned {text}.")
    return " ".join(said)


def read(api: str, body: dict) -> Read:
    """The request's tools and tool results; Invalid (the API's 400) for a shape it refuses."""
    return _READERS[api](body)


# --- OpenAI Chat Completions ------------------------------------------------------------------


def _missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, value: Any, expected: str = "a string") -> Invalid:
    return Invalid(f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.", param, "invalid_type")


def _chat_tools(body: dict) -> List[str]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _wrong_type("tools", tools, "an array")
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _wrong_type(f"tools[{i}]", tool, "an object")
        if tool.get("type") != "function":
            raise Invalid(f"Invalid value: '{tool.get('type')}'. Supported values are: 'function' and 'custom'.", f"tools[{i}].type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _missing(f"tools[{i}].function")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise _missing(f"tools[{i}].function.name")
        names.append(function["name"])
    return names


def _chat(body: dict) -> Read:
    tools = _chat_tools(body)
    pending: Dict[str, str] = {}  # call id -> tool name, awaiting its result
    names: Dict[str, str] = {}
    results: List[Result] = []
    steps = 0
    for i, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise _missing(f"messages[{i}].tool_call_id")
            if call_id not in pending:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                    None,
                )
            content = message.get("content")
            if not isinstance(content, (str, list)):
                raise _wrong_type(f"messages[{i}].content", content)
            results.append(Result(call_id, pending.pop(call_id), _text(content)))
            continue
        if pending:
            raise Invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
                f"The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"messages.[{i}].role",
                None,
            )
        if role == "user":
            results = []
        calls = message.get("tool_calls")
        if role == "assistant" and calls is not None:
            if not isinstance(calls, list):
                raise _wrong_type(f"messages[{i}].tool_calls", calls, "an array")
            steps += 1
            for j, call in enumerate(calls):
                param = f"messages[{i}].tool_calls[{j}]"
                if not isinstance(call, dict):
                    raise _wrong_type(param, call, "an object")
                if not isinstance(call.get("id"), str):
                    raise _missing(f"{param}.id")
                function = call.get("function")
                if call.get("type") != "function" or not isinstance(function, dict):
                    raise _missing(f"{param}.function" if call.get("type") == "function" else f"{param}.type")
                if not isinstance(function.get("name"), str):
                    raise _missing(f"{param}.function.name")
                if not isinstance(function.get("arguments"), str):
                    raise _wrong_type(f"{param}.function.arguments", function.get("arguments"))
                pending[call["id"]] = names[call["id"]] = function["name"]
    if pending:
        raise Invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
            f"The following tool_call_ids did not have response messages: {', '.join(pending)}",
            "messages",
            None,
        )
    return Read(tools, results, steps)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


# --- OpenAI Responses -------------------------------------------------------------------------


def _responses(body: dict) -> Read:
    tools = body.get("tools")
    names_declared: List[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise _wrong_type("tools", tools, "an array")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _wrong_type(f"tools[{i}]", tool, "an object")
            if tool.get("type") == "function":
                if not isinstance(tool.get("name"), str) or not tool["name"]:
                    raise _missing(f"tools[{i}].name")
                if "function" in tool:
                    raise Invalid(f"Unknown parameter: 'tools[{i}].function'.", f"tools[{i}].function", "unknown_parameter")
                names_declared.append(tool["name"])
    items = body.get("input")
    calls: Dict[str, str] = {}
    results: List[Result] = []
    steps = 0
    previous_was_call = False
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _missing(f"input[{i}].{key}") if key not in item else _wrong_type(f"input[{i}].{key}", item[key])
            if not previous_was_call:
                steps += 1
            previous_was_call = True
            calls[item["call_id"]] = item["name"]
            continue
        previous_was_call = False
        if kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _missing(f"input[{i}].call_id")
            if call_id not in calls:
                raise Invalid(f"No tool call found for function call output with call_id {call_id}.", "input", None)
            output = item.get("output")
            if not isinstance(output, (str, list)):
                raise _wrong_type(f"input[{i}].output", output)
            results.append(Result(call_id, calls[call_id], _text(output)))
        elif item.get("role") == "user":
            results = []
    return Read(names_declared, results, steps)


# --- Anthropic Messages -----------------------------------------------------------------------


def _anthropic(body: dict) -> Read:
    tools = body.get("tools")
    declared: List[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise Invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise Invalid(f"tools.{i}: Input should be a valid dictionary or object to extract fields from")
            if "type" in tool and tool["type"] not in ("custom", None):
                continue  # a server tool (web search, ...): not the demo's business
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise Invalid(f"tools.{i}.custom.name: Field required")
            if not isinstance(tool.get("input_schema"), dict):
                raise Invalid(f"tools.{i}.custom.input_schema: Field required")
            declared.append(tool["name"])
    results: List[Result] = []
    pending: Dict[str, str] = {}  # the previous message's tool_use ids -> names
    steps = 0
    for i, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        role = message.get("role")
        if role == "user":
            answered: Dict[str, str] = {}
            text = isinstance(content, str) and bool(content)
            found: List[Result] = []
            for j, block in enumerate(blocks):
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    use_id = block.get("tool_use_id")
                    if not isinstance(use_id, str):
                        raise Invalid(f"messages.{i}.content.{j}.tool_result.tool_use_id: Field required")
                    if use_id not in pending:
                        raise Invalid(
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. "
                            "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )
                    is_error = block.get("is_error", False)
                    if not isinstance(is_error, bool):
                        raise Invalid(f"messages.{i}.content.{j}.tool_result.is_error: Input should be a valid boolean")
                    answered[use_id] = pending[use_id]
                    found.append(Result(use_id, pending[use_id], _text(block.get("content")), is_error))
                elif block.get("type") == "text" and block.get("text"):
                    text = True
            missing = [use_id for use_id in pending if use_id not in answered]
            if missing:
                raise Invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}. "
                    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                )
            results = [] if text else found
            pending = {}
        else:
            if pending:
                raise Invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(pending)}. "
                    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                )
            uses = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
            if uses:
                steps += 1
            for j, block in enumerate(blocks):
                if not isinstance(block, dict) or block.get("type") != "tool_use":
                    continue
                for key in ("id", "name"):
                    if not isinstance(block.get(key), str):
                        raise Invalid(f"messages.{i}.content.{j}.tool_use.{key}: Field required")
                if not isinstance(block.get("input"), dict):
                    raise Invalid(f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary")
                pending[block["id"]] = block["name"]
    if steps and not body.get("tools"):  # (a result without its call was refused above)
        raise Invalid("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    return Read(declared, results, steps)


# --- Ollama -----------------------------------------------------------------------------------


def _ollama(body: dict) -> Read:
    tools = body.get("tools")
    declared: List[str] = []
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise Invalid("json: cannot unmarshal tools: a tool without function.name")
        declared.append(function["name"])
    called: Dict[str, str] = {}  # name or id -> name, of the last calls
    results: List[Result] = []
    steps = 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            steps += 1
            called = {}
            calls = message["tool_calls"]
            if not isinstance(calls, list):
                raise Invalid(f"json: cannot unmarshal {_json_type(calls)} into Go struct field Message.messages.tool_calls of type []api.ToolCall")
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise Invalid("json: cannot unmarshal a tool call without function.name")
                arguments = function.get("arguments")
                if not isinstance(arguments, dict):
                    raise Invalid(
                        f"json: cannot unmarshal {_go_type(arguments)} into Go struct field "
                        "ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments"
                    )
                called[function["name"]] = function["name"]
                if isinstance(call.get("id"), str) and call["id"]:
                    called[call["id"]] = function["name"]
        elif role == "tool":
            # Ollama matches a result to its call by tool_name (and a newer server by
            # tool_call_id); it lets an unmatched one through to the model. The demo refuses it,
            # so that a test meets the mistake.
            name = message.get("tool_name")
            call_id = message.get("tool_call_id")
            key = call_id if isinstance(call_id, str) and call_id else name
            if not isinstance(key, str) or key not in called:
                raise Invalid(f"tool result for a call that was not made: tool_name {name!r}, tool_call_id {call_id!r}")
            results.append(Result(call_id if isinstance(call_id, str) else "", called[key], _text(message.get("content"))))
        elif role == "user":
            results = []
    return Read(declared, results, steps)


_READERS = {"openai-chat": _chat, "openai-responses": _responses, "anthropic": _anthropic, "ollama": _ollama}


def _go_type(value: Any) -> str:
    return {str: "string", list: "array", bool: "bool", int: "number", float: "number"}.get(type(value), "null" if value is None else "object")


def may_have_tools(raw_body: bytes) -> bool:
    """Whether the request may hold tools or tool messages (cheap, on the raw bytes)."""
    return b'"tool' in raw_body or b'"function_call' in raw_body
