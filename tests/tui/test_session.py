"""ChatSession (the engine's Conversation): which turns go back to the model, and the request built from Settings."""

from __future__ import annotations

from llmchat.config import Settings
from llmchat.conversation import Message
from llmchat.engine import build_request
from llmchat.stream.events import Finish, StreamError
from llmchat.stream.metrics import Metrics
from llmchat.tui.session import CANCELLED, DONE, ERROR, ChatSession

SETTINGS = Settings(api="anthropic", model="claude", base_url="http://x", system="sys", temperature=0.5, max_tokens=9, api_key="sk-secret-123")


def session() -> ChatSession:
    return ChatSession()


def turn(s: ChatSession, prompt: str, answer: str, state: str):
    t = s.begin(prompt, Metrics())
    t.parts.extend(answer)
    t.state = state
    if state == DONE:
        t.finish = Finish("stop")
    elif state == ERROR:
        t.error = StreamError("boom")
    return t


def test_accepted_turns_go_back_and_empty_ones_do_not():
    s = session()
    turn(s, "a", "A", DONE)
    turn(s, "b", "", ERROR)  # never answered
    turn(s, "c", "C-part", CANCELLED)
    turn(s, "d", "", CANCELLED)  # cancelled before the first token
    turn(s, "e", "E-part", ERROR)
    s.begin("f", Metrics())
    assert s.messages() == [
        Message("user", "a"),
        Message("assistant", "A"),
        Message("user", "c"),
        Message("assistant", "C-part"),
        Message("user", "e"),
        Message("assistant", "E-part"),
        Message("user", "f"),
    ]


def test_retry_replaces_the_last_turn():
    s = session()
    turn(s, "a", "A", DONE)
    failed = turn(s, "b", "B-part", ERROR)
    again = s.retry(Metrics())
    assert again is not None and again.prompt == "b" and failed.superseded
    assert s.last is again
    assert s.messages() == [Message("user", "a"), Message("assistant", "A"), Message("user", "b")]


def test_no_retry_while_a_turn_is_open_or_before_any():
    s = session()
    assert s.retry(Metrics()) is None
    s.begin("a", Metrics())
    assert s.retry(Metrics()) is None


def test_request_carries_the_settings():
    s = session()
    s.begin("hi", Metrics())
    request = build_request(SETTINGS, "http://base", s.messages())
    assert (request.model, request.base_url, request.system, request.temperature, request.max_tokens, request.api_key) == (
        "claude",
        "http://base",
        "sys",
        0.5,
        9,
        "sk-secret-123",
    )
    assert request.messages == [Message("user", "hi")]
    assert "sk-secret-123" not in repr(request)
