"""The subcommands: `llmchat config path`, `llmchat models`, `llmchat demo-server`.

Imported only when the first argument names one of them (see `llmchat.cli.SUBCOMMANDS`).
Errors raise `llmchat.cli.CommandExit` through `fail`, which `cli.main` turns into the exit code.
"""

from __future__ import annotations

from typing import Optional

import typer

from llmchat.cli import _CONTEXT, fail
from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import USAGE as EXIT_USAGE

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
        fail(str(exc), EXIT_USAGE)
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
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_ERROR)
