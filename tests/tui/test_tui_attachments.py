"""Attachments in the TUI: `@` completes paths under the working directory and attaches the file
taken; a pasted path of a file (quoted, escaped, file://) is offered; chips above the prompt go
with the next message and are cleared after; the user message lists what it carried, reopened
too; reading and encoding never hold up the event loop; a refused file is one notification."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, List

import pytest
from textual import events

from llmchat.tui.app import ChatApp
from llmchat.tui.widgets import UserMessage
from llmchat.tui.widgets.attachments import AttachmentChip, PathMenu, at_token, completions, pasted_paths
from tests.attachment_samples import png

SIZE = (100, 30)
WAIT = 30.0  # seconds a bounded wait allows: generous, for a machine shared with other jobs


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a text file, an image, a PDF and a folder of source."""
    from tests.attachment_samples import pdf

    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "notes.md").write_text("# Notes\nremember the milk\n")
    (work / "shot.png").write_bytes(png(800, 600))
    (work / "report.pdf").write_bytes(pdf(3))
    (work / "src" / "app.py").write_text("print('hi')\n")
    (work / "My Shots").mkdir()
    (work / "My Shots" / "shot 1.png").write_bytes(png(4, 3))
    (work / ".hidden").write_text("x")
    (work / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    monkeypatch.chdir(work)
    return work


def menu_of(app: ChatApp) -> PathMenu:
    return app.query_one(PathMenu)


def entries(app: ChatApp) -> List[str]:
    menu = menu_of(app)
    return [str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count)] if menu.shown else []


def chips(app: ChatApp) -> List[str]:
    return [str(label.render()) for chip in app.query(AttachmentChip) for label in chip.query(".label")]


def errors(seen: List[Any]) -> List[str]:
    """The error notifications among those seen (a slow read may also say it is reading)."""
    return [message for message, severity in seen if severity == "error"]


async def paste(pilot: Any, text: str) -> None:
    """A bracketed paste, as the driver delivers it (to the app, which forwards it)."""
    event = events.Paste(text)
    event.set_sender(pilot.app)
    pilot.app.post_message(event)
    await pilot.pause()


# --- the parts, without the app -----------------------------------------------------------------


@pytest.mark.parametrize(
    "line, column, found",
    [
        ("@", 1, (0, "")),
        ("look at @src/ap", 15, (8, "src/ap")),
        ("@My\\ Shots/sh", 13, (0, "My Shots/sh")),
        ("mail me@example.com", 19, None),
        ("@src and more", 13, None),
        ("@src and more", 4, (0, "src")),
        pytest.param("x" * 100_000 + " @no", 100_004, (100_001, "no"), id="a long line"),  # looked for near the cursor only
        ("a@b @c@d", 8, None),
    ],
)
def test_the_at_token_is_the_path_typed_after_an_at_sign_at_a_word_start(line, column, found):
    assert at_token(line, column) == found


def test_completions_list_a_directory_by_prefix_then_by_substring_hidden_only_when_asked(files):
    assert [c.path for c in completions("", files)] == ["archive.zip", "My Shots/", "notes.md", "report.pdf", "shot.png", "src/"]
    assert [c.path for c in completions("s", files)] == ["shot.png", "src/", "My Shots/", "notes.md"]
    assert [c.path for c in completions("src/", files)] == ["src/app.py"]
    assert [c.path for c in completions(".h", files)] == [".hidden"]
    assert completions("nothing-here/", files) == []
    assert [c.path for c in completions(f"{files}/no", files)] == [f"{files}/notes.md"]


