"""The `llmchat` command: picks the face from the flags and the terminals, and the subcommands.

Start-up is a feature: only what the chosen face needs is imported (no Textual for one-shot or
--raw, Rich only when rendering to a terminal), so imports stay inside the functions.
Exit codes: 0 ok, 1 error, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

from llmchat import __version__
from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import OK as EXIT_OK
from llmchat.exitcodes import USAGE as EXIT_USAGE

SUBCOMMANDS = ("config", "models", "demo-server")

_CONTEXT = {"help_option_names": ["-h", "--help"]}
_EPILOG = (
    "Subcommands: `llmchat models` (profiles), `llmchat config path`, "
    "`llmchat demo-server --port N` (the fake LLM server). "
    "With no key and no config, llmchat answers with its built-in offline demo model."
)


def _version(value: bool) -> None:
    if value:
        print(f"llmchat {__version__}")
        raise typer.Exit()


def chat(
    prompt: Optional[List[str]] = typer.Argument(
        None, help="The prompt. Piped stdin is added after it (a blank line between). '-' reads stdin."
    ),
    api: Optional[str] = typer.Option(None, "--api", help="openai-chat, openai-responses, anthropic, ollama or demo."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="The API's base URL (e.g. http://127.0.0.1:8000/v1)."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Model name."),
    profile: Optional[str] = typer.Option(None, "-p", "--profile", help="A profile from the config file."),
    system: Optional[str] = typer.Option(None, "-s", "--system", help="System prompt."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature, 0 to 2."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Most output tokens."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds without data before giving up (default 120)."),
    connect_timeout: Optional[float] = typer.Option(None, "--connect-timeout", help="Seconds to connect (default 10)."),
    theme: Optional[str] = typer.Option(None, "--theme", help="Colour theme of the interactive TUI (a built-in or one from themes/)."),
    raw: bool = typer.Option(False, "--raw", help="Write each token to stdout as it arrives, nothing else."),
    stats: bool = typer.Option(False, "--stats", help="TTFT, tokens/s, tokens and stop reason on stderr."),
    reasoning: bool = typer.Option(False, "--reasoning", help="Show the model's reasoning on stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Ask a model; the answer streams to stdout (rendered as Markdown on a terminal)."""
    from llmchat.config import ConfigError, Overrides, load_config, resolve

    flags = Overrides(profile, api, base_url, model, system, temperature, max_tokens, timeout, connect_timeout)
    try:
        settings = resolve(flags, os.environ, load_config())
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    try:
        text = _read_prompt(prompt or [])
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if text is None:
        if sys.stdin.isatty() and sys.stdout is not None and sys.stdout.isatty():
            from llmchat.tui.app import run_tui  # Textual is imported only for this face

            raise typer.Exit(run_tui(settings, flags, theme))
        _fail("no prompt: give one as an argument or on stdin", EXIT_USAGE)
    if not text.strip():
        _fail("the prompt is empty", EXIT_USAGE)

    if sys.stdout is None:
        _fail("stdout is closed: there is nowhere to write the answer", EXIT_ERROR)
    from llmchat.oneshot import run

    raise typer.Exit(run(settings, text, raw=raw, stats=stats, show_reasoning=reasoning))


def _read_prompt(args: List[str]) -> Optional[str]:
    """The argument, then a blank line, then stdin when it is piped; never truncated."""
    # Bytes that are not UTF-8 reach argv as lone surrogates; they become U+FFFD, as on stdin.
    arg = " ".join(args).encode("utf-8", "surrogateescape").decode("utf-8", "replace") if args else None
    if arg == "-":
        return _read_stdin()
    piped = not sys.stdin.isatty() if sys.stdin is not None else False
    data = _read_stdin() if piped else None
    if arg is not None and data:
        return f"{arg}\n\n{data}"
    if arg is not None:
        return arg
    return data


def _read_stdin() -> str:
    if sys.stdin is None:
        return ""
    return sys.stdin.buffer.read().decode("utf-8", "replace")


def _fail(message: str, code: int) -> "typer.Exit":
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


# --- subcommands -------------------------------------------------------------------------

tools = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=_CONTEXT, rich_markup_mode=None, help="llmchat subcommands.")
config_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="The config file.")
tools.add_typer(config_app, name="config")


@config_app.command("path")
def config_path_command() -> None:
    """Print where the config file is (or would be)."""
    from llmchat.config import config_path

    print(config_path())


@tools.command("models")
def models_command() -> None:
    """List the model profiles in the config file; * marks the default."""
    from llmchat.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not config.profiles:
        print(f"No profiles in {config.path}.")
        print("Without one, llmchat uses OPENAI_API_KEY or ANTHROPIC_API_KEY when set, else the demo model.")
        print("Example profile:\n\n[profiles.local]\napi = \"openai-chat\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"my-model\"")
        return
    width = max(len(name) for name in config.profiles)
    for name, p in config.profiles.items():
        mark = "*" if name == config.default else " "
        details = " ".join(f"{k}={v}" for k, v in (("api", p.api), ("model", p.model), ("base_url", p.base_url)) if v)
        print(f"{mark} {name:<{width}}  {details}")


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
        tokens=tokens, tps=tps, ttft=ttft, stall_after=stall_after, drop_after=drop_after,
        error_after=error_after, status=status, retry_after=retry_after, finish=finish,
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
        _fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_ERROR)


def _skip_unused_imports() -> None:
    """httpx imports its own command-line module (and with it Rich, click and pygments) whenever
    click is installed, and httpcore imports trio whenever trio is installed. The llmchat
    process uses neither; marking them absent keeps ~150 ms off every start (tests/benchmarks).
    Done by the command only, never on import, so a program importing llmchat is untouched."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "trio" not in sys.modules:
        sys.modules["trio"] = None  # type: ignore[assignment]


def main(argv: Optional[List[str]] = None) -> int:
    _skip_unused_imports()
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in SUBCOMMANDS:
        command = typer.main.get_command(tools)
    else:
        app = typer.Typer(add_completion=False, context_settings=_CONTEXT, rich_markup_mode=None)
        app.command(epilog=_EPILOG)(chat)
        command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="llmchat", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # click's usage errors, vendored by typer
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(message, file=sys.stderr)
        else:
            print(f"error: {message} (see llmchat --help)", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    return code if isinstance(code, int) else EXIT_OK
