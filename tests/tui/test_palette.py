"""The command palette (Ctrl+P): theme picker saved to the config file, model and profile
switching that reaches the server, a new conversation, and copying the last answer or one of
its code blocks (app.clipboard holds what OSC 52 sent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandInput, CommandList, CommandPalette

from llmchat.config import Overrides, load_config, resolve
from llmchat.demo.answer import answer_tokens
from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import AssistantMessage, UserMessage, Welcome

SIZE = (100, 30)
REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"

USER_CONFIG = """\
# my settings
default = "fast"

# the small local model
[profiles.fast]
api = "openai-chat"
base_url = "{openai}"
model = "m-fast"

[profiles.claude]
api = "anthropic"
base_url = "{anthropic}"
model = "c-smart"
"""

ANSWER = """\
Two ways:

```python
print("hi")
x = [1, 2]
```

1. or a shell:
   ```bash
   ls -la
   ```

Done. \x1b]52;c;ZXZpbA==\x07
"""
SHOWN = ANSWER.replace("\x1b]52;c;ZXZpbA==\x07", "")  # what the user saw, and what is copied


def keys(text: str) -> list:
    return ["space" if ch == " " else ch for ch in text]


def gathering(app) -> bool:
    """Is the palette still collecting hits (it fills its list in batches)?"""
    return any(w.group == CommandPalette._GATHER_COMMANDS_GROUP and not w.is_finished for w in app.workers)


async def palette_open(pilot, until) -> CommandList:
    """Wait for a palette to be on screen with its first list of hits; its list."""
    app = pilot.app
    await until(
        pilot,
        lambda: isinstance(app.screen, CommandPalette) and app.screen.query(CommandList) and not gathering(app),
        what="the palette",
    )
    return app.screen.query_one(CommandList)


async def choose(pilot, until, query: str, title: str) -> None:
    """In the open palette: type `query`, highlight the hit titled `title`, press Enter."""
    app = pilot.app
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    await pilot.press(*keys(query))
    assert palette.query_one(CommandInput).value == query
    commands = palette.query_one(CommandList)

    def found() -> int | None:
        if gathering(app):
            return None
        titles = [commands.get_option_at_index(i).hit.text for i in range(commands.option_count)]
        return titles.index(title) if title in titles else None

    await until(pilot, lambda: found() is not None, what=f"{title!r} in the palette")
    commands.highlighted = found()
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is not palette, what="the palette to close")


async def run_command(pilot, until, query: str, title: str) -> None:
    await pilot.press("ctrl+p")
    await palette_open(pilot, until)
    await choose(pilot, until, query, title)


# --- themes ---------------------------------------------------------------------------------


async def test_a_theme_picked_in_the_palette_is_saved_in_the_config(settings_for, isolated_home, until, spy_notices):
    path = isolated_home / "config.toml"
    original = USER_CONFIG.format(openai="http://127.0.0.1:9/v1", anthropic="http://127.0.0.1:9")
    path.write_text(original)
    app = ChatApp(settings_for(), config=load_config(), themes_from=[REPO_THEMES])
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "textual-dark"
        await run_command(pilot, until, "theme", "Theme")
        await palette_open(pilot, until)
        await choose(pilot, until, "ember", "ember")
        await until(pilot, lambda: app.theme == "ember", what="the new theme")
        assert app.current_theme.name == "ember"
    # Only the theme line was added; comments, default and profiles are as the user wrote them.
    assert path.read_text() == original.replace("\n# the small", '\ntheme = "ember"\n\n# the small')
    assert notices[-1] == (f"Theme ember, saved in {path}.", "information")
    # The next start uses it (config > default).
    assert ChatApp(settings_for(), themes_from=[REPO_THEMES]).theme == "ember"


async def test_the_theme_picker_lists_custom_and_built_in_themes(settings_for, until):
    app = ChatApp(settings_for(), theme="dusk", themes_from=[REPO_THEMES])
    async with app.run_test(size=SIZE) as pilot:
        app.search_themes()
        commands = await palette_open(pilot, until)
        assert commands.option_count == len(app.available_themes)
        hits = {option.hit.text: str(option.hit.help) for option in (commands.get_option_at_index(i) for i in range(commands.option_count))}
        assert hits["dusk"] == "custom, dark, current"
        assert hits["paper"] == "custom, light"
        assert hits["nord"] == "built-in, dark"
        await pilot.press("escape")


async def test_a_theme_that_cannot_be_saved_stays_on_for_the_session(settings_for, tmp_path, spy_notices):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = load_config(tmp_path / "none.toml")
    config.path = blocker / "config.toml"
    app = ChatApp(settings_for(), config=config, themes_from=[REPO_THEMES])
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        app.choose_theme("paper")
        await pilot.pause()
        assert app.theme == "paper"
        [(message, severity)] = notices
        assert message.startswith("Theme paper is on for now, but it was not saved: cannot ")
        assert severity == "error"


# --- model and profile ----------------------------------------------------------------------


async def test_switching_profile_and_model_reaches_the_server(srv, isolated_home, submit, settled, until):
    (isolated_home / "config.toml").write_text(
        USER_CONFIG.format(openai=srv.base_url("openai-chat", tokens=5), anthropic=srv.base_url("anthropic", tokens=5))
    )
    config = load_config()
    flags = Overrides(system="Be brief.")  # a command-line flag: it stays across switches
    app = ChatApp(resolve(flags, {}, config), config=config, flags=flags)
    async with app.run_test(size=SIZE) as pilot:
        assert app.status.figures.startswith("m-fast │ ready")
        await submit(pilot, "one")
        await settled(app)
        first = srv.requests[-1]
        assert (first.api, first.body["model"]) == ("openai-chat", "m-fast")

        await run_command(pilot, until, "switch model", "Switch model or profile")
        await palette_open(pilot, until)
        await choose(pilot, until, "claude", "claude")
        await until(pilot, lambda: app.status.figures.startswith("c-smart │"), what="the new model in the status bar")
        await submit(pilot, "two")
        await settled(app)
        second = srv.requests[-1]
        assert second.api == "anthropic" and second.path == "/v1/messages"
        assert second.body["model"] == "c-smart"
        assert second.body["system"] == "Be brief."
        assert second.body["messages"] == [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "".join(answer_tokens("one", 5))},
            {"role": "user", "content": "two"},
        ]

        await run_command(pilot, until, "switch model", "Switch model or profile")
        await palette_open(pilot, until)
        await choose(pilot, until, "x-custom-7b", "Use model x-custom-7b")
        await until(pilot, lambda: app.status.figures.startswith("x-custom-7b │"), what="the typed model")
        await submit(pilot, "three")
        await settled(app)
        third = srv.requests[-1]
        assert (third.api, third.body["model"]) == ("anthropic", "x-custom-7b")
        assert app.settings.profile == "claude"


async def test_the_profile_picker_marks_the_current_profile(srv, isolated_home, until):
    (isolated_home / "config.toml").write_text(USER_CONFIG.format(openai=srv.base_url("openai-chat"), anthropic=srv.base_url("anthropic")))
    config = load_config()
    app = ChatApp(resolve(Overrides(), {}, config), config=config)
    async with app.run_test(size=SIZE) as pilot:
        app.pick_model()
        commands = await palette_open(pilot, until)
        assert commands.option_count == 3
        hits = [(o.hit.text, str(o.hit.help)) for o in (commands.get_option_at_index(i) for i in range(3))]
        assert hits == [
            ("fast (current)", f"m-fast · openai-chat · {srv.base_url('openai-chat')}"),
            ("claude", f"c-smart · anthropic · {srv.base_url('anthropic')}"),
            ("demo", f"a model on openai-chat at {srv.base_url('openai-chat')}"),  # the server's list
        ]
        await pilot.press("escape")


async def test_a_profile_that_cannot_be_used_leaves_things_as_they_were(settings_for, isolated_home, srv, submit, settled, spy_notices):
    (isolated_home / "config.toml").write_text('[profiles.official]\napi = "openai-chat"\nmodel = "gpt-x"\n')
    app = ChatApp(settings_for(tokens=3), config=load_config())
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_profile("official")
        assert notices == [("Cannot switch to official: OPENAI_API_KEY is not set: export it, or use --base-url for a local server", "error")]
        assert app.settings.model == "m" and app.status.figures.startswith("m │")
        await submit(pilot, "still here")
        await settled(app)
        assert srv.requests[-1].body["model"] == "m"


async def test_no_switching_while_an_answer_streams(settings_for, submit, tap, settled, until, spy_notices):
    app = ChatApp(settings_for(tokens=200, tps=20))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        await until(pilot, lambda: app.session.last.parts, what="the answer to begin")
        await app.switch_model("other")
        assert app.settings.model == "m" and app.status.model == "m"
        assert notices == [("An answer is still streaming: press Esc to cancel it, or switch when it ends.", "warning")]
        await tap(pilot, "escape")
        await settled(app)


# --- new conversation -----------------------------------------------------------------------


async def test_new_conversation_clears_the_transcript_and_the_context(settings_for, srv, submit, settled, until):
    app = ChatApp(settings_for(tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("one", "two"):
            await submit(pilot, prompt)
            await settled(app)
        assert len(app.query(AssistantMessage)) == 2
        await run_command(pilot, until, "new conv", "New conversation")
        await until(pilot, lambda: not app.query(AssistantMessage), what="an empty transcript")
        assert not app.query(UserMessage) and len(app.query(Welcome)) == 1
        assert app.status.figures.startswith("m │ ready │ TTFT –")
        assert not app.check_action("retry", ())  # nothing to ask again
        assert app.prompt.has_focus
        await submit(pilot, "fresh")
        await settled(app)
        assert srv.requests[-1].body["messages"] == [{"role": "user", "content": "fresh"}]


async def test_new_conversation_is_refused_while_an_answer_streams(settings_for, submit, tap, settled, until, spy_notices):
    app = ChatApp(settings_for(tokens=200, tps=20))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        session = app.session
        await until(pilot, lambda: session.last.parts, what="the answer to begin")
        await app.new_conversation()
        assert notices == [("An answer is still streaming: press Esc to cancel it first.", "warning")]
        assert app.session is session and len(app.query(AssistantMessage)) == 1
        await tap(pilot, "escape")
        await settled(app)


# --- copy -----------------------------------------------------------------------------------


async def test_ctrl_y_copies_the_last_answer_as_shown(settings_for, submit, settled, spy_notices):
    app = ChatApp(settings_for(text=ANSWER))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+y")
        assert notices == [("Nothing to copy yet: there is no answer in this conversation.", "warning")]
        assert app.clipboard == ""
        await submit(pilot, "show me")
        await settled(app)
        app.prompt.load_text("a draft")
        await pilot.press("ctrl+y")
        assert app.clipboard == SHOWN  # the Markdown source, control sequences removed
        assert app.prompt.text == "a draft"  # not the prompt's redo
        message, severity = notices[-1]
        assert message == (
            f"Sent the last answer ({len(SHOWN):,} characters) to the terminal's clipboard with OSC 52. "
            "Some terminals ignore it (tmux needs set-clipboard on)."
        )
        assert severity == "information"


async def test_copy_last_answer_from_the_palette(settings_for, submit, settled, until):
    app = ChatApp(settings_for(text="just *this*"))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "hi")
        await settled(app)
        await run_command(pilot, until, "copy last", "Copy last answer")
        await until(pilot, lambda: app.clipboard == "just *this*", what="the copy")


async def test_copy_a_code_block_from_the_palette(settings_for, submit, settled, until):
    app = ChatApp(settings_for(text=ANSWER))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "show me")
        await settled(app)
        await run_command(pilot, until, "copy code", "Copy code block")
        commands = await palette_open(pilot, until)
        assert commands.option_count == 2
        hits = [(o.hit.text, str(o.hit.help)) for o in (commands.get_option_at_index(i) for i in range(2))]
        assert hits == [("1. python, 2 lines", 'print("hi")'), ("2. bash, 1 line", "ls -la")]
        await choose(pilot, until, "bash", "2. bash, 1 line")
        await until(pilot, lambda: app.clipboard == "ls -la", what="the copy")
        await run_command(pilot, until, "copy code", "Copy code block")
        await palette_open(pilot, until)
        await choose(pilot, until, "py", "1. python, 2 lines")
        await until(pilot, lambda: app.clipboard == 'print("hi")\nx = [1, 2]', what="the copy")


async def test_copying_a_code_block_when_there_is_none_says_so(settings_for, submit, settled, spy_notices):
    app = ChatApp(settings_for(text="No code here."))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        app.pick_code_block()
        await submit(pilot, "hi")
        await settled(app)
        app.pick_code_block()
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)
        assert notices == [
            ("Nothing to copy yet: there is no answer in this conversation.", "warning"),
            ("The last answer has no code blocks.", "warning"),
        ]
        assert app.clipboard == ""


async def test_copy_while_streaming_takes_the_answer_so_far(settings_for, submit, tap, settled, until, spy_notices):
    app = ChatApp(settings_for(tokens=200, tps=20))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "long one")
        turn = app.session.last
        await until(pilot, lambda: len(turn.parts) >= 3, what="three tokens")
        await tap(pilot, "ctrl+y")
        assert app.clipboard and turn.answer.startswith(app.clipboard)
        assert notices[-1][0].startswith("Sent the answer so far (")
        await tap(pilot, "escape")
        await settled(app)


# --- the server's models ----------------------------------------------------------------------


def hit_titles(commands) -> list:
    return [commands.get_option_at_index(i).hit.text for i in range(commands.option_count)]


async def type_a_model(pilot, until, name: str) -> None:
    """Open the model picker, type `name`, take "Use model NAME"; wait until it is the model."""
    app = pilot.app
    await until(pilot, lambda: app.session is not None, what="the session")
    app.pick_model()
    await palette_open(pilot, until)
    await choose(pilot, until, name, f"Use model {name}")
    await until(pilot, lambda: app.settings.model == name, what="the typed model")


async def test_the_model_picker_offers_the_servers_models_and_switches_to_one(settings_for, srv, submit, settled, until):
    app = ChatApp(settings_for(models="big-model,m,small\x1b[31m-model\u202e", tokens=3))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        app.pick_model()
        commands = await palette_open(pilot, until)
        # Listed at once, sanitised, the current one marked; each a plain name, not markup.
        assert hit_titles(commands) == ["big-model", "m (current)", "small-model"]
        assert [r.path for r in srv.requests] == ["/v1/models"]
        await choose(pilot, until, "big", "big-model")
        await until(pilot, lambda: app.settings.model == "big-model", what="the picked model")
        await submit(pilot, "hi")
        await settled(app)
        assert srv.requests[-1].body["model"] == "big-model"


async def test_the_model_list_is_fetched_once_while_it_is_fresh(settings_for, srv, until):
    app = ChatApp(settings_for(models="a,b"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        await pilot.press("ctrl+p")  # the palette opening starts the fetch in the background
        await palette_open(pilot, until)
        await until(pilot, lambda: app._model_list is not None, what="the model list")
        await pilot.press("escape")
        for _ in range(2):
            app.pick_model()
            commands = await palette_open(pilot, until)
            assert hit_titles(commands) == ["a", "b"]
            await pilot.press("escape")
        assert [r.path for r in srv.requests] == ["/v1/models"]


async def test_a_model_not_in_the_list_can_still_be_typed(settings_for, srv, until):
    app = ChatApp(settings_for(models="listed"))
    async with app.run_test(size=SIZE) as pilot:
        await type_a_model(pilot, until, "unlisted-9b")


@pytest.mark.parametrize("options", [{"status": 404}, {"content_type": "text/html"}])
async def test_a_server_without_a_model_list_leaves_profiles_and_typing_with_a_notice(settings_for, srv, until, spy_notices, options):
    app = ChatApp(settings_for(**options))
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        app.pick_model()
        commands = await palette_open(pilot, until)
        assert commands.option_count == 0  # no profiles, no list: type a name
        [(message, severity)] = notices
        assert message.startswith("The server did not list its models: ") and severity == "warning"
        await choose(pilot, until, "typed", "Use model typed")
        await until(pilot, lambda: app.settings.model == "typed", what="the typed model")


async def test_the_demo_model_lists_its_own_model(until):
    from llmchat.config import Settings
    from llmchat.demo.answer import DEMO_MODEL

    app = ChatApp(Settings(api="demo", model=DEMO_MODEL, base_url="", demo=True))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session is not None, what="the session")
        app.pick_model()
        commands = await palette_open(pilot, until)
        assert hit_titles(commands) == [f"{DEMO_MODEL} (current)"]


async def test_a_failure_while_fetching_the_list_is_one_notice_not_a_dead_picker(settings_for, until, spy_notices, monkeypatch):
    from llmchat.stream.client import StreamingClient

    async def broken(self, *args):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(StreamingClient, "list_models", broken)
    app = ChatApp(settings_for())
    notices = spy_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        await type_a_model(pilot, until, "typed")
    assert notices[0] == ("The server did not list its models: RuntimeError: unexpected", "warning")
