"""What a person sees after `llmchat "q"` rendered in a real terminal (tmux): the whole
scrollback, every line of the answer exactly once.

The answer streams slowly enough for the growing block to be redrawn many times. The strings
are the kinds whose width Rich and the terminal disagree on (an emoji with a skin-tone
modifier is 2 cells to Rich and 4 to tmux), or that are wide or combining, in lines that come
close to the terminal's width; and a window narrowed and widened mid-answer. Skipped only when
tmux is not installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest
from test_tmux import llmchat_command, terminal_env  # noqa: F401 - the e2e helpers, shared

from llmchat.demo.server import ServerThread

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it: .ci/run)")

WIDTH, HEIGHT = 60, 14
WAIT = 30.0

# Wide, combining, joined and modified characters (and mixes of them).
STRINGS = {
    "skin-tone modifier": "👍🏽",
    "CJK mixed with emoji": "中文😀字",
    "CJK mixed with a modified emoji": "中文👍🏽字",
    "ZWJ family": "👨‍👩‍👧",
    "flag": "🇫🇷",
    "variation selector": "❤️",
    "combining accents": "e\u0301a\u0308",
    "Devanagari": "क्षि",
    "Hangul": "한국어",
    "fullwidth": "ＡＢＣ",
}


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture
def utf8_env(terminal_env: Dict[str, str]) -> Dict[str, str]:
    """test_tmux's environment, in a UTF-8 locale (tmux draws wide characters only then)."""
    env = dict(terminal_env, LANG="C.UTF-8")
    env.pop("NO_COLOR", None)
    return env


def scrollback(
    url: str,
    env: Dict[str, str],
    workdir: Path,
    resize_to: Optional[List[int]] = None,
    before: int = 0,
    flags: Sequence[str] = (),
    escapes: bool = False,
) -> str:
    """Run llmchat in a tmux pane, optionally resize it while the answer streams, and return
    everything the pane shows and keeps (wrapped lines joined, as a copy would give them).
    `before`: lines printed first, as earlier commands leave them in a terminal in use;
    `escapes`: keep the colours and attributes (dim) in what is returned."""
    socket = f"llmchat-scroll-{uuid.uuid4().hex[:8]}"
    done = workdir / "done"
    command = " ".join(shlex.quote(part) for part in [*llmchat_command(), "--no-history", *flags, "--base-url", url, "-m", "m", "q"])
    shell = f"seq -f 'earlier output %g' {before}; {command}; echo EXIT=$? > {shlex.quote(str(done))}; echo END-OF-RUN; sleep 60"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, env=env, timeout=20).stdout

    tmux("-f", "/dev/null", "new-session", "-d", "-s", "s", "-x", str(WIDTH), "-y", str(HEIGHT), shell)
    tmux("set-option", "-g", "history-limit", "10000")
    try:
        deadline = time.monotonic() + WAIT
        sizes = list(resize_to or [])
        while not (done.exists() and "END-OF-RUN" in tmux("capture-pane", "-p", "-t", "s")):
            assert time.monotonic() < deadline, "llmchat did not finish:\n" + tmux("capture-pane", "-p", "-S", "-", "-t", "s")
            if sizes and "Part 2" in tmux("capture-pane", "-p", "-t", "s"):  # mid-answer
                tmux("resize-window", "-t", "s", "-x", str(sizes.pop(0)))
            time.sleep(0.05)
        assert done.read_text().strip() == "EXIT=0"
        return tmux("capture-pane", "-p", "-J", *(["-e"] if escapes else []), "-S", "-", "-t", "s")
    finally:
        tmux("kill-server")


def answer_of(glyphs: str) -> str:
    """Paragraphs of lines that come near the width, each with a marker to count, a list and a
    heading in between: several blocks, each redrawn while it grows."""
    parts = []
    for i in range(1, 7):
        words = " ".join(f"w{j}{glyphs}" for j in range(14))
        parts.append(f"Part {i}: {words} end{i}.")
    parts.insert(3, "- item one " + glyphs + "\n- item two " + glyphs)
    parts.insert(5, "## Heading " + glyphs)
    return "\n\n".join(parts) + "\n"


