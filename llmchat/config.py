"""Settings: a TOML file of named model profiles, environment overrides, and the resolution of
flags > environment > config > defaults into the one `Settings` a run uses.

    # ~/.config/llmchat/config.toml
    default = "local"
    theme = "dusk"          # the TUI's colour theme (the command palette writes this line)
    history = true          # false: never store conversations (as --no-history on every run)

    [profiles.local]
    api = "openai-chat"
    base_url = "http://127.0.0.1:8000/v1"
    model = "qwen2.5-7b-instruct"

    [profiles.claude]
    api = "anthropic"
    model = "claude-sonnet-4-5"
    api_key_env = "MY_ANTHROPIC_KEY"
    max_tokens = 2048

`LLMCHAT_HOME` moves the config file and the data directory (the history database) under one
folder (tests, portable setups). The API key is read from the environment only; it is never
written anywhere.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

# The command line's settings are declared with their flags, in llmchat.options.
from llmchat.options import SETTING_ENVS
from llmchat.options import Overrides as Overrides

# Where the files are lives in llmchat.paths (the history store needs it without the settings);
# these names stay importable from here.
from llmchat.paths import config_path as config_path
from llmchat.paths import data_dir as data_dir
from llmchat.paths import ensure_private_dir as ensure_private_dir
from llmchat.paths import home as home
from llmchat.paths import open_to_others as open_to_others

if TYPE_CHECKING:
    from llmchat.tools.config import McpConfig, ServerConfig

DEMO_API = "demo"
DEFAULT_MAX_STEPS = 10  # rounds of tool calls in one answer, unless --max-steps or max_steps say
API_NAMES = ("openai-chat", "openai-responses", "anthropic", "ollama", DEMO_API)


class ConfigError(Exception):
    """A setting is wrong; the message is one line that says which and why."""


@dataclass
class Profile:
    """A [profiles.NAME] table. Each key is a field here, with the same name as the setting it
    gives (an `Overrides` field), except api_key_env: where the key is read from."""

    name: str
    api: Optional[str] = None
    base_url: Optional[str] = None
    model: Optional[str] = None
    api_key_env: Optional[str] = None
    system: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    timeout: Optional[float] = None
    connect_timeout: Optional[float] = None
    max_time: Optional[float] = None
    mcp: Optional[List[str]] = None  # the [mcp.servers.NAME] this profile's runs use
    allow_tools: Optional[List[str]] = None  # tools that run without asking (an "always" adds one)
    max_steps: Optional[int] = None  # rounds of tool calls in one answer (default 10)


# The TOML values a profile key of each type takes (a float may be written as an integer).
_TOML_TYPES: Dict[str, tuple] = {"Optional[str]": (str,), "Optional[int]": (int,), "Optional[float]": (int, float), "Optional[List[str]]": (list,)}
_PROFILE_TYPES: Dict[str, tuple] = {f.name: _TOML_TYPES[str(f.type)] for f in fields(Profile) if f.name != "name"}
# What belongs to one API: dropped from a profile used with another API (`resolve`).
_PROFILE_ENDPOINT = ("api", "base_url", "model", "api_key_env")
_TOP_LEVEL = {"default", "profiles", "theme", "history", "mcp"}


@dataclass
class Config:
    path: Path
    default: Optional[str] = None
    theme: Optional[str] = None
    history: bool = True  # store conversations (the `history` switch)
    profiles: Dict[str, Profile] = field(default_factory=dict)
    mcp: Optional["McpConfig"] = None  # the [mcp] table (llmchat.tools.config), when there is one


def load_config(path: Optional[Path] = None) -> Config:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    data = _parse_toml(raw, path)
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ConfigError(f"{path}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP_LEVEL))})")
    config = Config(path)
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{path}: 'default' must be a profile name")
    config.default = default
    theme = data.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise ConfigError(f"{path}: 'theme' must be a theme name")
    config.theme = theme
    history = data.get("history", True)
    if not isinstance(history, bool):
        raise ConfigError(f"{path}: 'history' must be true or false")
    config.history = history
    if "mcp" in data:  # the MCP servers' settings are read by their own module
        from llmchat.tools.config import parse_mcp

        try:
            config.mcp = parse_mcp(data["mcp"])
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: profile {name!r} must be a table")
        values: Dict[str, Any] = {}
        for key, value in table.items():
            if key not in _PROFILE_TYPES:
                known = ", ".join(_PROFILE_TYPES)
                raise ConfigError(f"{path}: profile {name!r}: unknown key {key!r} (known: {known})")
            if isinstance(value, bool) or not isinstance(value, _PROFILE_TYPES[key]):
                kind = _PROFILE_TYPES[key][-1].__name__
                raise ConfigError(f"{path}: profile {name!r}: {key} must be a {kind}")
            if key == "mcp" and not all(isinstance(server, str) for server in value):
                raise ConfigError(f"{path}: profile {name!r}: mcp must be a list of [mcp.servers.NAME] names")
            if key == "allow_tools" and not all(isinstance(tool, str) for tool in value):
                raise ConfigError(f"{path}: profile {name!r}: allow_tools must be a list of tool names")
            if key == "max_steps" and value < 1:
                raise ConfigError(f"{path}: profile {name!r}: max_steps must be at least 1")
            values[key] = value
        for server in values.get("mcp", []):
            if config.mcp is None or server not in config.mcp.servers:
                raise ConfigError(f"{path}: profile {name!r}: mcp server {server!r} is not defined (add [mcp.servers.{server}])")
        if "api" in values and values["api"] not in API_NAMES:
            raise ConfigError(f"{path}: profile {name!r}: unknown api {values['api']!r} (choose from: {', '.join(API_NAMES)})")
        config.profiles[name] = Profile(name, **values)
    if config.default is not None and config.default not in config.profiles:
        raise ConfigError(f"{path}: default profile {config.default!r} is not defined")
    return config


def _parse_toml(raw: bytes, path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):  # imported only when there is a file to read
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def save_theme(name: str, path: Optional[Path] = None) -> Path:
    """Remember the TUI theme in the config file: the top-level `theme = "..."` line is replaced,
    or inserted above the first table, and every other byte of the file is kept (comments,
    order, profiles). The edit is checked by parsing both versions: if anything but the theme
    would change (a multi-line string can fool a line edit), nothing is written. A new file is
    created 0600; an existing one keeps its mode. The write is atomic (temporary file, rename)."""
    import json

    path = path or config_path()
    target = path.resolve()  # a symlinked config file stays a symlink
    try:
        raw: Optional[bytes] = target.read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    old = "" if raw is None else raw.decode("utf-8", "replace")
    new = _set_top_level(old, "theme", json.dumps(name))  # a JSON string is a TOML basic string
    expected = {**_parse_toml(old.encode(), path), "theme": name}
    try:
        safe = _parse_toml(new.encode(), path) == expected
    except ConfigError:
        safe = False
    if not safe:
        raise ConfigError(f"{path}: cannot update its theme line safely; set theme = {json.dumps(name)} by hand")
    mode = 0o600 if raw is None else target.stat().st_mode & 0o777
    _write_atomic(target, new.encode("utf-8"), mode)
    return path


_TABLE_HEADER = re.compile(r"[ \t]*\[")


def _set_top_level(text: str, key: str, value: str) -> str:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    first_table = next((i for i, line in enumerate(lines) if _TABLE_HEADER.match(line)), len(lines))
    assignment = re.compile(rf"""[ \t]*(?:{key}|"{key}"|'{key}')[ \t]*=""")
    for i in range(first_table):
        if assignment.match(lines[i]):
            ending = lines[i][len(lines[i].rstrip("\r\n")) :] or newline
            lines[i] = f"{key} = {value}{ending}"
            return "".join(lines)
    # Not there yet: above the first table and the comments that introduce it, or at the end.
    at = first_table
    while at < len(lines) and at > 0 and lines[at - 1].lstrip().startswith("#"):
        at -= 1
    insert = f"{key} = {value}{newline}"
    if at < len(lines) and lines[at].strip():
        insert += newline  # keep a blank line between the setting and what follows
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += newline
    lines.insert(at, insert)
    return "".join(lines)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    created = False
    try:
        ensure_private_dir(path.parent)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, mode)  # exactly the old mode, whatever the umask
            file.write(data)
            file.flush()
            os.fsync(fd)
        os.replace(temporary, path)
    except OSError as exc:
        if created:
            temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


@dataclass
class Settings:
    """Everything one run needs, resolved. `api_key` never reaches a repr or a log."""

    api: str
    model: str
    base_url: str
    profile: Optional[str] = None
    system: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_time: Optional[float] = None  # seconds for the whole answer; None: no limit
    api_key: Optional[str] = field(default=None, repr=False)
    api_key_env: Optional[str] = None  # where the key was looked for (a profile's api_key_env, else the API's)
    demo: bool = False
    demo_reason: str = ""
    # History: whether this run stores its conversation (--no-history, `history = false`), and
    # the conversation to continue (-c / --conversation, resolved to its ID), for every face.
    history: bool = True
    conversation_id: Optional[int] = None
    # Every secret this run knows of (see `known_secrets`): kept out of history and messages.
    secrets: Tuple[str, ...] = field(default=(), repr=False)
    # The MCP servers this run's tools come from (the profile's `mcp`): llmchat.tools.servers
    # starts them (`ToolServers(settings.mcp_servers, secrets=settings.secrets)`).
    mcp_servers: Tuple["ServerConfig", ...] = ()
    # Tools: which run without asking (the profile's `allow_tools`, --allow-tool; all with
    # --allow-tools), and how many rounds of tool calls one answer may make (`max_steps`).
    allow_tools: Tuple[str, ...] = ()
    allow_all_tools: bool = False
    max_steps: int = DEFAULT_MAX_STEPS
    config_path: Optional[Path] = None  # where an "always allow" is remembered (`allow_tool`)
    # The command line's tool options as given (`apply_tool_flags`' keywords): a face that
    # resolves settings again (another profile, another conversation) applies them again.
    tool_flags: Dict[str, Any] = field(default_factory=dict)


def continue_flags(flags: Overrides, conversation: Any, config: Config) -> Optional[Overrides]:
    """The flags that continue a stored `conversation` (anything with id, profile, api, model
    and base_url: a history `ConversationInfo`) with the profile, API, model and base URL it
    had, not with today's defaults (which could send a local conversation to a remote service).
    --model or --base-url replace just that; --profile or --api start from those instead. None
    when the command line chose (or the conversation recorded no API). ConfigError when the
    conversation's base URL was not stored (it held a credential) and nothing else gives one.
    Shared by `llmchat -c` and the TUI's conversation list; `flags` is not changed."""
    if flags.profile is not None or flags.api is not None or conversation.api is None:
        return None
    profile = config.profiles.get(conversation.profile or "")
    chosen = Overrides(**{name: getattr(flags, name) for name in Overrides.__dataclass_fields__})
    chosen.profile = profile.name if profile is not None else None
    chosen.api = conversation.api
    chosen.model = flags.model or conversation.model
    chosen.base_url = flags.base_url or conversation.base_url
    from_profile = profile is not None and profile.base_url and profile.api in (None, conversation.api)
    if chosen.base_url is None and conversation.api != "demo" and not from_profile:
        raise ConfigError(f"conversation {conversation.id}'s base URL held a credential, so it was not stored: give --base-url")
    return chosen


