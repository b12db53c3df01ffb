"""The `llmchat` command: picks the face from the flags and the terminals, and the subcommands.

Start-up is a feature: only what the chosen face needs is imported (no Textual for one-shot or
--raw, Rich only when rendering to a terminal), so imports stay inside the functions.

The chat command's options are declared once, in llmchat.options (`CHAT_OPTIONS` is derived
from there). A plain command line (known options, values that convert) is parsed here without
Typer: importing Typer and its vendored click costs ~25 ms, a fifth of a local model's time to
first token. Anything else -- `--help`, `--version`, an unknown option, a missing or malformed
value -- goes to the Typer command built from the same table, which prints the help or the
usage error exactly as click does.
Exit codes: 0 ok, 1 error, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from dataclasses import fields
from typing import Any, Dict, List, Optional, Tuple

from llmchat import __version__
from llmchat.exitcodes import ERROR as EXIT_ERROR
from llmchat.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from llmchat.exitcodes import OK as EXIT_OK
from llmchat.exitcodes import USAGE as EXIT_USAGE

# Also importable from here, as before (oneshot.py, tests): CommandExit, fail, isatty, silence_stdout.
from llmchat.exits import CommandExit as CommandExit
from llmchat.exits import fail as fail
from llmchat.options import CHAT_OPTIONS as CHAT_OPTIONS
from llmchat.options import HELP_CONTEXT, Overrides
from llmchat.terminal import isatty as isatty
from llmchat.terminal import silence_stdout as silence_stdout

SUBCOMMANDS = ("config", "models", "demo-server", "history", "tools")

_EPILOG = (
    "Subcommands: `llmchat history` (stored conversations), `llmchat models` (profiles; --remote: the server's models), "
    "`llmchat tools` (the MCP servers and their tools), "
    "`llmchat config path`, `llmchat demo-server --port N` (the fake LLM server). "
    "With no key and no config, llmchat answers with its built-in offline demo model."
)
_PROMPT_HELP = "The prompt. Piped stdin is added after it (a blank line between). '-' reads stdin."
_CHAT_HELP = "Ask a model; the answer streams to stdout (rendered as Markdown on a terminal)."


def chat(values: Dict[str, Any]) -> int:
    """Run the chat command with parsed options (`prompt` is the list of words, maybe empty)."""
    from llmchat.config import ConfigError, apply_tool_flags, load_config, resolve

    flags = overrides(values)
    command_line = overrides(values)  # kept as given: `flags` may take a continued conversation's settings
    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    history_on = config.history and not values["no_history"]
    store: Any = None  # the history store: opened only when history is on (sqlite3 costs ~3 ms)
    try:
        continued = None
        its_settings = False
        start: Any = None  # the stored message --from names
        if values["regenerate"] and not (values["continue_last"] or values["conversation"] is not None or values["from_message"] is not None):
            fail("--regenerate asks a stored prompt again: give -c, --conversation ID or --from MSG", EXIT_USAGE)
        if values["continue_last"] or values["conversation"] is not None or values["from_message"] is not None:
            store, continued, start = _find_conversation(values, history_on, config)
            its_settings = _keep_its_settings(flags, continued, config)
        try:
            settings = resolve(flags, os.environ, config)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        settings.history = history_on
        try:
            apply_tool_flags(
                settings,
                config,
                mcp=values["mcp"],
                no_tools=values["no_tools"],
                allow=values["allow_tool"],
                allow_all=values["allow_tools"],
                max_steps=values["max_steps"],
            )
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        if continued is not None:
            settings.conversation_id = continued.id
            if settings.demo and its_settings:
                settings.demo_reason = f"continuing conversation {continued.id}"
        if values["regenerate"] and values["prompt"]:
            fail("--regenerate asks the stored prompt again: give no prompt", EXIT_USAGE)
        early = None  # the server's connection, opened while the prompt and history are read
        if not settings.demo and (values["prompt"] or values["regenerate"] or (sys.stdin is not None and not sys.stdin.isatty())):
            from llmchat.stream.early import connect_early

            early = connect_early(settings.base_url, settings.connect_timeout)
        attach = list(values.get("attach") or ())
        context: List[Any] = []
        place: Dict[str, Any] = {}  # where the turn goes in the conversation's tree (see engine.Turn)
        text: Optional[str]
        stdin_bytes: Optional[bytes] = None
        stored: Any = ()  # a regenerated prompt's own attachments, sent again
        if values["regenerate"]:  # the prompt is the stored one: stdin is not read
            if attach:
                fail("--regenerate asks the stored prompt again, with its own attachments: give no -a", EXIT_USAGE)
            context, text, place = _regenerate(store, continued, start)
            stored = _stored_attachments(store, place["regenerates"])
        else:
            try:
                text, stdin_bytes = _read_prompt(values["prompt"] or [], "-" in attach)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED
            if stdin_bytes is not None and "-" not in attach:  # binary data piped in: attached, not sent as text
                attach.append("-")
            if attach and not (text or "").strip():
                fail('give a prompt with the attachment (an argument: llmchat -a FILE "what is this?")', EXIT_USAGE)
        if text is None and start is not None:
            fail("--from needs a prompt (as an argument or on stdin)", EXIT_USAGE)
        if text is None:
            if values["json"]:
                fail("--json needs a prompt (as an argument or on stdin): it is for scripts, not the TUI", EXIT_USAGE)
            if isatty(sys.stdin) and isatty(sys.stdout):
                saved = _keep_early_keys()
                try:
                    from llmchat.tui.app import run_tui  # Textual is imported only for this face

                    if store is not None:  # the TUI opens its own (settings.history, .conversation_id)
                        store.close()
                        store = None
                    # The command line's own flags: the TUI applies a conversation's settings
                    # itself when it switches to another one.
                    return run_tui(settings, command_line, values["theme"])
                finally:
                    _restore_terminal(saved)
            fail("no prompt: give one as an argument or on stdin", EXIT_USAGE)
        if not text.strip():
            fail("the prompt is empty", EXIT_USAGE)

        if sys.stdout is None:
            fail("stdout is closed: there is nowhere to write the answer", EXIT_ERROR)
        if continued is None:
            if history_on:
                from llmchat.history import open_for_chat

                store = open_for_chat(_warn)  # None, after a warning, when it cannot be used
        elif not values["regenerate"]:  # (--regenerate read its context with its prompt)
            from llmchat.history import HistoryError

            try:  # read now, not before the prompt: it holds all that was added meanwhile
                if start is None:
                    context = store.context(continued.id)
                elif start.role == "user":  # a new prompt beside that one: what it was sent after
                    context, place = store.turn_context(start.id)[0], {"edits": start.id}
                else:  # a new branch after that answer
                    context, place = store.context(continued.id, leaf_id=start.id), {"parent_id": start.id}
            except HistoryError as exc:
                fail(f"cannot continue conversation {continued.id}: {exc}", EXIT_ERROR)
        attachments: Any = stored
        if attach or stored or any(m.attachments for m in context):
            from llmchat.attaching import gather, resend
            from llmchat.attachments import AttachmentError

            try:  # read, fetched, checked and encoded before anything is sent
                if stored:
                    resend(stored, [settings], context)
                else:
                    attachments = gather(attach, settings, stdin=stdin_bytes, context=context)
            except AttachmentError as exc:
                fail(str(exc), exc.exit_code)
        from llmchat.oneshot import run

        return run(
            settings,
            text,
            raw=values["raw"],
            stats=values["stats"],
            show_reasoning=values["reasoning"],
            history=store,
            context=context,
            early=early,
            attachments=attachments,
            place=place,
            json=values["json"],
            verbose=values["verbose"],
        )
    finally:
        if store is not None:
            store.close()


def overrides(values: Dict[str, Any]) -> Overrides:
    """The settings among the parsed options (every field of `Overrides` is one)."""
    return Overrides(**{f.name: values[f.name] for f in fields(Overrides)})


def _keep_early_keys() -> Optional[List[Any]]:
    """Put the terminal in the TUI's input mode now, before Textual is imported (~0.3-0.6 s, more
    on a busy machine): until Textual does the same, the terminal's line editing would echo
    what is typed onto the shell's screen, turn Enter into a new line and eat Ctrl+U or Ctrl+W.
    Textual reads what was typed meanwhile as keys. Ctrl+C still interrupts the start-up. The
    settings before, for `_restore_terminal` (Textual restores what it found: these)."""
    import termios

    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        keys = termios.tcgetattr(fd)
        keys[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR)  # as Textual
        keys[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
        keys[6][termios.VMIN] = 1
        keys[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, keys)
    except (termios.error, OSError, ValueError, AttributeError):  # no real terminal behind stdin
        return None
    return saved


def _restore_terminal(saved: Optional[List[Any]]) -> None:
    if saved is None:
        return
    import termios

    try:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, saved)
    except (termios.error, OSError, ValueError, AttributeError):  # no real terminal behind stdin
        pass


def _keep_its_settings(flags: Any, continued: Any, config: Any) -> bool:
    """Set `flags` to continue `continued` with its own settings (see `config.continue_flags`,
    shared with the TUI); False when the command line chose."""
    from llmchat.config import ConfigError, continue_flags

    try:
        chosen = continue_flags(flags, continued, config)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    if chosen is None:
        return False
    for name in ("profile", "api", "model", "base_url"):
        setattr(flags, name, getattr(chosen, name))
    return True


def _find_conversation(values: Dict[str, Any], history_on: bool, config: Any) -> Tuple[Any, Any, Any]:
    """The open store, the conversation that -c / --conversation ID / --from MSG names, and the
    message --from names (None without it)."""
    if values["continue_last"] and values["conversation"] is not None:
        fail("give -c/--continue or --conversation ID, not both", EXIT_USAGE)
    start_id = values["from_message"]
    if values["continue_last"] and start_id is not None:
        fail("give -c/--continue or --from MSG, not both (-c goes on from the current leaf)", EXIT_USAGE)
    if not history_on:
        why = "--no-history" if values["no_history"] else f"history = false in {config.path}"
        fail(f"continuing a conversation needs the history, which {why} turns off", EXIT_USAGE)
    from llmchat.history import HistoryError, HistoryStore, UnknownConversation, UnknownMessage

    try:
        store = HistoryStore.open(warn=_warn)
    except HistoryError as exc:
        fail(f"cannot continue: {exc}", EXIT_ERROR)
    start = None
    try:
        store.mark_interrupted_on_start(wait=False)  # a locked store: at a later start
        wanted = values["conversation"]
        if start_id is not None:
            if wanted is not None:
                store.get(wanted)  # an unknown conversation is said as such
            start = store.message(start_id)
            if wanted is not None and start.conversation_id != wanted:
                raise UnknownMessage(start_id, wanted)
            wanted = start.conversation_id
        found = store.get(wanted) if wanted is not None else store.most_recent()
    except UnknownConversation as exc:
        store.close()
        fail(f"{exc} (see `llmchat history`)", EXIT_USAGE)
    except UnknownMessage as exc:
        store.close()
        see = f"llmchat history show {exc.conversation_id} --tree" if exc.conversation_id is not None else "llmchat history show ID --tree"
        fail(f"{exc} (see `{see}`)", EXIT_USAGE)
    except HistoryError as exc:
        store.close()
        fail(f"cannot continue: {exc}", EXIT_ERROR)
    if found is None:
        store.close()
        fail("there is no conversation to continue yet (start one without -c)", EXIT_USAGE)
    return store, found, start


def _regenerate(store: Any, continued: Any, start: Any) -> Tuple[List[Any], str, Dict[str, Any]]:
    """--regenerate: the context and prompt that answer (--from MSG, or the conversation's
    current leaf) was asked with, and the turn's place: a new answer beside it."""
    from llmchat.history import HistoryError

    leaf = start.id if start is not None else continued.current_leaf_id
    if leaf is None:
        fail(f"conversation {continued.id} has no prompt to ask again", EXIT_USAGE)
    try:
        context, prompt, _ = store.turn_context(leaf)
    except HistoryError as exc:
        fail(f"cannot ask message {leaf}'s prompt again: {exc}", EXIT_ERROR)
    return context, prompt, {"regenerates": leaf}