def assert_each_part_once(screen: str) -> None:
    for i in range(1, 7):
        assert len(re.findall(rf"Part {i}:", screen)) == 1, f"'Part {i}:' shown {screen.count(f'Part {i}:')} times:\n{screen}"
        assert len(re.findall(rf"end{i}\.", screen)) == 1, f"'end{i}.' not shown once:\n{screen}"
    assert screen.count("item one") == 1 and screen.count("item two") == 1 and screen.count("Heading") == 1, screen


@pytest.mark.parametrize("name", list(STRINGS))
def test_no_line_of_a_rendered_answer_is_shown_twice(srv, utf8_env, tmp_path, name):
    url = srv.base_url("openai-chat", text=answer_of(STRINGS[name]), tps=150)
    assert_each_part_once(scrollback(url, utf8_env, tmp_path))


@pytest.mark.parametrize("sizes", [[40], [40, 70], [75]], ids=["narrowed", "narrowed then widened", "widened"])
def test_a_resize_mid_answer_shows_no_line_twice(srv, utf8_env, tmp_path, sizes):
    """In a terminal in use (the screen full of earlier output, the answer at the bottom).
    tmux reflows keeping the cursor's row, so rows pushed above the top of the screen are out
    of reach of any redraw: see known limits in output.py's `_Region`."""
    url = srv.base_url("openai-chat", text=answer_of("x"), tps=60)
    screen = scrollback(url, utf8_env, tmp_path, resize_to=sizes, before=HEIGHT)
    assert_each_part_once(screen)
    assert "earlier output 1\n" in screen and f"earlier output {HEIGHT}\n" in screen


def test_a_long_code_line_is_one_line_to_copy(srv, utf8_env, tmp_path):
    """A terminal that wraps a long line itself joins it again when it is copied; a line Rich
    wrapped is two lines in the copy."""
    line = "result = compute_something(alpha, beta, gamma, delta) + another_function_call(epsilon)  # end"
    url = srv.base_url("openai-chat", text=f"Code:\n\n```python\n{line}\n```\n\nDone.\n", tps=100)
    screen = scrollback(url, utf8_env, tmp_path)
    assert line in screen, screen


def test_reasoning_is_shown_dimmed_and_labelled_before_the_answer(srv, utf8_env, tmp_path):
    from llmchat.demo.answer import answer_tokens

    thought = "".join(answer_tokens("", 40)).strip()  # what the fake server sends as reasoning
    url = srv.base_url("openai-chat", reasoning=40, text="The ANSWER itself.\n", tps=100)
    screen = scrollback(url, utf8_env, tmp_path, flags=["--reasoning"], escapes=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    words = thought.split()
    assert plain.count("Reasoning") == 1, plain
    assert plain.index("Reasoning") < plain.index(words[0]) < plain.index("The ANSWER itself.")
    assert plain.count(" ".join(words[:4])) == 1, plain  # shown once
    assert " ".join(plain.split()).count(" ".join(words[-3:])) == 1, plain
    reasoning_part = screen[: screen.index("The ANSWER")]
    assert re.search(r"\x1b\[[0-9;]*\b2m", reasoning_part), reasoning_part  # dim (SGR 2)


def test_without_the_flag_no_reasoning_is_shown(srv, utf8_env, tmp_path):
    from llmchat.demo.answer import answer_tokens

    thought = "".join(answer_tokens("", 40)).split()
    url = srv.base_url("openai-chat", reasoning=40, text="The ANSWER itself.\n", tps=200)
    screen = scrollback(url, utf8_env, tmp_path)
    assert "Reasoning" not in screen and " ".join(thought[:4]) not in screen
    assert "The ANSWER itself." in screen
