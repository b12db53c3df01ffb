"""Every one-shot option that makes sense in the TUI reaches it: `llmchat` on a terminal with
--api, --base-url, -m, -s, --temperature, --max-tokens, --timeout (and --theme) hands them to
run_tui, and the app's requests carry them to the server."""

from __future__ import annotations

import sys

import pytest

from llmchat import cli
from llmchat.tui import app as app_module
from llmchat.tui.app import ChatApp

SIZE = (100, 30)


@pytest.fixture
def tui_args(monkeypatch):
    """Run `llmchat ARGS` as on a terminal, catching what it hands to run_tui."""

    class Terminal:
        def isatty(self) -> bool:
            return True

    captured = {}

    def fake_run_tui(settings, flags=None, theme=None):
        captured.update(settings=settings, flags=flags, theme=theme)
        return 0

    monkeypatch.setattr(app_module, "run_tui", fake_run_tui)

    def run(*args: str) -> dict:
        # Here, not at fixture set-up: pytest puts its own stdout back when the test starts.
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdin", Terminal())
            patch.setattr(sys, "stdout", Terminal())
            assert cli.main(list(args)) == 0
        return captured

    return run


async def test_the_command_line_options_reach_the_server(tui_args, srv, submit, settled):
    got = tui_args(
        "--api",
        "anthropic",
        "--base-url",
        srv.base_url("anthropic", tokens=5),
        "-m",
        "claude-test",
        "-s",
        "Answer in French.",
        "--temperature",
        "0.4",
        "--max-tokens",
        "99",
        "--timeout",
        "7.5",
        "--theme",
        "paper",
    )
    assert got["theme"] == "paper"
    app = ChatApp(got["settings"], flags=got["flags"], theme=got["theme"])
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "paper"
        assert app.status.figures.startswith("claude-test │ ready")
        await submit(pilot, "bonjour")
        await settled(app)
        request = srv.requests[-1]
        assert request.api == "anthropic" and request.path == "/v1/messages"
        assert request.body["model"] == "claude-test"
        assert request.body["system"] == "Answer in French."
        assert request.body["temperature"] == 0.4
        assert request.body["max_tokens"] == 99
        assert request.body["messages"] == [{"role": "user", "content": "bonjour"}]
        assert app.session.last.state == "done"


async def test_the_timeout_option_reaches_the_client(tui_args, srv, submit, settled):
    got = tui_args("--base-url", srv.base_url("openai-chat", tokens=50, stall_after=2), "--timeout", "0.3")
    app = ChatApp(got["settings"], flags=got["flags"])
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "stall please")
        await settled(app)
        turn = app.session.last
        assert turn.state == "error" and turn.error.kind == "timeout"
        assert "for 0.3 s" in turn.error.message
        assert srv.requests[-1].tokens_sent == 2 and turn.answer  # it stalled after two tokens


async def test_the_flags_stay_when_switching_profile(tui_args, srv, isolated_home, submit, settled):
    """-s/--temperature/--max-tokens from the command line outlive a profile switch; the
    profile supplies what it is for (API, URL, model)."""
    (isolated_home / "config.toml").write_text(
        f'[profiles.other]\napi = "openai-chat"\nbase_url = "{srv.base_url("openai-chat", tokens=3)}"\nmodel = "other-model"\ntemperature = 1.5\n'
    )
    got = tui_args("--base-url", srv.base_url("openai-chat", tokens=3), "-m", "first", "-s", "Be brief.", "--max-tokens", "42")
    app = ChatApp(got["settings"], flags=got["flags"])
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_profile("other")
        await submit(pilot, "hi")
        await settled(app)
        body = srv.requests[-1].body
        assert body["model"] == "other-model"
        assert body["temperature"] == 1.5
        assert body["max_tokens"] == 42
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
