"""First-run and error hints in the TUI: a 401 when no key was sent names the variable that was
expected (as in one-shot); the demo welcome says Ollama needs `--api ollama`."""

from __future__ import annotations

import pytest

from llmchat.config import Overrides, load_config, resolve
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import AssistantMessage, Welcome

SIZE = (100, 30)


@pytest.mark.parametrize(
    "api, profile_variable, shown",
    [("openai-chat", None, "OPENAI_API_KEY"), ("anthropic", None, "ANTHROPIC_API_KEY"), ("anthropic", "MY_PROXY_KEY", "MY_PROXY_KEY")],
)
async def test_a_401_without_a_key_names_the_variable_in_the_answers_note(srv, isolated_home, submit, settled, api, profile_variable, shown):
    url = srv.base_url(api, status=401)
    if profile_variable:
        (isolated_home / "config.toml").write_text(
            f'[profiles.p]\napi = "{api}"\nbase_url = "{url}"\nmodel = "c"\napi_key_env = "{profile_variable}"\n'
        )
        flags = Overrides(profile="p")
    else:
        flags = Overrides(api=api, base_url=url)
    config = load_config()
    app = ChatApp(resolve(flags, {}, config), config=config)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        [answer] = app.query(AssistantMessage)
        assert answer.note_text.startswith("Error: 401")
        assert f"(no API key was sent: set {shown})" in answer.note_text


async def test_the_demo_welcome_says_ollama_needs_api_ollama(isolated_home):
    config = load_config()
    app = ChatApp(resolve(Overrides(), {}, config), config=config)
    async with app.run_test(size=SIZE):
        [welcome] = app.query(Welcome)
        text = str(welcome.render())
        assert "use Ollama with --api ollama" in text
        assert "start Ollama" not in text
