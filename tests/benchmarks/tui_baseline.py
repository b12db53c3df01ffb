"""The naive TUI the benchmark compares against: llmchat's app with each answer in Textual's own
`Markdown` widget fed through `Markdown.get_stream()` (MarkdownStream), as the app did before
StreamingMarkdown. Everything else (client, worker, status bar, prompt) is the same code.

    python tests/benchmarks/tui_baseline.py --base-url http://127.0.0.1:PORT/v1   # a real terminal

Importable: `use_baseline()` swaps the answer widget in the running process (and returns a
function that swaps it back); `BaselineMarkdown.shown_chars` counts the characters whose
append has completed (mounted), which the benchmark reads at each frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the checkout, when run as a script

from llmchat.tui.widgets import messages  # noqa: E402


class BaselineMarkdown(Markdown):
    """Textual's Markdown, streamed the documented way."""

    def __init__(self) -> None:
        super().__init__()
        self.shown_chars = 0

    def get_stream(self):  # the shape the app's worker uses
        return Markdown.get_stream(self)

    def append(self, markdown: str) -> AwaitComplete:
        inner = super().append(markdown)

        async def counted() -> None:
            await inner
            self.shown_chars += len(markdown)

        return AwaitComplete(counted())

    @property
    def finished(self) -> bool:
        return True  # nothing more to do once the stream has stopped


class BaselineAssistantMessage(messages.AssistantMessage):
    DEFAULT_CSS = """
    BaselineAssistantMessage > Markdown {
        padding: 0 1;
        margin: 0;
        background: transparent;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.markdown = BaselineMarkdown()  # type: ignore[assignment]


def use_baseline() -> Callable[[], None]:
    """Make the app build baseline answers; returns the undo."""
    import llmchat.tui.app as app_module

    original = app_module.AssistantMessage
    app_module.AssistantMessage = BaselineAssistantMessage  # type: ignore[misc]

    def undo() -> None:
        app_module.AssistantMessage = original  # type: ignore[misc]

    return undo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="m")
    args = parser.parse_args()
    from llmchat.config import Settings
    from llmchat.tui.app import ChatApp

    use_baseline()
    app = ChatApp(Settings(api="openai-chat", base_url=args.base_url, model=args.model))
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
