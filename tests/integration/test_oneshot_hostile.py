"""The one-shot face (a real subprocess) meeting servers that read the APIs their own way and
hostile ones: what reaches stdout, stderr, the exit code and the history."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import TOOL_ARGUMENTS

APIS = ["openai-chat", "openai-responses", "anthropic", "ollama"]
KEY = "sk-test-echoed-back-by-a-hostile-server-42"


def expected(tokens: int, prompt: str = "hi") -> bytes:
    return "".join(answer_tokens(prompt, tokens)).encode()


def lines(err: str) -> list:
    return [line for line in err.splitlines() if line.strip()]


def stored(run) -> Dict[str, Any]:
    code, out, err = run("history", "show", "1", "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("api", APIS)
def test_a_tool_call_only_answer_says_which_tools_were_asked_for_and_that_none_ran(srv, run, api: str) -> None:
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, tool="get_weather", tokens=0), "hi")
    assert code == 0
    assert out == b""
    assert lines(err) == [f"llmchat: the model asked to call a tool, and llmchat runs no tools, so none ran: get_weather({TOOL_ARGUMENTS})"]


def test_several_choices_print_only_the_first_and_say_so_once(srv, run) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", choices=3, tokens=20), "hi")
    assert code == 0
    assert out == expected(20)
    assert lines(err) == ["llmchat: the server sent several answers (n > 1); only the first is shown"]


@pytest.mark.parametrize("raw", [[], ["--raw"]])
def test_content_as_parts_is_printed_and_stored_as_text(srv, run, raw: list) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", parts=1, tokens=20), *raw, "hi")
    assert (code, err) == (0, "")
    assert out == expected(20)
    (_, answer) = stored(run)["messages"]
    assert answer["content"] == expected(20).decode() and answer["status"] == "complete"


@pytest.mark.parametrize("api", APIS)
def test_a_whole_json_answer_is_printed_as_the_answer(srv, run, api: str) -> None:
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, whole=1, tokens=15), "--stats", "hi")
    assert code == 0
    assert out == expected(15)
    assert "15 output tokens" in err


@pytest.mark.parametrize("value", ["1e30", '"12"', "[3]"])
def test_absurd_usage_is_no_traceback_and_the_answer_is_stored(srv, run, value: str) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=6, usage_raw=value), "--stats", "hi")
    assert code == 0 and "Traceback" not in err
    assert out == expected(6)
    (_, answer) = stored(run)["messages"]
    assert answer["status"] == "complete" and answer["content"] == expected(6).decode()


@pytest.mark.parametrize("api", APIS)
def test_json_nested_too_deeply_is_one_error_line(srv, run, api: str) -> None:
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, nested=100_000, tokens=5), "hi")
    assert code == 1
    assert lines(err) == ["error: the server sent JSON nested too deeply to read"]


@pytest.mark.parametrize("api", APIS)
def test_a_long_multi_line_error_is_one_short_line_on_stderr_and_in_history(srv, run, api: str) -> None:
    url = srv.base_url(api, tokens=8, error_after=3, error_message="boom\nsecond line", error_size=5_000_000)
    code, out, err = run("--api", api, "--base-url", url, "hi")
    assert code == 1
    assert out == expected(3)  # the partial answer stays
    (line,) = lines(err)
    assert line.startswith("error: boom second line") and len(line) < 320
    (_, answer) = stored(run)["messages"]
    assert answer["status"] == "error" and len(answer["error"]) <= 300


@pytest.mark.parametrize("api", APIS)
def test_a_key_echoed_mid_stream_reaches_neither_stderr_nor_history(srv, run, env, api: str) -> None:
    key_env = "ANTHROPIC_API_KEY" if api == "anthropic" else "OPENAI_API_KEY"
    env = {**env, key_env: KEY}
    url = srv.base_url(api, tokens=6, error_after=2, error_message=f"invalid api key: {KEY}")
    code, out, err = run("--api", api, "--base-url", url, "hi", env=env)
    assert code == 1
    assert KEY not in err and "invalid api key: ***" in err
    code, exported, _ = run("history", "export", "1", "--json", env=env)
    assert code == 0 and KEY.encode() not in exported and b"invalid api key: ***" in exported


def test_stats_name_the_servers_own_rate(srv, run) -> None:
    code, out, err = run("--api", "ollama", "--base-url", srv.base_url("ollama", tokens=12, server_rate=42.1), "--stats", "hi")
    assert code == 0
    assert "42.1 tok/s (server)" in err


def test_stats_show_anthropic_cached_input(srv, run, env) -> None:
    url = srv.base_url("anthropic", tokens=4, cache_read=30)
    code, out, err = run("--api", "anthropic", "--base-url", url, "--stats", "hi", env={**env, "ANTHROPIC_API_KEY": "k" * 10})
    assert code == 0
    assert " input (30 cached), 4 output tokens" in err


def test_stats_give_no_rate_for_a_burst(srv, run) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=5), "--stats", "hi")
    assert code == 0
    assert "tok/s -" in err


@pytest.mark.parametrize("api", APIS)
def test_max_time_ends_an_answer_kept_alive_forever_and_keeps_the_partial_answer(srv, run, api: str) -> None:
    url = srv.base_url(api, tokens=40, stall_after=4, trickle=0.05)
    code, out, err = run("--api", api, "--base-url", url, "--timeout", "5", "--max-time", "1", "hi", timeout=20)
    assert code == 1
    assert out == expected(4)
    assert lines(err) == ["error: gave up after 1 s: the answer took longer than --max-time"]
    (_, answer) = stored(run)["messages"]
    assert answer["status"] == "error" and answer["content"] == expected(4).decode()


def test_max_time_from_a_profile(srv, run, write_config) -> None:
    url = srv.base_url("openai-chat", tokens=40, stall_after=4, trickle=0.05)
    write_config(f'default = "slow"\n[profiles.slow]\napi = "openai-chat"\nbase_url = "{url}"\nmax_time = 1\n')
    code, out, err = run("hi", timeout=20)
    assert code == 1
    assert "--max-time" in err


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_max_time_that_is_not_a_positive_number_is_a_usage_error(srv, run, value: str) -> None:
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "--max-time", value, "hi")
    assert code == 2
    assert out == b"" and len(lines(err)) == 1 and "Traceback" not in err
