"""The whole tool loop in the app: the fake LLM server scripted to call tools and the SDK-built calc
MCP server (tests/mcp_servers/calc.py) as a real stdio process. The question is answered with a
key, the call runs, its block shows how it went, and the model's answer with the result follows
below the block; Esc while a tool runs and Ctrl+C while the question is up cancel the answer."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

from llmchat.config import Settings
from llmchat.demo.server import ServerThread
from llmchat.engine.turns import answer_messages
from llmchat.tools.config import ServerConfig
from llmchat.tui.app import ChatApp
from llmchat.tui.screens.approve import ApproveTool
from llmchat.tui.session import CANCELLED, DONE
from llmchat.tui.widgets import AssistantMessage
from llmchat.tui.widgets.streaming_markdown import StreamingMarkdown
from llmchat.tui.widgets.tools import ToolBlock

SIZE = (100, 30)
CALC = Path(__file__).resolve().parents[1] / "mcp_servers" / "calc.py"
WAIT = 20.0  # the MCP server is a Python process: its start takes a second or so on a busy machine


def with_tools(srv: ServerThread, tools: str, **fields: Any) -> Settings:
    settings = Settings(api="openai-chat", model="m", base_url=srv.base_url("openai-chat", tools=tools), history=False)
    settings.mcp_servers = (ServerConfig("calc", command=sys.executable, args=(str(CALC),)),)
    for name, value in fields.items():
        setattr(settings, name, value)
    return settings


def sections(app: ChatApp) -> List[str]:
    """The answer's pieces in order: each Markdown section's text, each block's tool and status."""
    view = app.query(AssistantMessage).last()
    out = []
    for child in view.children:
        if isinstance(child, StreamingMarkdown) and child.source:
            out.append(child.source)
        elif isinstance(child, ToolBlock):
            out.append(f"[{child.tool_name} {child.status}]")
    return out


async def question(pilot: Any, until: Any) -> ApproveTool:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ApproveTool), timeout=WAIT, what="the question")
    asked = app.screen
    assert isinstance(asked, ApproveTool)
    await until(pilot, lambda: asked.armed, what="the question armed")
    return asked


@pytest.mark.parametrize(
    "key, status, answer", [("o", "done", "Tool add returned 3."), ("escape", "denied", "Tool add returned Error: denied by the user.")]
)
async def test_the_user_answers_the_question_and_the_answer_goes_on_below_the_block(srv, until, settled, submit, key, status, answer):
    app = ChatApp(with_tools(srv, 'add:{"a":1,"b":2}'), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "add one and two")
        asked = await question(pilot, until)
        assert asked.tool_name == "add" and asked.server == "calc" and '"a": 1' in asked.arguments
        assert asked.always == "this run"  # no profile to remember it in
        await pilot.press(key)
        await settled(app)
        await pilot.pause()
        turn = app.session.last
        assert turn.state == DONE, turn.error
        assert sections(app) == [f"[add {status}]", answer]
        [block] = app.query(ToolBlock)
        assert not block.expanded and block.title_text.endswith("→ 3" if status == "done" else "→ denied by the user")
        assert app.status.tools is None and "done" in app.status.figures
        assert not isinstance(app.screen, ApproveTool)


async def test_always_allowed_is_not_asked_again_in_the_run(srv, until, settled, submit):
    app = ChatApp(with_tools(srv, 'echo:{"text":"hi"}'), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "say hi")
        await question(pilot, until)
        await pilot.press("a")
        await settled(app)
        await submit(pilot, "again")
        await settled(app)
        await pilot.pause()
        assert not isinstance(app.screen, ApproveTool)
        assert [block.status for block in app.query(ToolBlock)] == ["done", "done"]
        assert app.session.last.answer == "Tool echo returned hi."


async def test_several_calls_are_asked_about_in_order_and_run(srv, until, settled, submit):
    app = ChatApp(with_tools(srv, 'add:{"a":1,"b":2};echo:{"text":"hi"}'), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "both")
        first = await question(pilot, until)
        assert (first.tool_name, first.position) == ("add", (1, 2))
        assert app.status.tools == "allow add?"
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ApproveTool) and app.screen is not first, what="the second question")
        second = await question(pilot, until)
        assert (second.tool_name, second.position) == ("echo", (2, 2))
        assert app.status.tools == "allow echo?"  # the one asked about, not the first still waiting to run
        await pilot.press("d")
        await settled(app)
        await pilot.pause()
        assert sections(app) == ["[add done]", "[echo denied]", "Tool add returned 3. Tool echo returned Error: denied by the user."]


