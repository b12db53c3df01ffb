"""The chat options are declared once (llmchat/options.py): a field there reaches both parsers,
--help, the settings and their environment variable, the TUI's flags, and the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from llmchat.cli import CHAT_OPTIONS, _chat_command, overrides, parse_chat_args
from llmchat.config import Config, Overrides, Profile, resolve
from llmchat.options import FACE_OPTIONS, SETTING_ENVS, ChatOption, _table

README = Path(__file__).resolve().parents[2] / "README.md"
# A value each setting takes, as typed on the command line and as resolved.
SAMPLES: Dict[str, Any] = {
    "api": ("ollama", "ollama"),
    "base_url": ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
    "model": ("some-model", "some-model"),
    "profile": ("p", "p"),
    "system": ("Be brief.", "Be brief."),
    "temperature": ("0.5", 0.5),
    "max_tokens": ("12", 12),
    "timeout": ("7", 7.0),
    "connect_timeout": ("3", 3.0),
    "max_time": ("9", 9.0),
    "pdf_as_text": (None, True),  # a switch: given, it is on
    "max_image_px": ("512", 512),
}


def sample(kind: type) -> str:
    return {str: "x", int: "4", float: "0.5", list: "x"}[kind]


def help_text() -> str:
    command = _chat_command()
    return command.get_help(command.make_context("llmchat", ["q"]))


def test_the_table_is_the_settings_then_the_face_options() -> None:
    names = [o.name for o in CHAT_OPTIONS]
    assert names == [f.name for f in dataclasses.fields(Overrides)] + [o.name for o in FACE_OPTIONS]
    assert len(set(names)) == len(names)
    flags = [flag for o in CHAT_OPTIONS for flag in o.flags]
    assert len(set(flags)) == len(flags), "two options share a flag"
    assert {o.kind for o in CHAT_OPTIONS} <= {str, int, float, bool, list}


def test_a_new_field_is_a_new_option() -> None:
    seed = dataclasses.field(default=None, metadata={"flags": ("--seed",), "help": "Sampling seed.", "env": "LLMCHAT_SEED"})
    more = dataclasses.make_dataclass("More", [("seed", Optional[int], seed)], bases=(Overrides,))
    assert _table(more) == (*_table(Overrides), ChatOption("seed", ("--seed",), int, "Sampling seed."))
    assert _table(Overrides) == CHAT_OPTIONS[: -len(FACE_OPTIONS)]


@pytest.mark.parametrize("option", CHAT_OPTIONS, ids=lambda o: o.name)
def test_every_option_reaches_both_parsers_and_the_help(option: Any) -> None:
    help_ = help_text()
    for flag in option.flags:
        assert flag in help_
        args = [flag, "q"] if option.kind is bool else [flag, sample(option.kind), "q"]
        fast = parse_chat_args(args)
        assert fast is not None, args
        assert fast[option.name] == (True if option.kind is bool else (sample(list),) if option.kind is list else option.kind(sample(option.kind)))
        params = dict(_chat_command().make_context("llmchat", args).params)
        assert params[option.name] == fast[option.name]
    assert " ".join(option.help.split()) in " ".join(help_.split())


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Overrides)])
def test_every_setting_reaches_the_settings_from_its_flag_and_its_variable(name: str) -> None:
    typed, resolved = SAMPLES[name]
    config = Config(Path("config.toml"), profiles={"p": Profile("p")})
    flag = next(o for o in CHAT_OPTIONS if o.name == name).flags[-1]
    values = parse_chat_args([flag, "q"] if typed is None else [flag, typed, "q"])
    assert values is not None
    flags = overrides(values)
    assert getattr(flags, name) == resolved
    key = {"OPENAI_API_KEY": "k"}  # a model alone means OpenAI's own service
    assert getattr(resolve(flags, key, config), name) == resolved
    if name in SETTING_ENVS:
        assert getattr(resolve(Overrides(), {**key, SETTING_ENVS[name]: typed}, config), name) == resolved


def test_a_list_option_collects_each_time_it_is_given() -> None:
    args = ["-a", "one.png", "q", "--attach=two.pdf", "--attach", "-"]
    fast = parse_chat_args(args)
    assert fast is not None and fast["attach"] == ("one.png", "two.pdf", "-") and fast["prompt"] == ["q"]
    assert dict(_chat_command().make_context("llmchat", args).params)["attach"] == ("one.png", "two.pdf", "-")
    assert parse_chat_args(["q"])["attach"] == ()  # type: ignore[index]


def test_the_settings_have_the_variables_the_readme_names() -> None:
    assert SETTING_ENVS == {
        "api": "LLMCHAT_API",
        "base_url": "LLMCHAT_BASE_URL",
        "model": "LLMCHAT_MODEL",
        "profile": "LLMCHAT_PROFILE",
        "system": "LLMCHAT_SYSTEM",
        "timeout": "LLMCHAT_TIMEOUT",
        "connect_timeout": "LLMCHAT_CONNECT_TIMEOUT",
        "max_time": "LLMCHAT_MAX_TIME",
    }


@pytest.mark.parametrize("option", CHAT_OPTIONS, ids=lambda o: o.name)
def test_every_option_is_in_the_readme(option: Any) -> None:
    readme = README.read_text(encoding="utf-8")
    long_flag = option.flags[-1]
    assert f"{long_flag}`" in readme or f"{long_flag} " in readme


def test_every_setting_but_the_profile_is_also_a_profile_key_and_a_resolved_setting() -> None:
    """`resolve` falls back from the flag and the variable to the profile's key of the same name."""
    from llmchat.config import _PROFILE_TYPES, Settings

    settings = {f.name for f in dataclasses.fields(Overrides)}
    assert settings - {"profile"} <= set(_PROFILE_TYPES)
    assert settings <= {f.name for f in dataclasses.fields(Settings)}


def test_a_profile_used_with_another_api_keeps_all_but_its_endpoint(tmp_path: Path) -> None:
    config = Config(tmp_path / "c.toml", profiles={"p": Profile("p", api="anthropic", model="claude-x", system="Be brief.", max_time=5.0)})
    settings = resolve(Overrides(profile="p", api="ollama"), {}, config)
    assert (settings.api, settings.system, settings.max_time) == ("ollama", "Be brief.", 5.0)
    assert settings.model != "claude-x"
