"""Settings against hostile or careless values: base URLs with a query string, credentials or
control characters, the secrets a run knows of, and the directories llmchat creates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmchat.config import (
    PROVIDER_KEY_ENVS,
    ConfigError,
    Overrides,
    ensure_private_dir,
    known_secrets,
    load_config,
    open_to_others,
    redact_url,
    resolve,
    save_theme,
)
from llmchat.conversation import ChatRequest, Message
from llmchat.providers import PROVIDERS, get_provider, provider_class


def test_every_providers_key_variable_is_a_known_secret() -> None:
    assert sorted(PROVIDER_KEY_ENVS) == sorted({provider_class(n).api_key_env for n in PROVIDERS} - {None})


@pytest.mark.parametrize(
    "api, path", [("openai-chat", "/chat/completions"), ("openai-responses", "/responses"), ("anthropic", "/v1/messages"), ("ollama", "/api/chat")]
)
@pytest.mark.parametrize(
    "base, query",
    [
        ("https://x.openai.azure.com/openai/deployments/d", "?api-version=2024-10-21"),
        ("https://x.openai.azure.com/openai/deployments/d/", "?api-version=2024-10-21&a=b"),
        ("http://127.0.0.1:8000", ""),
        ("http://127.0.0.1:8000/", "#frag-not-sent"),
    ],
)
def test_the_endpoint_goes_before_the_query_string(api: str, path: str, base: str, query: str) -> None:
    request = ChatRequest(model="m", messages=[Message("user", "hi")], base_url=base + query)
    url = get_provider(api).build_request(request).url
    expected_query = "" if query.startswith("#") else query
    assert url == base.rstrip("/") + path + expected_query


def test_the_run_knows_every_key_and_url_credential(isolated_home) -> None:
    (isolated_home / "config.toml").write_text(
        '[profiles.p]\napi = "anthropic"\napi_key_env = "MY_KEY"\nbase_url = "https://proxy.example/?token=profile-token-1"\n'
    )
    env = {
        "OPENAI_API_KEY": "sk-openai-key-1",
        "ANTHROPIC_API_KEY": "sk-ant-key-2",
        "MY_KEY": "my-profile-key-3",
        "OLLAMA_HOST": "http://ollama-user:ollama-pass-4@host:11434",
    }
    settings = resolve(Overrides(base_url="http://127.0.0.1:9/v1?key=query-key-5&api-version=2024"), env, load_config())
    secrets = set(settings.secrets)
    for value in ("sk-openai-key-1", "sk-ant-key-2", "my-profile-key-3", "profile-token-1", "ollama-pass-4", "query-key-5"):
        assert value in secrets
    assert set(known_secrets(env, load_config())) <= secrets  # what the history verbs mask


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass-word-1@host/v1?key=query-key-22&api-version=1",
        "http://user:pass-word-1@[::1/v1?key=query-key-22",  # not even a valid URL
        "http://token-only-3@host/v1",
    ],
)
def test_a_shown_url_hides_user_info_and_query_values(url: str) -> None:
    shown = redact_url(url)
    for secret in ("pass-word-1", "query-key-22", "token-only-3"):
        assert secret not in shown
    assert "host" in shown or "::1" in shown


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\t", "\n", "\r", " ", "\x7f", "\x85", "\x9b"], ids=lambda c: f"U+{ord(c):04X}")
def test_an_unsendable_character_in_the_base_url_is_a_usage_error(isolated_home, char: str) -> None:
    with pytest.raises(ConfigError, match="base URL") as caught:
        resolve(Overrides(base_url=f"http://127.0.0.1:8000/v1{char}x"), {}, load_config())
    message = str(caught.value)
    assert char == " " or char not in message  # the message itself is clean


def test_user_info_without_a_key_is_allowed(isolated_home) -> None:
    settings = resolve(Overrides(base_url="http://u:p-secret-99@127.0.0.1:8000/v1"), {}, load_config())
    assert settings.api_key is None and "p-secret-99" in settings.secrets


@pytest.fixture
def umask_000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_directories_made_under_umask_000_are_private(tmp_path: Path, umask_000) -> None:
    target = tmp_path / "a" / "b" / "c"
    ensure_private_dir(target)
    for path in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_the_config_files_folder_made_under_umask_000_is_private(tmp_path: Path, umask_000) -> None:
    path = tmp_path / "new" / "home" / "config.toml"
    save_theme("dusk", path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode, warned", [(0o700, False), (0o750, False), (0o770, True), (0o707, True), (0o777, True)])
def test_a_directory_others_can_write_in_is_warned_about(tmp_path: Path, mode: int, warned: bool) -> None:
    tmp_path.chmod(mode)
    note = open_to_others(tmp_path)
    assert bool(note) == warned
    if note:
        assert str(tmp_path) in note and f"{mode:o}" in note