def _stored_attachments(store: Any, message_id: int) -> Any:
    """The attachments of the prompt `message_id` answered (or is), as stored: sent again."""
    from llmchat.history import HistoryError

    try:
        return store.prompt_attachments(message_id)
    except HistoryError as exc:
        fail(f"cannot read message {message_id}'s attachments: {exc}", EXIT_ERROR)


def _warn(message: str) -> None:
    from llmchat.sanitize import one_line

    print(one_line(message), file=sys.stderr, flush=True)


def parse_chat_args(args: List[str]) -> Optional[Dict[str, Any]]:
    """The options and prompt words of a plain command line, as click would parse them (options
    anywhere, the last of a repeated option wins -- a list option collects each --, `--opt=value`,
    `--` ends options); None for anything this does not handle, which then goes to click."""
    by_flag = {flag: (name, kind) for name, flags, kind, _ in CHAT_OPTIONS for flag in flags}
    values: Dict[str, Any] = {name: (False if kind is bool else () if kind is list else None) for name, _, kind, _ in CHAT_OPTIONS}
    words: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            words.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        flag, eq, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag not in by_flag:
            return None  # --help, --version, unknown options, -mNAME: click's business
        name, kind = by_flag[flag]
        if kind is bool:
            if eq:
                return None
            values[name] = True
            continue
        if eq:
            value = attached
        elif i < len(args):
            value = args[i]
            i += 1
        else:
            return None
        if kind is list:  # a tuple of every value given, as click gives it
            values[name] = (*values[name], value)
            continue
        try:
            values[name] = value if kind is str else kind(value)
        except ValueError:
            return None
    values["prompt"] = words
    return values


