"""Providers: one module per wire format, chosen by name with `--api`."""

from __future__ import annotations

from typing import Dict, Type

from llmchat.providers.anthropic import Anthropic
from llmchat.providers.base import Provider
from llmchat.providers.ollama import Ollama
from llmchat.providers.openai_chat import OpenAIChat
from llmchat.providers.openai_responses import OpenAIResponses

PROVIDERS: Dict[str, Type[Provider]] = {
    cls.name: cls for cls in (OpenAIChat, OpenAIResponses, Anthropic, Ollama)
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        choices = ", ".join(PROVIDERS)
        raise ValueError(f"unknown API {name!r} (choose from: {choices})") from None
