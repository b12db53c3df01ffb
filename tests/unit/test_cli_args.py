"""The Typer-free fast path parses a plain command line exactly as click does, and hands
everything else to click."""

from __future__ import annotations

import pytest

from llmchat.cli import CHAT_OPTIONS, _chat_command, parse_chat_args

AGREE = [
    [],
    ["hello", "world"],
    ["--raw", "hello"],
    ["hello", "--raw", "world"],
    ["-m", "gpt-4o", "--api", "openai-chat", "what", "is", "up"],
    ["--api=anthropic", "--model=claude", "hi"],
    ["--temperature", "0.5", "--max-tokens", "12", "--timeout", "3", "--connect-timeout", "1.5", "q"],
    ["--temperature", "-1", "q"],  # a value may start with a dash
    ["-s", "--raw", "q"],  # ... even one that looks like an option
    ["-m", "a", "-m", "b", "q"],  # the last one wins
    ["-", "--stats"],
    ["--", "--raw", "-m"],  # after --, words
    ["-p", "work", "--reasoning", "--stats", "--raw", "--base-url", "http://127.0.0.1:1/v1", "x"],
    ["--max-tokens", "1_000", "q"],
    ["--model="],
    ["-a", "x.png", "--attach=y.pdf", "q", "-a", "-"],  # a list option collects each
]

TO_CLICK = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["--bogus", "q"],
    ["-mgpt", "q"],  # attached short value: click's rules
    ["--temperature", "warm", "q"],
    ["--max-tokens", "1.5", "q"],
    ["--raw=yes", "q"],
    ["q", "--model"],  # missing value
    ["-5"],
]


def click_params(args: list) -> dict:
    command = _chat_command()
    ctx = command.make_context("llmchat", list(args))
    params = dict(ctx.params)
    params.pop("version")
    params["prompt"] = list(params["prompt"] or [])
    return params


@pytest.mark.parametrize("args", AGREE, ids=" ".join)
def test_fast_path_parses_like_click(args: list) -> None:
    fast = parse_chat_args(args)
    assert fast is not None
    assert fast == click_params(args)


@pytest.mark.parametrize("args", TO_CLICK, ids=" ".join)
def test_anything_else_goes_to_click(args: list) -> None:
    assert parse_chat_args(args) is None


def test_every_option_is_known_to_both_parsers() -> None:
    command = _chat_command()
    click_flags = {flag for param in command.params for flag in param.opts}
    for _, flags, _, _ in CHAT_OPTIONS:
        assert set(flags) <= click_flags
