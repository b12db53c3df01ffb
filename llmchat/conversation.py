"""Messages and chat requests: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Tuple

if TYPE_CHECKING:  # the module is imported only when a message has attachments
    from llmchat.attachments import Attachment


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "user" | "assistant" | "system"
    content: str
    # Files, images and PDFs the message carries (a user message's); each API encodes them.
    attachments: Tuple[Attachment, ...] = ()


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