def _chat_command() -> Any:
    """The Typer command for `chat`, its parameters generated from `CHAT_OPTIONS`."""
    import inspect

    import typer

    def version(value: bool) -> None:
        if value:
            print(f"llmchat {__version__}")
            raise typer.Exit()

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("prompt", keyword, default=typer.Argument(None, help=_PROMPT_HELP), annotation=Optional[List[str]])]
    for name, flags, kind, help_text in CHAT_OPTIONS:
        default: Any = False if kind is bool else () if kind is list else None
        annotation: Any = bool if kind is bool else List[str] if kind is list else Optional[kind]
        params.append(inspect.Parameter(name, keyword, default=typer.Option(default, *flags, help=help_text), annotation=annotation))
    params.append(
        inspect.Parameter(
            "version",
            keyword,
            annotation=bool,
            default=typer.Option(False, "--version", callback=version, is_eager=True, help="Print the version."),
        )
    )

    def command(**values: Any) -> None:
        try:
            code = chat(values)
        except CommandExit as exc:
            code = exc.code
        raise typer.Exit(code)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = _CHAT_HELP
    command.__name__ = "chat"
    app = typer.Typer(add_completion=False, context_settings=HELP_CONTEXT, rich_markup_mode=None)
    app.command(epilog=_EPILOG)(command)
    return typer.main.get_command(app)


