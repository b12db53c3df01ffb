"""llmchat's Python API: `llmchat.ask(prompt, profile=...)`, an async iterator of the stream
events, run by the same engine as the faces (nothing stored in the history)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Optional, Sequence

from llmchat.conversation import Message
from llmchat.engine.core import Engine, Observer
from llmchat.engine.turns import DONE, ERROR, Turn
from llmchat.stream.events import Notice, ReasoningDelta, StreamEvent, TextDelta
from llmchat.stream.metrics import Metrics

_END = object()


class _Queued(Observer):
    """Hands the turn's events to the iterator as they come."""

    def __init__(self, queue: "asyncio.Queue[Any]") -> None:
        self.put = queue.put_nowait

    def text(self, text: str) -> None:
        self.put(TextDelta(text))

    def reasoning(self, text: str) -> None:
        self.put(ReasoningDelta(text))

    def notice(self, turn: Turn, message: str) -> None:
        self.put(Notice(message))


def settings_for(profile: Optional[str] = None, *, model: Optional[str] = None, env: Any = None) -> Any:
    """The `Settings` llmchat would use with `--profile PROFILE [--model MODEL]`: the config
    file, the environment (LLMCHAT_*, the API keys), then the provider's defaults; the offline
    demo model when nothing is configured; no MCP servers (the caller gets the model's
    `ToolCall`s and runs nothing). Raises `llmchat.config.ConfigError`."""
    from llmchat.config import Overrides, known_secrets, load_config, resolve

    config = load_config()
    env = os.environ if env is None else env
    settings = resolve(Overrides(profile=profile, model=model), env, config)
    settings.history = False
    settings.mcp_servers = ()  # no tools run here: a call the model asks for is a ToolCall event
    settings.secrets = known_secrets(env, config, settings)
    return settings


async def ask(
    prompt: str,
    *,
    profile: Optional[str] = None,
    model: Optional[str] = None,
    settings: Any = None,
    context: Sequence[Message] = (),
) -> AsyncIterator[StreamEvent]:
    """Ask `prompt` and yield the answer's events as they arrive: `TextDelta`s (the answer),
    `ReasoningDelta`s, `Notice`s, any `ToolCall`s, then one `Finish` or `StreamError` (a failure
    is an event, not an exception). `profile`/`model` pick the settings as the command line
    does (see `settings_for`); or pass `settings` (a `llmchat.config.Settings`). `context`:
    earlier `Message`s sent before the prompt. Breaking out of the loop cancels the request."""
    if settings is None:
        settings = settings_for(profile, model=model)
    engine = Engine(settings)
    queue: "asyncio.Queue[Any]" = asyncio.Queue()
    turn = Turn(prompt, Metrics())

    async def run() -> None:
        try:
            await engine.start()
            await engine.run(turn, context, _Queued(queue))
        finally:
            await engine.aclose()
            queue.put_nowait(_END)

    task = asyncio.ensure_future(run())
    try:
        while True:
            event = await queue.get()
            if event is _END:
                break
            yield event
        await task  # a bug in the engine is raised here
        for call in turn.tool_calls:
            yield call
        yield last_event(turn)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def last_event(turn: Turn) -> StreamEvent:
    """How the turn ended, as the event a stream ends with."""
    if turn.state == DONE and turn.finish is not None:
        return turn.finish
    if turn.state == ERROR and turn.error is not None:
        return turn.error
    from llmchat.stream.events import StreamError

    return StreamError("the answer was cancelled", kind="cancelled")
