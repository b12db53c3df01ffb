"""The status bar: every figure labelled and visible at 80 columns as at 100+."""

from __future__ import annotations

from llmchat.config import Settings
from llmchat.demo.server import Behaviour
from llmchat.tui.app import ChatApp


def demo_settings() -> Settings:
    return Settings(api="demo", model="demo", base_url="", demo=True, demo_reason="no API key")


async def test_one_line_when_wide():
    app = ChatApp(demo_settings(), demo_behaviour=Behaviour(tokens=3))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.status.size.height == 1
        assert app.status.figures == "demo (offline demo model) │ ready │ TTFT – │ tok/s – │ tokens – │ elapsed –"


async def test_two_lines_when_narrow_with_nothing_cut(settings_for, submit, settled):
    app = ChatApp(demo_settings(), demo_behaviour=Behaviour(tokens=30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = app.status
        assert status.size.height == 2
        await submit(pilot, "hi")
        await settled(app)
        await pilot.pause()
        first, second = status.figures.split("\n")
        assert first == "demo (offline demo model) │ done"
        assert second.startswith("TTFT ") and second.endswith(" s") and "tok/s" in second and "tokens 30" in second
        assert len(second) <= status.content_size.width
        assert status.size.height == 2  # the figures changing never changes the layout