async def test_esc_while_a_tool_runs_cancels_the_answer_and_the_call(srv, until, settled, submit):
    app = ChatApp(with_tools(srv, 'slow:{"seconds":30}', allow_tools=("slow",)), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "take your time")
        await until(pilot, lambda: [b.status for b in app.query(ToolBlock)] == ["running"], timeout=WAIT, what="the call running")
        assert not isinstance(app.screen, ApproveTool)  # allowed already: no question
        app._show_status()  # what the status timer does
        assert (app.status.tools or "").startswith("running slow")
        started = time.monotonic()
        await pilot.press("escape")
        await settled(app)
        await pilot.pause()
        assert time.monotonic() - started < 5  # not the tool's 30 s
        turn = app.session.last
        assert turn.state == CANCELLED
        [block] = app.query(ToolBlock)
        assert block.status == "cancelled" and app.status.tools is None
        assert app.query(AssistantMessage).last().has_class("-cancelled")


async def test_ctrl_c_while_the_question_is_up_cancels_the_answer(srv, until, settled, submit):
    app = ChatApp(with_tools(srv, 'add:{"a":1,"b":2}'), status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "add")
        await question(pilot, until)
        await pilot.press("ctrl+c")
        await settled(app)
        await pilot.pause()
        assert not isinstance(app.screen, ApproveTool)
        assert app.session.last.state == CANCELLED
        assert [block.status for block in app.query(ToolBlock)] == ["cancelled"]
        assert app.focused is app.prompt


async def test_a_reopened_conversation_shows_its_tool_blocks_and_sends_its_steps_again(srv, until, settled, submit):
    from dataclasses import replace

    from llmchat.tui.widgets.stored import StoredAnswer

    settings = with_tools(srv, 'add:{"a":1,"b":2};echo:{"text":"a\\u001b]0;x\\u0007b"}', history=True)
    app = ChatApp(settings, status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "add and echo")
        await question(pilot, until)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ApproveTool) and app.screen.position == (2, 2), what="the second question")
        await question(pilot, until)
        await pilot.press("d")
        await settled(app)
        conversation = app.chat_history.conversation_id
    assert conversation is not None

    # Reopened: the blocks where they were, folded, from the store; the steps go back to the model.
    plain = replace(settings, base_url=srv.base_url("openai-chat"), conversation_id=conversation)
    app = ChatApp(plain, status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(StoredAnswer)), what="the stored answer")
        await pilot.pause()
        answer = app.query(StoredAnswer).last()
        shown = []
        for child in answer.children:
            if isinstance(child, StreamingMarkdown):
                shown.append(child.source)
            elif isinstance(child, ToolBlock):
                shown.append(f"[{child.tool_name} {child.status}] {child.title_text}")
        assert shown == [
            "[add done] ▶ add ✓ done · " + shown[0].split(" · ")[1] + " · calc → 3",
            "[echo denied] ▶ echo ⊘ denied · calc → denied by the user",
            "Tool add returned 3. Tool echo returned Error: denied by the user.",
        ]
        replayed = answer_messages(app.session.last)  # what the engine sends of it as context
        assert [(m.role, len(m.tool_calls), len(m.tool_results)) for m in replayed] == [("assistant", 2, 0), ("tool", 0, 2), ("assistant", 0, 0)]
        before = len(srv.requests)
        await submit(pilot, "thanks")
        await settled(app)
        assert app.session.last.state == DONE, app.session.last.error
        sent = srv.requests[before]
        assert sent.outcome == "complete"
        assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "tool", "tool", "assistant", "user"]


async def test_a_server_that_does_not_start_is_one_tools_warning_and_the_chat_goes_on(srv, until, settled, submit):
    settings = with_tools(srv, "")
    settings.base_url = srv.base_url("openai-chat", tokens=5)
    settings.mcp_servers = (ServerConfig("calc", command=sys.executable, args=(str(CALC), "--fail-start")),)
    app = ChatApp(settings, status_interval=None)
    seen: List[Any] = []
    original = app.notify

    def notify(message: str, **kw: Any) -> None:
        seen.append((kw.get("title"), message))
        original(message, **kw)

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app._starting is not None and app._starting.done(), timeout=WAIT, what="the engine started")
        await pilot.pause()
        tools = [message for title, message in seen if title == "Tools"]
        assert len(tools) == 1 and "calc" in tools[0] and tools[0].endswith("going on without it"), seen
        assert not [title for title, _ in seen if title == "History"]
        await submit(pilot, "hello")
        await settled(app)
        assert app.session.last.state == DONE and not app.query(ToolBlock)