def resolve(flags: Overrides, env: Mapping[str, str], config: Config) -> Settings:
    """flags > environment (LLMCHAT_*) > the chosen profile > provider defaults.

    A profile's explicit base_url is more specific than a provider-wide variable such as
    OPENAI_BASE_URL, so the provider variable only replaces the built-in default.
    """
    from llmchat.providers import provider_class

    profile_name = flags.profile or env.get(SETTING_ENVS["profile"]) or config.default
    profile = Profile("")
    if profile_name:
        if profile_name not in config.profiles:
            known = ", ".join(config.profiles) or "none defined"
            raise ConfigError(f"unknown profile {profile_name!r} (profiles: {known}; see `llmchat models`)")
        profile = config.profiles[profile_name]

    def pick(name: str) -> Any:
        value = getattr(flags, name)
        if value is None and name in SETTING_ENVS:
            value = env.get(SETTING_ENVS[name]) or None
        if value is None:
            value = getattr(profile, name)
        return value

    api = pick("api")
    if api is not None and profile.api is not None and api != profile.api:
        # The profile's model, URL and key belong to its own API, not the one asked for.
        kept = {key: getattr(profile, key) for key in _PROFILE_TYPES if key not in _PROFILE_ENDPOINT}
        profile = Profile(profile.name, **kept)
    model = pick("model")
    base_url = pick("base_url")
    demo_reason = ""
    if api is None:
        if model is not None or base_url is not None:
            api = "openai-chat"
        elif env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
            api = "openai-chat"  # a base URL alone: a keyless OpenAI-compatible server
        elif env.get("ANTHROPIC_API_KEY"):
            api = "anthropic"
        else:
            api = DEMO_API
            demo_reason = "no API key, config or --api given"
    if api not in API_NAMES:
        raise ConfigError(f"unknown API {api!r} (choose from: {', '.join(API_NAMES)})")

    settings = Settings(
        api=api,
        model=model or "",
        base_url=base_url or "",
        profile=profile_name,
        system=pick("system"),
        temperature=pick("temperature"),
        max_tokens=pick("max_tokens"),
        mcp_servers=_mcp_servers(profile, config),
        allow_tools=tuple(profile.allow_tools or ()),
        max_steps=profile.max_steps or DEFAULT_MAX_STEPS,
        config_path=config.path,
    )
    settings.timeout = _seconds("timeout", pick("timeout"), 120.0)
    settings.connect_timeout = _seconds("connect timeout", pick("connect_timeout"), 10.0)
    max_time = pick("max_time")  # no limit unless asked for
    settings.max_time = None if max_time is None else _seconds("max time", max_time, 0.0)
    if settings.temperature is not None and not 0 <= settings.temperature <= 2:
        raise ConfigError(f"temperature must be between 0 and 2, not {settings.temperature:g}")
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise ConfigError(f"max tokens must be at least 1, not {settings.max_tokens}")

    if api == DEMO_API:
        from llmchat.demo.answer import DEMO_MODEL

        settings.demo = True
        settings.demo_reason = demo_reason or "the demo API was chosen"
        settings.model = settings.model or DEMO_MODEL
        settings.secrets = known_secrets(env, config)
        return settings  # the base URL is the in-process demo server's, known once it starts

    provider = provider_class(api)
    settings.model = settings.model or provider.default_model
    if not settings.base_url:
        from_env = env.get(provider.base_url_env)
        if from_env and api == "ollama":
            from llmchat.providers.ollama import normalise_host

            from_env = normalise_host(from_env)
        settings.base_url = from_env or provider.default_base_url
    _check_url(settings.base_url)
    key_env = profile.api_key_env or provider.api_key_env
    if key_env:
        settings.api_key_env = key_env
        settings.api_key = _clean_key(key_env, env.get(key_env))
        official = settings.base_url.rstrip("/") == provider.default_base_url
        if settings.api_key is None and official:
            raise ConfigError(f"{key_env} is not set: export it, or use --base-url for a local server")
    parts = urlsplit(settings.base_url)
    if settings.api_key is not None and (parts.username or parts.password):
        # httpx would send the URL's user:password as Basic auth in place of the key.
        raise ConfigError(
            f"the base URL {redact_url(settings.base_url)} carries a user name or password and {key_env} is set:"
            " the URL's credentials would be sent instead of the key; remove one of them"
        )
    settings.secrets = known_secrets(env, config, settings)
    return settings


