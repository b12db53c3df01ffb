"""The TUI's widgets: transcript entries, the prompt and the status bar."""

from llmchat.tui.widgets.messages import AssistantMessage, Transcript, UserMessage, Welcome
from llmchat.tui.widgets.prompt import ChatPrompt
from llmchat.tui.widgets.status import StatusBar

__all__ = ["AssistantMessage", "ChatPrompt", "StatusBar", "Transcript", "UserMessage", "Welcome"]