async def test_switching_profile_keeps_the_command_lines_tool_options(srv, until, isolated_home, monkeypatch):
    from llmchat.config import Overrides, apply_tool_flags, load_config, resolve

    (isolated_home / "config.toml").write_text(
        f"""default = "one"

[profiles.one]
api = "openai-chat"
base_url = "{srv.base_url("openai-chat", tokens=3)}"
model = "m1"
api_key_env = "OPENAI_API_KEY"

[profiles.two]
api = "openai-chat"
base_url = "{srv.base_url("openai-chat", tokens=3)}"
model = "m2"
api_key_env = "OPENAI_API_KEY"

[mcp.servers.calc]
command = "{sys.executable}"
args = ["{CALC}"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    config = load_config()
    settings = resolve(Overrides(), {"OPENAI_API_KEY": "k"}, config)
    apply_tool_flags(settings, config, mcp=("calc",), allow=("add",), max_steps=3)  # what `llmchat --mcp calc --allow-tool add --max-steps 3` does
    app = ChatApp(settings, config=config, status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app._starting is not None and app._starting.done(), timeout=WAIT, what="the engine started")
        await app.switch_profile("two")
        assert app.settings.model == "m2"
        assert [server.name for server in app.settings.mcp_servers] == ["calc"]
        assert app.settings.allow_tools == ("add",) and app.settings.max_steps == 3
        assert [tool.name for tool in app.engine.tools][:2] == ["add", "echo"]


async def test_the_app_is_usable_while_the_servers_start_and_a_message_waits_for_them(srv, until, settled, submit):
    settings = with_tools(srv, 'add:{"a":1,"b":2}', allow_tools=("add",))
    # A server that takes a while to come up (a real process that sleeps first).
    settings.mcp_servers = (ServerConfig("calc", command="/bin/sh", args=("-c", f"sleep 1.5; exec {sys.executable} {CALC}")),)
    app = ChatApp(settings, status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the app up")
        assert app._starting is not None and not app._starting.done()
        assert app.status.tools == "starting tools…" and "starting tools…" in app.status.figures
        await submit(pilot, "add")  # taken at once; sent once the servers are up
        app._show_status()  # what the status timer does: still says why it waits
        assert app._starting is not None and not app._starting.done() and app.status.tools == "starting tools…"
        await settled(app)
        await pilot.pause()
        assert app.session.last.state == DONE, app.session.last.error
        assert sections(app) == ["[add done]", "Tool add returned 3."]
        assert app.status.tools is None


async def test_quitting_while_the_servers_start_leaves_no_server_process(srv, until, tmp_path):
    import os

    pid_file = tmp_path / "calc.pid"
    settings = with_tools(srv, "")
    # The process says its ID, then takes its time before it speaks MCP (the same process: exec).
    script = f"echo $$ > {pid_file}; sleep 3; exec {sys.executable} {CALC}"
    settings.mcp_servers = (ServerConfig("calc", command="/bin/sh", args=("-c", script)),)
    app = ChatApp(settings, status_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=WAIT, what="the server process started")
        assert app._starting is not None and not app._starting.done()  # it has not answered yet
        await app.action_quit()
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the MCP server outlived the app"
        await asyncio.sleep(0.05)


async def test_calls_past_max_steps_show_as_errors_and_a_note_under_the_answer_says_why(srv, until, settled, submit, spy_notices):
    settings = with_tools(srv, 'add:{"a":1,"b":1}', allow_all_tools=True, max_steps=1)
    settings.base_url = srv.base_url("openai-chat", tools='add:{"a":1,"b":1}', tool_rounds=5)
    app = ChatApp(settings, status_interval=None)
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "keep adding")
        await settled(app)
        await pilot.pause()
        assert app.session.last.state == DONE
        assert sections(app) == ["[add done]", "[add error]"]
        last = app.query(ToolBlock).last()
        assert "not run" in last.title_text
        view = app.session.last.view
        assert "--max-steps 1" in view.note_text and "1 round of tool calls" in view.note_text and view.has_class("-has-note")
        assert not any("--max-steps" in message for message, _ in notices)  # a note, like the other endings' notes: not a notification
