"""The tool settings: a profile's `allow_tools` and `max_steps`, the command line's --mcp,
--no-tools, --allow-tool(s), --max-steps (config.apply_tool_flags), and `allow_tool`, which
remembers an "always" in the profile's table and keeps every other byte of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmchat.config import DEFAULT_MAX_STEPS, ConfigError, Overrides, allow_tool, apply_tool_flags, load_config, resolve

SERVERS = '[mcp.servers.calc]\ncommand = "calc"\n\n[mcp.servers.files]\ncommand = "files"\n\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_allows_tools_and_bounds_the_steps(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SERVERS + '[profiles.p]\napi = "demo"\nmcp = ["calc"]\nallow_tools = ["add"]\nmax_steps = 3\n'))
    settings = resolve(Overrides(profile="p"), {}, config)
    assert (settings.allow_tools, settings.max_steps, settings.allow_all_tools) == (("add",), 3, False)
    assert [s.name for s in settings.mcp_servers] == ["calc"] and settings.config_path == config.path
    assert resolve(Overrides(api="demo"), {}, config).max_steps == DEFAULT_MAX_STEPS


@pytest.mark.parametrize(
    "line, message",
    [
        ("allow_tools = [1]", "allow_tools must be a list of tool names"),
        ("max_steps = 0", "max_steps must be at least 1"),
        ('max_steps = "3"', "max_steps must be a int"),
    ],
)
def test_bad_tool_keys_are_one_clear_error(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, f"[profiles.p]\n{line}\n"))


def test_the_command_line_adds_servers_allows_tools_and_sets_the_steps(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SERVERS + '[profiles.p]\napi = "demo"\nmcp = ["calc"]\nallow_tools = ["add"]\n'))
    settings = resolve(Overrides(profile="p"), {}, config)
    apply_tool_flags(settings, config, mcp=["files", "calc"], allow=["echo", "add"], allow_all=True, max_steps=4)
    assert [s.name for s in settings.mcp_servers] == ["calc", "files"]
    assert (settings.allow_tools, settings.allow_all_tools, settings.max_steps) == (("add", "echo"), True, 4)
    again = resolve(Overrides(profile="p"), {}, config)  # (a face switching back to the profile)
    apply_tool_flags(again, config, **settings.tool_flags)
    assert (again.mcp_servers, again.allow_tools, again.allow_all_tools, again.max_steps) == (
        settings.mcp_servers,
        settings.allow_tools,
        True,
        4,
    )
    apply_tool_flags(settings, config, no_tools=True)
    assert settings.mcp_servers == ()
    with pytest.raises(ConfigError, match="--mcp nope: no such server"):
        apply_tool_flags(settings, config, mcp=["nope"])
    with pytest.raises(ConfigError, match="--max-steps must be at least 1"):
        apply_tool_flags(settings, config, max_steps=0)


def test_always_adds_the_line_below_the_profiles_header_and_keeps_the_rest(tmp_path: Path) -> None:
    text = '# top\ndefault = "p"\n\n[profiles.other]\nmodel = "x"\n\n[profiles."p"]   # mine\nmodel = "m"  # note\n\n[mcp]\ntool_timeout = 5\n'
    path = write(tmp_path, text)
    allow_tool("p", "add", path)
    assert path.read_text(encoding="utf-8") == text.replace('[profiles."p"]   # mine\n', '[profiles."p"]   # mine\nallow_tools = ["add"]\n')
    allow_tool("p", "echo", path)  # the line is replaced, not added twice
    allow_tool("p", "echo", path)  # already there: nothing changes
    assert load_config(path).profiles["p"].allow_tools == ["add", "echo"]
    assert path.read_text(encoding="utf-8").count("allow_tools") == 1
    assert load_config(path).profiles["other"].allow_tools is None


def test_always_keeps_crlf_and_the_files_mode(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.write_bytes(b'[profiles.p]\r\nallow_tools = ["a"]\r\nmodel = "m"\r\n')
    path.chmod(0o640)
    allow_tool("p", "b", path)
    assert path.read_bytes() == b'[profiles.p]\r\nallow_tools = ["a", "b"]\r\nmodel = "m"\r\n'
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    "text",
    [
        '[profiles.p]\nallow_tools = [\n  "a",\n]\n',  # a line edit would break the array: refused
        'profiles = { p = { model = "m" } }\n',  # no [profiles.p] header to edit under
        '[profiles.q]\nmodel = "m"\n',  # no such profile
    ],
)
def test_always_never_writes_a_file_it_cannot_edit_safely(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError):
        allow_tool("p", "add", path)
    assert path.read_text(encoding="utf-8") == text


def test_the_python_api_starts_no_servers(tmp_path: Path, isolated_home: Path) -> None:
    from llmchat.engine.api import settings_for

    write(isolated_home, SERVERS + '[profiles.p]\napi = "demo"\nmcp = ["calc"]\n')
    assert settings_for("p").mcp_servers == ()
