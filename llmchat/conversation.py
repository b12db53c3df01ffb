"""Messages and chat requests: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

if TYPE_CHECKING:  # the module is imported only when a message has attachments
    from llmchat.attachments import Attachment
if TYPE_CHECKING:  # tool calls on a message are the stream's own ToolCall events
    from llmchat.stream.events import ToolCall


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "user" | "assistant" | "system"
    content: str
    # Files, images and PDFs the message carries (a user message's); each API encodes them.
    attachments: Tuple[Attachment, ...] = ()
    # Tools. An assistant message's `tool_calls` are the calls the model asked for (the stream's
    # ToolCall events, arguments as JSON text), its `content` any text it wrote with them. A
    # message with role "tool" carries `tool_results`: the results of one step's calls, in the
    # order of the calls (its `content` is not sent). Each API encodes both its own way.
    tool_calls: Tuple[ToolCall, ...] = ()
    tool_results: Tuple[ToolResult, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments' JSON schema (an
    object schema; None: no arguments)."""

    name: str
    description: str = ""
    parameters: Optional[Any] = None

    def schema(self) -> Any:
        """The arguments' JSON schema as sent: an empty object schema when there is none."""
        return self.parameters if self.parameters is not None else {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call returned: `call_id` is the call's id (ToolCall.id), `name` the tool's
    name, `content` the result as text; `is_error` when the tool failed (or was denied), so the
    model is told so."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


def tool_results_message(*results: ToolResult) -> Message:
    """The message that sends one step's tool results back (role "tool")."""
    return Message("tool", "", tool_results=tuple(results))


@dataclass(slots=True)
class ChatRequest:
    """Everything a provider needs to build one streaming request."""

    model: str
    messages: List[Message]
    base_url: str
    system: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    api_key: Optional[str] = field(default=None, repr=False)  # never shown in a repr or log
    api_key_env: Optional[str] = None  # the variable the key comes from: named when a 401 came without one
    tools: Tuple[ToolSpec, ...] = ()  # the tools the model may call; none: no tools are sent
    # "auto" (the API's default), "none", "required" (some tool), or a tool's name (that tool);
    # None: not sent. Ollama has no such setting: it is not sent there.
    tool_choice: Optional[str] = None


def without_tool_steps(messages: List[Message]) -> List[Message]:
    """`messages` for a request that sends no tools: each answer's tool calls and results
    written into its text (`[tool name(arguments) -> result]`), the assistant's messages of one
    answer joined into one. An API refuses tool calls and results in a request that declares
    no tools (Anthropic: "must define tools"), as a conversation continued without them has."""
    if not any(m.tool_calls or m.role == "tool" for m in messages):
        return messages
    out: List[Message] = []
    for m in messages:
        if m.role == "tool":
            said = "\n".join(f"[{r.name} {'failed' if r.is_error else 'returned'}: {r.content}]" for r in m.tool_results)
        elif m.tool_calls:
            calls = "\n".join(f"[called {c.name}({c.arguments})]" for c in m.tool_calls)
            said = f"{m.content}\n\n{calls}" if m.content else calls
        elif m.role == "assistant":
            said = m.content
        else:
            out.append(m)
            continue
        previous = out[-1] if out else None
        if previous is not None and previous.role == "assistant":
            out[-1] = Message("assistant", f"{previous.content}\n\n{said}" if previous.content and said else previous.content or said)
        else:
            out.append(Message("assistant", said))
    return out
