"""`llmchat models --remote`: the server's own model list, per API, against the fake server,
through the real command in a subprocess."""

from __future__ import annotations

import json
import socket

import pytest

from llmchat.demo.answer import DEMO_MODEL

APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")
LIST_PATHS = {"openai-chat": "/v1/models", "openai-responses": "/v1/models", "anthropic": "/v1/models", "ollama": "/api/tags"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def asked(srv, api):
    """The model-list requests the server saw for `api`'s path."""
    return [r for r in srv.requests if r.method == "GET" and r.path == LIST_PATHS[api]]


@pytest.mark.parametrize("api", APIS)
def test_each_api_lists_the_servers_models_one_per_line_sorted(srv, run, api):
    code, out, err = run("models", "--remote", "--api", api, "--base-url", srv.base_url(api, models="zeta,alpha,Mid"))
    assert (code, err) == (0, "")
    assert out == b"alpha\nMid\nzeta\n"
    assert asked(srv, api)


@pytest.mark.parametrize("api", APIS)
def test_each_api_lists_the_servers_models_as_json(srv, run, api):
    code, out, err = run("models", "--remote", "--json", "--api", api, "--base-url", srv.base_url(api, models="b,a"))
    assert (code, err) == (0, "")
    assert json.loads(out) == ["a", "b"]


def test_anthropic_is_asked_with_its_version_header_and_the_key(srv, run, env):
    env = {**env, "ANTHROPIC_API_KEY": "sk-ant-secret-1"}
    code, out, err = run("models", "--remote", "--api", "anthropic", "--base-url", srv.base_url("anthropic"), env=env)
    assert (code, out) == (0, f"{DEMO_MODEL}\n".encode())
    request = asked(srv, "anthropic")[-1]
    assert request.headers["anthropic-version"] and request.headers["x-api-key"] == "sk-ant-secret-1"


def test_the_demo_model_lists_its_own_model(run):
    code, out, err = run("models", "--remote")
    assert (code, out, err) == (0, f"{DEMO_MODEL}\n".encode(), "")


def test_a_profile_chooses_the_server(srv, run, write_config):
    write_config(f'[profiles.local]\napi = "ollama"\nbase_url = "{srv.base_url("ollama", models="from-profile")}"\n')
    code, out, err = run("models", "--remote", "-p", "local")
    assert (code, out, err) == (0, b"from-profile\n", "")
    assert asked(srv, "ollama")


@pytest.mark.parametrize(
    "hostile, shown",
    [
        ("red\x1b[31mname", "redname"),  # C0: an escape sequence
        ("clear\x1b[2J\x07me", "clearme"),
        ("csi\x9b31mx", "csix"),  # C1
        ("bidi\u202egnp.exe", "bidignp.exe"),  # BiDi override
        ("iso\u2066late\u2069", "isolate"),
        ("mark\u200fed", "marked"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_model_names_from_the_server_lose_control_and_bidi_characters(srv, run, hostile, shown, as_json):
    args = ["models", "--remote", "--api", "ollama", "--base-url", srv.base_url("ollama", models=f"{hostile},plain")]
    code, out, err = run(*args, *(["--json"] if as_json else []))
    assert code == 0
    names = json.loads(out) if as_json else out.decode().splitlines()
    assert names == sorted([shown, "plain"], key=str.casefold)
    text = out.decode()
    assert not any(ch in text for ch in "\x1b\x07\x9b\u202e\u2066\u2069\u200f")


@pytest.mark.parametrize(
    "api, options, said",
    [
        ("openai-chat", {"status": 404}, "404 Not Found"),
        ("anthropic", {"status": 500}, "500 Internal Server Error"),
        ("ollama", {"content_type": "text/html"}, "did not send JSON (text/html): Captive portal: sign in"),
        ("openai-chat", {"content_type": "text/plain"}, "did not send JSON (text/plain)"),
        ("openai-chat", {"content_type": "application/json"}, "not an OpenAI model list"),
    ],
)
def test_a_server_error_is_one_line_and_exit_1(srv, run, api, options, said):
    code, out, err = run("models", "--remote", "--api", api, "--base-url", srv.base_url(api, **options))
    assert (code, out) == (1, b"")
    assert err.count("\n") == 1 and err.startswith("error: cannot list the models: ")
    assert said in err
    assert "Traceback" not in err


def test_connection_refused_is_one_line_and_exit_1(run):
    code, out, err = run("models", "--remote", "--api", "ollama", "--base-url", f"http://127.0.0.1:{closed_port()}")
    assert (code, out) == (1, b"")
    assert err.count("\n") == 1 and "cannot connect to 127.0.0.1:" in err


def test_the_key_is_never_printed(srv, run, env):
    env = {**env, "OPENAI_API_KEY": "sk-very-secret-key"}
    code, out, err = run("models", "--remote", "--base-url", srv.base_url("openai-chat", status=401), env=env)
    assert code == 1 and "sk-very-secret-key" not in err + out.decode()
    assert asked(srv, "openai-chat")[-1].headers["authorization"] == "Bearer sk-very-secret-key"


def test_server_flags_without_remote_are_a_usage_error(run):
    code, out, err = run("models", "--api", "ollama")
    assert code == 2 and "--remote" in err


def test_profiles_list_as_json(run, write_config):
    write_config('default = "a"\n[profiles.a]\napi = "ollama"\nmodel = "m"\n')
    code, out, err = run("models", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": "a", "default": True, "api": "ollama", "model": "m", "base_url": None}]


@pytest.mark.parametrize("said", ["\x1b]0;pwned\x07evil \x1b[2Jclear", "bidi \u202etxt.exe", "c1 \x9b2J"])
async def test_an_error_body_with_control_characters_is_shown_clean(said):
    """The server's own words in an error are quoted, without their control characters."""
    import asyncio

    from llmchat.providers import get_provider
    from llmchat.stream.client import ModelListError, StreamingClient

    body = json.dumps({"error": {"message": said}}).encode()

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with StreamingClient(max_retries=0) as client:
            with pytest.raises(ModelListError) as caught:
                await client.list_models(get_provider("openai-chat"), f"http://127.0.0.1:{port}/v1")
    finally:
        server.close()
        await server.wait_closed()
    message = str(caught.value)
    assert message.startswith("404 Not Found: ")
    assert not any(ch in message for ch in "\x1b\x07\x9b\u202e")
