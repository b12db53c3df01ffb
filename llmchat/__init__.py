"""llmchat: a terminal chat client for large language models."""

__version__ = "0.1.0"