def apply_tool_flags(
    settings: Settings,
    config: Config,
    *,
    mcp: Sequence[str] = (),
    no_tools: bool = False,
    allow: Sequence[str] = (),
    allow_all: bool = False,
    max_steps: Optional[int] = None,
) -> None:
    """The command line's tool options on resolved `settings`: `--mcp NAME` enables that
    [mcp.servers.NAME] too, `--no-tools` none at all, `--allow-tool NAME` / `--allow-tools`
    let calls run without asking, `--max-steps N`. ConfigError for a server not defined. They
    are kept in `settings.tool_flags`: `apply_tool_flags(new, config, **old.tool_flags)` gives
    settings resolved again (another profile) the same."""
    settings.tool_flags = dict(mcp=tuple(mcp), no_tools=no_tools, allow=tuple(allow), allow_all=allow_all, max_steps=max_steps)
    servers = config.mcp.servers if config.mcp is not None else {}
    chosen = list(settings.mcp_servers)
    for name in mcp:
        if name not in servers:
            known = ", ".join(servers) or "none defined"
            raise ConfigError(f"--mcp {name}: no such server (servers: {known}; add [mcp.servers.{name}] to {config.path})")
        if servers[name] not in chosen:
            chosen.append(servers[name])
    settings.mcp_servers = () if no_tools else tuple(chosen)
    settings.allow_tools = tuple(dict.fromkeys([*settings.allow_tools, *allow]))
    settings.allow_all_tools = settings.allow_all_tools or allow_all
    if max_steps is not None:
        if max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, not {max_steps}")
        settings.max_steps = max_steps


