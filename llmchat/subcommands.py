"""The subcommands: `llmchat history ...`, `llmchat config path`, `llmchat models`,
`llmchat tools`, `llmchat demo-server`.

Imported only when the first argument names one of them (see `llmchat.cli.SUBCOMMANDS`).
Errors raise `llmchat.exits.CommandExit` through `fail`, which `cli.main` turns into the exit
code. Nothing here imports llmchat.cli (it imports this module).
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any, Dict, List, NoReturn, Optional

import typer

from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import TERMINATED as EXIT_TERMINATED
from llmchat.exitcodes import USAGE as EXIT_USAGE
from llmchat.exits import fail
from llmchat.options import HELP_CONTEXT, OPTIONS
from llmchat.terminal import isatty, silence_stdout

tools = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=HELP_CONTEXT, rich_markup_mode=None, help="llmchat subcommands.")
config_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="The config file.")
tools.add_typer(config_app, name="config")
history_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Stored conversations, newest first: list (the default), show, export, search, rename, rm, fork, switch, diff, replay, path.",
)
tools.add_typer(history_app, name="history")


@config_app.command("path")
def config_path_command() -> None:
    """Print where the config file is (or would be)."""
    from llmchat.config import config_path

    _out(f"{config_path()}\n")


@tools.command("models")
def models_command(
    remote: bool = typer.Option(
        False, "--remote", help="Ask the server which models it has (OpenAI /v1/models, Anthropic /v1/models, Ollama /api/tags)."
    ),
    as_json: bool = typer.Option(False, "--json", help="A JSON array, for scripts."),
    profile: Optional[str] = typer.Option(None, *OPTIONS["profile"].flags, help="With --remote: the profile whose server to ask."),
    api: Optional[str] = typer.Option(None, *OPTIONS["api"].flags, help=f"With --remote: {OPTIONS['api'].help}"),
    base_url: Optional[str] = typer.Option(None, *OPTIONS["base_url"].flags, help="With --remote: the API's base URL."),
) -> None:
    """List the model profiles in the config file (* marks the default), or with --remote the
    models the server offers."""
    from llmchat.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    if remote:
        names = _remote_models(config, profile, api, base_url)
        _out(json.dumps(names, indent=2) + "\n" if as_json else "".join(f"{name}\n" for name in names))
        return
    if profile is not None or api is not None or base_url is not None:
        fail("-p, --api and --base-url choose the server for --remote", EXIT_USAGE)
    if as_json:
        rows = [
            {"name": name, "default": name == config.default, "api": p.api, "model": p.model, "base_url": p.base_url}
            for name, p in config.profiles.items()
        ]
        _out(json.dumps(rows, indent=2) + "\n")
        return
    if not config.profiles:
        print(f"No profiles in {config.path}.")
        print("Without one, llmchat uses OPENAI_API_KEY or ANTHROPIC_API_KEY when set, else the demo model.")
        print('Example profile:\n\n[profiles.local]\napi = "openai-chat"\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "my-model"')
        return
    width = max(len(name) for name in config.profiles)
    for name, p in config.profiles.items():
        mark = "*" if name == config.default else " "
        details = " ".join(f"{k}={v}" for k, v in (("api", p.api), ("model", p.model), ("base_url", p.base_url)) if v)
        print(f"{mark} {name:<{width}}  {details}")


def _remote_models(config: Any, profile: Optional[str], api: Optional[str], base_url: Optional[str]) -> List[str]:
    """The names the server of these settings lists (the demo model: its own server's)."""
    import asyncio

    from llmchat.config import ConfigError, Overrides, resolve
    from llmchat.providers import get_provider
    from llmchat.stream.client import ModelListError, StreamingClient, tls_may_be_needed

    try:
        settings = resolve(Overrides(profile=profile, api=api, base_url=base_url), os.environ, config)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def ask() -> List[str]:
        demo = None
        url = settings.base_url
        if settings.demo:
            from llmchat.demo.server import FakeLLMServer

            demo = FakeLLMServer()
            url = await demo.start() + "/v1"
        client = StreamingClient(connect_timeout=settings.connect_timeout, read_timeout=settings.timeout, verify=tls_may_be_needed(url))
        try:
            return await client.list_models(get_provider("openai-chat" if settings.demo else settings.api), url, settings.api_key)
        finally:
            await client.aclose()
            if demo is not None:
                await demo.close()

    try:
        return asyncio.run(ask())
    except ModelListError as exc:
        fail(f"cannot list the models: {exc}", EXIT_ERROR)


@tools.command("tools")
def tools_command(
    name: Optional[str] = typer.Argument(None, metavar="[SERVER]", help="One server (a [mcp.servers.NAME] of the config file)."),
    as_json: bool = typer.Option(False, "--json", help="JSON, for scripts: an array of servers (one object with SERVER)."),
) -> None:
    """Start the MCP servers of the config file ([mcp.servers.NAME]) and list each: its state
    and its tools with their descriptions (named as when all the listed servers are enabled).
    Exit 1 when a server failed to start."""
    import asyncio

    from llmchat.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    servers = dict(config.mcp.servers) if config.mcp is not None else {}
    if name is not None:
        if name not in servers:
            fail(f"no mcp server {name!r} in {config.path} (servers: {', '.join(servers) or 'none'})", EXIT_USAGE)
        servers = {name: servers[name]}
    if not servers:
        if as_json:
            _out("[]\n")
            return
        print(f"No MCP servers in {config.path}.")
        print('Example:\n\n[mcp.servers.files]\ncommand = "npx"\nargs = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]')
        print('\n[profiles.local]\nmcp = ["files"]   # the servers this profile\'s runs use')
        return
    from llmchat.tools.servers import ToolServers

    async def listing() -> List[Any]:
        async with ToolServers(servers.values()) as running:
            return running.servers()

    infos = asyncio.run(listing())
    profiles = {server: [p.name for p in config.profiles.values() if server in (p.mcp or ())] for server in servers}
    rows = [_server_json(info, profiles[info.name]) for info in infos]
    if as_json:
        _out(_json(rows[0] if name is not None else rows))
    else:
        _out(_servers_text(rows, detailed=name is not None))
    if any(info.state != "ready" for info in infos):
        raise typer.Exit(EXIT_ERROR)


def _server_json(info: Any, profiles: List[str]) -> Dict[str, Any]:
    """A server as `llmchat tools --json` gives it: these keys, always."""
    return {
        "name": info.name,
        "transport": info.transport,
        "target": info.target,
        "state": info.state,
        "error": info.error,
        "tool_timeout": info.tool_timeout,
        "profiles": profiles,
        "tools": [{"name": t.name, "remote_name": t.remote_name, "description": t.description, "input_schema": t.input_schema} for t in info.tools],
    }


def _servers_text(rows: List[Dict[str, Any]], detailed: bool) -> str:
    """Each server (name, state, transport and target, the profiles that use it), its error or
    its tools. `detailed` (one server): whole descriptions and each tool's parameters."""
    from llmchat.sanitize import one_line, strip_controls

    lines: List[str] = []
    for row in rows:
        used = f"  (profiles: {', '.join(one_line(p) for p in row['profiles'])})" if row["profiles"] else ""
        lines.append(f"{one_line(row['name'])}  {row['state']}  {row['transport']}: {one_line(row['target'])}{used}")
        if row["error"]:
            lines.append(f"  {one_line(row['error'])}")
        tools = row["tools"]
        width = max((len(one_line(t["name"])) for t in tools), default=0)
        for tool in tools:
            if not detailed:
                lines.append(f"  {one_line(tool['name']):<{width}}  {one_line(tool['description'], 100)}")
                continue
            lines.append(
                f"  {one_line(tool['name'])}" + (f"  (on the server: {one_line(tool['remote_name'])})" if tool["remote_name"] != tool["name"] else "")
            )
            for text in strip_controls(tool["description"]).strip().splitlines():
                lines.append(f"      {text.rstrip()}")
            schema = tool["input_schema"] if isinstance(tool["input_schema"], dict) else {}
            properties = schema.get("properties")
            properties = properties if isinstance(properties, dict) else {}
            required = schema.get("required")
            required = required if isinstance(required, list) else []
            for param, spec in properties.items():
                kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
                mark = "" if param in required else ", optional"
                lines.append(f"      - {one_line(param)} ({one_line(kind)}{mark})")
    return "\n".join(lines) + "\n"


@tools.command("demo-server")
def demo_server_command(
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    tokens: Optional[int] = typer.Option(None, "--tokens", help="Answer length in tokens."),
    tps: float = typer.Option(0.0, "--tps", help="Tokens per second (0: as fast as possible)."),
    ttft: float = typer.Option(0.0, "--ttft", help="Seconds before the first token."),
    stall_after: Optional[int] = typer.Option(None, "--stall-after", help="Stop sending after K tokens (connection stays open)."),
    drop_after: Optional[int] = typer.Option(None, "--drop-after", help="Drop the connection after K tokens."),
    error_after: Optional[int] = typer.Option(None, "--error-after", help="Send a mid-stream error after K tokens."),
    status: Optional[int] = typer.Option(None, "--status", help="Answer every request with this HTTP error status."),
    retry_after: Optional[str] = typer.Option(None, "--retry-after", help="Retry-After header with --status."),
    finish: str = typer.Option("stop", "--finish", help="stop or length."),
) -> None:
    """Run the fake LLM server (all four APIs) until Ctrl-C.

    Per-request options ride in the URL: http://127.0.0.1:PORT/o/tokens=50&tps=20/v1
    """
    import asyncio

    from llmchat.demo.server import Behaviour, FakeLLMServer

    behaviour = Behaviour(
        tokens=tokens,
        tps=tps,
        ttft=ttft,
        stall_after=stall_after,
        drop_after=drop_after,
        error_after=error_after,
        status=status,
        retry_after=retry_after,
        finish=finish,
    )
    server = FakeLLMServer(behaviour, host=host, port=port)

    async def serve() -> None:
        await server.start()
        print(f"llmchat demo server on {server.url}  (OpenAI: {server.url}/v1, Anthropic and Ollama: {server.url})", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_ERROR)


# --- llmchat history -----------------------------------------------------------------------
#
# Everything the model wrote goes to stdout unchanged when it is a pipe or a file, and with
# control sequences stripped when it is a terminal. Notes go to stderr. An unknown ID is a usage
# error (exit 2); a store that cannot be read is an error (exit 1).


def _open_history(must_exist: bool = False) -> Any:
    """The store, or None when there is no history file yet (nothing was stored)."""
    from llmchat.history import HistoryError, HistoryStore, default_path

    path = default_path()
    if not path.exists():
        if must_exist:
            _no_such(None)
        return None
    try:
        store = HistoryStore.open(path, warn=_note)
        store.mark_interrupted_on_start(wait=False)
    except HistoryError as exc:
        fail(str(exc), EXIT_ERROR)
    return store


def _no_such(conversation_id: Optional[int]) -> NoReturn:
    what = f"no conversation {conversation_id}" if conversation_id is not None else "no conversations yet"
    fail(f"{what} (see `llmchat history`)", EXIT_USAGE)


def _call(store: Any, method: str, *args: Any, **kw: Any) -> Any:
    """A store call; its errors become one-line errors with the right exit code."""
    from llmchat.history import HistoryError, UnknownConversation, UnknownMessage

    try:
        return getattr(store, method)(*args, **kw)
    except UnknownConversation as exc:
        _no_such(exc.conversation_id)
    except UnknownMessage as exc:
        see = f"llmchat history show {exc.conversation_id} --tree" if exc.conversation_id is not None else "llmchat history show ID --tree"
        fail(f"{exc} (see `{see}`)", EXIT_USAGE)
    except HistoryError as exc:
        fail(str(exc), EXIT_ERROR)


def _out(text: str, *, clean: bool = False) -> None:
    """To stdout: bytes as they are for a pipe or a file, controls stripped for a terminal
    (unless `clean`: text whose stored parts were sanitised already, with colours of our own). A
    reader that went away ends the command quietly (exit 0, as `head` expects); a closed or
    full stdout is one error line (exit 1)."""
    from llmchat.output import encode

    out = sys.stdout
    if out is None:
        fail("stdout is closed: there is nowhere to write", EXIT_ERROR)
    try:
        if _on_terminal() and not clean:
            from llmchat.sanitize import strip_controls

            text = strip_controls(text)
        out.buffer.write(encode(_redactor().redact(text)))
        out.flush()
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None
    except (OSError, ValueError) as exc:  # ValueError: a stdout closed under us
        silence_stdout()
        fail(f"cannot write to stdout: {getattr(exc, 'strerror', None) or exc}", EXIT_ERROR)


def _on_terminal() -> bool:
    return isatty(sys.stdout)


_REDACTOR: Any = None


def _redactor() -> Any:
    """Masks every secret llmchat knows of today (see `config.known_secrets`) in what the history
    verbs print or export: rows stored before llmchat masked keys may still hold one."""
    global _REDACTOR
    if _REDACTOR is None:
        from llmchat.config import ConfigError, known_secrets, load_config
        from llmchat.redact import Redactor

        try:
            config = load_config()
        except ConfigError:
            from llmchat.config import Config, config_path

            config = Config(config_path())
        _REDACTOR = Redactor(known_secrets(os.environ, config))
    return _REDACTOR


def _conversation_id(value: int) -> int:
    """An ID as the store keeps them (1 to 2^63 - 1); anything else names no conversation."""
    if not 0 < value < 2**63:
        _no_such(value)
    return value


def _limit(value: Optional[int]) -> Optional[int]:
    if value is not None and value < 0:
        fail(f"-n/--limit must be 0 or more, not {value}", EXIT_USAGE)
    return value


def _note(text: str) -> None:
    from llmchat.sanitize import one_line

    print(one_line(text), file=sys.stderr)


@history_app.callback(invoke_without_command=True)
def history_list_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="A JSON array, for scripts."),
    limit: Optional[int] = typer.Option(None, "-n", "--limit", help="At most N conversations."),
) -> None:
    """List conversations, newest first: ID, last used, messages, model, title."""
    if ctx.invoked_subcommand is not None:
        return
    store = _open_history()
    conversations: List[Any] = [] if store is None else _call(store, "list_conversations", _limit(limit))
    if as_json:
        from llmchat.history.markdown import conversation_json

        _out(_json([conversation_json(c) for c in conversations]))
        return
    if not conversations:
        _note("No conversations yet.")
        return
    from llmchat.history.markdown import local_time
    from llmchat.sanitize import one_line

    # Each stored value is one clean line of its own: a title holding control sequences can
    # neither move the cursor nor swallow the rows after it.
    models = {c.id: one_line(c.model or "-") for c in conversations}
    width = max(2, max(len(str(c.id)) for c in conversations))
    model_width = min(24, max(5, max(len(m) for m in models.values())))
    lines = [f"{'ID':>{width}}  {'LAST USED':<16}  {'MSGS':>4}  {'MODEL':<{model_width}}  TITLE"]
    for c in conversations:
        model = models[c.id][:model_width]
        lines.append(f"{c.id:>{width}}  {local_time(c.last_used_at):<16}  {c.message_count:>4}  {model:<{model_width}}  {one_line(c.title)}")
    _out("\n".join(lines) + "\n")


