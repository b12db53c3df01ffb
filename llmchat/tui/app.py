"""The interactive chat app: transcript, prompt, status bar, footer.

One background worker per answer runs the turn on the engine (llmchat/engine: the client, the
request, recording, the turn's states -- the same as every other face; this module knows no wire
format and no store call) and feeds the answer's `StreamingMarkdown` as the engine's observer,
which takes in whatever arrived since the last frame at once (frame rate, not token rate). The status bar is refreshed from `Metrics` by a timer, not per token.
Reasoning streams into a Thinking block above the answer (widgets/thinking.py), folded when the
answer starts; Ctrl+T folds or opens the newest one.

Keys: Enter sends, Ctrl+J / Alt+Enter / Shift+Enter insert a newline, Esc or Ctrl+C cancels the
answer being streamed (the connection is closed, the partial answer kept and marked), Ctrl+R
asks the last question again, Ctrl+Q quits. Ctrl+C with nothing streaming copies a selection if
there is one, else says how to quit; a second Ctrl+C within two seconds quits.

The cancel binding for Ctrl+C has priority (so it wins over a selection's copy while an answer
streams) but is enabled only while one streams: otherwise the key falls through to the
widgets' and screen's copy bindings, and last to the app's non-priority quit hint.

The conversation's tree (history on): Alt+Up / Alt+Down (or a click) selects a message; then
`[` / `]` (or Left / Right, or a click on `‹ 2/3 ›`) step between its versions, e or Enter edits
a prompt (sending it makes a new branch from there), r regenerates an answer (a sibling), Esc
leaves. Ctrl+R stores its retry as a sibling of the answer. The palette forks the conversation
and regenerates with another model or profile. The session's turns are always the path shown:
what is sent as context.

Tools (MCP servers the profile or --mcp enables; the engine runs the loop): a call not allowed
already asks first (screens/approve.py: Enter/o once, a always for this profile, d/Esc deny; one
question at a time, in order); each call is a block in the answer where the model made it
(widgets/tools.py: status, time, folded result preview), the text after the results goes on
below the blocks, and the status bar says which tool runs. Esc while a tool runs, or Ctrl+C while
a question is up, cancels the answer (and the running calls).

Attachments: `@` in the prompt completes paths and attaches the file taken; a pasted path of a
file is offered; the chips above the prompt go with the next message (read, checked against the
API's limits and encoded in a worker thread: llmchat.attaching), Ctrl+L removes them all.

Ctrl+Y copies the last answer; PageUp/PageDown, Ctrl+Up/Down and Ctrl+Home/End scroll the
transcript while typing. The prompt (a TextArea) has bindings of its own for some of these
keys (redo, cursor by page), so these have priority; their actions step aside (SkipAction) when
another screen, such as the command palette, is on top. The palette (Ctrl+P) adds: switch
model or profile, new conversation, copy the last answer or one of its code blocks, and a
theme picker whose choice is saved in the config file. Themes: Textual's own plus the TOML
files described in themes/README.md; --theme > the config's `theme` > Textual's default.

History (unless --no-history or `history = false`): every turn is stored as the one-shot face
stores it (chat_history.py); -c / --conversation ID opens with that conversation shown and
continued; Ctrl+O or F2 (or the palette's "Conversations") opens the conversation list
(screens/conversations.py) to open, rename, delete or search stored conversations.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
import weakref
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static, TextArea
from textual.worker import Worker

from llmchat.config import Config, ConfigError, Overrides, Settings, apply_tool_flags, continue_flags, load_config, resolve, save_theme
from llmchat.engine import Engine, Observer
from llmchat.exitcodes import USAGE as EXIT_USAGE
from llmchat.output import Sanitizer, strip_controls
from llmchat.redact import Redactor
from llmchat.sanitize import one_line
from llmchat.stream.metrics import Metrics
from llmchat.tui.chat_history import ChatHistory
from llmchat.tui.codeblocks import code_blocks
from llmchat.tui.commands import Choice, Choices
from llmchat.tui.gc_policy import GCPolicy
from llmchat.tui.palette import ChatPalette
from llmchat.tui.screen import ChatScreen
from llmchat.tui.screens.approve import ApproveTool
from llmchat.tui.session import (
    CANCELLED,
    DONE,
    ERROR,
    STREAMING,
    WAITING,
    ChatSession,
    Turn,
)
from llmchat.tui.themes import load_themes, theme_dirs
from llmchat.tui.widgets import (
    AssistantMessage,
    ChatPrompt,
    StatusBar,
    Transcript,
    UserMessage,
    Welcome,
)
from llmchat.tui.widgets.attachments import AttachmentBar, PathMenu, describe, meta_of
from llmchat.tui.widgets.footer import QuietFooter
from llmchat.tui.widgets.markdown_render import draw_finely, draw_roughly, keep_highlights_in, save_highlights
from llmchat.tui.widgets.pasted import user_message
from llmchat.tui.widgets.prompt import newline_hint
from llmchat.tui.widgets.siblings import SiblingSwitcher
from llmchat.tui.widgets.status import READY, retries_text
from llmchat.tui.widgets.stored import StoredAnswer
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from llmchat.tui.widgets.thinking import ThinkingBlock
from llmchat.tui.widgets.tools import TOOL_CANCELLED, TOOL_ENDED, ToolBlock, shown_text, tools_state
from llmchat.tui.widgets.transcript import StoredTurn, TurnView

QUIT_WINDOW = 2.0  # seconds within which a second Ctrl+C quits
# Imported in a thread once the app is up (`_import_ahead`): the connection that typing opens
# (stream/warm.py) imported anyio's asyncio backend on the event loop, 20-60 ms that held the
# first keys, or the Enter after them.
IMPORT_AHEAD = ("anyio._backends._asyncio",)
STATUS_INTERVAL = 0.1  # seconds between status-bar refreshes while waiting or thinking (the spinner, a retry's countdown)
# While the answer's text streams, the bar's figures (tok/s, tokens, elapsed) are refreshed at
# most this often: at 10 a second they were a paint of their own or a larger paint on most
# of the answer's frames (~1 ms each, for figures no one reads that fast).
STREAMING_STATUS_INTERVAL = 0.25
SCROLL_LINES = 3  # Ctrl+Up / Ctrl+Down
# A server sending as fast as it can hands the worker hundreds of deltas per network read:
# the engine lets keys, paints and a cancel in every YIELD_EVERY deltas.
YIELD_EVERY = 64
DEMO_LABEL = "offline demo model"
SELECTION_KEYS = frozenset({"left_square_bracket", "right_square_bracket", "e", "r"})  # while a message is selected
MODEL_LIST_TTL = 60.0  # seconds the server's model list is reused by the model picker
ATTACH_NOTICE_AFTER = 0.5  # seconds an attachment may take to read or fetch before a notice says so
MODEL_LIST_WAIT = 3.0  # seconds the model picker waits for the list before showing without it
STARTING_TOOLS = "starting tools…"  # the status bar while the MCP servers start
HIGHLIGHTS = "highlights"  # next to the history store: finished code blocks' highlighting, kept


def _adopt(turn: Turn, text: str, count: int) -> None:
    """The answer's widget joined the first `count` of the turn's parts into `text` (a long
    answer's end, laid out lazily): the turn holds that string in their place, not a second copy,
    once it has ended with one step and history was handed all of them (its index stays true)."""
    record = turn.record
    if not turn.ended or len(turn.steps) > 1 or count < 2 or (record is not None and record.saved < count):
        return
    turn.parts[:count] = [text]
    if record is not None:
        record.saved -= count - 1


class _ShownTurn(Observer):
    """The app's side of a turn the engine runs: the answer's text into its widget (sanitised:
    model text must not reach the terminal as control sequences), states and notes at once.

    Tools (the engine's tool loop): each call becomes a block in the answer (widgets/tools.py)
    where it happened in the text, a call not allowed already asks the user first (one question
    at a time, in the order of the calls: screens/approve.py), and the text of the request after
    the results goes into a new Markdown section below the blocks."""

    def __init__(self, app: "ChatApp", turn: Turn) -> None:
        self.app = app
        view: AssistantMessage = turn.view
        turn.shown = self
        self.view = view
        self.markdown = view.markdown  # the section the text goes into now (a new one per step with text)
        self.sanitizer = Sanitizer()
        self.blocks: Dict[int, ToolBlock] = {}  # id(activity) -> its block (the turn keeps the activities)
        self.asking: Optional[Any] = None  # the activity whose question is on screen
        self._ask_one_at_a_time = asyncio.Lock()
        self._new_section = False  # a step began: its first text opens a section below the blocks
        feed = self.sanitizer.feed
        if not turn.parts:
            # The widget reads the answer from the engine's parts (one copy of a flood, not two)
            # while what it shows is what arrived: until the sanitiser changes a piece.
            held = weakref.ref(turn)  # (not the turn itself: the widget would keep it, a cycle the GC policy never frees)

            def adopt(text: str, count: int) -> None:
                kept = held()
                if kept is not None:
                    _adopt(kept, text, count)

            self.markdown.share_text(turn.parts, adopt)

        def text(text: str) -> None:  # per token
            shown = feed(text)
            if shown:
                if self._new_section:
                    self._open_section()
                markdown = self.markdown
                if shown is not text and markdown.shares_text:
                    markdown.keep_own_text()
                markdown.append(shown)

        self.text = text  # type: ignore[method-assign]

    def state(self, turn: Any) -> None:
        if turn.ended:
            self._stop_blocks(turn)
            self.app._show_tools(turn)  # none any more
            self.app._end(turn)
            if self.app.is_running and turn.state == DONE:
                # The text is all in: the answer is final now, in the paint that shows the end,
                # not once the engine has closed the connection and stored the turn (a write in
                # the store's thread: a short answer was painted whole ~0.1 s later). (Not at a
                # cancel: a flood's backlog laid out while the store writes it took 50-60 MB more
                # at once than one after the other.)
                tail = self.sanitizer.flush()
                if tail:
                    self.markdown.append(tail)
                self.markdown.finish()
            turn.shown = None  # the ended turn keeps no widgets through its observer
        else:
            self.app._enter(turn, turn.state)

    def retry(self, turn: Any) -> None:
        self.app._on_retry(turn)

    def notice(self, turn: Any, message: str) -> None:
        if message == turn.over_limit:  # the tool loop's limit: a note under the answer (_ending_note)
            return
        self.app.notify(message, severity="warning", timeout=8)

    def ended(self, turn: Any) -> None:
        if turn.tool_note and turn.state == DONE and self.app.is_running:
            turn.view.set_note(turn.tool_note)
        return None

    # --- tools ---

    async def approve(self, turn: Any, activity: Any) -> str:
        """The question, on top of whatever screen is up; "deny" if the turn ended meanwhile.
        A cancel (Ctrl+C, quitting) takes the question down."""
        self._show_block(turn, activity)
        async with self._ask_one_at_a_time:
            app = self.app
            if turn.ended or not app.is_running:
                return "deny"
            activities = turn.step.activities
            position = (activities.index(activity) + 1, len(activities)) if activity in activities and len(activities) > 1 else None
            tool = activity.tool
            question = ApproveTool(
                activity.call.name,
                tool.server if tool is not None else None,
                activity.call.arguments,
                description=tool.description if tool is not None else "",
                position=position,
                always="this profile" if app.settings.profile else "this run",  # where the engine remembers it
            )
            answered: asyncio.Future = asyncio.get_running_loop().create_future()

            def answer(choice: Optional[str]) -> None:
                if not answered.done():
                    answered.set_result(choice or "deny")

            self.asking = activity
            app._show_tools(turn)
            app.push_screen(question, answer)
            try:
                return await answered
            finally:
                self.asking = None
                if not answered.done() or answered.cancelled():  # cancelled: the question goes, unanswered
                    _take_down(question)
                if app.is_running:
                    app._show_tools(turn)

    def tool_started(self, turn: Any, activity: Any) -> None:
        self._show_block(turn, activity)
        self.app._show_tools(turn)

    def tool_finished(self, turn: Any, activity: Any) -> None:
        self._show_block(turn, activity)
        self.app._show_tools(turn)

    def step(self, turn: Any, step: Any) -> None:
        """The next request: what is left of this section's text goes in; the step's text (if
        any) opens a section of its own below the blocks."""
        tail = self.sanitizer.flush()
        if tail:
            self.markdown.append(tail)
        self._new_section = True

    def _open_section(self) -> None:
        self._new_section = False
        previous, self.markdown = self.markdown, StreamingMarkdown(classes="-after-tools")
        self.markdown.on_frame = previous.on_frame
        previous.finish()
        if self.view.is_attached:
            self.view.mount(self.markdown, before=self.view.figures)

    def _show_block(self, turn: Any, activity: Any) -> None:
        """The activity's block as it is now; mounted below the text so far when new."""
        block = self.blocks.get(id(activity))
        if block is None:
            tool = activity.tool
            block = ToolBlock(activity.call.name, tool.server if tool is not None else None, activity.call.arguments)
            self.blocks[id(activity)] = block
            if self._new_section:  # the step had no text: its calls follow the last blocks
                self._new_section = False
                self.markdown.finish()
            if self.view.is_attached:
                self.view.mount(block, before=self.view.figures)
        block.show_activity(activity)

    def _stop_blocks(self, turn: Any) -> None:
        """The turn ended (a cancel, an error): a call still asked for or running never ended,
        and one not asked about yet (a cancel at an earlier call's question) gets its block too,
        as history has it (reopened, it shows there)."""
        if self.view.is_attached:
            for activity in turn.step.activities:
                if id(activity) not in self.blocks:
                    self._show_block(turn, activity)
        for block in self.blocks.values():
            if block.status not in TOOL_ENDED:
                block.show(TOOL_CANCELLED)


def _take_down(screen: Screen) -> None:
    """Remove `screen` from the app's stack (and whatever the user opened over it)."""
    from textual.app import ScreenStackError

    if not screen.is_attached:
        return
    try:
        if screen.app.screen is not screen:
            screen.pop_until_active()
        screen.dismiss(None)
    except ScreenStackError:
        pass


class ChatApp(App[None]):
    TITLE = "llmchat"
    # The prompt has the focus from the first frame. Textual's default ("*") focused the
    # transcript, the first focusable widget, until on_mount moved the focus on: keys typed
    # while the app started went to the transcript and were lost.
    AUTO_FOCUS = "#prompt"

    CSS = """
    /* Bottom-aligned: the newest message sits next to the prompt, and an anchored transcript
       shorter than the view keeps a well-defined scroll position. */
    #transcript {
        height: 1fr;
        padding: 0 1 1 1;
        align-vertical: bottom;
    }
    /* What a selected message or an edit under way is, and the keys for it. */
    #mode {
        display: none;
        height: auto;  /* wraps on a narrow terminal: its keys are never cut off */
        padding: 0 1;
        color: $text-warning;
    }
    #mode.-on { display: block; }
    """

    BINDINGS = [
        Binding("ctrl+c", "cancel_stream", "Cancel", show=False, priority=True),
        Binding("escape", "cancel_stream", "Cancel"),
        Binding("escape", "hide_help_panel", show=False),  # the Keys panel (palette "Keys"): when nothing streams
        Binding("ctrl+c", "interrupt", show=False),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+o,f2", "conversations", "Conversations", key_display="^o"),
        Binding("ctrl+t", "toggle_thinking", "Fold or open the newest Thinking block", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+y", "copy_answer", "Copy answer", show=False, priority=True),
        Binding("ctrl+l", "clear_attachments", "Clear attachments"),
        Binding("pageup", "scroll_transcript('page_up')", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_transcript('page_down')", "Scroll down", show=False, priority=True),
        Binding("ctrl+up", "scroll_transcript('up')", "Scroll up a little", show=False, priority=True),
        Binding("ctrl+down", "scroll_transcript('down')", "Scroll down a little", show=False, priority=True),
        Binding("ctrl+home", "scroll_transcript('home')", "Scroll to the top", show=False, priority=True),
        Binding("ctrl+end", "scroll_transcript('end')", "Scroll to the end and follow", show=False, priority=True),
        # The conversation's tree: select a message, then step between its siblings, edit it
        # (a prompt) or regenerate it (an answer). The keys after Alt+Up work only while a
        # message is selected (check_action): otherwise they are the prompt's.
        Binding("alt+up", "select_message(-1)", "Select the message above", show=False, priority=True),
        Binding("alt+down", "select_message(1)", "Select the message below", show=False, priority=True),
        Binding("left_square_bracket,left", "step_sibling(-1)", "Previous version of the message (‹)", show=False, priority=True, key_display="["),
        Binding("right_square_bracket,right", "step_sibling(1)", "Next version of the message (›)", show=False, priority=True, key_display="]"),
        Binding("e,enter", "edit_selected", "Edit the selected prompt and resend it", show=False, priority=True),
        Binding("r", "regenerate_selected", "Regenerate the selected answer", show=False, priority=True),
        Binding("escape", "leave_selection", "Leave the selection or the edit", show=False, priority=True),
    ]

    # Whether the app manages the garbage collector (gc_policy.py): None is "in a real
    # terminal, not headless"; the benchmark sets True to measure what a terminal runs.
    manage_gc: Optional[bool] = None
    # Whether a bug caught at the top is raised (Textual's way, for tests to see) or logged to
    # the data dir and reported in one line (crash.py): None is "raised when headless".
    raise_crashes: Optional[bool] = None
    crash_log: Optional[Path] = None  # the crash log this run wrote
    exit_hint: Optional[str] = None  # how to continue, printed once the terminal is restored
    exit_warnings: List[str]  # the history's warnings while quitting, printed with exit_hint

    def __init__(
        self,
        settings: Settings,
        *,
        config: Optional[Config] = None,
        flags: Optional[Overrides] = None,
        theme: Optional[str] = None,
        themes_from: Optional[Iterable[Path]] = None,
        clock: Callable[[], float] = time.monotonic,
        status_interval: Optional[float] = STATUS_INTERVAL,
        demo_behaviour: Any = None,
    ) -> None:
        """`config` holds the profiles and the saved theme (read from the config file if not
        given); `flags` are the command line's, kept when switching profile; `theme` is --theme
        (ConfigError if no such theme); `themes_from` replaces the theme directories (tests).
        `clock` times the answers and the double Ctrl+C; `status_interval=None` refreshes the
        status bar only when the state changes (deterministic snapshots); `demo_behaviour`
        replaces the demo server's pace (tests)."""
        super().__init__()
        self.settings = settings
        self.config = config if config is not None else load_config()
        self.flags = flags or Overrides()
        self._notices: List[str] = []  # shown once the app runs
        self.custom_themes = self._load_themes(theme_dirs() if themes_from is None else themes_from, theme)
        self._clock = clock
        self._status_interval = status_interval
        self._demo_behaviour = demo_behaviour
        self.session: Optional[ChatSession] = None  # once the engine has started (on mount)
        self.engine: Optional[Engine] = None  # runs the turns (on mount)
        self._warmed: Optional[tuple] = None  # the context `_warm_up_while_typing` had encoded last
        self._prompt_shown: Optional[Any] = None  # a prompt's widget `_start` mounts with its answer's
        # The server's model list for the model picker: (key, when, names or the error), and
        # the fetch on its way (see _prefetch_models).
        self._model_list: Optional[tuple] = None
        self._model_fetch: Optional[asyncio.Future] = None
        self._starting: Optional[asyncio.Future] = None  # the engine's start, when it runs in the background
        self._model_fetch_key: Optional[tuple] = None
        self._active: Optional[Turn] = None  # the turn being streamed
        self._worker: Optional[Worker[None]] = None
        self._last_interrupt: Optional[float] = None
        self._restored: Optional[str] = None  # a failed prompt put back into the prompt box
        self._status_at = -math.inf  # when the status timer or an answer's frame last refreshed the bar
        self.chat_history = ChatHistory(self._history_warning)
        # The note at the top of the transcript: the welcome, or about a reopened conversation
        # (then also `_about`). One widget for the app's life, its text updated.
        self._intro = Welcome(self._welcome_text(), markup=False)
        self._about: Optional[Welcome] = None
        self._draft_kept = ""  # what of the prompt was kept with the conversation on quit ("the draft", "2 attachments")
        self.exit_warnings = []
        self._quitting = False  # on_unmount has begun: warnings go to exit_warnings
        self._show_model(settings)  # model_label and sub_title
        self.gc_policy = GCPolicy(self)  # begin/end around answers streaming (gc_policy.py)
        # The message selected in the tree (Alt+Up, a click): (stored turn index, "prompt" or
        # "answer"); and the prompt being edited: (its stored ID, its turn index, its number).
        self._selected: Optional[Tuple[int, str]] = None
        self._editing: Optional[Tuple[int, int, int]] = None
        self._edit_draft = ""  # what was in the prompt before the edit began (Esc puts it back)
        self._edit_chips: Tuple[Any, ...] = ()  # and the attachments it had
        self._attach_jobs: List[Worker[None]] = []  # files being read for the chips (Enter waits for them)
        self._attached_by: Dict[int, List[Any]] = {}  # the chips each accepted paste made (ChatPrompt.Detach)
        self._sent_as: Dict[int, Tuple[Any, Any]] = {}  # earlier attachments as the next send converted them

    def _load_themes(self, folders: Iterable[Path], wanted: Optional[str]) -> List[str]:
        """Register the custom themes and pick one: --theme, else the config's, else Textual's
        default. The names of the custom themes."""
        themes, skipped = load_themes(folders)
        for theme in themes:
            self.register_theme(theme)
        self._notices += [f"Theme skipped: {problem}" for problem in skipped]
        available = self.available_themes
        if wanted is not None:
            if wanted not in available:
                broken = next((problem for problem in skipped if problem.path.stem == wanted), None)
                if broken is not None:
                    raise ConfigError(f"theme {wanted!r} cannot be used: {broken}")
                raise ConfigError(f"unknown theme {wanted!r} (themes: {', '.join(sorted(available))})")
            self.theme = wanted
        elif self.config.theme is not None:
            if self.config.theme in available:
                self.theme = self.config.theme
            else:
                self._notices.append(f"Theme {self.config.theme!r} (from {self.config.path}) is not available; using {self.theme}.")
        return [theme.name for theme in themes]

    def _show_model(self, settings: Settings) -> None:
        model = one_line(settings.model)  # a name from a flag, a profile or a stored row
        if settings.demo:
            self.model_label = f"{model} ({DEMO_LABEL})"
            self.sub_title = DEMO_LABEL
        else:
            self.model_label = model
            self.sub_title = model

    # --- layout ------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return ChatScreen(id="_default")  # paints sooner and renders less per frame (screen.py)

    def compose(self) -> ComposeResult:
        self.gc_policy.start_up()  # before the widgets exist: none of them is ever frozen
        with Transcript(id="transcript"):
            yield self._intro
        yield Static("", id="mode", markup=False)
        yield AttachmentBar(id="attachments")
        menu = PathMenu(id="path-menu")
        yield menu
        # Headless (tests, snapshots): the hint of a terminal without the kitty protocol.
        prompt = ChatPrompt(id="prompt", placeholder=newline_hint({} if self.is_headless else os.environ))
        prompt.menu = menu
        yield prompt
        yield StatusBar(self.model_label, id="status")
        # Rebuilt only when its keys change; where they do not all fit, these stay longest
        # (widgets/footer.py).
        yield QuietFooter(first=("submit", "cancel_stream", "quit", "newline"))

    def _welcome_text(self) -> str:
        settings = self.settings
        if settings.demo:
            reason = f" ({settings.demo_reason})" if settings.demo_reason else ""
            return (
                f"Answers come from llmchat's built-in {DEMO_LABEL}{reason}. Set OPENAI_API_KEY or "
                "ANTHROPIC_API_KEY, use Ollama with --api ollama, or pass --base-url to talk to a real model."
            )
        return f"Chatting with {settings.model} ({settings.api}). Type a message and press Enter."

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def prompt(self) -> ChatPrompt:
        return self.query_one("#prompt", ChatPrompt)

    @property
    def attachment_bar(self) -> AttachmentBar:
        return self.query_one("#attachments", AttachmentBar)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def streaming(self) -> bool:
        return self._active is not None

    @property
    def worker(self) -> Optional[Worker[None]]:
        """The worker of the latest answer (tests await it)."""
        return self._worker

    # --- life cycle ----------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.gc_policy.input()  # no full collection between a key and its frame (gc_policy.py)
        await super().on_event(event)

    async def on_mount(self) -> None:
        self._catch_exit_signals()
        self.transcript.anchor()
        self.prompt.focus()
        for notice in self._notices:
            self.notify(notice, severity="warning", timeout=10)
        await self._open_history()
        store = self.chat_history.store
        # Code blocks' highlighting kept with the history: a conversation reopened draws its
        # code without Pygments (markdown_render.highlight_code).
        keep_highlights_in(Path(store.path).parent / HIGHLIGHTS if store is not None else None)
        loading: Optional["asyncio.Future[Any]"] = None
        conversation_id = self.settings.conversation_id
        if self.chat_history.store is not None and conversation_id is not None:
            # Read on the store's thread while the engine starts here (its client's import).
            loading = self._load_stored(conversation_id)
        self.engine = Engine(
            self.settings,
            store=self.chat_history.store,
            warn=self._history_warning,
            tool_warn=self._tool_warning,
            clock=self._clock,
            demo_behaviour=self._demo_behaviour,
        )
        self.chat_history.attach(self.engine)
        if self.settings.mcp_servers:
            # MCP servers take seconds to start (a process each, the SDK's import): the app is
            # drawn and takes a message meanwhile; the message waits for them (_engine_ready).
            self._starting = asyncio.ensure_future(self._start_engine())
        else:
            await self.engine.start()
        self.session = ChatSession()
        if loading is not None and conversation_id is not None:
            # Its first frame drawn roughly (no linkify, code plain unless highlighted before)
            # and finely right after it: markdown_render.draw_roughly says why.
            draw_roughly()
            try:
                await self._show_conversation(conversation_id, loading)
            finally:
                self.call_after_refresh(self._draw_finely)
        if self._status_interval:
            self.set_interval(self._status_interval, self._refresh_status)
        self.call_after_refresh(self._import_ahead)

    def _import_ahead(self) -> None:
        """After the first frame, while the app waits for a key: IMPORT_AHEAD, in a thread."""
        asyncio.get_running_loop().run_in_executor(None, _import_quietly, IMPORT_AHEAD)

    def _draw_finely(self) -> None:
        """After the first frame: the answers drawn roughly for it are drawn again."""
        draw_finely()
        for answer in self.transcript.query(StreamingMarkdown):
            if answer.drawn_roughly:
                answer.draw_again()

    async def _start_engine(self) -> None:
        """The engine's start in the background (its MCP servers): the status bar says so."""
        self.status.tools = STARTING_TOOLS
        try:
            # The MCP SDK's import takes a second or more, and would hold the event loop (the
            # first frame, keys): done in a thread first, the engine finds it imported.
            import importlib

            try:
                await asyncio.to_thread(importlib.import_module, "llmchat.tools.servers")
            except ImportError:
                pass  # the engine says so, and goes on without tools
            await self.engine.start()  # type: ignore[union-attr]
        except Exception as exc:  # as if on_mount had raised it: logged, one line, the app ends
            self._handle_exception(exc)
        finally:
            if self.is_running:
                self.status.tools = None

    async def _engine_ready(self) -> None:
        """Wait for the engine's start, if it is still under way."""
        starting = self._starting
        if starting is not None and not starting.done():
            await asyncio.shield(starting)

    async def on_unmount(self) -> None:
        self._release_exit_signals()
        self.exit_hint = await self._continue_hint()
        self._quitting = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()  # quitting before the servers were up: aclose stops what started
            await asyncio.wait([self._starting])
        if self.engine is not None:
            # An answer still streaming is stored cancelled; a store another process holds
            # locked delays quitting by the store's CLOSE_WAIT at most (then one warning line).
            from llmchat.history import store as history_store

            await self.engine.aclose(store_wait=history_store.CLOSE_WAIT)
        self.chat_history.close()
        await asyncio.to_thread(save_highlights)
        keep_highlights_in(None)
        draw_finely()  # (quit before the first frame's end)
        if self._worker is not None:
            self._worker.cancel()
        if self._model_fetch is not None:
            self._model_fetch.cancel()
        self.gc_policy.close()  # the collector as it was, whatever was still streaming

    # SIGTERM (kill, a service manager) and SIGHUP (the terminal closed) end the app as a quit
    # does: Textual restores the terminal, and an answer still streaming is stored cancelled.
    # Python's default for both is to die at once, leaving the alternate screen, mouse reporting
    # and a hidden cursor behind and the answer `streaming` (marked `interrupted` next start).
    EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def _catch_exit_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.EXIT_SIGNALS:
            try:
                loop.add_signal_handler(signum, self.exit, None, 128 + signum)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
                pass

    def _release_exit_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.EXIT_SIGNALS:
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _handle_exception(self, error: Exception) -> None:
        """Textual calls this (a private hook, the only one) with any exception a handler or a
        worker left unhandled, and then quits. The app still quits -- its state is unknown --
        but the traceback goes to a crash log in the data dir, and the user reads one line
        after the terminal is restored. tests/tui/test_crash.py goes through real failures."""
        from textual.worker import WorkerFailed

        from llmchat.crash import crash_line, write_crash_log

        raise_it = self.is_headless if self.raise_crashes is None else self.raise_crashes
        cause = error.error if isinstance(error, WorkerFailed) and isinstance(error.error, BaseException) else error
        if self.crash_log is None:  # the first is the one that matters; the rest follow from it
            self.crash_log = write_crash_log(cause, self.settings.secrets)
            if not raise_it:
                from rich.text import Text

                self.exit(return_code=1, message=Text(crash_line(cause, self.crash_log, self.settings.secrets), no_wrap=True, overflow="ignore"))
        if raise_it:
            super()._handle_exception(error)

    # --- sending ----------------------------------------------------------------------

    async def on_chat_prompt_submitted(self, event: ChatPrompt.Submitted) -> None:
        event.stop()
        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it first.", severity="warning", timeout=3)
            return
        if self.session is None:
            self.notify("Still starting up: try again in a moment.", severity="warning", timeout=3)
            return
        attached = await self._attachments_to_send()
        if attached is None:
            return  # one notification said why; the prompt and the chips are as they were
        event.prompt.clear()  # accepted: the text now lives in the transcript and the session
        self._restored = None
        editing, self._editing = self._editing, None
        if editing is not None:
            self._show_mode(None)
            await self._cut_to(editing[1])  # the new prompt goes beside the edited one
        turn = self.session.begin(event.text, Metrics(clock=self._clock))
        turn.attachments = attached
        if attached:
            await self.attachment_bar.clear()
        if editing is not None:
            turn.edits = editing[0]
            turn.reshow = True
        self._remember_prompts()
        shown = user_message(event.text, event.pasted, [describe(meta_of(a)) for a in attached])
        shown.turn = turn  # type: ignore[attr-defined]  # a click on it finds its turn
        self._prompt_shown = shown  # mounted with the answer's widget (`_start`)
        await self._start(turn)

    # --- attachments ------------------------------------------------------------------------

    def _earlier_attachments(self, before: Optional[int] = None) -> List[Any]:
        """The attachments the conversation sends again (as context) with a message after its
        turns (or the first `before` of them)."""
        if self.session is None:
            return []
        turns = self.session.turns[:before] if before is not None else self.session.turns
        return [a for turn in turns if not turn.superseded and turn.answered for a in turn.attachments]

    async def _attachments_to_send(self) -> Optional[Tuple[Any, ...]]:
        """The chips' attachments, ready to send (`_attachments_ready`); None when they cannot be sent."""
        self._attach_jobs = [job for job in self._attach_jobs if not job.is_finished]
        if self._attach_jobs:  # Enter right after taking a file: it goes with this message
            await asyncio.gather(*(job.wait() for job in self._attach_jobs), return_exceptions=True)
        return await self._attachments_ready(self.attachment_bar.attachments, self._earlier_attachments(self._editing_at()))

    def _editing_at(self) -> Optional[int]:
        """The turn an edit goes beside (it is sent after the turns before it only), or None."""
        return self._editing[1] if self._editing is not None else None

    async def _attachments_ready(self, attached: Tuple[Any, ...], earlier: List[Any]) -> Optional[Tuple[Any, ...]]:
        """A prompt's attachments as they are sent: converted as the settings ask
        (--pdf-as-text, --max-image-px: a PDF asked again after switching to Ollama), checked
        with those sent again against the API's limits, and encoded (in a thread: never
        megabytes of base64 on the loop). None, after one notification saying why, when they
        cannot be sent."""
        self._sent_as = {}
        if not attached and not earlier:
            return attached
        from llmchat.attaching import resend
        from llmchat.attachments import AttachmentError
        from llmchat.conversation import Message

        context = [Message("user", "", tuple(earlier))]
        try:
            ready = await asyncio.to_thread(resend, attached, [self.settings], context)
        except AttachmentError as exc:
            self.notify(one_line(str(exc)), title="Cannot send the attachments", severity="error", timeout=10)
            return None
        # What was checked is what is sent: the earlier ones as converted (`_context_as_checked`).
        self._sent_as = {id(a): (a, b) for a, b in zip(earlier, context[0].attachments) if a is not b}
        return ready

    def _context_as_checked(self, context: List[Any]) -> List[Any]:
        """`context` with the earlier attachments `_attachments_ready` converted (a PDF sent as
        its text after switching to Ollama with pdf_as_text) in place of the stored ones."""
        sent_as, self._sent_as = self._sent_as, {}
        if not sent_as:
            return context
        import dataclasses

        def swapped(item: Any) -> Any:
            pair = sent_as.get(id(item))
            return pair[1] if pair is not None and pair[0] is item else item

        return [dataclasses.replace(m, attachments=tuple(swapped(a) for a in m.attachments)) if m.attachments else m for m in context]

    def on_chat_prompt_attach(self, event: ChatPrompt.Attach) -> None:
        event.stop()
        self._attach_jobs.append(self._attach_files(event.sources, event.key))

    async def on_chat_prompt_detach(self, event: ChatPrompt.Detach) -> None:
        """Ctrl+Z took back an accepted paste: the chips it made go (once they are made)."""
        event.stop()
        pending = [job for job in self._attach_jobs if not job.is_finished]
        if pending:
            await asyncio.gather(*(job.wait() for job in pending), return_exceptions=True)
        await self.attachment_bar.remove_attachments(self._attached_by.pop(event.key, []))

    @work(group="attach", exit_on_error=False)
    async def _attach_files(self, sources: List[str], key: Optional[int] = None) -> None:
        """Read, check and encode `sources` in a worker thread (a 10 MB PDF never holds up
        the keys), then show them as chips; a failure is one notification."""
        from llmchat.attaching import gather
        from llmchat.attachments import AttachmentError
        from llmchat.conversation import Message

        bar = self.attachment_bar
        context = [Message("user", "", tuple(self._earlier_attachments(self._editing_at())) + bar.attachments)]
        names = ", ".join(sources)
        # A slow read or fetch says so; a quick one (most) shows only its chip.
        slow = self.set_timer(ATTACH_NOTICE_AFTER, lambda: self.notify(one_line(f"Reading {names}…", 200), timeout=3))
        try:
            attached = await asyncio.to_thread(gather, sources, self.settings, context=context)
        except AttachmentError as exc:
            self.notify(one_line(str(exc)), title="Not attached", severity="error", timeout=10)
            return
        except Exception as exc:  # not one of attaching's own: still one line, never a crash
            self.notify(one_line(f"Cannot attach {names}: {exc}", 300), title="Not attached", severity="error", timeout=10)
            return
        finally:
            slow.stop()
        had = bar.attachments
        await bar.add(attached)
        if key is not None:  # what this paste added, for a Ctrl+Z that takes it back
            self._attached_by[key] = [a for a in bar.attachments if not any(a is b for b in had)]

    async def on_attachment_bar_remove(self, event: AttachmentBar.Remove) -> None:
        event.stop()
        await self.attachment_bar.remove_chip(event.chip)

    def on_attachment_bar_leave(self, event: AttachmentBar.Leave) -> None:
        event.stop()
        self.prompt.focus()

    def on_attachment_bar_changed(self, event: AttachmentBar.Changed) -> None:
        event.stop()
        self.refresh_bindings()

    def on_path_menu_accept(self, event: PathMenu.Accept) -> None:
        event.stop()
        self.prompt.accept_menu()
        self.prompt.focus()

    def start_attaching(self) -> None:
        """The palette's "Attach a file or URL": an `@` at the prompt's cursor opens the menu."""
        prompt = self.prompt
        row, column = prompt.cursor_location
        before = prompt.document.get_line(row)[:column]
        prompt.insert("@" if not before or before[-1].isspace() else " @")
        prompt.focus()

    async def _set_chips(self, attachments: Tuple[Any, ...]) -> None:
        bar = self.attachment_bar
        await bar.clear()
        await bar.add(attachments)

    async def action_clear_attachments(self) -> None:
        bar = self.attachment_bar
        refocus = bar.has_focus_within
        await bar.clear()
        if refocus:
            self.prompt.focus()

    @on(TextArea.Changed, "#prompt")
    def _warm_up_while_typing(self, event: TextArea.Changed) -> None:
        """The user is writing a message: open the connection it will be sent on, so Enter
        does not wait for TCP and TLS (stream/warm.py; a no-op while one is ready), and have
        the conversation's messages encoded for its request, once per state of the
        conversation (a 1,000-turn one's 1.4 MB of JSON: in slices while the user types, not
        after Enter)."""
        session = self.session
        if self._active is None and session is not None and self.engine is not None and event.text_area.document.end != (0, 0):
            mark = (id(session), len(session.turns), id(session.last))
            warm, self._warmed = mark != self._warmed, mark
            self.engine.warm_up(context=session.next_context if warm else None)

    async def _start(self, turn: Turn) -> None:
        assert self.session is not None
        view = AssistantMessage()
        turn.view = view
        # The prompt just sent, if any, in the same mount: one layout for the two, not one each
        # (20-50 ms each in a long conversation).
        prompt, self._prompt_shown = self._prompt_shown, None
        await self.transcript.mount(*((view,) if prompt is None else (prompt, view)))
        self.transcript.anchor()  # a new question: follow the answer again
        self._active = turn
        self.status.show(None, WAITING)
        self.refresh_bindings()
        self._worker = self._stream_answer(turn, self._context_as_checked(self.session.context()))

    # A description of its own: by default Textual describes a worker by the repr of its
    # arguments, here the whole context (1.4 MB of text in a 1,000-turn conversation: 30-70 ms
    # on the event loop between Enter and the request).
    @work(exclusive=True, group="stream", exit_on_error=False, description="the answer streaming")
    async def _stream_answer(self, turn: Turn, context: List[Any]) -> None:
        """The engine runs the turn (it stores the prompt before the request, saves the answer
        as it grows and stores the end); this worker shows it."""
        assert self.engine is not None
        await self._engine_ready()  # sent while the MCP servers were starting: they are up now
        view: AssistantMessage = turn.view
        view.markdown.on_frame = self._status_with_frame
        shown = _ShownTurn(self, turn)
        try:
            await self.engine.run(turn, context, shown, pause_every=YIELD_EVERY)
        finally:
            # Shielded: a second cancel (quit, a new answer) must not leave the last fragments
            # unwritten. (The section the text went into last: a step after tools opens one.)
            await asyncio.shield(self._close_stream(shown.markdown.get_stream(), shown.sanitizer.flush()))
            turn.shown = None  # (also when the turn ended before it ran: no state was told)
        if not self.is_running or self._active is not None or turn.record is None:
            return
        if turn.reshow and self.session is not None and self.session.last is turn:
            await self._reshow()  # the new branch as stored, with its `‹ 2/3 ›`
            self.transcript.anchor()
        elif turn.regenerates is not None and turn.record.answer_id is not None:
            await self._mark_siblings(turn)

    async def _close_stream(self, stream: Any, tail: str) -> None:
        if not self.is_running:
            return  # shutting down: the widgets are going away
        if tail:
            await stream.write(tail)
        await stream.stop()

    def _enter(self, turn: Turn, state: str) -> None:
        """A change of state while streaming (the engine set `turn.state`): shown at once, not
        at the next tick. Thinking opens the Thinking block; the answer's first token folds it."""
        turn.view.state = state
        turn.view.set_note(None)  # e.g. a retry notice: the answer has begun
        self._show_thinking(turn)
        if state == STREAMING and turn.thinking is not None:
            turn.thinking.fold()
            turn.thinking.finish()
        self.status.show_turn(turn)

    def _show_thinking(self, turn: Turn) -> None:
        """The turn's reasoning so far in its Thinking block (mounted above the answer the
        first time there is some)."""
        if not turn.reasoning:
            return
        if turn.thinking is None:
            view: AssistantMessage = turn.view
            turn.thinking = ThinkingBlock()
            view.mount(turn.thinking, before=view.markdown)
        turn.thinking.show_parts(turn.reasoning)

    def _end(self, turn: Turn) -> None:
        """The turn is over (the engine says so once: at a cancel, or when the stream ends)."""
        state = turn.state
        view: AssistantMessage = turn.view
        if self._active is turn:
            self._active = None
        if not self.is_running:
            return
        view.state = state
        self._show_thinking(turn)
        if turn.thinking is not None:
            if turn.answered:
                turn.thinking.fold()
            turn.thinking.finish()
        view.set_figures(self._figures_line(turn))
        note = self._ending_note(turn)  # quotes the server: one clean line, no secrets
        view.set_note(self._quoted(note) if note else None)
        self.status.show_turn(turn)
        self.refresh_bindings()
        if state in (ERROR, CANCELLED) and not turn.answered and not self.prompt.text:
            # Nothing was answered (an error, Esc while waiting or thinking): give the question
            # back for editing (Ctrl+R resends it as is).
            self._restored = turn.prompt
            self.prompt.load_text(turn.prompt)
            self.prompt.move_cursor(self.prompt.document.end)
            if turn.attachments and not self.attachment_bar.attachments:
                self.call_later(self.attachment_bar.add, turn.attachments)  # and its attachments

    def _figures_line(self, turn: Turn) -> str:
        """The figures under an ended answer, as a reopened answer shows them."""
        from llmchat.history.markdown import metrics_line

        line = metrics_line(turn.figures(self.settings.model))
        return f"{line} · after {retries_text(turn.retries)}" if turn.retries else line

    @staticmethod
    def _ending_note(turn: Turn) -> Optional[str]:
        if turn.state == ERROR:
            assert turn.error is not None
            return f"Error: {turn.error.message} · Ctrl+R to retry"
        if turn.state == CANCELLED:
            return "cancelled" if turn.answered else "cancelled before the answer began"
        # Cut short, stopped by a content filter, or by --max-steps (the calls past it did not run).
        return turn.warning or turn.over_limit

    def _refresh_status(self) -> None:
        """The status timer: refreshes the bar unless the answer's frames keep it fresh
        (waiting, thinking, a stalled stream). (Half a tick's slack: the timer's ticks are a
        little late or early, and a bar due at the second tick was refreshed at the third.)"""
        interval = self._status_interval or 0.0
        if self._clock() - self._status_at >= self._status_every(interval) + interval / 2:
            self._show_status()

    def _status_with_frame(self) -> None:
        """An answer's frame is due: refresh the bar in the same paint if it is time."""
        if self._status_interval is not None and self._clock() - self._status_at >= self._status_every(self._status_interval):
            self._show_status()

    def _status_every(self, interval: float) -> float:
        """Seconds between refreshes of the bar now: `interval`, or STREAMING_STATUS_INTERVAL
        while the answer's text streams (its figures only)."""
        turn = self._active
        if turn is not None and turn.state == STREAMING and turn.retry is None:
            return max(interval, STREAMING_STATUS_INTERVAL)
        return interval

    def _show_status(self) -> None:
        turn = self._active
        if turn is None:
            return
        try:
            status = self.status
        except NoMatches:  # quitting with an answer in flight: the timer outlives the widgets
            return
        self._status_at = self._clock()
        status.show_turn(turn)
        self._show_tools(turn)
        self._show_thinking(turn)
        if turn.retry is not None:
            turn.view.set_note(self._retry_note(turn))  # the wait counts down

    def _show_tools(self, turn: Turn) -> None:
        """While the answer's tool calls are asked about or run: the status bar says so, and
        the running calls' blocks count their time."""
        now = self._clock()
        for block in turn.view.query(ToolBlock) if turn.view is not None and turn.view.is_attached else ():
            block.tick(now)
        shown = turn.shown
        state = None if turn.ended else tools_state(turn.step.activities, now, shown.asking if shown is not None else None)
        if state is None and self._starting is not None and not self._starting.done():
            state = STARTING_TOOLS  # a message sent meanwhile waits for them
        try:
            self.status.tools = state
        except NoMatches:
            pass

    def _on_retry(self, turn: Turn) -> None:
        """The client waits and tries again (the engine counted it): the wait counts down in
        the answer's note and the status bar."""
        if turn.view is None:
            return
        if self.is_running:
            turn.view.set_note(self._retry_note(turn))
            self.status.show_turn(turn)

    def _retry_note(self, turn: Turn) -> str:
        notice = turn.retry
        left = (turn.retry_until or 0.0) - self._clock()
        when = f"retrying in {left:.1f} s" if left > 0 else "trying again"
        return self._quoted(f"{notice.reason}; {when} (attempt {notice.attempt} of {notice.max_attempts})")

    def _quoted(self, message: str) -> str:
        """A message that quotes a server (an error, a retry's reason): one clean line, with
        every secret the run knows of masked."""
        return one_line(Redactor(self.settings.secrets).redact(message))

    # --- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "cancel_stream":
            return self._active is not None
        if action == "hide_help_panel":
            return bool(self.screen.query("HelpPanel"))
        if action == "clear_attachments":
            return bool(self.attachment_bar.attachments) and self._on_main_screen()
        if action == "retry":
            return self._active is None and self.session is not None and self.session.last is not None
        if action in ("step_sibling", "edit_selected", "regenerate_selected"):
            return self._selected is not None and self._on_main_screen()
        if action == "leave_selection":
            return (self._selected is not None or self._editing is not None) and self._on_main_screen()
        return True

    def action_cancel_stream(self) -> None:
        turn = self._active
        if turn is None:
            raise SkipAction()
        if self._worker is not None:
            self._worker.cancel()  # CancelledError at the worker's await: the connection closes
        assert self.engine is not None
        self.engine.end(turn, CANCELLED)  # shown at once
        if self._active is turn:  # the worker has not run a step yet: the engine never saw it
            self._end(turn)

    async def action_interrupt(self) -> None:
        if self._active is not None:
            self.action_cancel_stream()
            return
        now = self._clock()
        if self._last_interrupt is not None and now - self._last_interrupt <= QUIT_WINDOW:
            await self.action_quit()
            return
        self._last_interrupt = now
        self.notify("Press Ctrl+Q to quit, or Ctrl+C again within 2 s.", title="Quit?", timeout=QUIT_WINDOW)

    async def action_quit(self) -> None:
        """Ctrl+Q, a second Ctrl+C, the palette's Quit. A draft in the prompt is kept for the
        stored conversation (`llmchat -c` puts it back); with no stored conversation to keep it
        with, the app asks first (Ctrl+Q again, or y, quits)."""
        from llmchat.tui.drafts import save_draft, save_draft_attachments
        from llmchat.tui.screens.conversations import Confirm

        prompt = self.prompt
        draft = prompt.text if prompt.text.strip() and not prompt.recalling else None
        chips = [a.name for a in self.attachment_bar.attachments]  # kept with the draft, or asked about
        if draft is None and not chips or isinstance(self.screen, Confirm) and self.screen.id == "confirm-quit":
            self.exit()
            return
        conversation = self.chat_history.conversation_id if self.chat_history.on else None
        if conversation is not None and (draft is None or save_draft(conversation, draft) is not None):
            if not chips or save_draft_attachments(conversation, chips, os.getcwd()) is not None:
                kept = [] if draft is None else ["the draft"]
                kept += [f"{len(chips)} attachment{'s' if len(chips) != 1 else ''}"] if chips else []
                self._draft_kept = " and ".join(kept)
                self.exit()
                return
        where = "history is off" if not self.chat_history.on else "nothing has been sent in this conversation yet"
        what = "the draft in the prompt" if draft is not None else ""
        if chips:
            what += (" and " if what else "") + f"{len(chips)} attachment{'s' if len(chips) != 1 else ''}" + " waiting to be sent"
        question = Confirm(f"Quit and lose {what}? It cannot be kept: {where}.", yes="Quit", no="Stay")
        question.id = "confirm-quit"
        self.push_screen(question, lambda quit: self.exit() if quit else None)

    async def _continue_hint(self) -> Optional[str]:
        """The line printed on exit when the conversation is stored: the command that goes on."""
        from llmchat.history import HistoryError

        conversation = self.chat_history.conversation_id
        if conversation is None or not self.chat_history.on or self.crash_log is not None:
            return None
        try:  # a store locked behind a write is not worth waiting for: the longer command works too
            latest = await asyncio.wait_for(self._from_store(self.chat_history.store.most_recent), 1.0)
        except (HistoryError, asyncio.TimeoutError):
            latest = None
        command = "llmchat -c" if latest is not None and latest.id == conversation else f"llmchat --conversation {conversation}"
        kept = f" (with {self._draft_kept} you left in the prompt)" if self._draft_kept else ""
        return f"Conversation {conversation} is saved: `{command}` continues it{kept}."

    async def action_retry(self) -> None:
        if self._active is not None or self.session is None:
            return
        asked = self.session.last
        self._sent_as = {}
        earlier = self._earlier_attachments(self.session.turns.index(asked)) if asked is not None else []
        if asked is not None and asked.ended and (asked.attachments or earlier):  # the earlier ones are sent as checked too
            ready = await self._attachments_ready(asked.attachments, earlier)
            if ready is None:
                return
            asked.attachments = ready
        turn = self.session.retry(Metrics(clock=self._clock))
        if turn is None:
            return
        assert self.engine is not None
        answer_id = asked.record.answer_id if asked is not None and asked.record is not None else None
        if answer_id is not None and self.chat_history.on:
            turn.regenerates = answer_id  # stored as a sibling of the answer asked again
        else:
            await self.engine.supersede(asked)  # stored (if at all) but no longer sent as context
        self._mark_superseded(asked)
        if self._restored is not None and self.prompt.text == self._restored:
            self.prompt.clear()  # it is being sent again: don't leave a copy behind
            if turn.attachments and self.attachment_bar.attachments == turn.attachments:
                await self.attachment_bar.clear()  # nor of its attachments
        self._restored = None
        await self._start(turn)

    async def _mark_siblings(self, turn: Turn) -> None:
        """A regenerated answer shown live gets its `‹ 2/2 ›` once stored."""
        from llmchat.history import HistoryError

        record = turn.record
        store = self.chat_history.store
        if record is None or record.answer_id is None or store is None or turn.view is None:
            return
        try:
            siblings = await asyncio.to_thread(store.siblings, record.answer_id)
        except HistoryError:
            return
        place = next((n for n, m in enumerate(siblings, 1) if m.id == record.answer_id), None)
        if place is not None and len(siblings) > 1 and turn.view.is_attached:
            await turn.view.mount(SiblingSwitcher(record.answer_id, place, len(siblings)))

    @staticmethod
    def _mark_superseded(turn: Optional[Turn]) -> None:
        """A retried answer stays on screen, dimmed and labelled (a reopened one is dimmed)."""
        view = turn.view if turn is not None else None
        if view is None:
            return
        view.add_class("-superseded")
        if isinstance(view, AssistantMessage):
            mark = "superseded: asked again below, and not sent as context"
            view.set_note(f"{view.note_text} · {mark}" if view.note_text else mark)

    def action_toggle_thinking(self) -> None:
        """Fold or open the newest Thinking block on screen; opened, it is scrolled into view
        (which lets go of a streaming answer's end, as scrolling up does)."""
        if not self._on_main_screen():
            raise SkipAction()
        blocks = self.transcript.query(ThinkingBlock)
        if not blocks:
            self.notify("No answer here shows its thinking.", timeout=3)
            return
        block = blocks.last()
        block.toggle()
        if block.expanded:  # once laid out open
            self.call_after_refresh(self.transcript.scroll_to_widget, block, animate=False, immediate=True)

    def refresh_bindings(self) -> None:
        """As Textual's, but a message handled while the app closes, its screens already gone
        (the attachment bar emptied at quit), refreshes nothing instead of raising
        ScreenStackError, a traceback at exit."""
        if self.screen_stack:
            super().refresh_bindings()

    def _on_main_screen(self) -> bool:
        return self.screen is self.transcript.screen

    def action_scroll_transcript(self, where: str) -> None:
        """Scroll the transcript from the prompt. Moving up lets go of the end (the answer
        keeps growing below); reaching the end again, or Ctrl+End, follows it again."""
        if not self._on_main_screen():
            raise SkipAction()  # e.g. PageUp in the command palette's list
        transcript = self.transcript
        if where == "end":
            transcript.anchor()  # to the end, and follow from there
            return
        # Applied at once, not after the next refresh (Textual's default): a second key pressed
        # before that refresh starts from where the first one went, and nothing that arrives
        # in between moves the view the user asked for.
        page = transcript.container_size.height
        steps = {"home": -transcript.scroll_y, "page_up": -page, "page_down": page, "up": -SCROLL_LINES, "down": SCROLL_LINES}
        transcript.scroll_to(y=transcript.scroll_y + steps[where], animate=False, immediate=True)

    # --- the conversation's tree: select, step, edit, regenerate, fork ---------------------

    def _tree_ready(self, what: str) -> bool:
        """Can `what` (needing the stored tree) be done now? If not, one notification says why."""
        if not self._on_main_screen():
            return False
        if not self.chat_history.on:
            why = "--no-history" if not self.settings.history else "the history file could not be used"
            self.notify(f"{what} needs the history, and it is off ({why}).", severity="warning", timeout=5)
            return False
        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it first.", severity="warning", timeout=3)
            return False
        if self.session is None or self.chat_history.conversation_id is None:
            self.notify("Nothing is stored in this conversation yet.", severity="warning", timeout=3)
            return False
        return True

    def _show_mode(self, text: Optional[str]) -> None:
        """The line above the prompt: the selected message or the edit under way, and its keys."""
        mode = self.query_one("#mode", Static)
        mode.update(text or "")
        mode.set_class(bool(text), "-on")

    async def _reshow(self) -> bool:
        """Show the stored conversation's current path again (after a step, a new branch): the
        session's turns become that path, what the next message is sent after."""
        from llmchat.history import HistoryError

        conversation_id = self.chat_history.conversation_id
        if conversation_id is None or self.session is None:
            return False
        try:
            info, turns = await asyncio.to_thread(self.chat_history.load, conversation_id, self._clock)
        except HistoryError as exc:
            self.notify(one_line(f"Cannot read conversation {conversation_id}: {exc}"), severity="error", timeout=8)
            return False
        await self._show_path(info, turns)
        return True

    async def _show_path(self, info: Any, turns: List[Any]) -> None:
        """A stored path (`chat_history.load`'s) becomes the session's turns, what the next
        message is sent after, and the transcript shows it. The transcript mounts only the turns
        near the view, and the others as they come near (widgets/transcript.py): opening and
        scrolling cost the same however long it is."""
        assert self.session is not None
        self._let_go_of_views()
        self.session.turns = [turn for turn, _, _ in turns]
        self._remember_prompts()
        await self.transcript.show_turns([StoredTurn(turn.prompt, answer, prompt) for turn, prompt, answer in turns])
        self._intro.update(self._about_text(info))
        self._about = self._intro

    async def _cut_to(self, index: int) -> None:
        """The transcript and the session end before stored turn `index` (a new branch is about
        to be shown from there)."""
        assert self.session is not None
        shown = self.transcript.turns
        self._let_go_of_views()
        self.session.turns = self.session.turns[:index]
        await self.transcript.show_turns(shown[:index])
        self.transcript.anchor()

    def _items(self) -> List[Tuple[int, str]]:
        """The messages that can be selected, oldest first: (stored turn index, role)."""
        items: List[Tuple[int, str]] = []
        for index, turn in enumerate(self.transcript.turns):
            items.append((index, "prompt"))
            if turn.answer is not None:
                items.append((index, "answer"))
        return items

    async def _all_stored(self) -> bool:
        """The transcript shows only stored turns (answers sent this session are re-read)."""
        assert self.session is not None
        if len(self.session.turns) == self.transcript.stored_turns and all(turn.view is None for turn in self.session.turns):
            return True
        return await self._reshow()

    async def action_select_message(self, delta: int) -> None:
        """Alt+Up / Alt+Down: move the selection over the messages (past the last: none)."""
        if not self._on_main_screen():
            raise SkipAction()
        if not self._tree_ready("Selecting a message") or not await self._all_stored():
            return
        items = self._items()
        if not items:
            return
        at = items.index(self._selected) if self._selected in items else len(items)
        at = max(0, at + delta)
        if at >= len(items):
            self._clear_selection()
            return
        self._select(items[at])

    def _select(self, item: Optional[Tuple[int, str]]) -> None:
        self._clear_selection()
        if item is None:
            return
        self._selected = item
        items = self._items()
        number = items.index(item) + 1 if item in items else 0
        what = "e or Enter edits" if item[1] == "prompt" else "r regenerates"
        self._show_mode(f"Message {number} of {len(items)} selected · {what} · [ ] versions · Alt+↑/↓ moves · Esc leaves")
        self.transcript.reveal(item[0])
        self._mark_selected()
        self.refresh_bindings()

    def _selected_widget(self) -> Optional[Any]:
        if self._selected is None:
            return None
        index, role = self._selected
        view = self.transcript.view_of(index)
        if view is None or not view.is_attached:
            return None
        found = view.query(UserMessage if role == "prompt" else StoredAnswer)
        return found.first() if found else None

    def _mark_selected(self, tries: int = 10) -> None:
        """Highlight the selected message and bring it into view, once it is mounted."""
        widget = self._selected_widget()
        if widget is None:
            if self._selected is not None and tries > 0:
                self.call_after_refresh(self._mark_selected, tries - 1)
            return
        widget.add_class("-selected")
        self.transcript.scroll_to_widget(widget, animate=False, immediate=True)

    def _clear_selection(self) -> None:
        widget = self._selected_widget()
        if widget is not None:
            widget.remove_class("-selected")
        if self._selected is not None:
            self._selected = None
            self._show_mode(None)
            self.refresh_bindings()

    @property
    def selection_keys(self) -> frozenset:
        """The printable keys the app's bindings take from the prompt while a message is selected."""
        return SELECTION_KEYS if self._selected is not None else frozenset()

    @property
    def selected_message_id(self) -> Optional[int]:
        """The stored ID of the selected message (a prompt or an answer), or None."""
        if self._selected is None or self.session is None:
            return None
        index, role = self._selected
        if index >= len(self.session.turns):
            return None
        record = self.session.turns[index].record
        if record is None:
            return None
        return record.prompt_id if role == "prompt" else record.answer_id

    def action_leave_selection(self) -> None:
        """Esc: no message selected; an edit under way is dropped (the prompt as it was)."""
        if self._editing is not None:
            self._editing = None
            self.prompt.load_text(self._edit_draft)
            self.call_later(self._set_chips, self._edit_chips)
            self.prompt.move_cursor(self.prompt.document.end)
            self._show_mode(None)
            self.refresh_bindings()
            return
        self._clear_selection()

    async def action_step_sibling(self, delta: int) -> None:
        message_id = self.selected_message_id
        if message_id is not None:
            await self.step_sibling(message_id, delta)

    async def on_sibling_switcher_step(self, event: SiblingSwitcher.Step) -> None:
        event.stop()
        await self.step_sibling(event.message_id, event.delta)

    async def step_sibling(self, message_id: int, delta: int) -> None:
        """Show the branch through the sibling `delta` places from `message_id` (the store
        remembers the choice); the message stays selected, the transcript follows the branch."""
        from llmchat.history import HistoryError

        if not self._tree_ready("Stepping between versions"):
            return
        store = self.chat_history.store
        try:
            siblings = await asyncio.to_thread(store.siblings, message_id)
            ids = [m.id for m in siblings]
            at = ids.index(message_id) + delta
            if not 0 <= at < len(ids):
                self.notify(f"No {'earlier' if delta < 0 else 'later'} version: this is {ids.index(message_id) + 1} of {len(ids)}.", timeout=2)
                return
            await asyncio.to_thread(partial(store.select_branch, ids[at], touch=True))
            depth = None if self._selected is not None else len(await asyncio.to_thread(partial(store.path_to, leaf_id=ids[at]))) - 1
        except (HistoryError, ValueError) as exc:
            self.notify(one_line(f"Cannot step to another version: {exc}"), severity="error", timeout=8)
            return
        role = "prompt" if siblings[at].role == "user" else "answer"
        kept = self._selected
        self._clear_selection()
        await self._reshow()
        if kept is not None:
            self._select((kept[0], role))
        elif depth is not None:
            self._select((depth // 2, role))  # a path alternates prompts and answers
        else:
            self.transcript.anchor()

    def action_edit_selected(self) -> None:
        """Enter or e on a selected prompt: its text in the prompt box; sending it makes a new
        branch from where it was asked."""
        if self._selected is None or self.session is None:
            return
        index, role = self._selected
        if role != "prompt":
            self.notify("Only a prompt is edited: r regenerates an answer.", timeout=3)
            return
        turn = self.session.turns[index]
        if turn.record is None or turn.record.prompt_id is None:
            self.notify("This prompt is not stored: it cannot be edited.", severity="warning", timeout=3)
            return
        number = self._items().index(self._selected) + 1
        self._clear_selection()
        self._editing = (turn.record.prompt_id, index, number)
        self._edit_draft = self.prompt.text
        self._edit_chips = self.attachment_bar.attachments
        self.call_later(self._set_chips, turn.attachments)  # the edit sends them, unless removed
        self.prompt.load_text(turn.prompt)
        self.prompt.move_cursor(self.prompt.document.end)
        self.prompt.focus()
        self._show_mode(f"Editing message {number} · Enter sends it as a new branch · Esc to cancel")
        self.refresh_bindings()

    async def action_regenerate_selected(self) -> None:
        if self._selected is None:
            return
        index, role = self._selected
        if role != "answer":
            self.notify("Only an answer is regenerated: Enter or e edits a prompt.", timeout=3)
            return
        self._clear_selection()
        await self.regenerate(index)

    async def regenerate(self, index: Optional[int] = None) -> None:
        """Ask stored turn `index`'s prompt again (the last turn when None) with the current
        settings: the new answer is a sibling of the old one, and the transcript shows it."""
        if not self._tree_ready("Regenerating an answer") or not await self._all_stored():
            return
        assert self.session is not None
        if index is None:
            index = len(self.session.turns) - 1
        if not 0 <= index < len(self.session.turns):
            return
        old = self.session.turns[index]
        answer_id = old.record.answer_id if old.record is not None else None
        if answer_id is None:
            self.notify("This turn has no stored answer to regenerate.", severity="warning", timeout=3)
            return
        ready = await self._attachments_ready(old.attachments, self._earlier_attachments(index))
        if ready is None:
            return
        self._clear_selection()
        await self._cut_to(index)
        turn = self.session.begin(old.prompt, Metrics(clock=self._clock))
        turn.attachments = ready  # asked again as it was asked (converted as the settings say)
        turn.regenerates = answer_id
        turn.reshow = True
        self._remember_prompts()
        shown = UserMessage(old.prompt, [describe(meta_of(a)) for a in old.attachments])
        shown.turn = turn  # type: ignore[attr-defined]
        await self.transcript.mount(shown)
        await self._start(turn)

    async def on_click(self, event: events.Click) -> None:
        """A click on a message selects it (a stored one, or one sent this session)."""
        from llmchat.tui.widgets.pasted import PastedUserMessage

        if "@click" in event.style.meta:
            return  # a link: the click opens it
        widget: Any = event.widget
        if isinstance(widget, PastedUserMessage):
            return  # its click shows or hides the pasted text
        while widget is not None and not isinstance(widget, (UserMessage, StoredAnswer, AssistantMessage)):
            if isinstance(widget, (Transcript, SiblingSwitcher)) or widget is self.screen:
                return
            widget = widget.parent
        if widget is None or self.session is None or not self._on_main_screen() or getattr(self.screen, "selections", None):
            return  # (a drag that selected text is the user's, not a message selection)
        if not self.chat_history.on or self._active is not None:
            return  # a click says nothing: the keys say why (Alt+Up)
        item: Optional[Tuple[int, str]] = None
        view = widget.parent
        if isinstance(view, TurnView):
            item = (view.index, "prompt" if isinstance(widget, UserMessage) else "answer")
        else:  # sent this session: its place on the path
            live = [turn for turn in self.session.turns if not turn.superseded]
            turn = getattr(widget, "turn", None) if isinstance(widget, UserMessage) else next((t for t in live if t.view is widget), None)
            if turn is None or turn not in live:
                return
            item = (live.index(turn), "prompt" if isinstance(widget, UserMessage) else "answer")
        if not self._tree_ready("Selecting a message") or not await self._all_stored():
            return
        if item in self._items():
            self._select(item)

    async def fork_here(self) -> None:
        """Palette: a new conversation holding the path up to the selected message (or all of
        the current path), opened."""
        from llmchat.history import HistoryError

        if not self._tree_ready("Forking"):
            return
        conversation_id = self.chat_history.conversation_id
        assert conversation_id is not None and self.session is not None
        message_id = self.selected_message_id
        if message_id is None:
            last = self.session.last
            record = last.record if last is not None else None
            message_id = (record.answer_id or record.prompt_id) if record is not None else None
        if message_id is None:
            self.notify("Nothing stored to fork yet.", severity="warning", timeout=3)
            return
        self._clear_selection()
        try:
            new_id = await asyncio.to_thread(self.chat_history.store.fork, conversation_id, message_id)
        except HistoryError as exc:
            self.notify(one_line(f"Cannot fork: {exc}"), severity="error", timeout=8)
            return
        if await self.open_conversation(new_id):
            self.notify(f"Forked conversation {conversation_id} into conversation {new_id}: the next message continues the fork.", timeout=5)

    async def compare_from_palette(self) -> None:
        """Palette: compare the selected answer with another version of it; with no answer
        selected, the last answer on this branch that has other versions."""
        if self._selected is not None and self._selected[1] == "answer":
            await self.pick_comparison()
        else:
            await self.pick_answer_to_compare()

    async def pick_comparison(self) -> None:
        """Palette: another version of the selected (or last) answer to compare it with; the
        comparison itself is `compare_answers(a_id, b_id)`, which the compare screen provides."""
        from llmchat.history import HistoryError

        compare = getattr(self, "compare_answers", None)
        if compare is None or not self._tree_ready("Comparing answers"):
            return
        assert self.session is not None
        answer_id = self.selected_message_id if self._selected is not None and self._selected[1] == "answer" else None
        if answer_id is None and self.session.last is not None and self.session.last.record is not None:
            answer_id = self.session.last.record.answer_id
        if answer_id is None:
            self.notify("Select an answer to compare (Alt+Up).", severity="warning", timeout=3)
            return
        try:
            siblings = await asyncio.to_thread(self.chat_history.store.siblings, answer_id)
        except HistoryError as exc:
            self.notify(one_line(f"Cannot read the answer's versions: {exc}"), severity="error", timeout=8)
            return
        others = [m for m in siblings if m.id != answer_id]
        if not others:
            self.notify("This answer has no other version to compare it with: r regenerates it.", timeout=4)
            return
        choices = [
            Choice(
                f"Version {m.sibling_index} of {m.sibling_count} · {one_line(m.model or 'unknown model')}",
                one_line(m.content)[:80],
                partial(compare, answer_id, m.id),
            )
            for m in others
        ]
        self._pick(choices, "Compare with which version?")

    def regenerate_with(self, kind: str) -> None:
        """Palette: pick a model (`kind` "model") or a profile ("profile"), then regenerate the
        selected answer (or the last one) with it."""
        if not self._tree_ready("Regenerating an answer"):
            return
        index = self._selected[0] if self._selected is not None and self._selected[1] == "answer" else None

        async def then() -> None:
            await self.regenerate(index)

        self.pick_model(then=then, profiles=kind == "profile", models=kind == "model")

    # --- the command palette and copying -------------------------------------------------

    def get_system_commands(self, screen: Any) -> Iterable[SystemCommand]:
        self._prefetch_models()
        for command in super().get_system_commands(screen):  # its "Theme" opens search_themes below
            if command.title == "Screenshot":  # Textual's saves to ~/Downloads, failing when that is missing
                yield SystemCommand(
                    "Screenshot",
                    f"Save an SVG of the screen in {screenshot_dir()}",
                    lambda: self.set_timer(0.1, self.save_screen),  # once the palette has gone
                )
            else:
                yield command
        yield SystemCommand("New conversation", "Clear the transcript and start again with no context", self.new_conversation)
        yield SystemCommand("Conversations", "Open, rename, delete or search stored conversations (ctrl+o)", self.action_conversations)
        yield SystemCommand("Attach a file or URL", "Type @ in the prompt: paths under this folder as you type, or @https://…", self.start_attaching)
        if self.attachment_bar.attachments:
            yield SystemCommand("Remove all attachments", "The chips above the prompt (ctrl+l)", self.action_clear_attachments)
        yield SystemCommand("Switch model or profile", "A profile from the config file, or any model name on the current server", self.pick_model)
        yield SystemCommand("Copy last answer", "Its Markdown source, to the clipboard (ctrl+y)", self.copy_answer)
        yield SystemCommand("Copy code block", "One code block of the last answer, to the clipboard", self.pick_code_block)
        yield SystemCommand(
            "Compare with another answer…",
            "The selected answer (or the last one that has other versions) beside another answer to its prompt",
            self.compare_from_palette,
        )
        yield SystemCommand(
            "Regenerate with model…",
            "Ask the selected (or last) answer's prompt again with another model: a sibling",
            partial(self.regenerate_with, "model"),
        )
        yield SystemCommand(
            "Regenerate with profile…",
            "Ask the selected (or last) answer's prompt again with another profile: a sibling",
            partial(self.regenerate_with, "profile"),
        )
        yield SystemCommand(
            "Fork this conversation here", "A new conversation with the path up to the selected message (or all of it)", self.fork_here
        )

    def save_screen(self) -> Optional[Path]:
        """Save an SVG screenshot in the data dir's screenshots/; say where, or where and why not."""
        folder = screenshot_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = Path(self.save_screenshot(path=str(folder)))
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            self.notify(f"Screenshot not saved in {folder}: {reason}.", title="Screenshot", severity="error", markup=False, timeout=8)
            return None
        self.notify(f"Saved in {path}", title="Screenshot", markup=False, timeout=6)
        return path

    def _pick(
        self,
        choices: List[Choice],
        placeholder: str,
        typed: Optional[Callable[[str], Optional[Choice]]] = None,
        more: Optional[Callable[[], Awaitable[Iterable[Choice]]]] = None,
    ) -> None:
        # Textual takes a SimpleProvider instance in `providers` too, but types only classes.
        self.push_screen(ChatPalette(providers=[Choices(self.screen, choices, typed, more)], placeholder=placeholder))  # type: ignore[list-item]

    def action_command_palette(self) -> None:
        """Textual's palette, as Textual opens it, but one that survives fast typing (palette.py)."""
        if self.use_command_palette and not ChatPalette.is_open(self):  # type: ignore[arg-type]  # any App; typed App[object]
            self.push_screen(ChatPalette(id="--command-palette"))

    def search_themes(self) -> None:
        """Textual's "Theme" command: the same picker, but the choice is saved in the config."""
        choices = []
        for name, theme in sorted(self.available_themes.items()):
            notes = ["custom" if name in self.custom_themes else "built-in", "dark" if theme.dark else "light"]
            if name == self.theme:
                notes.append("current")
            choices.append(Choice(name, ", ".join(notes), partial(self.choose_theme, name)))
        self._pick(choices, f"Search for themes (saved in {self.config.path.name})…")

    def choose_theme(self, name: str) -> None:
        self.theme = name
        try:
            path = save_theme(name, self.config.path)
        except ConfigError as exc:
            self.notify(f"Theme {name} is on for now, but it was not saved: {exc}", severity="error", timeout=8)
            return
        self.config.theme = name
        self.notify(f"Theme {name}, saved in {path}.", timeout=3)

    def pick_model(self, then: Optional[Callable[[], Awaitable[None]]] = None, *, profiles: bool = True, models: bool = True) -> None:
        """The profile and model picker; `then` runs after the switch (a regeneration with the
        choice); `profiles` / `models` say which of the two it offers."""

        def run(switch: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            if then is None:
                return switch

            async def both() -> None:
                before = self.settings
                await switch()
                if self.settings is not before:  # switched (a failure was notified)
                    await then()

            return both

        choices = []
        for name, profile in self.config.profiles.items() if profiles else ():
            details = " · ".join(value for value in (profile.model, profile.api, profile.base_url) if value)
            title = f"{name} (current)" if name == self.settings.profile else name
            choices.append(Choice(title, details or "the provider's defaults", run(partial(self.switch_profile, name))))
        where = DEMO_LABEL if self.settings.demo else f"{self.settings.api} at {self.settings.base_url}"
        listed: List[str] = []

        async def server_models() -> List[Choice]:
            listed.extend(await self._server_models())
            return [
                Choice(f"{model} (current)" if model == self.settings.model else model, f"a model on {where}", run(partial(self.switch_model, model)))
                for model in listed
            ]

        def typed(model: str) -> Optional[Choice]:
            if model in listed:
                return None  # it is in the list already
            return Choice(f"Use model {model}", f"on {where}", run(partial(self.switch_model, model)))

        if not models:
            self._pick(choices, "Pick a profile…")
            return
        placeholder = (
            "Pick a profile or one of the server's models, or type a model name…"
            if profiles
            else "Pick one of the server's models, or type a model name…"
        )
        self._pick(choices, placeholder, typed, server_models)

    def _prefetch_models(self) -> None:
        """Start fetching the server's model list unless a fresh one is cached or on its way:
        the palette is open, so the model picker may be next."""
        engine = self.engine
        if self.session is None or engine is None or engine.client is None:
            return
        key = (self.settings.api, engine.base_url, self.settings.api_key)
        cached = self._model_list
        if cached is not None and cached[0] == key and self._clock() - cached[1] < MODEL_LIST_TTL:
            return
        if self._model_fetch is not None and not self._model_fetch.done() and self._model_fetch_key == key:
            return
        if self._model_fetch is not None:
            self._model_fetch.cancel()
        self._model_fetch_key = key
        self._model_fetch = asyncio.ensure_future(self._fetch_models(key, engine.client, engine.provider))

    async def _fetch_models(self, key: tuple, client: Any, provider: Any) -> None:
        from llmchat.stream.client import ModelListError

        try:
            names: Any = await client.list_models(provider, key[1], key[2])
        except ModelListError as exc:
            names = exc
        except Exception as exc:  # a bug: still one line in the picker, never a dead palette
            names = ModelListError(f"{exc.__class__.__name__}: {exc}")
        self._model_list = (key, self._clock(), names)

    async def _server_models(self) -> List[str]:
        """The server's model names, from the cache or fetched now (at most MODEL_LIST_WAIT
        seconds: a slower list arrives in the background for the next time); [] after a
        notice when the server could not say."""
        self._prefetch_models()
        fetch = self._model_fetch
        if fetch is not None and not fetch.done():
            try:
                await asyncio.wait_for(asyncio.shield(fetch), MODEL_LIST_WAIT)
            except asyncio.TimeoutError:
                return []
        if self._model_list is None:
            return []
        names = self._model_list[2]
        if isinstance(names, Exception):
            self.notify(f"The server did not list its models: {names}", severity="warning", timeout=6, markup=False)
            return []
        return list(names)

    async def switch_profile(self, name: str) -> None:
        """As if started with --profile NAME: the command line's other flags still apply, but
        not its --api, --base-url or --model (choosing those is what a profile is for)."""
        flags = replace(self.flags, profile=name, api=None, base_url=None, model=None)
        try:
            settings = self._resolve(flags)
        except ConfigError as exc:
            self.notify(f"Cannot switch to {name}: {exc}", severity="error", timeout=8)
            return
        await self._use(settings)

    def _resolve(self, flags: Overrides) -> Settings:
        """Settings resolved again (another profile, another conversation's), with the command
        line's tool options (--mcp, --no-tools, --allow-tool(s), --max-steps) applied again.
        ConfigError."""
        settings = resolve(flags, os.environ, self.config)
        apply_tool_flags(settings, self.config, **self.settings.tool_flags)
        return settings

    async def switch_model(self, model: str) -> None:
        await self._use(replace(self.settings, model=model))

    async def _use(self, settings: Settings) -> None:
        """Send the next messages with `settings`; the conversation so far goes with them."""
        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it, or switch when it ends.", severity="warning", timeout=4)
            return
        assert self.session is not None and self.engine is not None
        await self._engine_ready()
        await self.engine.use(settings)
        self.settings = settings
        self._show_model(settings)
        self.status.model = self.model_label
        self.notify(f"The next message goes to {self.model_label}.", timeout=3)

    async def new_conversation(self) -> None:
        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it first.", severity="warning", timeout=4)
            return
        if self.session is None:
            return
        self._let_go_of_views()
        self.session = ChatSession()
        self._remember_prompts()
        self._restored = None
        self._forget_conversation()  # the next message starts a new stored conversation
        await self.transcript.show_turns([])
        self._intro.update(self._welcome_text())
        self.transcript.anchor()
        self.status.show(None, READY)
        self.refresh_bindings()  # nothing to retry any more
        self.prompt.focus()

    def _remember_prompts(self) -> None:
        """The prompt's Up/Down recall: this conversation's prompts (a retry's once)."""
        prompts: List[str] = []
        for turn in self.session.turns if self.session is not None else ():
            if not prompts or prompts[-1] != turn.prompt:
                prompts.append(turn.prompt)
        self.prompt.earlier = prompts

    def action_copy_answer(self) -> None:
        if not self._on_main_screen():
            raise SkipAction()
        self.copy_answer()

    def copy_answer(self) -> None:
        turn = self.session.last_answer if self.session is not None else None
        if turn is None:
            self.notify("Nothing to copy yet: there is no answer in this conversation.", severity="warning", timeout=3)
            return
        what = "the answer so far" if turn is self._active else "the last answer"
        self._copy(strip_controls(shown_text(turn)), what)  # the text as it was shown

    def pick_code_block(self) -> None:
        turn = self.session.last_answer if self.session is not None else None
        if turn is None:
            self.notify("Nothing to copy yet: there is no answer in this conversation.", severity="warning", timeout=3)
            return
        blocks = code_blocks(strip_controls(turn.answer))
        if not blocks:
            self.notify("The last answer has no code blocks.", severity="warning", timeout=3)
            return
        choices = []
        for number, block in enumerate(blocks, 1):
            lines = "1 line" if block.lines == 1 else f"{block.lines} lines"
            title = f"{number}. {block.language or 'code'}, {lines}"
            choices.append(Choice(title, block.preview, partial(self._copy, block.code, f"code block {number}")))
        self._pick(choices, "Copy which code block?")

    def compare_answers(self, a_id: int, b_id: int) -> None:
        """Stored answers `a_id` and `b_id` side by side or as a word diff, with their figures."""
        from llmchat.tui.screens.compare import CompareScreen

        if self.chat_history.store is None:
            self.notify("History is off: no answers are stored, so there are none to compare.", severity="warning", timeout=5)
            return
        self.push_screen(CompareScreen(self.chat_history.store, a_id, b_id))

    async def pick_answer_to_compare(self) -> None:
        """The palette's "Compare with another answer…": the last answer that has siblings, then a pick of one of them."""
        from llmchat.history import HistoryError
        from llmchat.tui.screens.compare import choice_text, last_answer_with_siblings

        store, conversation_id = self.chat_history.store, self.chat_history.conversation_id
        try:
            found = (
                await asyncio.to_thread(last_answer_with_siblings, store, conversation_id)
                if store is not None and conversation_id is not None
                else None
            )
        except HistoryError as exc:
            self.notify(one_line(f"Cannot read the history: {exc}"), severity="error", timeout=8)
            return
        if found is None:
            self.notify("No answer here has another answer to the same prompt to compare it with.", severity="warning", timeout=5)
            return
        answer, others = found
        choices = [Choice(*choice_text(other), partial(self.compare_answers, answer.id, other.id)) for other in others]
        self._pick(choices, f"Compare answer {answer.id} with which answer?")

    def _copy(self, text: str, what: str) -> None:
        self.copy_to_clipboard(text)
        self.notify(
            f"Sent {what} ({len(text):,} characters) to the terminal's clipboard with OSC 52. "
            "Some terminals ignore it (tmux needs set-clipboard on).",
            title="Copied",
            timeout=4,
        )

    # --- history: recording, reopening, the conversation list -----------------------------

    def _history_warning(self, message: str) -> None:
        """The store's one-line warnings (Recorder's `warn`): a notification, never a crash.
        From any thread (the store's syncer says what failed there); while quitting, printed
        after the terminal is restored."""
        if self._quitting:
            self.exit_warnings.append(one_line(message))
            return
        text = one_line(message).removeprefix("warning: ")
        self.notify(text[:1].upper() + text[1:], title="History", severity="warning", timeout=8)

    def _tool_warning(self, message: str) -> None:
        """The MCP servers' one-line warnings (the engine's `tool_warn`, engine/tooling.py: a
        server that did not start or crashed, an "always" that could not be remembered): a
        notification titled Tools; while quitting, printed after the terminal is restored."""
        text = one_line(message).removeprefix("llmchat: ")
        if self._quitting:
            self.exit_warnings.append(text)
            return
        self.notify(text[:1].upper() + text[1:], title="Tools", severity="warning", timeout=10)

    async def _from_store(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the history store's syncer thread, awaited: the event loop never waits
        for SQLite (another process may hold the file locked for seconds). HistoryError when
        the store is closed or the call fails."""
        return await asyncio.wrap_future(self.chat_history.store.submit(fn, *args))

    async def _open_history(self) -> None:
        """Open the store when history is on (the engine records into it). Opened in a thread:
        the keys typed meanwhile wait for it (in order), the screen does not."""
        await asyncio.to_thread(self.chat_history.open, self.settings)

    def _let_go_of_views(self) -> None:
        """The session's turns are about to be dropped: their widgets must not outlive the
        transcript through them (the last answer's worker keeps its turn)."""
        if self.session is not None:
            for turn in self.session.turns:
                turn.view = turn.shown = None

    def _drop_tree_state(self) -> None:
        """Another conversation is shown: no message selected, no edit under way."""
        self._selected = None
        self._editing = None
        self._show_mode(None)

    def _forget_conversation(self) -> None:
        self._drop_tree_state()
        self._about = None
        self.settings.conversation_id = None
        self.chat_history.use(None)

    def _load_stored(self, conversation_id: int) -> "asyncio.Future[Any]":
        """`chat_history.load` of the conversation, started on the store's thread."""
        from llmchat.history import HistoryError

        try:
            return asyncio.wrap_future(self.chat_history.store.submit(self.chat_history.load, conversation_id, self._clock))
        except HistoryError as exc:  # the store closed: said when awaited, as a failed load
            failed: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def _show_conversation(self, conversation_id: int, loading: Optional["asyncio.Future[Any]"] = None) -> bool:
        """Replace the transcript and the session's turns with a stored conversation: each
        prompt, each answer as finished Markdown with its stored figures. The next message
        continues it (its turns are the context). `loading`: its load, already started."""
        from llmchat.history import HistoryError

        assert self.session is not None
        try:
            info, turns = await (loading if loading is not None else self._load_stored(conversation_id))
        except HistoryError as exc:
            self.notify(one_line(f"Cannot open conversation {conversation_id}: {exc}"), severity="error", timeout=8)
            return False
        self._drop_tree_state()
        await self._show_path(info, turns)
        self.transcript.anchor()
        self.settings.conversation_id = info.id
        self.chat_history.use(info.id)
        from llmchat.tui.drafts import take_draft

        draft = None if self.prompt.text else take_draft(info.id)  # left in the prompt at the last quit
        if draft is not None:
            self.prompt.load_text(draft)
            self.prompt.move_cursor(self.prompt.document.end)
        if not self.attachment_bar.attachments:
            from llmchat.tui.drafts import take_draft_attachments

            kept = take_draft_attachments(info.id, os.getcwd())  # the chips left with it: taken again
            if kept:
                self._attach_jobs.append(self._attach_files(kept))
        self._restored = None
        self.status.show(None, READY)
        self.refresh_bindings()  # Ctrl+R can ask the last stored prompt again
        return True

    def action_conversations(self) -> None:
        from llmchat.tui.screens.conversations import ConversationList

        if isinstance(self.screen, ConversationList):
            self.screen.dismiss(None)
            return
        if not self.chat_history.on:
            why = "--no-history" if not self.settings.history else "the history file could not be used"
            if not self.settings.history and self.config.history is False:
                why = f"history = false in {self.config.path}"
            self.notify(f"History is off ({why}): no conversations are stored.", severity="warning", timeout=5)
            return
        self.push_screen(ConversationList.for_app(self, self.chat_history.store, self.chat_history.conversation_id))

    def _about_text(self, info: Any) -> str:
        """The note above a reopened conversation."""
        from llmchat.history.markdown import local_time

        return (
            f"Conversation {info.id}: {one_line(info.title)} · {info.message_count} messages · "
            f"last used {local_time(info.last_used_at)}. The next message continues it with {self.model_label}."
        )

    def on_conversation_list_renamed(self, event: Any) -> None:
        """The open conversation renamed in the list: its note says the new title at once (the
        list read the conversation with its new title)."""
        about = self._about
        if about is None or event.conversation_id != self.chat_history.conversation_id or not about.is_attached:
            return
        if event.info is not None:
            about.update(self._about_text(event.info))

    async def open_conversation(self, conversation_id: int) -> bool:
        """Show and continue a stored conversation, with the settings it had (the rule of
        `llmchat -c`: see config.continue_flags). False, with a notification, when not now."""
        from llmchat.history import HistoryError

        if self._active is not None:
            self.notify("An answer is still streaming: press Esc to cancel it, or open the conversation when it ends.", severity="warning", timeout=4)
            return False
        if self.session is None or self.chat_history.store is None:
            return False
        try:
            info = await self._from_store(self.chat_history.store.get, conversation_id)
            chosen = continue_flags(self.flags, info, self.config)
            settings = self._resolve(chosen or self.flags)
        except (HistoryError, ConfigError) as exc:
            self.notify(one_line(f"Cannot open conversation {conversation_id}: {exc}"), severity="error", timeout=8)
            return False
        if self._active is not None:  # sent while the store was read
            return False
        settings.history = self.settings.history
        if settings.demo and chosen is not None:
            settings.demo_reason = f"continuing conversation {info.id}"
        assert self.engine is not None
        await self._engine_ready()
        await self.engine.use(settings)
        self.settings = settings
        self._let_go_of_views()
        self.session = ChatSession()
        self._show_model(settings)
        self.status.model = self.model_label
        shown = await self._show_conversation(info.id)
        self.prompt.focus()
        return shown

    def may_delete(self, conversation_id: int) -> bool:
        if self._active is not None and conversation_id == self.chat_history.conversation_id:
            self.notify("An answer is streaming into this conversation: cancel it (Esc) before deleting.", severity="warning", timeout=4)
            return False
        return True

    def conversation_deleted(self, conversation_id: int) -> None:
        """The list deleted a conversation: if it is the one on screen, the chat starts afresh
        (its turns are gone from the store, so they are no longer sent either)."""
        if conversation_id == self.chat_history.conversation_id:
            self._forget_conversation()
            self.call_later(self.new_conversation)


def screenshot_dir() -> Path:
    from llmchat.config import data_dir

    return data_dir() / "screenshots"


def run_tui(settings: Settings, flags: Optional[Overrides] = None, theme: Optional[str] = None) -> int:
    """Run the app until the user quits; the exit code (0 for a normal quit, 2 for a bad
    --theme or config file)."""
    try:
        app = ChatApp(settings, config=load_config(), flags=flags, theme=theme)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from llmchat.tui.compat import install_alt_enter

    install_alt_enter()  # Alt+Enter as ESC CR: a new line, not Enter
    try:
        app.run()
    except Exception as exc:  # outside Textual's own handling (the driver, start-up): same rule
        from llmchat.crash import crash_line, write_crash_log

        print(crash_line(exc, write_crash_log(exc, settings.secrets), settings.secrets), file=sys.stderr)
        return 1
    for warning in app.exit_warnings:  # what the history could not save while quitting
        print(warning, file=sys.stderr)
    if app.exit_hint and not app.return_code:
        print(app.exit_hint, file=sys.stderr)
    return app.return_code or 0


def _import_quietly(names: Sequence[str]) -> None:
    """Import `names` (a thread's work: see IMPORT_AHEAD). One that fails is left to fail
    where it is used, with that code's own handling."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            pass
