"""Config file parsing and the resolution flags > environment > config > defaults."""

from __future__ import annotations

import pytest

from llmchat.config import ConfigError, Overrides, config_path, data_dir, load_config, resolve

CONFIG = """
default = "local"

[profiles.local]
api = "openai-chat"
base_url = "http://127.0.0.1:8000/v1"
model = "qwen"
temperature = 0.2

[profiles.claude]
api = "anthropic"
model = "claude-x"
api_key_env = "MY_KEY"
max_tokens = 100
"""


def _write(home, text):
    path = home / "config.toml"
    path.write_text(text)
    return path


def test_llmchat_home_moves_config_and_data(isolated_home):
    assert config_path() == isolated_home / "config.toml"
    assert data_dir() == isolated_home / "data"


def test_no_config_no_key_means_the_demo_model(isolated_home):
    settings = resolve(Overrides(), {}, load_config())
    assert settings.demo and settings.api == "demo" and settings.model == "demo"
    assert "no API key" in settings.demo_reason


def test_an_api_key_in_the_environment_picks_its_api():
    assert resolve(Overrides(), {"OPENAI_API_KEY": "k"}, load_config()).api == "openai-chat"
    settings = resolve(Overrides(), {"ANTHROPIC_API_KEY": "k"}, load_config())
    assert settings.api == "anthropic" and settings.api_key == "k"
    assert settings.base_url == "https://api.anthropic.com"


def test_default_profile_is_used(isolated_home):
    _write(isolated_home, CONFIG)
    settings = resolve(Overrides(), {}, load_config())
    assert (settings.profile, settings.api, settings.model, settings.temperature) == ("local", "openai-chat", "qwen", 0.2)
    assert settings.base_url == "http://127.0.0.1:8000/v1"
    assert settings.api_key is None  # a local server needs no key


def test_flags_beat_environment_beat_config(isolated_home):
    _write(isolated_home, CONFIG)
    config = load_config()
    assert resolve(Overrides(), {"LLMCHAT_MODEL": "env"}, config).model == "env"
    assert resolve(Overrides(model="flag"), {"LLMCHAT_MODEL": "env"}, config).model == "flag"
    assert resolve(Overrides(profile="claude"), {"MY_KEY": "secret", "LLMCHAT_PROFILE": "local"}, config).api == "anthropic"
    assert resolve(Overrides(), {"LLMCHAT_PROFILE": "claude", "MY_KEY": "s"}, config).model == "claude-x"


def test_profile_key_comes_from_its_named_variable(isolated_home):
    _write(isolated_home, CONFIG)
    settings = resolve(Overrides(profile="claude"), {"MY_KEY": "secret"}, load_config())
    assert settings.api_key == "secret" and settings.max_tokens == 100
    assert "secret" not in repr(settings)


def test_missing_key_for_the_official_api_is_a_clear_error(isolated_home):
    _write(isolated_home, CONFIG)
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        resolve(Overrides(profile="claude"), {}, load_config())


def test_provider_base_url_variable_replaces_only_the_builtin_default():
    settings = resolve(Overrides(api="openai-chat"), {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, load_config())
    assert settings.base_url == "http://127.0.0.1:1/v1"
    settings = resolve(Overrides(api="ollama"), {"OLLAMA_HOST": "0.0.0.0:9999"}, load_config())
    assert settings.base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    "text, message",
    [
        ("default = [", "not valid TOML"),
        ("colour = 1", "unknown setting 'colour'"),
        ("[profiles.x]\nmodle = 'y'", "unknown key 'modle'"),
        ("[profiles.x]\ntemperature = 'hot'", "temperature must be a float"),
        ("[profiles.x]\nmax_tokens = true", "max_tokens must be a int"),
        ("[profiles.x]\napi = 'gemini'", "unknown api 'gemini'"),
        ("default = 'nope'", "default profile 'nope' is not defined"),
    ],
)
def test_bad_config_says_what_and_where(isolated_home, text, message):
    path = _write(isolated_home, text)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "flags, message",
    [
        (Overrides(profile="ghost"), "unknown profile 'ghost'"),
        (Overrides(api="gemini"), "unknown API 'gemini'"),
        (Overrides(temperature=3.0), "temperature must be between 0 and 2"),
        (Overrides(max_tokens=0), "max tokens must be at least 1"),
        (Overrides(timeout=0), "timeout must be positive"),
        (Overrides(base_url="ftp://x"), "base URL must be http"),
    ],
)
def test_bad_settings_are_usage_errors(flags, message):
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {}, load_config())


def test_connect_timeout_from_flag_env_and_profile(isolated_home):
    _write(isolated_home, "[profiles.p]\napi = 'ollama'\nconnect_timeout = 3\n")
    config = load_config()
    assert resolve(Overrides(profile="p"), {}, config).connect_timeout == 3.0
    assert resolve(Overrides(profile="p"), {"LLMCHAT_CONNECT_TIMEOUT": "4"}, config).connect_timeout == 4.0
    assert resolve(Overrides(profile="p", connect_timeout=5.0), {"LLMCHAT_CONNECT_TIMEOUT": "4"}, config).connect_timeout == 5.0
    assert resolve(Overrides(), {}, load_config()).connect_timeout == 10.0
    with pytest.raises(ConfigError, match="connect timeout must be a number of seconds"):
        resolve(Overrides(), {"LLMCHAT_CONNECT_TIMEOUT": "soon"}, config)


def test_api_flag_ignores_the_profile_settings_of_another_api(isolated_home):
    _write(
        isolated_home,
        "default = 'local'\n[profiles.local]\napi = 'openai-chat'\nbase_url = 'http://127.0.0.1:8000/v1'\nmodel = 'qwen'\napi_key_env = 'LOCAL_KEY'\ntemperature = 0.3\n",
    )
    settings = resolve(Overrides(api="anthropic"), {"LOCAL_KEY": "local-secret", "ANTHROPIC_API_KEY": "ak"}, load_config())
    assert settings.base_url == "https://api.anthropic.com"
    assert settings.api_key == "ak" and settings.model != "qwen"
    assert settings.temperature == 0.3  # API-neutral settings still apply


def test_keys_are_trimmed_and_unsendable_keys_rejected_without_echo():
    assert resolve(Overrides(api="openai-chat"), {"OPENAI_API_KEY": " sk-x\n"}, load_config()).api_key == "sk-x"
    with pytest.raises(ConfigError) as info:
        resolve(Overrides(api="openai-chat"), {"OPENAI_API_KEY": "sk-\u00e9secret"}, load_config())
    assert "OPENAI_API_KEY" in str(info.value) and "secret" not in str(info.value)
