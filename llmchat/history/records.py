"""What reading the history returns: a conversation's summary, a stored message with its
figures, a whole transcript. Plain data.

A module of its own, imported by the store's reading methods only: defining these dataclasses
costs ~3 ms, which a one-shot run (it only writes) should not pay before its request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:
    from llmchat.history.tool_parts import Segment, ToolPart


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    title: str
    created_at: float  # Unix time
    last_used_at: float  # Unix time of the last prompt
    profile: Optional[str]
    model: Optional[str]
    api: Optional[str]
    base_url: Optional[str]
    message_count: int  # every message stored, on every branch
    current_leaf_id: Optional[int] = None  # the last message of the current path


@dataclass(slots=True)  # not frozen: a frozen dataclass is built 2-3x slower (10,000 at a time)
class StoredMessage:
    id: int
    conversation_id: int
    role: str  # "user" | "assistant"
    content: str
    status: str  # "streaming" | "complete" | "cancelled" | "error" | "interrupted"
    model: Optional[str]
    api: Optional[str]
    created_at: float
    finished_at: Optional[float]
    ttft: Optional[float]  # seconds
    tokens_per_second: Optional[float]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    tokens_exact: Optional[bool]  # True: output_tokens came from the server; False: an estimate
    elapsed: Optional[float]  # seconds from the request to the end of the answer
    stop_reason: Optional[str]  # normalised: "stop", "length", "content_filter", ...
    error: Optional[str]
    superseded: bool = False  # not on the path read (another branch): not sent as context
    reasoning: str = ""  # the model's reasoning before this answer, as it streamed
    parent_id: Optional[int] = None  # the message it follows; None for a first prompt
    sibling_index: int = 1  # its place among the messages with the same parent (oldest 1)...
    sibling_count: int = 1  # ...of how many: a face shows `‹ 2/3 ›` when this is over 1
    children: int = 0  # how many messages follow it, on every branch
    # A prompt's attachments, as stored (the bytes are in the data dir's attachments/, by hash):
    # each a dict of name, kind, mime, size, sha256, width, height, pages.
    attachments: List[Dict[str, Any]] = field(default_factory=list)
    # An answer's tool calls and results as stored, in order (each knows where it sits in the
    # text): read them with `segments`; `content` stays the answer's text only.
    tool_parts: List[ToolPart] = field(default_factory=list)

    @property
    def segments(self) -> List[Segment]:
        """The answer in order: ("text", text) and ("tool", ToolItem) -- each tool call where
        the model made it, with its result (tool_parts.ToolItem). An answer without tool calls
        (every one stored before them) is just [("text", content)]."""
        if not self.tool_parts:
            return [("text", self.content)] if self.content else []
        from llmchat.history.tool_parts import segments

        return segments(self.content, self.tool_parts)

    def answer_messages(self) -> List[Any]:
        """The answer as `HistoryStore.context` sends it to the model (conversation.Message):
        [assistant(text)], or with tool calls, each step's assistant message with its
        `tool_calls` and a "tool" message with its results, then the last text. [] when empty."""
        from llmchat.history.tool_parts import answer_messages

        return answer_messages(self.content, self.tool_parts)


@dataclass(frozen=True)
class Transcript:
    """One conversation's messages: the path from its first prompt to `leaf_id` (its current
    leaf unless another was asked for), oldest first; or, read with `branches=True`, every
    message in the order they were written, those not on that path marked `superseded`."""

    info: ConversationInfo
    messages: List[StoredMessage]
    leaf_id: Optional[int] = None


@dataclass(frozen=True)
class SearchHit:
    """A message (or, with `message_id` None, a conversation's title) that matched a search."""

    conversation_id: int
    title: str
    message_id: Optional[int]
    role: Optional[str]  # "user" | "assistant"; None for a title
    model: Optional[str]
    snippet: str  # one line around the first match
    created_at: float  # when the message was written (a title: when the conversation was last used)
