"""Providers: one module per wire format, chosen by name with `--api`.

A run speaks one API, so only that provider's module is imported (`provider_class`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Dict, Tuple, Type

if TYPE_CHECKING:
    from llmchat.stream.protocol import Provider

# name -> (module, class)
PROVIDERS: Dict[str, Tuple[str, str]] = {
    "openai-chat": ("llmchat.providers.openai_chat", "OpenAIChat"),
    "openai-responses": ("llmchat.providers.openai_responses", "OpenAIResponses"),
    "anthropic": ("llmchat.providers.anthropic", "Anthropic"),
    "ollama": ("llmchat.providers.ollama", "Ollama"),
}


def provider_class(name: str) -> "Type[Provider]":
    try:
        module, cls = PROVIDERS[name]
    except KeyError:
        choices = ", ".join(PROVIDERS)
        raise ValueError(f"unknown API {name!r} (choose from: {choices})") from None
    return getattr(import_module(module), cls)


def get_provider(name: str) -> "Provider":
    return provider_class(name)()