def test_a_paste_names_files_only_when_it_is_nothing_but_their_paths(files):
    shot = files / "My Shots" / "shot 1.png"
    assert pasted_paths(f"'{shot}'") == [str(shot)]
    assert pasted_paths(f'"{shot}"\n') == [str(shot)]
    assert pasted_paths(str(shot).replace(" ", "\\ ")) == [str(shot)]
    assert pasted_paths("file://" + str(shot).replace(" ", "%20")) == [str(shot)]
    assert pasted_paths(str(shot)) == [str(shot)]  # bare spaces, as some terminals paste it
    assert pasted_paths(f"{files}/notes.md {files}/shot.png") == [f"{files}/notes.md", f"{files}/shot.png"]
    assert pasted_paths("notes.md") == []  # a bare word is text
    assert pasted_paths(f"see {files}/notes.md") == []
    assert pasted_paths(f"{files}/src") == []  # a directory
    assert pasted_paths("file://otherhost/etc/hosts") == []
    assert pasted_paths("") == []


# --- `@` completion ---------------------------------------------------------------------------


async def test_at_lists_paths_narrows_as_you_type_and_tab_attaches_the_file(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Read ", "@")
        await until(pilot, lambda: entries(app), what="the menu", timeout=WAIT)
        assert entries(app) == ["archive.zip", "My Shots/", "notes.md", "report.pdf", "shot.png", "src/"]
        await pilot.press("n", "o")
        await until(pilot, lambda: entries(app) == ["notes.md"], what="the menu narrowed", timeout=WAIT)
        await pilot.press("tab")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert app.prompt.text == "Read notes.md"  # the path stays as a readable mention
        assert chips(app) == ["+ notes.md · text, 26 bytes"]
        assert not menu_of(app).shown
        assert app.prompt.has_focus


async def test_a_directory_is_entered_and_enter_takes_an_entry_instead_of_sending(settings_for, srv, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("@", "s")
        await until(pilot, lambda: entries(app) == ["shot.png", "src/", "My Shots/", "notes.md"], what="the menu", timeout=WAIT)
        await pilot.press("down", "enter")
        await until(pilot, lambda: entries(app) == ["src/app.py"], what="the folder listed", timeout=WAIT)
        assert app.prompt.text == "@src/"
        await pilot.press("enter")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert app.prompt.text == "src/app.py"
        assert chips(app) == ["+ src/app.py · text, 12 bytes"]
        assert srv.requests == [] and app.worker is None  # nothing was sent


async def test_a_folder_with_a_space_is_entered_escaped(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("@", "M", "y")
        await until(pilot, lambda: entries(app) == ["My Shots/"], what="the menu", timeout=WAIT)
        await pilot.press("tab")
        await until(pilot, lambda: entries(app) == ["My Shots/shot 1.png"], what="the folder listed", timeout=WAIT)
        assert app.prompt.text == "@My\\ Shots/"
        await pilot.press("tab")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert chips(app) == ["+ My Shots/shot 1.png · PNG image, 4x3, 73 bytes"]


async def test_escape_closes_the_menu_until_another_at_is_typed(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("@")
        await until(pilot, lambda: entries(app), what="the menu", timeout=WAIT)
        await pilot.press("escape", "n")
        await pilot.pause(0.05)
        assert not menu_of(app).shown and app.prompt.text == "@n"
        await pilot.press("space", "@", "s", "h")
        await until(pilot, lambda: entries(app) == ["shot.png", "My Shots/"], what="the menu again", timeout=WAIT)
        await pilot.press("space")
        await until(pilot, lambda: not menu_of(app).shown, what="the menu closed by a space", timeout=WAIT)
        assert chips(app) == []


# --- chips, sending ---------------------------------------------------------------------------


async def attach(pilot: Any, app: ChatApp, *paths: str) -> None:
    """Attach `paths` as the menu does, and wait for their chips."""
    before = len(chips(app))
    app.prompt.post_message(app.prompt.Attach(list(paths)))
    end = time.monotonic() + WAIT
    while len(chips(app)) < before + len(paths):
        assert time.monotonic() < end, f"no chips for {paths}"
        await pilot.pause(0.01)
    await pilot.pause()  # laid out


async def test_chips_are_removed_by_their_cross_by_delete_and_all_at_once(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "notes.md", "shot.png", "report.pdf", "src/app.py")
        assert chips(app) == [
            "+ notes.md · text, 26 bytes",
            "+ shot.png · PNG image, 800x600, 2.9 KB",
            "+ report.pdf · PDF, 3 pages, 523 bytes",
            "+ src/app.py · text, 12 bytes",
        ]
        first = app.query(AttachmentChip).first()
        await pilot.click(first.query_one(".remove"))
        await until(pilot, lambda: len(chips(app)) == 3, what="the chip removed", timeout=WAIT)
        await pilot.press("shift+tab")  # from the prompt to the last chip
        assert isinstance(app.focused, AttachmentChip) and app.focused.attachment.name == "src/app.py"
        await pilot.press("up", "delete")
        await until(pilot, lambda: len(chips(app)) == 2, what="the chip removed", timeout=WAIT)
        assert [c.split(" ·")[0] for c in chips(app)] == ["+ shot.png", "+ src/app.py"]
        assert isinstance(app.focused, AttachmentChip)  # the next chip
        await pilot.press("escape")
        assert app.prompt.has_focus
        await pilot.press("ctrl+l")
        await until(pilot, lambda: not chips(app), what="all chips gone", timeout=WAIT)
        assert not app.attachment_bar.display


async def test_chips_go_with_the_next_message_are_listed_under_it_and_cleared(settings_for, srv, files, submit, settled, until, server_saw):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png", "notes.md")
        await submit(pilot, "What is this?")
        await settled(app)
        await server_saw(srv, lambda r: len(r) == 1)
        [message] = app.query(UserMessage)
        assert str(message.render()) == "What is this?\n+ shot.png · PNG image, 800x600, 2.9 KB\n+ notes.md · text, 26 bytes"
        assert chips(app) == []
        sent = srv.requests[0].body["messages"][-1]["content"]
        assert sorted(part["type"] for part in sent) == ["image_url", "text"]
        assert "remember the milk" in next(part["text"] for part in sent if part["type"] == "text")  # the text file, inlined
        answer = app.session.turns[0].answer
        assert "I received 1 image, PNG, 800x600" in answer
        await submit(pilot, "And now?")  # the next message carries none, the image goes again as context
        await settled(app)
        await server_saw(srv, lambda r: len(r) == 2)
        assert "Earlier messages carry 2 more attachments" in app.session.turns[1].answer


async def test_a_refused_file_is_one_notification_and_nothing_typed_is_lost(settings_for, files, until, spy_notices):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        seen = spy_notices(app)
        await pilot.press(*"Unzip ", "@", "a", "r")
        await until(pilot, lambda: entries(app) == ["archive.zip"], what="the menu", timeout=WAIT)
        await pilot.press("tab")
        await until(pilot, lambda: errors(seen), what="the notification", timeout=WAIT)
        assert errors(seen) == [
            "archive.zip: a ZIP archive (or an Office document) -- llmchat attaches text, images (PNG, JPEG, GIF, WebP) and PDFs only"
        ]
        assert app.prompt.text == "Unzip archive.zip" and chips(app) == []


async def test_an_api_limit_at_send_keeps_the_prompt_and_the_chips(settings_for, files, until, spy_notices):
    app = ChatApp(replace(settings_for(tokens=2), api="ollama"))
    async with app.run_test(size=SIZE) as pilot:
        seen = spy_notices(app)
        await pilot.press(*"Sum up ", "@", "r", "e", "p")
        await until(pilot, lambda: entries(app) == ["report.pdf"], what="the menu", timeout=WAIT)
        await pilot.press("tab")
        await until(pilot, lambda: errors(seen), what="the notification", timeout=WAIT)
        [error] = errors(seen)
        assert "report.pdf" in error and "Ollama" in error
        assert app.prompt.text == "Sum up report.pdf"


# --- pasting a path -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["quoted", "escaped", "file-url", "bare"])
async def test_a_pasted_path_is_offered_and_enter_attaches_it(settings_for, srv, files, until, form):
    shot = str(files / "My Shots" / "shot 1.png")
    pasted = {"quoted": f"'{shot}' ", "escaped": shot.replace(" ", "\\ ") + " ", "file-url": "file://" + shot.replace(" ", "%20"), "bare": shot}[form]
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Look: ")
        await paste(pilot, pasted)
        await until(pilot, lambda: entries(app), what="the offer", timeout=WAIT)
        assert app.prompt.text == "Look: " + pasted  # nothing dropped from the text
        assert entries(app) == ["Attach the pasted file shot 1.png? Tab or Enter attaches · Esc keeps the text"]
        await pilot.press("enter")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert chips(app) == ["+ shot 1.png · PNG image, 4x3, 73 bytes"]  # the full path in its tooltip
        assert app.query_one(AttachmentChip).tooltip == shot
        assert app.prompt.text.rstrip() == "Look: shot 1.png"
        assert srv.requests == []


async def test_ctrl_z_after_taking_a_pasted_path_brings_the_path_back_takes_the_chip_off_and_offers_it_again(settings_for, srv, files, until):
    """Ctrl+Z put the pasted path back but left its chip: the message would carry a file the
    prompt no longer said was taken. Now the chip goes with it (one taken before stays), and
    the paste is offered again."""
    shot = str(files / "shot.png")
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "notes.md")  # taken before: Ctrl+Z leaves it
        await pilot.press(*"Look: ")
        await paste(pilot, shot)
        await until(pilot, lambda: entries(app), what="the offer", timeout=WAIT)
        await pilot.press("enter")
        await until(pilot, lambda: len(chips(app)) == 2, what="the chip", timeout=WAIT)
        assert app.prompt.text == "Look: shot.png"
        await pilot.press("ctrl+z")
        await until(pilot, lambda: len(chips(app)) == 1, what="the chip taken off", timeout=WAIT)
        assert app.prompt.text == "Look: " + shot
        assert [c.split(" ·")[0] for c in chips(app)] == ["+ notes.md"]
        await until(pilot, lambda: entries(app), what="the offer again", timeout=WAIT)
        await pilot.press("enter")
        await until(pilot, lambda: len(chips(app)) == 2, what="the chip again", timeout=WAIT)
        assert app.prompt.text == "Look: shot.png" and srv.requests == []


async def test_a_pasted_path_offer_is_withdrawn_by_typing_or_escape(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, str(files / "notes.md"))
        await until(pilot, lambda: entries(app), what="the offer", timeout=WAIT)
        await pilot.press("space")
        await until(pilot, lambda: not menu_of(app).shown, what="the offer withdrawn", timeout=WAIT)
        await paste(pilot, str(files / "shot.png"))
        await until(pilot, lambda: entries(app), what="the offer", timeout=WAIT)
        await pilot.press("escape")
        assert not menu_of(app).shown
        await paste(pilot, "just some words, not a path")
        await pilot.pause(0.1)
        assert not menu_of(app).shown and chips(app) == []
        assert app.prompt.text == f"{files / 'notes.md'} {files / 'shot.png'}just some words, not a path"


# --- stored, reopened -----------------------------------------------------------------------


async def test_a_reopened_conversation_lists_the_attachments_of_its_prompts_and_sends_them_again(
    settings_for, srv, files, submit, settled, server_saw
):
    settings = settings_for(tokens=2)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png")
        await submit(pilot, "What is this?")
        await settled(app)
        cid = app.chat_history.conversation_id
    (files / "shot.png").write_bytes(png(2, 2))  # changed on disk since: the stored bytes go again
    reopened = ChatApp(replace(settings_for(), conversation_id=cid))
    async with reopened.run_test(size=SIZE) as pilot:
        await pilot.pause()
        [message] = reopened.query(UserMessage)
        assert str(message.render()) == "What is this?\n+ shot.png · PNG image, 800x600, 2.9 KB"
        await submit(pilot, "And this?")  # continued: the image goes again with the conversation
        await settled(reopened)
        await server_saw(srv, lambda r: len(r) == 2)
        earlier = srv.requests[1].body["messages"][0]["content"]
        image = next(part for part in earlier if part["type"] == "image_url")
        assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png(800, 600)).decode()
        assert "Earlier messages carry 1 more attachment" in reopened.session.turns[-1].answer


async def test_a_reopened_pdf_switched_to_ollama_with_pdf_as_text_is_sent_as_the_text_that_was_checked(
    settings_for, srv, files, submit, settled, server_saw, spy_notices
):
    """The earlier PDF is checked as converted (Ollama takes no PDFs): what goes on the wire is
    that text too, not the stored PDF the Ollama API would refuse."""
    from llmchat.config import Settings
    from tests.attachment_samples import pdf_with_text

    (files / "paper.pdf").write_bytes(pdf_with_text("the earlier page"))
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "paper.pdf")
        await submit(pilot, "Read this")
        await settled(app)
        cid = app.chat_history.conversation_id
    ollama = Settings(api="ollama", base_url=srv.base_url("ollama"), model="m", conversation_id=cid, pdf_as_text=True)
    reopened = ChatApp(ollama)
    async with reopened.run_test(size=SIZE) as pilot:
        seen = spy_notices(reopened)
        await pilot.pause()
        await submit(pilot, "And?")
        await settled(reopened)
        await server_saw(srv, lambda r: len(r) == 2 and r[1].outcome != "open")
        assert errors(seen) == []
        request = srv.requests[1]
        assert (request.api, request.outcome) == ("ollama", "complete")
        first = request.body["messages"][0]
        assert "the earlier page" in first["content"] and "images" not in first
        assert reopened.session.turns[-1].answer
        await pilot.press("ctrl+r")  # asked again: a prompt without attachments of its own, the PDF as text still
        await server_saw(srv, lambda r: len(r) == 3 and r[2].outcome != "open")
        await settled(reopened)
        assert errors(seen) == [] and srv.requests[2].outcome == "complete"
        assert "the earlier page" in srv.requests[2].body["messages"][0]["content"]


# --- off the event loop ---------------------------------------------------------------------------


async def test_a_10_mb_pdf_is_read_and_encoded_off_the_event_loop(settings_for, files, monkeypatch, until):
    """The loop's 10 ms timer keeps ticking while the PDF is read and encoded: the encoding is
    held at a gate until the timer has ticked five times (a loop blocked by it never would),
    and it ran in another thread."""
    import llmchat.attaching
    from tests.attachment_samples import pdf

    big = pdf(3)
    big = big[:-6] + b" " * (10 * 1024 * 1024 - len(big)) + big[-6:]
    (files / "big.pdf").write_bytes(big)
    gate = threading.Event()
    threads: List[Any] = []
    real = llmchat.attaching.prepare

    def gated(*args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread())
        gate.wait(10)
        real(*args, **kwargs)

    monkeypatch.setattr(llmchat.attaching, "prepare", gated)
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        ticks: List[int] = []
        app.set_interval(0.01, lambda: ticks.append(1))
        app.prompt.post_message(app.prompt.Attach(["big.pdf"]))
        await until(pilot, lambda: threads, what="the encoding to begin", timeout=WAIT)
        start = len(ticks)
        await until(pilot, lambda: len(ticks) >= start + 5, what="five ticks while encoding", timeout=WAIT)
        gate.set()
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert chips(app) == ["+ big.pdf · PDF, 3 pages, 10 MB"]
        assert threads[0] is not threading.main_thread()


async def test_editing_a_prompt_brings_its_attachments_back_as_chips_and_sends_them(settings_for, srv, files, submit, settled, server_saw, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png")
        await submit(pilot, "What is this?")
        await settled(app)
        await attach(pilot, app, "notes.md")  # pending for the next message
        await pilot.press("alt+up", "alt+up")
        await until(pilot, lambda: app._selected == (0, "prompt"), what="the prompt selected", timeout=WAIT)
        await pilot.press("e")
        await until(pilot, lambda: [c.split(" ·")[0] for c in chips(app)] == ["+ shot.png"], what="the prompt's chips", timeout=WAIT)
        await pilot.press("escape")  # the edit is dropped: the chips as they were
        await until(pilot, lambda: [c.split(" ·")[0] for c in chips(app)] == ["+ notes.md"], what="the pending chips back", timeout=WAIT)
        await pilot.press("alt+up", "alt+up", "e")
        await until(pilot, lambda: [c.split(" ·")[0] for c in chips(app)] == ["+ shot.png"], what="the prompt's chips", timeout=WAIT)
        await submit(pilot, "What is this, really?")
        await server_saw(srv, lambda r: len(r) == 2)
        await settled(app)
        sent = srv.requests[1].body["messages"][-1]["content"]
        assert sorted(part["type"] for part in sent) == ["image_url", "text"]
        assert chips(app) == []


async def test_editing_an_earlier_prompt_is_checked_with_the_turns_before_it_only(
    settings_for, srv, files, submit, settled, server_saw, until, spy_notices
):
    """The edit is sent after the turns before it: a PDF in a later turn, which Ollama cannot
    take, does not stop it, nor a file taken for it (both were checked with every turn)."""
    from llmchat.config import Settings

    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await submit(pilot, "Hello")
        await settled(app)
        await attach(pilot, app, "report.pdf")
        await submit(pilot, "Read this")
        await settled(app)
        cid = app.chat_history.conversation_id
    reopened = ChatApp(Settings(api="ollama", base_url=srv.base_url("ollama"), model="m", conversation_id=cid))
    async with reopened.run_test(size=SIZE) as pilot:
        seen = spy_notices(reopened)
        await until(pilot, lambda: len(reopened.session.turns) == 2, what="the conversation", timeout=WAIT)
        await pilot.press("alt+up", "alt+up", "alt+up", "alt+up")
        await until(pilot, lambda: reopened._selected == (0, "prompt"), what="the first prompt selected", timeout=WAIT)
        await pilot.press("e")
        await until(pilot, lambda: reopened._editing is not None, what="editing", timeout=WAIT)
        await attach(pilot, reopened, "notes.md")  # taken while editing: checked the same way
        await submit(pilot, "Hello again")
        await server_saw(srv, lambda r: len(r) == 3 and r[2].outcome != "open")
        await settled(reopened)
        assert errors(seen) == [] and srv.requests[2].api == "ollama" and srv.requests[2].outcome == "complete"


async def test_regenerating_an_answer_sends_its_prompts_attachments_again(settings_for, srv, files, submit, settled, server_saw, until):
    app = ChatApp(settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png")
        await submit(pilot, "What is this?")
        await settled(app)
        await pilot.press("alt+up")
        await until(pilot, lambda: app._selected == (0, "answer"), what="the answer selected", timeout=WAIT)
        await pilot.press("r")
        await server_saw(srv, lambda r: len(r) == 2)
        await settled(app)
        sent = srv.requests[1].body["messages"][-1]["content"]
        assert sorted(part["type"] for part in sent) == ["image_url", "text"]
        assert "I received 1 image, PNG, 800x600" in app.session.turns[-1].answer
        await until(pilot, lambda: "+ shot.png" in str(app.transcript.query(UserMessage).last().render()), what="the listing", timeout=WAIT)


@pytest.fixture
def page() -> Any:
    """A loopback web server with one HTML page: its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body><h1>Release notes</h1><p>Version 2 is out.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/notes.html"
    httpd.shutdown()
    httpd.server_close()


async def test_an_at_url_is_fetched_and_attached_as_its_text(settings_for, srv, files, page, submit, settled, server_saw, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.load_text("Summarise @" + page)
        app.prompt.move_cursor(app.prompt.document.end)
        await until(pilot, lambda: entries(app) == [f"fetch and attach {page}"], what="the menu", timeout=WAIT)
        await pilot.press("tab")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        [chip] = chips(app)
        assert chip.startswith(f"+ {page} · URL, text, ")
        assert app.prompt.text == "Summarise " + page
        await submit(pilot, app.prompt.text)
        await server_saw(srv, lambda r: len(r) == 1)
        await settled(app)
        sent = srv.requests[0].body["messages"][-1]["content"]
        assert "Release notes" in sent and "Version 2 is out." in sent


async def test_a_failed_request_gives_back_the_prompt_and_its_chips(settings_for, srv, files, submit, settled, until):
    app = ChatApp(settings_for(status=401))
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "notes.md")
        await submit(pilot, "Read this")
        await settled(app)
        await until(pilot, lambda: chips(app) == ["+ notes.md · text, 26 bytes"], what="the chip back", timeout=WAIT)
        assert app.prompt.text == "Read this"


async def test_the_palette_starts_attaching_and_the_demo_model_says_what_it_received(files, until, settled):
    from llmchat.config import Settings
    from llmchat.demo.server import Behaviour

    app = ChatApp(Settings(api="demo", model="demo", base_url="", demo=True), demo_behaviour=Behaviour())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Look at")
        await pilot.press("ctrl+p")
        await pilot.press(*"Attach a file")
        await pilot.press("enter")
        await until(pilot, lambda: entries(app), what="the menu", timeout=WAIT)
        assert app.prompt.text == "Look at @"
        await pilot.press(*"rep", "tab")
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        await pilot.press(*" and ", "@", *"sho", "tab")
        await until(pilot, lambda: len(chips(app)) == 2, what="the second chip", timeout=WAIT)
        await pilot.press("enter")
        await until(pilot, lambda: app.worker is not None, what="the answer", timeout=WAIT)
        await settled(app)
        assert "I received 1 image, PNG, 800x600, 2.9 KB and 1 PDF of 3 pages" in app.session.turns[0].answer


async def test_a_click_on_an_entry_takes_it(settings_for, files, until):
    app = ChatApp(settings_for(tokens=2))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("@", "n")
        await until(pilot, lambda: entries(app) == ["notes.md", "shot.png"], what="the menu", timeout=WAIT)
        await pilot.pause()
        await pilot.click(PathMenu, offset=(3, 0))
        await until(pilot, lambda: chips(app), what="the chip", timeout=WAIT)
        assert app.prompt.text == "notes.md" and app.prompt.has_focus


def test_a_message_with_a_long_paste_lists_its_attachments_under_it_too():
    from llmchat.tui.widgets.pasted import PastedUserMessage, user_message

    pasted = "\n".join(f"line {n}" for n in range(8))
    message = user_message(f"Why?\n{pasted}", [pasted], ["shot.png · PNG image, 2x2, 70 bytes"])
    assert isinstance(message, PastedUserMessage)
    assert str(message.render()) == "Why?\n▸ pasted text, 8 lines (Enter or click shows it)\n+ shot.png · PNG image, 2x2, 70 bytes"


async def test_ctrl_r_after_a_failure_sends_the_attachments_again_and_leaves_no_copy_of_the_chips(
    settings_for, srv, files, submit, settled, until, server_saw
):
    app = ChatApp(settings_for(status=401, fail_first=1, tokens=2))  # the first request fails, the next one answers
    async with app.run_test(size=SIZE) as pilot:
        await attach(pilot, app, "shot.png")
        await submit(pilot, "What is this?")
        await settled(app)
        await until(pilot, lambda: len(chips(app)) == 1, what="the chip back", timeout=WAIT)
        await pilot.press("ctrl+r")
        await server_saw(srv, lambda r: len(r) == 2)
        await settled(app)
        sent = srv.requests[1].body["messages"][-1]["content"]
        assert sorted(part["type"] for part in sent) == ["image_url", "text"]
        assert app.session.turns[-1].answer and chips(app) == [] and app.prompt.text == ""