@history_app.command("show")
def history_show_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    as_json: bool = typer.Option(False, "--json", help="JSON with every message and its figures (and parent_id)."),
    tree: bool = typer.Option(False, "--tree", help="Draw every message of every branch, one line each; * marks the current path."),
) -> None:
    """Print a conversation's current branch as Markdown, each answer with its stored figures;
    a message with siblings (an edited prompt, a regenerated answer) shows ‹ 2/3 › and its ID."""
    store = _open_history(must_exist=True)
    transcript = _call(store, "load", _conversation_id(conversation_id), branches=tree)
    if tree and not as_json:
        from llmchat.history.markdown import tree_lines
        from llmchat.sanitize import one_line

        head = f"{transcript.info.id}  {one_line(transcript.info.title)}"
        _out("\n".join([head, *tree_lines(transcript)]) + "\n")
        return
    from llmchat.history.markdown import PREVIEW_CHARS

    _out(_render(transcript, as_json, _on_terminal(), preview=PREVIEW_CHARS))


@history_app.command("export")
def history_export_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    output: str = typer.Option("-", "-o", "--output", help="The file to write ('-': stdout)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of Markdown."),
    inline: bool = typer.Option(False, "--inline", help="Attachments inside the export as data URLs (else: files in OUTPUT.attachments/)."),
) -> None:
    """Write a conversation to a file as Markdown (created 0600: it is private); its attachments
    go in a folder beside it, linked from it."""
    store = _open_history(must_exist=True)
    transcript = _call(store, "load", _conversation_id(conversation_id))
    links = _export_attachments(store, transcript, output, inline)
    if output == "-":
        _out(_render(transcript, as_json, _on_terminal(), links, inline))
        return
    from llmchat.output import encode

    text = _redactor().redact(_render(transcript, as_json, False, links, inline))
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(encode(text))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_ERROR)
    _note(f"Conversation {conversation_id} written to {output}.")


