"""First-run and error hints, one-shot: a 401 when no key was sent says which variable was
expected to hold one (the API's, or the profile's `api_key_env`), and nothing of the sort when a
key was sent or the API takes none; the demo model says Ollama needs `--api ollama`. A real
subprocess against the fake server on loopback."""

from __future__ import annotations

import pytest

HINT = "no API key was sent"
SECRET = "sk-test-Zq8v1SECRETkey0042"


@pytest.mark.parametrize(
    "api, variable",
    [("openai-chat", "OPENAI_API_KEY"), ("openai-responses", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")],
)
def test_a_401_without_a_key_names_the_variable_expected(srv, run, api, variable):
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, status=401), "hi")
    assert code == 1 and out == b""
    [line] = err.splitlines()
    assert line.startswith("error: 401")
    assert line.endswith(f"({HINT}: set {variable})")


def test_a_401_without_a_key_names_the_profiles_variable(srv, run, write_config):
    write_config(
        f'default = "proxy"\n[profiles.proxy]\napi = "anthropic"\nbase_url = "{srv.base_url("anthropic", status=401)}"\n'
        'model = "c"\napi_key_env = "MY_PROXY_KEY"\n'
    )
    code, _out, err = run("hi")
    assert code == 1
    [line] = err.splitlines()
    assert line.endswith(f"({HINT}: set MY_PROXY_KEY)")


@pytest.mark.parametrize("case", ["key sent", "ollama takes no key", "another status"])
def test_no_key_hint_where_it_would_be_wrong(srv, run, env, case):
    api, options, extra = "openai-chat", dict(status=401), {}
    if case == "key sent":
        extra = {"OPENAI_API_KEY": SECRET}
    elif case == "ollama takes no key":
        api = "ollama"
    else:
        options = dict(status=404)
    code, _out, err = run("--api", api, "--base-url", srv.base_url(api, **options), "hi", env={**env, **extra})
    assert code == 1
    assert err.startswith("error: 40")
    assert HINT not in err and "set " not in err
    assert SECRET not in err


def test_the_demo_answer_says_ollama_needs_api_ollama(run):
    """An Ollama server is not used unless asked for: the demo model's hint says how."""
    code, out, err = run("--raw", "hi")
    assert code == 0
    text = out.decode()
    assert "Ollama with `--api ollama`" in text
    assert "start\nOllama" not in text and "start Ollama" not in text
