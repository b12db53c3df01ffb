"""The TUI's widgets: transcript entries, the prompt and the status bar."""

from llmchat.tui.widgets.messages import AssistantMessage, UserMessage, Welcome
from llmchat.tui.widgets.prompt import ChatPrompt
from llmchat.tui.widgets.status import StatusBar
from llmchat.tui.widgets.transcript import Transcript

__all__ = ["AssistantMessage", "ChatPrompt", "StatusBar", "Transcript", "UserMessage", "Welcome"]