def _read_prompt(args: List[str], stdin_attached: bool = False) -> Tuple[Optional[str], Optional[bytes]]:
    """The prompt: the argument, then a blank line, then stdin when it is piped; never truncated.
    And stdin's bytes when they are an attachment: with `-a -` (`stdin_attached`), or when they
    are binary (an image, a PDF: `attachments.detect_binary`) rather than text."""
    # Bytes that are not UTF-8 reach argv as lone surrogates; they become U+FFFD, as on stdin.
    arg = " ".join(args).encode("utf-8", "surrogateescape").decode("utf-8", "replace") if args else None
    if stdin_attached:
        if arg == "-":
            fail("stdin cannot be both the prompt ('-') and an attachment (-a -)", EXIT_USAGE)
        if isatty(sys.stdin):
            fail("-a - attaches what is piped in, and stdin is a terminal (cat FILE | llmchat -a - ...)", EXIT_USAGE)
        return arg, _read_stdin_bytes()
    if arg == "-":
        return _read_stdin_bytes().decode("utf-8", "replace"), None
    piped = sys.stdin is not None and not isatty(sys.stdin)
    raw = _read_stdin_bytes() if piped else None
    if raw and _binary(raw):
        return arg, raw
    data = raw.decode("utf-8", "replace") if raw is not None else None
    if arg is not None and data:
        return f"{arg}\n\n{data}", None
    if arg is not None:
        return arg, None
    return data, None


