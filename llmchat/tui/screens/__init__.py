"""Screens pushed over the chat: the conversation list."""
