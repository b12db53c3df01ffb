"""The question before a tool runs: which tool, on which server, with which arguments.

    choice = await wait_for(ApproveTool(name, server, arguments))   # "once" | "always" | "deny"

Enter or o allows this call, a allows the tool from now on (the engine remembers it for the
profile), d or Esc denies it (the model is told so and goes on). The arguments are the model's:
shown as pretty JSON when they parse, sanitised either way (nothing the model writes reaches the
terminal as a control sequence), and scrolled when long (Up/Down/PageUp/PageDown, the wheel).

The allowing keys and buttons are armed only `arm_delay` seconds after the question appears:
an Enter typed for the prompt just as the question opened must not allow a call nobody read.
Denying works at once.
"""

from __future__ import annotations

import json
from typing import Literal, Optional, Tuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from llmchat.sanitize import one_line, strip_controls

Choice = Literal["once", "always", "deny"]
ONCE: Choice = "once"
ALWAYS: Choice = "always"
DENY: Choice = "deny"

ARM_DELAY = 0.5  # seconds before Enter, o, a or a click can allow the call
ARGUMENTS_CHARS = 20_000  # of the arguments shown (a model can write megabytes of them)


def pretty_arguments(arguments: str, limit: int = ARGUMENTS_CHARS) -> str:
    """The model's arguments (JSON text) indented, or as written when they do not parse;
    sanitised and cut to `limit` characters."""
    text = arguments
    try:
        text = json.dumps(json.loads(arguments, strict=False), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        pass
    if not text.strip():
        text = "(no arguments)"
    if len(text) > limit:
        text = f"{text[:limit]}\n… ({len(text) - limit:,} more characters)"
    return strip_controls(text)


class ApproveTool(ModalScreen[Choice]):
    """Allow once, always allow this tool, or deny one call. Dismissed with the choice."""

    DEFAULT_CSS = """
    ApproveTool {
        align: center middle;
        & > #dialog {
            width: 90;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            padding: 0 1;
            background: $panel;
            border: thick $warning;
            border-title-color: $text-warning;
            border-title-style: bold;
        }
        & #tool { text-style: bold; }
        & #server { color: $text-muted; }
        & #arguments {
            height: auto;
            max-height: 1fr;
            min-height: 1;
            margin: 1 0 0 0;
            background: $surface;
            scrollbar-size-vertical: 1;
        }
        & #arguments:focus { background-tint: $foreground 4%; }
        & #arguments > Static { padding: 0 1; }
        /* Docked: however long the arguments, the keys and the buttons stay on screen. */
        & #choices { dock: bottom; height: auto; margin-top: 1; }
        & #keys { color: $text-muted; }
        & #buttons { height: auto; width: 100%; }
        & #buttons > Button { margin-right: 1; min-width: 0; }
    }
    """

    BINDINGS = [
        Binding("enter,o", "choose('once')", "Allow once"),
        Binding("a", "choose('always')", "Always allow"),
        Binding("d,escape", "choose('deny')", "Deny"),
        Binding("up", "scroll('up')", show=False),
        Binding("down", "scroll('down')", show=False),
        Binding("pageup", "scroll('page_up')", show=False),
        Binding("pagedown", "scroll('page_down')", show=False),
    ]

    def __init__(
        self,
        name: str,
        server: Optional[str],
        arguments: str,
        *,
        description: str = "",
        position: Optional[Tuple[int, int]] = None,
        arm_delay: float = ARM_DELAY,
        always: str = "this profile",
    ) -> None:
        """`name`, `server` (None: no server offers it), `arguments` (JSON text), as the model
        and the engine gave them; `position`: (this call, of how many) when a step asked for
        several; `arm_delay`: seconds before the call can be allowed (0 in tests); `always`:
        how long "always" lasts ("this profile", remembered in the config; "this run")."""
        super().__init__()
        self.tool_name = one_line(name, 80) or "(unnamed)"
        self.server = one_line(server, 60) if server else None
        self.description = one_line(description, 200)
        self.arguments = pretty_arguments(arguments)
        self.position = position
        self.arm_delay = arm_delay
        self.armed = arm_delay <= 0
        self.always = always

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Run this tool?" if self.position is None else f"Run this tool? ({self.position[0]} of {self.position[1]})"
            yield Static(Content(self.tool_name), id="tool", markup=False)
            where = f"on server {self.server}" if self.server else "no configured server offers this tool"
            if self.description:
                where += f" · {self.description}"
            yield Static(Content(where), id="server", markup=False)
            with VerticalScroll(id="arguments"):
                yield Static(Content(self.arguments), markup=False)
            with Vertical(id="choices"):
                yield Static(Content(f"Enter/o once · a always ({self.always}) · d/Esc deny"), id="keys", markup=False)
                with Horizontal(id="buttons"):
                    yield Button("Allow once", id="once", variant="primary", compact=True)
                    yield Button("Always allow", id="always", compact=True)
                    yield Button("Deny", id="deny", compact=True)  # (the error variant is below 7:1 in the contrast theme)

    def on_mount(self) -> None:
        self.query_one("#once", Button).focus()
        if not self.armed:
            self.set_timer(self.arm_delay, self._arm)

    def _arm(self) -> None:
        self.armed = True

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action == "choose" and parameters and parameters[0] != DENY:
            return self.armed  # not yet: the key is ignored (nothing else takes it)
        return True

    def action_choose(self, choice: Choice) -> None:
        if choice == DENY or self.armed:
            self.dismiss(choice)

    def action_scroll(self, where: str) -> None:
        scroll = self.query_one("#arguments", VerticalScroll)
        getattr(scroll, f"scroll_{where}")(animate=False)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = event.button.id
        if choice in (ONCE, ALWAYS, DENY):
            self.action_choose(choice)