def allow_tool(profile: str, tool: str, path: Optional[Path] = None) -> Path:
    """Remember that `tool` runs without asking in `profile`: its table's `allow_tools = [...]`
    line gets the name (the line is added below the table's header when there is none), and
    every other byte of the file is kept. Checked as `save_theme` is: if parsing the new file
    gives anything but that change, nothing is written (ConfigError)."""
    import json

    path = path or config_path()
    target = path.resolve()
    try:
        old = target.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    data = _parse_toml(old.encode(), path)
    table = data.get("profiles", {}).get(profile)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [profiles.{profile}] table to remember the tool in")
    tools = list(table.get("allow_tools") or [])
    if tool in tools:
        return path
    tools.append(tool)
    value = "[" + ", ".join(json.dumps(name) for name in tools) + "]"
    new = _set_in_table(old, profile, "allow_tools", value)
    table["allow_tools"] = tools
    try:
        safe = new is not None and _parse_toml(new.encode(), path) == data
    except ConfigError:
        safe = False
    if not safe or new is None:
        raise ConfigError(f"{path}: cannot update profile {profile!r} safely; add {json.dumps(tool)} to its allow_tools by hand")
    _write_atomic(target, new.encode("utf-8"), target.stat().st_mode & 0o777)
    return path


def _set_in_table(text: str, profile: str, key: str, value: str) -> Optional[str]:
    """`text` with `key = value` in the [profiles.PROFILE] table (replaced, or added below its
    header); None when the table has no header line of its own."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    name = re.escape(profile)
    header = re.compile(rf"""[ \t]*\[[ \t]*profiles[ \t]*\.[ \t]*(?:{name}|"{name}"|'{name}')[ \t]*\][ \t]*(?:#.*)?$""")
    start = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\r\n"))), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _TABLE_HEADER.match(lines[i])), len(lines))
    assignment = re.compile(rf"""[ \t]*(?:{key}|"{key}"|'{key}')[ \t]*=""")
    for i in range(start + 1, end):
        if assignment.match(lines[i]):
            ending = lines[i][len(lines[i].rstrip("\r\n")) :] or newline
            lines[i] = f"{key} = {value}{ending}"
            return "".join(lines)
    if not lines[start].endswith("\n"):
        lines[start] += newline
    lines.insert(start + 1, f"{key} = {value}{newline}")
    return "".join(lines)


def _mcp_servers(profile: Profile, config: Config) -> Tuple["ServerConfig", ...]:
    servers = config.mcp.servers if config.mcp is not None else {}
    for name in profile.mcp or ():
        if name not in servers:
            raise ConfigError(f"profile {profile.name!r}: mcp server {name!r} is not defined (add [mcp.servers.{name}])")
    return tuple(servers[name] for name in profile.mcp or ())


# The key variables of every provider (tests/unit/test_config.py checks this against them):
# a key another API would use is still a secret, wherever it turns up.
PROVIDER_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
_URL_ENVS = ("LLMCHAT_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST")


def known_secrets(env: Mapping[str, str], config: Config, settings: Optional[Settings] = None) -> Tuple[str, ...]:
    """Every secret llmchat knows of: the values of the key variables of every API and every
    profile, and the credentials and query values of every base URL (the run's, the profiles',
    the environment's), and of every MCP server's URL and the variables its `${NAME}`s read.
    What `redact.Redactor` hides."""
    names = set(PROVIDER_KEY_ENVS)
    names.update(p.api_key_env for p in config.profiles.values() if p.api_key_env)
    found = {env[name].strip() for name in names if env.get(name)}
    urls = [env.get(name) for name in _URL_ENVS] + [p.base_url for p in config.profiles.values()]
    if config.mcp is not None:  # the variables the MCP servers' ${NAME}s read, and their URLs
        from llmchat.tools.config import secret_variables

        found.update(secret_variables(config.mcp.servers, env))
        urls += [server.url for server in config.mcp.servers.values()]
    if settings is not None:
        if settings.api_key:
            found.add(settings.api_key)
        urls.append(settings.base_url)
    for url in urls:
        if url:
            found.update(_url_secrets(url))
    return tuple(sorted(s for s in found if s))


def _url_secrets(url: str) -> Iterator[str]:
    """The user name, password and query values of a URL, as written and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rpartition("@")[0]
        for piece in (userinfo, *userinfo.split(":", 1)):
            yield piece
            yield unquote(piece)
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        yield value
    for raw in parts.query.split("&"):
        yield raw.partition("=")[2]


_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
_QUERY_VALUE = re.compile(r"([?&][^=&#]*=)[^&#]*")


def redact_url(url: str) -> str:
    """The URL as it may be shown: user name, password and query values masked, quoted, one
    line. Works on any string, valid URL or not."""
    from llmchat.sanitize import one_line

    shown = _QUERY_VALUE.sub(r"\1***", _USERINFO.sub("***@", url))
    return repr(one_line(shown))


def _clean_key(name: str, value: Optional[str]) -> Optional[str]:
    """The key as it can go in a header: a pasted newline or space is trimmed; anything else
    unsendable is an error that names the variable, never the value."""
    if value is None:
        return None
    key = value.strip()
    if not key:
        return None
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(
            f"{name} contains characters that cannot be sent in an HTTP header (spaces, control or non-ASCII characters); check its value"
        )
    return key


def _seconds(name: str, value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return seconds


_UNSENDABLE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _check_url(url: str) -> None:
    """A usage error, naming the URL with its credentials masked, for anything httpx could not
    send (it would raise, not fail the request)."""
    bad = _UNSENDABLE.search(url)
    if bad:
        what = "a space" if bad.group() == " " else f"a control character (U+{ord(bad.group()):04X})"
        raise ConfigError(f"base URL {redact_url(url)} contains {what}, at character {bad.start() + 1}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ConfigError(f"base URL {redact_url(url)} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL must be http:// or https:// with a host, not {redact_url(url)}")
    if port == 0:
        raise ConfigError(f"base URL {redact_url(url)} has port 0")
    import httpx  # the client imports it next anyway: no cost to the run

    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"base URL {redact_url(url)} is not a valid URL ({redact_url(str(exc))[1:-1]})") from None
