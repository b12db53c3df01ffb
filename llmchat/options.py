"""The chat command's options, declared once.

Each option is one field of `Overrides` (a setting: `config.resolve` ranks the command line's
value above its environment variable and the profile), with its flags, help and variable
beside it, or one row of `FACE_OPTIONS` (what the face does with the answer: output, history,
theme). Everything else is derived from these: `CHAT_OPTIONS`, the table the command's fast
parser, its Typer command and its --help are built from; the environment variables
`config.resolve` reads; the TUI takes the same `Overrides`. Adding an option is adding a field
or a row.

Imports nothing of llmchat: the settings, the command and the subcommands all read it.
"""

# No `from __future__ import annotations`: the table is built from the fields' real types.
from dataclasses import dataclass, field, fields
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union, get_args, get_origin

# Click's context settings for every llmchat command: -h is --help too.
HELP_CONTEXT: Dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def option(*flags: str, help: str, env: Optional[str] = None) -> Any:
    """A field for an option that takes one value; None when not given. `env`: the variable
    that gives the setting when the flag does not."""
    return field(default=None, metadata={"flags": flags, "help": help, "env": env})


@dataclass
class Overrides:
    """The settings the command line gave; None means "not given"."""

    api: Optional[str] = option("--api", help="openai-chat, openai-responses, anthropic, ollama or demo.", env="LLMCHAT_API")
    base_url: Optional[str] = option("--base-url", help="The API's base URL (e.g. http://127.0.0.1:8000/v1).", env="LLMCHAT_BASE_URL")
    model: Optional[str] = option("-m", "--model", help="Model name.", env="LLMCHAT_MODEL")
    profile: Optional[str] = option("-p", "--profile", help="A profile from the config file.", env="LLMCHAT_PROFILE")
    system: Optional[str] = option("-s", "--system", help="System prompt.", env="LLMCHAT_SYSTEM")
    temperature: Optional[float] = option("--temperature", help="Sampling temperature, 0 to 2.")
    max_tokens: Optional[int] = option("--max-tokens", help="Most output tokens.")
    timeout: Optional[float] = option("--timeout", help="Seconds without data before giving up (default 120).", env="LLMCHAT_TIMEOUT")
    connect_timeout: Optional[float] = option("--connect-timeout", help="Seconds to connect (default 10).", env="LLMCHAT_CONNECT_TIMEOUT")
    max_time: Optional[float] = option(
        "--max-time", help="Seconds for the whole answer before giving up, partial answer kept (default: no limit).", env="LLMCHAT_MAX_TIME"
    )


class ChatOption(NamedTuple):
    name: str  # the parameter: a field of Overrides, or a face option
    flags: Tuple[str, ...]
    kind: type  # str, int or float: takes one value; bool: a switch; list: a string, repeatable (each one collected)
    help: str


# The face's own options rather than the model's: how the answer is shown, and which stored
# conversation it belongs to. (A table, not a dataclass: nothing holds them as one object.)
FACE_OPTIONS: Tuple[ChatOption, ...] = (
    ChatOption("theme", ("--theme",), str, "Colour theme of the interactive TUI (a built-in or one from themes/)."),
    ChatOption("raw", ("--raw",), bool, "Write each token to stdout as it arrives, nothing else."),
    ChatOption(
        "json", ("--json",), bool, "Write every event (text, reasoning, tool calls, usage, finish, error) to stdout as JSON lines, for scripts."
    ),
    ChatOption("stats", ("--stats",), bool, "TTFT, tokens/s, tokens and stop reason on stderr."),
    ChatOption("reasoning", ("--reasoning",), bool, "Show the model's reasoning on stderr."),
    ChatOption("continue_last", ("-c", "--continue"), bool, "Continue the most recent conversation (its earlier messages are sent too)."),
    ChatOption("conversation", ("--conversation",), int, "Continue conversation ID (see `llmchat history`)."),
    # The conversation's tree (clitree): where the turn goes, instead of after the current leaf.
    ChatOption(
        "from_message",
        ("--from",),
        int,
        "Continue from message MSG, a new branch (a prompt's ID: send the new prompt in its place). See `llmchat history show ID --tree`.",
    ),
    ChatOption(
        "regenerate",
        ("--regenerate",),
        bool,
        "Ask the last prompt again (with -c, --conversation ID or --from MSG) and keep both answers. Give no prompt.",
    ),
    ChatOption("no_history", ("--no-history",), bool, "Do not store this conversation."),
    ChatOption("attach", ("-a", "--attach"), list, "Attach a file, an http(s) URL or '-' (stdin): text, images, PDFs. Repeatable."),
    # Tools (MCP servers): which run, which calls need no question, how many rounds.
    ChatOption("mcp", ("--mcp",), list, "Enable the MCP server [mcp.servers.NAME] for this run, as well as the profile's. Repeatable."),
    ChatOption("no_tools", ("--no-tools",), bool, "Start no MCP server: the model is offered no tools."),
    ChatOption("allow_tool", ("--allow-tool",), list, "Let the tool NAME run without asking. Repeatable."),
    ChatOption("allow_tools", ("--allow-tools",), bool, "Let every tool run without asking."),
    ChatOption("max_steps", ("--max-steps",), int, "Most rounds of tool calls in one answer (default 10, or the profile's max_steps)."),
    ChatOption("verbose", ("--verbose",), bool, "Tool calls and their results on stderr, one line each."),
)


def _kind(annotation: Any) -> type:
    """str for Optional[str], bool for bool."""
    if get_origin(annotation) is Union:
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    return annotation


def _table(settings: type) -> Tuple[ChatOption, ...]:
    """The options of a dataclass's fields, in their order."""
    return tuple(ChatOption(f.name, f.metadata["flags"], _kind(f.type), f.metadata["help"]) for f in fields(settings))


# In --help order: the settings, then the face's own.
CHAT_OPTIONS: Tuple[ChatOption, ...] = _table(Overrides) + FACE_OPTIONS
OPTIONS: Dict[str, ChatOption] = {o.name: o for o in CHAT_OPTIONS}
# The environment variable of each setting that has one (`config.resolve`).
SETTING_ENVS: Dict[str, str] = {f.name: f.metadata["env"] for f in fields(Overrides) if f.metadata["env"]}
