"""The [mcp] table and a profile's `mcp` key: what is read, the one-line errors (file and key),
the settings a run gets, and the secrets they add."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmchat.config import ConfigError, Overrides, known_secrets, load_config, resolve
from llmchat.tools.config import ServerConfig, expand

GOOD = """
[mcp]
tool_timeout = 30

[mcp.servers.files]
command = "npx"
args = ["-y", "server-filesystem", "/tmp"]
env = { TOKEN = "${FILES_TOKEN}", LEVEL = "warn" }
cwd = "/tmp"

[mcp.servers.web]
url = "https://user:pa55word-xyz@mcp.example.com/mcp?key=query-secret-1"
headers = { Authorization = "Bearer ${WEB_TOKEN}" }
tool_timeout = 5

[profiles.local]
api = "ollama"
mcp = ["web", "files"]

[profiles.plain]
api = "ollama"
"""


def write(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_servers_and_a_profiles_list_are_read(isolated_home):
    write(isolated_home, GOOD)
    config = load_config()
    assert config.mcp is not None and config.mcp.tool_timeout == 30
    files, web = config.mcp.servers["files"], config.mcp.servers["web"]
    assert (files.transport, files.command, files.args, files.cwd, files.tool_timeout) == (
        "stdio",
        "npx",
        ("-y", "server-filesystem", "/tmp"),
        "/tmp",
        30,
    )
    assert files.env == {"TOKEN": "${FILES_TOKEN}", "LEVEL": "warn"}  # expanded when it starts, not now
    assert (web.transport, web.tool_timeout, dict(web.headers)) == ("http", 5, {"Authorization": "Bearer ${WEB_TOKEN}"})
    assert config.profiles["local"].mcp == ["web", "files"]
    settings = resolve(Overrides(profile="local"), {}, config)
    assert [s.name for s in settings.mcp_servers] == ["web", "files"]
    assert resolve(Overrides(profile="plain"), {}, config).mcp_servers == ()
    assert resolve(Overrides(api="ollama"), {}, config).mcp_servers == ()  # no profile: no servers


def test_no_mcp_table_means_no_servers(isolated_home):
    write(isolated_home, '[profiles.p]\napi = "ollama"\n')
    config = load_config()
    assert config.mcp is None
    assert resolve(Overrides(profile="p"), {}, config).mcp_servers == ()


def test_the_variables_values_and_the_urls_credentials_are_known_secrets(isolated_home):
    write(isolated_home, GOOD)
    config = load_config()
    env = {"FILES_TOKEN": "files-secret-0001", "WEB_TOKEN": "web-secret-0002", "UNRELATED": "not-a-secret-at-all"}
    secrets = set(known_secrets(env, config))
    assert {"files-secret-0001", "web-secret-0002", "pa55word-xyz", "query-secret-1"} <= secrets
    assert "not-a-secret-at-all" not in secrets
    settings = resolve(Overrides(profile="local"), env, config)
    assert {"files-secret-0001", "web-secret-0002"} <= set(settings.secrets)


@pytest.mark.parametrize(
    "text, message",
    [
        ("mcp = 3\n", "'mcp' must be a table"),
        ("[mcp]\ntimeout = 3\n", "mcp: unknown key 'timeout'"),
        ("[mcp]\ntool_timeout = 0\n", "mcp.tool_timeout must be a positive number of seconds"),
        ("[mcp]\nservers = 1\n", "mcp.servers must be a table"),
        ("[mcp.servers.x]\nargs = []\n", "mcp server 'x': give either command"),
        ('[mcp.servers.x]\ncommand = "a"\nurl = "http://h/"\n', "mcp server 'x': give either command"),
        ('[mcp.servers.x]\ncommand = "a"\nargs = "b c"\n', "mcp server 'x': args must be a list of strings"),
        ('[mcp.servers.x]\ncommand = "a"\nenv = { A = 1 }\n', "mcp server 'x': env must be a table of strings"),
        ('[mcp.servers.x]\ncommand = "a"\nheaders = { A = "b" }\n', "mcp server 'x': headers is for url servers"),
        ('[mcp.servers.x]\nurl = "http://h/"\ncwd = "/"\n', "mcp server 'x': cwd is for command servers"),
        ('[mcp.servers.x]\nurl = "ftp://h/"\n', "mcp server 'x': url must be http:// or https://"),
        ('[mcp.servers.x]\ncommand = ""\n', "mcp server 'x': command must be a non-empty string"),
        ('[mcp.servers.x]\ncommand = "a"\ntool_timeout = -1\n', "mcp server 'x': tool_timeout must be a positive number"),
        ('[mcp.servers.x]\ncommand = "a"\nshell = true\n', "mcp server 'x': unknown key 'shell'"),
        ('[profiles.p]\nmcp = "x"\n', "profile 'p': mcp must be a list"),
        ("[profiles.p]\nmcp = [1]\n", "profile 'p': mcp must be a list of [mcp.servers.NAME] names"),
        ('[profiles.p]\nmcp = ["x"]\n', "profile 'p': mcp server 'x' is not defined (add [mcp.servers.x])"),
    ],
)
def test_a_wrong_mcp_setting_is_one_line_naming_the_file_and_the_key(isolated_home, text, message):
    path = write(isolated_home, text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    line = str(caught.value)
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


def test_expand_replaces_each_variable_and_names_a_missing_one():
    server = ServerConfig("s", command="x", env={"A": "${ONE}-${TWO}", "B": "$ONE ${ONE"})
    assert expand(server, server.env, "env", {"ONE": "1", "TWO": "2"}) == {"A": "1-2", "B": "$ONE ${ONE"}
    with pytest.raises(ValueError, match=r"^env A uses \$\{TWO\}, but TWO is not set$"):
        expand(server, server.env, "env", {"ONE": "1"})
