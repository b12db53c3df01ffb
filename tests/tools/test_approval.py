"""The one-shot face's tool question (llmchat/approval.py): what it shows, sanitised, and how
an answer is read. The question on a real terminal: tests/tools/test_tool_cli.py (a pty)."""

from __future__ import annotations

from pathlib import Path

from llmchat.approval import ARGUMENTS_SHOWN, TtyAsker, parse_answer, question


def test_the_question_shows_tool_server_and_pretty_arguments() -> None:
    text = question("add", "calc", '{"a": 1, "b": {"c": [2]}}')
    assert text.splitlines() == [
        "llmchat: the model asks to run the tool add from server calc, with the arguments:",
        "  {",
        '    "a": 1,',
        '    "b": {',
        '      "c": [',
        "        2",
        "      ]",
        "    }",
        "  }",
    ]


def test_nothing_in_the_question_reaches_the_terminal_as_an_escape() -> None:
    text = question("clear\x1b[2J", "srv\x1b]0;pwned\x07", "not json \x1b[31m red \x9b2J \u202e")
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\u202e" not in text
    json_text = question("echo", None, '{"text": "\\u001b[2J"}')  # JSON keeps it as an escape
    assert "\x1b" not in json_text and "\\u001b[2J" in json_text and "from server" not in json_text


def test_long_arguments_are_cut_and_say_how_much_is_left() -> None:
    text = question("write", "files", '{"body": "' + "x" * 10_000 + '"}')
    assert len(text) < ARGUMENTS_SHOWN + 400 and "more characters)" in text


def test_answers() -> None:
    assert [parse_answer(a) for a in ("y", "YES", " o ", "a", "always", "n", "no", "")] == [
        "once",
        "once",
        "once",
        "always",
        "always",
        "deny",
        "deny",
        "deny",
    ]
    assert parse_answer("maybe") is None


def test_no_terminal_is_not_available(tmp_path: Path) -> None:
    asker = TtyAsker(str(tmp_path / "no-such-tty"))
    assert not asker.available and not asker.available  # (tried once)
    asker.close()
