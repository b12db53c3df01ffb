"""TUI test fixtures: a fake LLM server per test on loopback, Settings pointing at it, clocks
the tests control, and a bounded wait on a condition (no bare sleeps)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterator, List

import pytest

from llmchat.config import Settings
from llmchat.demo.server import ServerThread
from llmchat.tui.app import ChatApp

SIZE = (100, 30)

_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXIES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def srv() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture
def settings_for(srv: ServerThread) -> Callable[..., Settings]:
    """settings_for(tokens=.., tps=.., **settings fields) -> Settings against this test's server."""

    fields = {"system", "temperature", "max_tokens", "timeout", "connect_timeout", "model", "api_key"}

    def make(**options: Any) -> Settings:
        extra = {k: options.pop(k) for k in list(options) if k in fields}
        extra.setdefault("model", "m")
        return Settings(api="openai-chat", base_url=srv.base_url("openai-chat", **options), **extra)

    return make


class StepClock:
    """Advances by `step` each time it is read: deterministic figures from a deterministic
    sequence of reads."""

    def __init__(self, start: float = 1000.0, step: float = 0.05) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class ManualClock:
    """Stands still until the test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def notices_of(app: Any) -> list:
    """Record what `app` notifies, as (message, severity) pairs, from now on."""
    seen = []
    original = app.notify

    def notify(message: str, **kw: Any) -> Any:
        seen.append((message, kw.get("severity", "information")))
        return original(message, **kw)

    app.notify = notify
    return seen


@pytest.fixture
def spy_notices() -> Callable[[Any], list]:
    """spy_notices(app) -> the list of (message, severity) the app notifies from then on."""
    return notices_of


async def ask_and_wait(pilot: Any, text: str) -> None:
    """For snapshots: send `text` with the cursor not blinking, wait for the whole answer (or
    its error) and one more frame."""
    from textual.worker import WorkerFailed

    app = pilot.app
    app.prompt.cursor_blink = False
    app.prompt.load_text(text)
    await pilot.press("enter")
    while app.worker is None:
        await pilot.pause(0.01)
    try:
        await app.worker.wait()
    except WorkerFailed:
        pass
    await pilot.pause()


@pytest.fixture
def ask() -> Callable[[Any, str], Any]:
    return ask_and_wait


@pytest.fixture
def step_clock() -> StepClock:
    return StepClock()


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def until() -> Callable[..., Any]:
    """await until(pilot, condition, timeout=10): poll between frames until condition() holds."""

    async def wait(pilot: Any, condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await pilot.pause(0.01)

    return wait


@pytest.fixture
def server_saw() -> Callable[..., Any]:
    """await server_saw(srv, predicate): wait (off the event loop) for the server's records."""

    async def wait(srv: ServerThread, predicate: Callable[[list], bool], timeout: float = 10.0) -> None:
        ok = await asyncio.to_thread(srv.wait_for, predicate, timeout)
        assert ok, f"server never saw it; requests: {[(r.outcome, r.tokens_sent) for r in srv.requests]}"

    return wait


async def settle(app: ChatApp) -> None:
    """Wait for the latest answer's worker to end, however it ended, and for the history
    store's syncer to have written what it was handed (the end of the answer, say)."""
    from textual.worker import WorkerCancelled, WorkerFailed

    worker = app.worker
    if worker is not None:
        try:
            await worker.wait()
        except (WorkerCancelled, WorkerFailed):
            pass
    store = app.chat_history.store
    if store is not None:
        await asyncio.to_thread(store.wait_idle, 15.0)


@pytest.fixture
def settled() -> Callable[[ChatApp], Any]:
    return settle


async def tap_key(pilot: Any, key: str, character: Any = None) -> None:
    """Press a key without Pilot.press's wait for an idle CPU (which lasts up to two seconds
    while an answer streams): the key is handled, then the test looks at once."""
    from textual import events

    event = events.Key(key, character)
    event.set_sender(pilot.app)
    pilot.app.post_message(event)
    await pilot.pause(0.01)


async def submit_text(pilot: Any, text: str, timeout: float = 5.0) -> None:
    """Type `text` into the prompt (as a paste would), press Enter, and wait until the app has
    accepted it (a new answer's worker is running)."""
    app = pilot.app
    before = app.worker
    app.prompt.load_text(text)
    await tap_key(pilot, "enter", "\r")
    deadline = time.monotonic() + timeout
    while app.worker is before:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not accept {text!r}")
        await pilot.pause(0.01)


@pytest.fixture
def tap() -> Callable[..., Any]:
    return tap_key


@pytest.fixture
def submit() -> Callable[..., Any]:
    return submit_text


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str, int], List[Any]]:
    """`recorded(module, name, index)`: `module.name` still runs, and the list returned gets its
    `index`-th positional argument at each call (undone after the test)."""

    def record(module: Any, name: str, index: int) -> List[Any]:
        seen: List[Any] = []
        function = getattr(module, name)

        def recording(*args: Any, **kwargs: Any) -> Any:
            seen.append(args[index])
            return function(*args, **kwargs)

        monkeypatch.setattr(module, name, recording)
        return seen

    return record