def _binary(data: bytes) -> bool:
    """Not text (`attachments.detect_binary`). Text that is plain UTF-8 with no NUL and no image
    or PDF signature is told apart here, without importing llmchat.attachments (start-up)."""
    head = data[:8192]
    if b"\x00" not in head and b"%PDF-" not in head[:1024] and not head.startswith((b"GIF8", b"RIFF")):
        try:
            head.decode("utf-8")
            return False
        except UnicodeDecodeError:
            pass
    from llmchat.attachments import detect_binary

    return detect_binary(data)


def _read_stdin_bytes() -> bytes:
    if sys.stdin is None:  # closed (<&-): nothing to read
        return b""
    try:
        return sys.stdin.buffer.read()
    except (OSError, ValueError) as exc:  # a directory, a closed descriptor, an I/O error
        fail(f"cannot read the prompt from stdin: {getattr(exc, 'strerror', None) or exc}", EXIT_ERROR)


def _skip_unused_imports() -> None:
    """httpx imports its own command-line module (and with it Rich, click and pygments) whenever
    click is installed, and httpcore imports trio whenever trio is installed. The llmchat
    process uses neither; marking them absent keeps ~150 ms off every start (tests/benchmarks).
    Done by the command only, never on import, so a program importing llmchat is untouched."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "trio" not in sys.modules:
        sys.modules["trio"] = None  # type: ignore[assignment]


def main(argv: Optional[List[str]] = None) -> int:
    """The command. A bug anywhere below is caught here: its traceback goes to a crash log in
    the data directory, the user gets one line and exit 1 (never a traceback)."""
    try:
        return _main(argv)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug: nothing the user did should end in a traceback
        return _crashed(exc)


def _main(argv: Optional[List[str]]) -> int:
    _skip_unused_imports()
    args = sys.argv[1:] if argv is None else argv
    if not (args and args[0] in SUBCOMMANDS):
        values = parse_chat_args(args)
        if values is not None:
            try:
                return chat(values)
            except CommandExit as exc:
                return exc.code
            except KeyboardInterrupt:
                print(file=sys.stderr)
                return EXIT_INTERRUPTED
    return _run_click(args)


def _crashed(exc: BaseException) -> int:
    """Log `exc` with its traceback (secrets masked) in the data directory's crashes/, 0600,
    and say so in one line."""
    try:
        from llmchat.crash import crash_line, write_crash_log

        print(crash_line(exc, write_crash_log(exc)), file=sys.stderr)
    except Exception:  # even the report failed: the kind of error still goes out
        try:
            print(f"error: llmchat stopped on an internal error ({exc.__class__.__name__})", file=sys.stderr)
        except Exception:
            pass
    return EXIT_ERROR


def _run_click(args: List[str]) -> int:
    """Typer/click for the rest: subcommands, help, version, usage errors."""
    import typer

    if args and args[0] in SUBCOMMANDS:
        from llmchat.subcommands import tools

        command = typer.main.get_command(tools)
    else:
        command = _chat_command()
    try:
        code = command.main(args=args, prog_name="llmchat", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except CommandExit as exc:
        return exc.code
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