def _export_attachments(store: Any, transcript: Any, output: str, inline: bool) -> Optional[Dict[str, str]]:
    """The links of an export's attachments, by sha256: data URLs (`inline`), or files written
    (0600, in a 0700 folder) to `OUTPUT.attachments/`, linked relative to the export. None when
    there are none, or the export goes to stdout without `--inline` (then they are only listed)."""
    metas = {m["sha256"]: m for message in transcript.messages for m in message.attachments if m.get("sha256")}
    if not metas or (output == "-" and not inline):
        return None
    links: Dict[str, str] = {}
    if inline:
        import base64

        for digest, meta in metas.items():
            data = _call(store, "attachment_bytes", meta)
            links[digest] = f"data:{meta.get('mime') or 'application/octet-stream'};base64,{base64.b64encode(data).decode('ascii')}"
        return links
    from pathlib import Path

    from llmchat.history.markdown import export_name
    from llmchat.paths import ensure_private_dir

    folder = Path(output + ".attachments")
    for digest, meta in metas.items():
        data = _call(store, "attachment_bytes", meta)
        name = export_name(meta)
        try:
            ensure_private_dir(folder)
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            fail(f"cannot write {folder / name}: {exc.strerror or exc}", EXIT_ERROR)
        links[digest] = f"{folder.name}/{name}"
    return links


