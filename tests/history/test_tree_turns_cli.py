"""The chat verbs that put a turn somewhere in a conversation's tree, as a user meets them: real
subprocesses against the fake server, on an isolated data directory, the tree built through the
store's own API (test_history_tree_cli.build).

What is checked: `--from ANSWER` sends exactly the path to that answer and branches there;
`--from PROMPT` sends what that prompt was sent after and stores the new prompt beside it;
`-c --regenerate` (and `--conversation ID --regenerate`, `--from MSG --regenerate`) sends the
stored prompt again with its context and stores a sibling answer (`‹ 2/2 ›` in `history show`);
`history replay MSG` with two profiles or two models stores two siblings, leaves the user's branch
alone (`-c` goes on where it was) and prints a table of figures, or JSON; every misuse is one
line and exit 2, with nothing sent or stored.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import List, Tuple

from history_helpers import WAIT, messages, read_some, reap, spawn
from test_history_tree_cli import build, on_terminal, one_line

from llmchat.history import HistoryStore

Q1 = {"role": "user", "content": "How do tides work?"}
A1 = {"role": "assistant", "content": "The moon pulls."}
Q2 = {"role": "user", "content": "And the sun?"}
A2 = {"role": "assistant", "content": "The sun pulls too, less strongly."}
A2R = {"role": "assistant", "content": "The sun pulls as well, about half as much."}
Q2E = {"role": "user", "content": "And the wind?"}
A2E = {"role": "assistant", "content": "Wind makes waves."}


def current_leaf(db_path: Path, conversation_id: int = 1) -> int:
    with HistoryStore.open(db_path) as store:
        leaf = store.get(conversation_id).current_leaf_id
    assert leaf is not None
    return leaf


def shape(db_path: Path) -> List[Tuple[int, str, object, str]]:
    """(id, role, parent_id, model) of every message, in the order written."""
    return [(m["id"], m["role"], m["parent_id"], m["model"]) for m in messages(db_path)]


def test_from_an_answer_sends_the_path_to_it_and_branches_there(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    since = len(srv.requests)
    code, out, err = run("--from", "4", "--base-url", url, "Neap tides?")
    assert code == 0, err
    assert srv.requests[since].body["messages"] == [Q1, A1, Q2, A2, {"role": "user", "content": "Neap tides?"}]
    assert out.decode() and out.decode() == messages(db_path)[-1]["content"]
    rows = messages(db_path, 1)
    assert [(r["id"], r["role"], r["parent_id"], r["content"][:11]) for r in rows[-2:]] == [
        (10, "user", 4, "Neap tides?"),
        (11, "assistant", 10, out.decode()[:11]),
    ]
    assert current_leaf(db_path) == 11
    # The conversation goes on from there: -c sends the new branch.
    since = len(srv.requests)
    assert run("-c", "--base-url", url, "And then?")[0] == 0
    assert srv.requests[since].body["messages"][:5] == [Q1, A1, Q2, A2, {"role": "user", "content": "Neap tides?"}]
    assert messages(db_path, 1)[-2]["parent_id"] == 11
    # --conversation ID names the conversation the message must be in.
    since = len(srv.requests)
    code, _, err = run("--conversation", "1", "--from", "2", "--base-url", url, "Only the moon?")
    assert code == 0, err
    assert srv.requests[since].body["messages"] == [Q1, A1, {"role": "user", "content": "Only the moon?"}]
    code, out, err = run("history", "show", "1")
    assert "## You ‹ 3/3 › (message 14)\n\nOnly the moon?\n" in out.decode()


def test_from_a_prompt_sends_it_anew_in_its_place(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    since = len(srv.requests)
    code, out, err = run("--from", "6", "--base-url", url, "Neap tides?")  # 6: "Spring tides?", after answer 5
    assert code == 0, err
    assert srv.requests[since].body["messages"] == [Q1, A1, Q2, A2R, {"role": "user", "content": "Neap tides?"}]
    new_prompt = messages(db_path, 1)[-2]
    assert (new_prompt["id"], new_prompt["content"], new_prompt["parent_id"]) == (10, "Neap tides?", 5)  # beside 6
    assert current_leaf(db_path) == 11
    code, out, _ = run("history", "show", "1", "--json")
    data = json.loads(out)
    assert [(m["id"], m["sibling_index"], m["sibling_count"]) for m in data["messages"]] == [
        (1, 1, 1),
        (2, 1, 1),
        (3, 1, 2),
        (5, 2, 2),
        (10, 2, 2),
        (11, 1, 1),
    ]
    # A first prompt edited: a new first prompt, sent with no context.
    since = len(srv.requests)
    code, _, err = run("--from", "1", "--base-url", url, "How do waves work?")
    assert code == 0, err
    assert srv.requests[since].body["messages"] == [{"role": "user", "content": "How do waves work?"}]
    assert messages(db_path, 1)[-2]["parent_id"] is None


def test_regenerate_asks_the_last_prompt_again_and_keeps_both_answers(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    since = len(srv.requests)
    code, out, err = run("-c", "--regenerate", "--base-url", url, "-m", "model-z")
    assert code == 0, err
    assert srv.requests[since].body["messages"] == [Q1, A1, Q2E]  # the current leaf's turn, exactly
    assert srv.requests[since].body["model"] == "model-z"
    assert len(messages(db_path)) == 10  # no new prompt
    assert shape(db_path)[-1] == (10, "assistant", 8, "model-z")
    assert out.decode() == messages(db_path)[-1]["content"]
    assert current_leaf(db_path) == 10
    code, out, _ = run("history", "show", "1")
    text = out.decode()
    assert "## model-z ‹ 2/2 › (message 10)\n\n" + messages(db_path)[-1]["content"] in text
    assert "Wind makes waves." not in text  # the current branch is the new answer
    # Again, with --conversation ID: a third answer.
    assert run("--conversation", "1", "--regenerate", "--base-url", url)[0] == 0
    assert shape(db_path)[-1][:3] == (11, "assistant", 8)
    assert "‹ 3/3 › (message 11)" in run("history", "show", "1")[1].decode()
    # --from ANSWER --regenerate: beside that answer, off the current branch before.
    since = len(srv.requests)
    assert run("--from", "4", "--regenerate", "--base-url", url)[0] == 0
    assert srv.requests[since].body["messages"] == [Q1, A1, Q2]
    assert shape(db_path)[-1][:3] == (12, "assistant", 3)
    assert current_leaf(db_path) == 12


def test_misuse_is_one_line_and_exit_2_with_nothing_sent(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    with HistoryStore.open(db_path) as store:
        store.begin_turn(None, "other", model="m").finish("complete")  # conversation 2: prompt 10, answer 11
    since = len(srv.requests)
    cases: List[tuple] = [
        (("--from", "99", "x"), "error: no message 99 (see `llmchat history show ID --tree`)"),
        (("--from", "0", "x"), "error: no message 0 (see `llmchat history show ID --tree`)"),
        (("--conversation", "2", "--from", "4", "x"), "error: no message 4 in conversation 2 (see `llmchat history show 2 --tree`)"),
        (("--conversation", "7", "--from", "4", "x"), "error: no conversation 7 (see `llmchat history`)"),
        (("-c", "--from", "4", "x"), "error: give -c/--continue or --from MSG, not both (-c goes on from the current leaf)"),
        (("--from", "4", "--no-history", "x"), "error: continuing a conversation needs the history, which --no-history turns off"),
        (("--regenerate",), "error: --regenerate asks a stored prompt again: give -c, --conversation ID or --from MSG"),
        (("--regenerate", "x"), "error: --regenerate asks a stored prompt again: give -c, --conversation ID or --from MSG"),
        (("-c", "--regenerate", "x"), "error: --regenerate asks the stored prompt again: give no prompt"),
    ]
    for args, expected in cases:
        code, out, err = run(*args, "--base-url", url)
        assert (code, out, one_line(err)) == (2, b"", expected), args
    assert len(srv.requests) == since
    assert len(messages(db_path)) == 11


def profiles(write_config, url: str) -> None:
    write_config(
        f'[profiles.a]\napi = "openai-chat"\nbase_url = "{url}"\nmodel = "model-a"\n\n'
        f'[profiles.b]\napi = "openai-chat"\nbase_url = "{url}"\nmodel = "model-b"\n'
    )


def test_replay_with_two_profiles_stores_two_siblings_and_leaves_the_branch_alone(srv, run, write_config, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    profiles(write_config, url)
    since = len(srv.requests)
    code, out, err = run("history", "replay", "4", "-p", "a", "-p", "b")  # 4: off the current branch
    assert code == 0, err
    sent = srv.requests[since:]
    assert [r.body["model"] for r in sent] == ["model-a", "model-b"]
    assert [r.body["messages"] for r in sent] == [[Q1, A1, Q2], [Q1, A1, Q2]]  # the turn's exact context
    assert shape(db_path)[-2:] == [(10, "assistant", 3, "model-a"), (11, "assistant", 3, "model-b")]
    rows = messages(db_path)
    # Each answer on stdout after a line naming its model; the figures on stderr, one row each.
    assert out.decode() == f"==> model-a (profile a) <==\n{rows[-2]['content']}\n\n==> model-b (profile b) <==\n{rows[-1]['content']}\n"
    table = [line.split() for line in err.splitlines()]
    assert table[0] == ["message", "model", "status", "TTFT", "tok/s", "tokens", "time"]
    assert [row[:5] for row in table[1:]] == [["10", "(answer,", "‹", "3/4", "›)"], ["11", "(answer,", "‹", "4/4", "›)"]]
    assert [row[5:7] for row in table[1:]] == [["model-a", "complete"], ["model-b", "complete"]]
    # The user's branch is as it was: -c goes on after answer 9.
    assert current_leaf(db_path) == 9
    since = len(srv.requests)
    assert run("-c", "--base-url", url, "And the rain?")[0] == 0
    assert srv.requests[since].body["messages"] == [Q1, A1, Q2E, A2E, {"role": "user", "content": "And the rain?"}]
    assert messages(db_path)[-2]["parent_id"] == 9
    code, out, _ = run("history", "diff", "4", "10")
    assert code == 0 and "model-a" in out.decode()


def test_replay_with_two_models_and_json(srv, run, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    since = len(srv.requests)
    code, out, err = run("history", "replay", "8", "--base-url", url, "-m", "m1", "-m", "m2", "--json")
    assert code == 0, err
    assert [(r.body["model"], r.body["messages"]) for r in srv.requests[since:]] == [("m1", [Q1, A1, Q2E]), ("m2", [Q1, A1, Q2E])]
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2
    rows = messages(db_path)
    for item, row, model in zip(data, rows[-2:], ("m1", "m2")):
        assert (item["id"], item["model"], item["status"], item["content"]) == (row["id"], model, "complete", row["content"])
        assert (item["conversation_id"], item["replay_of"], item["parent_id"], item["profile"]) == (1, 8, 8, None)
        assert item["ttft"] is not None and item["output_tokens"] == 3 and item["stop_reason"] == "stop"
    assert [item["sibling_index"] for item in data] == [2, 3] and data[-1]["sibling_count"] == 3
    assert current_leaf(db_path) == 9
    # One run: one object.
    code, out, err = run("history", "replay", "9", "--base-url", url, "-m", "m3", "--json")
    assert code == 0, err
    item = json.loads(out)
    assert (item["id"], item["model"], item["replay_of"], item["parent_id"]) == (12, "m3", 9, 8)
    assert err == ""  # no table for one run


def test_replay_misuse_is_one_line_and_exit_2(srv, run, write_config, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    profiles(write_config, url)
    since = len(srv.requests)
    cases: List[tuple] = [
        (("history", "replay", "99", "-p", "a"), "error: no message 99 (see `llmchat history show ID --tree`)"),
        (("history", "replay", "0", "-p", "a"), "error: no message 0 (see `llmchat history show ID --tree`)"),
        (("history", "replay", "4", "-p", "a", "-p", "nope"), "error: unknown profile 'nope' (profiles: a, b; see `llmchat models`)"),
    ]
    for args, expected in cases:
        code, out, err = run(*args)
        assert (code, out, one_line(err)) == (2, b"", expected), args
    assert len(srv.requests) == since and len(messages(db_path)) == 9


def test_replay_interrupted_stops_the_bench_and_keeps_the_partial_answer(srv, env, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=2000, tps=40)
    build(db_path, base_url=url)
    since = len(srv.requests)
    proc = spawn(["history", "replay", "4", "--base-url", url, "-m", "m1", "-m", "m2"], env)
    try:
        header = b"==> m1 <==\n"
        first = read_some(proc, len(header) + 1)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        reap(proc)
    assert proc.returncode == 130, err
    assert first.startswith(header)
    assert [r.body["model"] for r in srv.requests[since:]] == ["m1"]  # m2 was never asked
    answer = messages(db_path)[-1]
    assert (answer["id"], answer["parent_id"], answer["status"], answer["model"]) == (10, 3, "cancelled", "m1")
    assert answer["content"].encode() + b"\n" == (first + rest)[len(header) :]
    lines = err.decode().splitlines()
    assert lines[0] == "llmchat: interrupted; the partial answer was kept"
    assert lines[1].split()[:2] == ["message", "model"] and lines[2].split()[5:7] == ["m1", "cancelled"]
    assert current_leaf(db_path) == 9


def test_replay_on_a_terminal_renders_each_answer(srv, env, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    shown = on_terminal(env, "history", "replay", "4", "--base-url", url, "-m", "m1", "-m", "m2")
    rows = messages(db_path)
    assert [(r["model"], r["parent_id"]) for r in rows[-2:]] == [("m1", 3), ("m2", 3)]
    assert rows[-1]["content"].startswith("# Hello from")  # Markdown: rendered, not as written
    text = shown.decode()
    assert "# Hello" not in text and text.count("\x1b[1;4mHello from") == 2
    assert text.index("==> m1 <==") < text.index("Hello from") < text.index("==> m2 <==") < text.rindex("Hello from")


def test_replay_goes_on_after_a_model_that_fails_and_exits_1(srv, run, write_config, db_path: Path) -> None:
    url = srv.base_url("openai-chat", tokens=3)
    build(db_path, base_url=url)
    failing = srv.base_url("openai-chat", status=400)
    write_config(
        f'[profiles.bad]\napi = "openai-chat"\nbase_url = "{failing}"\nmodel = "model-bad"\n\n'
        f'[profiles.good]\napi = "openai-chat"\nbase_url = "{url}"\nmodel = "model-good"\n'
    )
    code, out, err = run("history", "replay", "9", "-p", "bad", "-p", "good", "--json")
    assert code == 1, err
    data = json.loads(out)
    assert [(item["id"], item["profile"], item["model"], item["status"]) for item in data] == [
        (10, "bad", "model-bad", "error"),
        (11, "good", "model-good", "complete"),
    ]
    assert data[0]["error"] and data[0]["error"] in err and data[1]["content"]
    assert current_leaf(db_path) == 9
