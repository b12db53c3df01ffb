"""llmchat: a terminal chat client for large language models, and a small Python API.

    import asyncio, llmchat

    async def main():
        async for event in llmchat.ask("why is the sky blue?", profile="local"):
            if isinstance(event, llmchat.TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, llmchat.StreamError):
                print("error:", event.message)

    asyncio.run(main())

`ask` streams the answer as the same events every llmchat face reads (TextDelta, ReasoningDelta,
Notice, ToolCall, then one Finish or StreamError), with a profile from the config file or
explicit `settings` (`llmchat.settings_for(...)` gives the command line's). Importing llmchat is
cheap: the client, the config and the engine load on first use.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Finish",
    "Message",
    "Notice",
    "ReasoningDelta",
    "StreamError",
    "TextDelta",
    "ToolCall",
    "Usage",
    "ask",
    "settings_for",
]

_LAZY = {
    "ask": "llmchat.engine.api",
    "settings_for": "llmchat.engine.api",
    "Message": "llmchat.conversation",
    **{name: "llmchat.stream.events" for name in ("Finish", "Notice", "ReasoningDelta", "StreamError", "TextDelta", "ToolCall", "Usage")},
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + list(_LAZY))