def _render(
    transcript: Any, as_json: bool, terminal: bool, links: Optional[Dict[str, str]] = None, inline: bool = False, preview: Optional[int] = None
) -> str:
    """The transcript as Markdown or JSON. For a terminal, each message is sanitised on its own
    (a sequence left open in one cannot swallow the next), its tool calls and results too, and
    JSON escapes what would act. `links`: the attachments' (see `_export_attachments`);
    `preview`: how much of each tool result the Markdown shows (None: all of it)."""
    from llmchat.history.markdown import to_markdown, transcript_json

    if as_json:
        return _json(transcript_json(transcript, links, "data_url" if inline else "file"), terminal)
    if terminal:
        from dataclasses import replace

        from llmchat.sanitize import strip_controls

        for message in transcript.messages:
            message.content = strip_controls(message.content)
            message.reasoning = strip_controls(message.reasoning)
            message.tool_parts = [replace(part, text=strip_controls(part.text)) for part in message.tool_parts]
    return to_markdown(transcript, links, preview=preview)


def _json(data: Any, terminal: Optional[bool] = None) -> str:
    """JSON as written (UTF-8, not \\u-escaped) for a pipe; for a terminal, the characters a
    terminal would act on (C1 controls, BiDi controls) are \\u-escaped too: the same JSON."""
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if _on_terminal() if terminal is None else terminal:
        import re

        text = re.sub("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]", lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


@history_app.command("search")
def history_search_command(
    text: List[str] = typer.Argument(..., help="Words to find (every one must be there)."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array of matches, for scripts."),
    limit: int = typer.Option(50, "-n", "--limit", help="At most N matches."),
) -> None:
    """Find messages and titles, newest first: whole words or their beginnings, any case."""
    words = " ".join(text)
    if not words.strip():
        fail("nothing to search for", EXIT_USAGE)
    store = _open_history()
    hits: List[Any] = [] if store is None else _call(store, "search", words, _limit(limit))
    if as_json:
        from llmchat.history.markdown import hit_json

        _out(_json([hit_json(hit) for hit in hits]))
        return
    if not hits:
        _note("No matches.")
        return
    from llmchat.history.markdown import local_time
    from llmchat.sanitize import one_line

    groups: Dict[int, List[Any]] = {}  # by conversation, in the order of its newest match
    for hit in hits:
        groups.setdefault(hit.conversation_id, []).append(hit)
    lines: List[str] = []
    for conversation_id, group in groups.items():
        lines.append(f"{conversation_id}  {one_line(group[0].title)}")
        for hit in group:
            who = "title" if hit.message_id is None else "you" if hit.role == "user" else (hit.model or "assistant")
            lines.append(f"    {local_time(hit.created_at)}  {one_line(who)}: {one_line(hit.snippet)}")
    _out("\n".join(lines) + "\n")


@history_app.command("rename")
def history_rename_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    title: List[str] = typer.Argument(..., help="The new title."),
) -> None:
    """Give a conversation a new title."""
    text = " ".join(title)
    if not text.strip():
        fail("a title cannot be empty", EXIT_USAGE)
    store = _open_history(must_exist=True)
    _call(store, "rename", _conversation_id(conversation_id), text)


@history_app.command("rm")
def history_rm_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a conversation, after asking (a line from stdin: y to delete)."""
    store = _open_history(must_exist=True)
    info = _call(store, "get", _conversation_id(conversation_id))
    if not yes:
        from llmchat.sanitize import one_line

        sys.stderr.write(f'Delete conversation {info.id} "{one_line(info.title)}" ({info.message_count} messages)? [y/N] ')
        sys.stderr.flush()
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if not answer.endswith("\n"):
            sys.stderr.write("\n")
        if answer.strip().lower() not in ("y", "yes"):
            _note("Not deleted.")
            raise typer.Exit(EXIT_ERROR)
    _call(store, "delete", conversation_id)
    _note(f"Deleted conversation {conversation_id}.")


def _message_id(value: int) -> int:
    if not 0 < value < 2**63:
        fail(f"no message {value} (see `llmchat history show ID --tree`)", EXIT_USAGE)
    return value


@history_app.command("fork")
def history_fork_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    message_id: int = typer.Argument(..., metavar="MSG", help="The last message to copy (see `llmchat history show ID --tree`)."),
    as_json: bool = typer.Option(False, "--json", help="JSON: the new conversation's ID and where it came from."),
) -> None:
    """Copy the path from a conversation's first prompt to MSG into a new conversation, and
    print its ID (`llmchat -c` continues it)."""
    store = _open_history(must_exist=True)
    new_id = _call(store, "fork", _conversation_id(conversation_id), _message_id(message_id))
    if as_json:
        _out(_json({"id": new_id, "forked_from": conversation_id, "message_id": message_id}))
        return
    _out(f"{new_id}\n")


@history_app.command("switch")
def history_switch_command(
    conversation_id: int = typer.Argument(..., metavar="ID", help="The conversation (see `llmchat history`)."),
    message_id: int = typer.Argument(..., metavar="MSG", help="A message on the branch to make current (see `llmchat history show ID --tree`)."),
    as_json: bool = typer.Option(False, "--json", help="JSON: the conversation and its new current leaf."),
) -> None:
    """Make the branch through MSG the current one (down to the leaf last chosen below it), so
    `llmchat -c` and the TUI continue there."""
    store = _open_history(must_exist=True)
    conversation_id = _conversation_id(conversation_id)
    _call(store, "get", conversation_id)
    if _call(store, "message", _message_id(message_id)).conversation_id != conversation_id:
        fail(f"no message {message_id} in conversation {conversation_id} (see `llmchat history show {conversation_id} --tree`)", EXIT_USAGE)
    leaf = _call(store, "select_branch", message_id, touch=True)
    if as_json:
        _out(_json({"conversation_id": conversation_id, "current_leaf_id": leaf}))
        return
    _note(f"Conversation {conversation_id} continues from message {leaf}: `llmchat -c` goes on there.")


@history_app.command("diff")
def history_diff_command(
    first: int = typer.Argument(..., metavar="MSG_A", help="A message (see `llmchat history show ID --tree`)."),
    second: int = typer.Argument(..., metavar="MSG_B", help="The message to compare it with."),
    as_json: bool = typer.Option(False, "--json", help="JSON: both messages with their figures, and the diff as runs."),
) -> None:
    """Compare two messages (two answers to one prompt, say): their figures side by side (model,
    TTFT, tok/s, tokens), then a word diff of their text -- coloured on a terminal,
    [-removed-]{+added+} in a pipe (as `git diff --word-diff=plain`)."""
    from llmchat.history.markdown import figures, message_json, word_diff

    store = _open_history(must_exist=True)
    a = _call(store, "message", _message_id(first))
    b = _call(store, "message", _message_id(second))
    terminal = _on_terminal()
    if terminal:
        from llmchat.sanitize import strip_controls

        a.content, b.content = strip_controls(a.content), strip_controls(b.content)
    runs = word_diff(a.content, b.content)
    if as_json:
        data = {"a": message_json(a), "b": message_json(b), "diff": [{"op": op, "text": text} for op, text in runs]}
        _out(_json(data, terminal), clean=True)
        return
    cells = [figures(a), figures(b)]
    label = max(len(name) for name in cells[0])
    left = max(len(value) for value in cells[0].values())
    lines = [f"{'':<{label}}  {'A':<{left}}  B"]
    lines += [f"{name:<{label}}  {cells[0][name]:<{left}}  {cells[1][name]}" for name in cells[0]]
    colour = terminal and not os.environ.get("NO_COLOR")
    marks = {"-": ("\x1b[31m", "\x1b[0m"), "+": ("\x1b[32m", "\x1b[0m")} if colour else {"-": ("[-", "-]"), "+": ("{+", "+}")}
    body = "".join(text if op == "=" else marks[op][0] + text + marks[op][1] for op, text in runs)
    _out("\n".join(lines) + "\n\n" + body + ("" if body.endswith("\n") else "\n"), clean=True)


def _setting(name: str, help: Optional[str] = None) -> Any:
    """A replay option for the setting `name` of the chat options (llmchat/options.py)."""
    return typer.Option(None, *OPTIONS[name].flags, help=help or OPTIONS[name].help)


@history_app.command("replay")
def history_replay_command(
    message_id: int = typer.Argument(..., metavar="MSG", help="An answer, or a prompt (see `llmchat history show ID --tree`)."),
    profiles: Optional[List[str]] = _setting("profile", "A profile to ask (repeat for several: each is asked in turn)."),
    models: Optional[List[str]] = _setting("model", "A model to ask (repeat for several; with several profiles, each model of each)."),
    api: Optional[str] = _setting("api"),
    base_url: Optional[str] = _setting("base_url"),
    system: Optional[str] = _setting("system"),
    temperature: Optional[float] = _setting("temperature"),
    max_tokens: Optional[int] = _setting("max_tokens"),
    timeout: Optional[float] = _setting("timeout"),
    connect_timeout: Optional[float] = _setting("connect_timeout"),
    max_time: Optional[float] = _setting("max_time"),
    raw: bool = typer.Option(False, *OPTIONS["raw"].flags, help=OPTIONS["raw"].help),
    stats: bool = typer.Option(False, *OPTIONS["stats"].flags, help=OPTIONS["stats"].help),
    reasoning: bool = typer.Option(False, *OPTIONS["reasoning"].flags, help=OPTIONS["reasoning"].help),
    as_json: bool = typer.Option(
        False, "--json", help="Print no answer as it streams, but JSON at the end: the new answer (a list of them with several runs)."
    ),
) -> None:
    """Ask MSG's prompt again with exactly the context it was sent with, with another profile or
    model, and store the answer beside MSG without changing the conversation's current branch
    (`llmchat -c` goes on where it was). Several -p/-m ask each in turn, a comparison bench: the
    answers stream to stdout (each after a `==> model <==` line), then a table of their figures
    goes to stderr. Without -p or -m, the conversation's own settings are used."""
    from itertools import product

    from llmchat.config import ConfigError, Overrides, continue_flags, load_config, resolve

    store = _open_history(must_exist=True)
    _message_id(message_id)
    conversation = _call(store, "get", _call(store, "message", message_id).conversation_id)
    context, prompt, _ = _call(store, "turn_context", message_id)
    stored = _call(store, "prompt_attachments", message_id)  # the turn's own, sent again
    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    given: Dict[str, Any] = dict(
        api=api,
        base_url=base_url,
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_time=max_time,
    )
    runs: List[Any] = []  # the settings of each run, all resolved before the first is sent
    each: List[Optional[str]] = [None]  # not given: the conversation's own
    for profile, model in product(profiles or each, models or each):
        flags = Overrides(profile=profile, model=model, **given)
        try:
            chosen = continue_flags(flags, conversation, config)  # the conversation's own, as -c
            settings = resolve(chosen or flags, os.environ, config)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        settings.history = True
        settings.conversation_id = conversation.id
        if settings.demo and chosen is not None:
            settings.demo_reason = f"replaying a turn of conversation {conversation.id}"
        runs.append(settings)
    if stored or any(m.attachments for m in context):
        from llmchat.attaching import resend
        from llmchat.attachments import AttachmentError

        try:  # each API's limits, before the first run is sent
            resend(stored, runs, context)
        except AttachmentError as exc:
            fail(str(exc), exc.exit_code)

    from llmchat.oneshot import run

    several = len(runs) > 1
    results: List[Any] = []  # (settings, session, exit code) of each run
    for i, settings in enumerate(runs):
        if several and not as_json:
            from llmchat.sanitize import one_line

            gap = "\n" if i else ""  # a blank line after the answer before
            _out(f"{gap}==> {one_line(settings.model)}{_profile_note(settings)} <==\n")
        capture = io.BytesIO() if as_json else None
        sessions: List[Any] = []
        code = run(
            settings,
            prompt,
            raw=raw,
            stats=stats,
            show_reasoning=reasoning,
            history=store,
            context=context,
            attachments=stored,
            place={"regenerates": message_id, "current": False},
            output=capture,
            ended=sessions.append,
        )
        session = sessions[0] if sessions else None
        results.append((settings, session, code, capture))
        if several and not as_json and session is not None and not getattr(session.writer, "ends_with_newline", True):
            _out("\n")
        if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            break
    answers = [_replayed(store, conversation.id, settings, session, capture) for settings, session, _, capture in results]
    if as_json:
        from llmchat.history.markdown import message_json

        data = [dict(message_json(answer), conversation_id=conversation.id, replay_of=message_id, profile=s.profile) for s, answer in answers]
        for item, (_, answer) in zip(data, answers):
            if answer.id == 0:  # not stored
                item["id"] = None
        _out(_json(data if several else data[0]))
    elif several:
        _figures_table([answer for _, answer in answers])
    codes = [code for _, _, code, _ in results]
    worst = next((code for code in codes if code in (EXIT_INTERRUPTED, EXIT_TERMINATED)), max(codes))
    if worst:
        raise typer.Exit(worst)


def _profile_note(settings: Any) -> str:
    from llmchat.sanitize import one_line

    return f" (profile {one_line(settings.profile)})" if settings.profile else ""


def _replayed(store: Any, conversation_id: int, settings: Any, session: Any, capture: Any) -> Any:
    """(settings, the new answer as stored) of one replay run; when it was not stored (the
    store failed, said on stderr), a StoredMessage made from the turn, with ID 0."""
    from llmchat.history import HistoryError, answer_status
    from llmchat.history.records import StoredMessage

    turn = session.turn if session is not None else None
    record = turn.record if turn is not None else None
    answer_id = record.writer.message_id if record is not None and record.writer is not None else None
    if answer_id is not None:
        try:
            return settings, store.message(answer_id)
        except HistoryError as exc:
            _note(f"warning: cannot read answer {answer_id} back: {exc}")
    status, stop_reason, error = answer_status(turn.outcome if turn is not None else None)
    figures = turn.figures(settings.model) if turn is not None else None
    text = capture.getvalue().decode("utf-8", "replace") if capture is not None else ""
    return settings, StoredMessage(
        id=0,
        conversation_id=conversation_id,
        role="assistant",
        content=text,
        status=status,
        model=settings.model,
        api=settings.api,
        created_at=0.0,
        finished_at=None,
        ttft=figures.ttft if figures else None,
        tokens_per_second=figures.tokens_per_second if figures else None,
        input_tokens=figures.input_tokens if figures else None,
        output_tokens=figures.output_tokens if figures else None,
        tokens_exact=figures.tokens_exact if figures else None,
        elapsed=figures.elapsed if figures else None,
        stop_reason=stop_reason,
        error=error,
        parent_id=None,
    )


def _figures_table(answers: List[Any]) -> None:
    """The figures of each answer, one row each (history/markdown.py `figures`), on stderr."""
    from llmchat.history.markdown import figures

    rows = [figures(answer) for answer in answers]
    for row, answer in zip(rows, answers):
        if answer.id == 0:
            row["message"] = "not stored"
    names = list(rows[0])
    widths = {name: max(len(name), *(len(row[name]) for row in rows)) for name in names}
    lines = ["  ".join(f"{name:<{widths[name]}}" for name in names).rstrip()]
    lines += ["  ".join(f"{row[name]:<{widths[name]}}" for name in names).rstrip() for row in rows]
    print("\n".join(lines), file=sys.stderr, flush=True)


@history_app.command("path")
def history_path_command() -> None:
    """Print where the history database is (or would be)."""
    from llmchat.history import default_path

    _out(f"{default_path()}\n")
