"""Conversations as trees in the store: branching after any answer, edited prompts and
regenerated answers as siblings, the current path (what is shown, continued and sent), stepping
between siblings and back, forks, and all of it from several threads at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from history_helpers import query

from llmchat.conversation import Message
from llmchat.history import COMPLETE, ROOT, HistoryError, HistoryStore, UnknownMessage
from llmchat.history.store import AnswerWriter


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def store(path: Path):
    with HistoryStore.open(path) as s:
        yield s


def answered(writer: AnswerWriter, text: str, *, reasoning: str = "", model: Optional[str] = None) -> AnswerWriter:
    if reasoning:
        writer.reasoning.append(reasoning)
    writer.append(text)
    writer.finish(COMPLETE)
    return writer


def turn(store: HistoryStore, cid: Optional[int], prompt: str, answer: str, **kw) -> AnswerWriter:
    return answered(store.begin_turn(cid, prompt, model="m", **kw), answer)


def texts(store: HistoryStore, cid: int, **kw) -> List[str]:
    return [m.content for m in store.load(cid, **kw).messages]


def test_a_straight_conversation_is_a_chain_and_its_path_is_every_message(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    second = turn(store, cid, "q2", "a2")
    transcript = store.load(cid)
    assert [m.content for m in transcript.messages] == ["q1", "a1", "q2", "a2"]
    assert [m.parent_id for m in transcript.messages] == [None, first.prompt_id, first.message_id, second.prompt_id]
    assert transcript.leaf_id == second.message_id == transcript.info.current_leaf_id
    assert all((m.sibling_index, m.sibling_count, m.superseded) == (1, 1, False) for m in transcript.messages)
    assert [m.children for m in transcript.messages] == [1, 1, 1, 0]


def test_a_prompt_after_an_earlier_answer_is_a_new_branch_that_becomes_current(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    turn(store, cid, "q2", "a2")
    branch = turn(store, cid, "q2 instead", "a2 instead", parent_id=first.message_id)
    assert texts(store, cid) == ["q1", "a1", "q2 instead", "a2 instead"]
    assert store.context(cid) == [
        Message("user", "q1"),
        Message("assistant", "a1"),
        Message("user", "q2 instead"),
        Message("assistant", "a2 instead"),
    ]
    path = store.load(cid).messages
    assert [(m.sibling_index, m.sibling_count) for m in path] == [(1, 1), (1, 1), (2, 2), (1, 1)]
    # The next prompt, with no parent given, follows the current leaf: the new branch.
    turn(store, cid, "q3", "a3")
    assert texts(store, cid) == ["q1", "a1", "q2 instead", "a2 instead", "q3", "a3"]
    assert store.load(cid).leaf_id != branch.message_id
    everything = store.load(cid, branches=True).messages
    assert [(m.content, m.superseded) for m in everything] == [
        ("q1", False),
        ("a1", False),
        ("q2", True),
        ("a2", True),
        ("q2 instead", False),
        ("a2 instead", False),
        ("q3", False),
        ("a3", False),
    ]


def test_an_edited_prompt_is_a_sibling_of_the_one_edited_even_the_first(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    second = turn(store, cid, "q2", "a2")
    edited = answered(store.begin_edit(second.prompt_id, "q2, edited", model="m"), "a2'")
    assert (edited.conversation_id, texts(store, cid)) == (cid, ["q1", "a1", "q2, edited", "a2'"])
    assert [m.content for m in store.siblings(edited.prompt_id)] == ["q2", "q2, edited"]
    root = answered(store.begin_edit(first.prompt_id, "q1, edited", model="m"), "a1'")
    assert texts(store, cid) == ["q1, edited", "a1'"]
    assert store.context(cid) == [Message("user", "q1, edited"), Message("assistant", "a1'")]
    roots = store.siblings(root.prompt_id)
    assert [(m.content, m.parent_id, m.sibling_index, m.sibling_count) for m in roots] == [("q1", None, 1, 2), ("q1, edited", None, 2, 2)]
    with pytest.raises(HistoryError, match="only a prompt is edited"):
        store.begin_edit(first.message_id, "an answer cannot be edited")
    # The explicit form: ROOT starts a new first prompt.
    turn(store, cid, "q1, again", "a1''", parent_id=ROOT)
    assert len(store.siblings(first.prompt_id)) == 3


def test_a_regenerated_answer_is_a_sibling_and_sends_the_same_turn(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    second = turn(store, cid, "q2", "a2")
    # What a regenerate or a replay sends: the context before the prompt, and the prompt.
    assert store.turn_context(second.message_id) == ([Message("user", "q1"), Message("assistant", "a1")], "q2", second.prompt_id)
    assert store.turn_context(first.prompt_id) == ([], "q1", first.prompt_id)
    again = store.regenerate(second.message_id, model="other")
    assert (again.conversation_id, again.prompt_id) == (cid, second.prompt_id)
    answered(again, "a2, again")
    path = store.load(cid).messages
    assert [m.content for m in path] == ["q1", "a1", "q2", "a2, again"]
    assert (path[-1].model, path[-1].sibling_index, path[-1].sibling_count) == ("other", 2, 2)
    assert store.load(cid).info.message_count == 5  # no new prompt
    # From the prompt: one more answer to it.
    answered(store.regenerate(second.prompt_id), "a2, third")
    assert [m.content for m in store.siblings(second.message_id)] == ["a2", "a2, again", "a2, third"]
    assert [m.sibling_index for m in store.siblings(second.message_id)] == [1, 2, 3]
    assert store.context(cid)[-1] == Message("assistant", "a2, third")


def test_a_replay_can_be_stored_beside_without_moving_the_users_branch(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    turn(store, cid, "q2", "a2")
    other = turn(store, None, "elsewhere", "a")
    replay = answered(store.regenerate(first.message_id, model="another", profile="p", current=False), "a1 by another")
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    assert store.most_recent().id == other.conversation_id and store.get(cid).profile is None
    assert [(m.content, m.model) for m in store.siblings(replay.message_id)] == [("a1", "m"), ("a1 by another", "another")]


def test_stepping_between_siblings_returns_to_the_branch_left_below_them(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    deep = turn(store, cid, "q2", "a2")
    other = answered(store.regenerate(first.message_id), "a1'")
    turn(store, cid, "q2'", "a2'")
    below_other = turn(store, cid, "q3'", "a3'")
    # Back to the first answer: its branch is followed down to where it was left.
    assert store.select_branch(first.message_id) == deep.message_id
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    # Within that branch, a second prompt after a1; then away and back again.
    side = turn(store, cid, "q2b", "a2b", parent_id=first.message_id)
    assert store.select_branch(other.message_id) == below_other.message_id
    assert texts(store, cid) == ["q1", "a1'", "q2'", "a2'", "q3'", "a3'"]
    assert store.select_branch(first.message_id) == side.message_id  # the last one chosen below a1
    assert store.select_branch(deep.prompt_id) == deep.message_id
    assert store.select_branch(first.message_id) == deep.message_id
    # Choosing a message deep in a branch chooses the way to it too.
    assert store.select_branch(below_other.prompt_id) == below_other.message_id
    assert texts(store, cid)[1] == "a1'"
    assert store.context(cid, leaf_id=deep.message_id)[-1] == Message("assistant", "a2")
    with pytest.raises(UnknownMessage):
        store.select_branch(10**9)


def test_the_path_to_any_message_and_its_children(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    second = turn(store, cid, "q2", "a2")
    turn(store, cid, "q2b", "a2b", parent_id=first.message_id)
    assert [m.content for m in store.path_to(leaf_id=second.message_id)] == ["q1", "a1", "q2", "a2"]
    assert [m.content for m in store.path_to(cid)] == ["q1", "a1", "q2b", "a2b"]
    assert [m.content for m in store.children(first.message_id)] == ["q2", "q2b"]
    assert store.children(second.message_id) == []
    assert store.message(second.prompt_id).content == "q2"
    assert store.load(cid, leaf_id=second.prompt_id).leaf_id == second.prompt_id
    assert store.load(cid).leaf_id != second.message_id  # reading another path changes nothing


def test_a_new_message_must_follow_one_of_the_right_kind_in_the_same_conversation(store: HistoryStore) -> None:
    first = turn(store, None, "q1", "a1")
    elsewhere = turn(store, None, "other", "other answer")
    with pytest.raises(HistoryError, match="is a prompt"):
        store.begin_turn(first.conversation_id, "after a prompt", parent_id=first.prompt_id)
    with pytest.raises(HistoryError, match=f"no message {elsewhere.message_id} in conversation {first.conversation_id}"):
        store.begin_turn(first.conversation_id, "after another conversation's answer", parent_id=elsewhere.message_id)
    with pytest.raises(HistoryError, match="a new conversation has no message to follow"):
        store.begin_turn(None, "x", parent_id=first.message_id)
    with pytest.raises(UnknownMessage):
        store.regenerate(10**9)
    with pytest.raises(HistoryError, match="no message"):
        store.load(first.conversation_id, leaf_id=elsewhere.message_id)
    # Nothing of the refused turns was stored.
    assert store.load(first.conversation_id, branches=True).info.message_count == 2


def test_a_fork_copies_the_path_with_every_piece_and_figure(store: HistoryStore, path: Path) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    writer = store.begin_turn(cid, "q2", model="m")
    writer.reasoning.append("thinking it over")
    writer.append("a2 " * 10)
    writer.flush()
    writer.finish(COMPLETE)
    turn(store, cid, "q3", "a3")
    store.rename(cid, "Tides")
    forked = store.fork(cid, writer.message_id)
    assert forked != cid
    info = store.get(forked)
    assert (info.title, info.model, store.most_recent().id) == ("Tides (fork)", "m", forked)
    copy = store.load(forked).messages
    original = store.load(cid).messages[:4]
    assert [m.content for m in copy] == ["q1", "a1", "q2", "a2 " * 10]
    assert copy[-1].reasoning == "thinking it over"
    assert [(m.role, m.status, m.model, m.ttft, m.output_tokens) for m in copy] == [
        (m.role, m.status, m.model, m.ttft, m.output_tokens) for m in original
    ]
    assert not {m.id for m in copy} & {m.id for m in original}
    assert store.context(forked) == store.context(cid, leaf_id=writer.message_id)
    assert texts(store, cid)[-1] == "a3"  # the original is untouched
    # A fork goes on by itself.
    turn(store, forked, "q3 in the fork", "a3 in the fork")
    assert texts(store, forked)[-2:] == ["q3 in the fork", "a3 in the fork"]
    assert len(store.load(cid).messages) == 6
    # Pieces that stay pieces (a long or interrupted answer) are copied too.
    streaming = store.begin_turn(cid, "q4", model="m")
    streaming.append("half")
    streaming.flush()
    with pytest.raises(HistoryError, match="still being written"):
        store.fork(cid, streaming.message_id)
    streaming.finish("cancelled")
    long_title = "x" * 80
    store.rename(cid, long_title)
    second = store.fork(cid, streaming.message_id)
    assert store.load(second).messages[-1].content == "half"
    assert store.get(second).title.endswith("(fork)") and len(store.get(second).title) <= 80
    with pytest.raises(HistoryError, match="no message"):
        store.fork(forked, writer.message_id)


def test_pieces_of_other_kinds_are_kept_when_an_answer_is_joined(store: HistoryStore, path: Path) -> None:
    """Room for attachments and tool calls: any kind of piece, with its meta, stays when the
    text and reasoning pieces are joined into the row."""
    writer = store.begin_turn(None, "q", model="m")
    db = __import__("sqlite3").connect(str(path))
    db.execute("INSERT INTO message_parts (message_id, kind, content, meta) VALUES (?, 'tool_call', '{}', '{\"name\": \"f\"}')", (writer.message_id,))
    db.commit()
    db.close()
    writer.append("answer")
    writer.flush()
    writer.finish(COMPLETE)
    assert query(path, "SELECT kind, meta FROM message_parts WHERE message_id = ?", (writer.message_id,)) == [("tool_call", '{"name": "f"}')]
    assert store.load(writer.conversation_id).messages[-1].content == "answer"


def test_a_conversation_with_branches_is_deleted_whole(store: HistoryStore, path: Path) -> None:
    first = turn(store, None, "q1", "a1")
    cid = first.conversation_id
    turn(store, cid, "q2", "a2")
    answered(store.regenerate(first.message_id), "a1'")
    store.delete(cid)
    assert query(path, "SELECT count(*) FROM messages") == [(0,)]


def test_selecting_a_branch_can_make_its_conversation_the_one_continued(store: HistoryStore) -> None:
    older = turn(store, None, "old", "old answer")
    later = turn(store, older.conversation_id, "old 2", "old answer 2")
    answered(store.regenerate(older.message_id), "old answer, again")  # away from `later`
    newer = turn(store, None, "new", "new answer")
    assert store.most_recent().id == newer.conversation_id
    assert store.select_branch(older.message_id) == later.message_id  # a face stepping: the order stays
    assert store.most_recent().id == newer.conversation_id
    store.select_branch(older.message_id, touch=True)  # `history switch`: -c goes on there
    assert store.most_recent().id == older.conversation_id
    assert store.context(older.conversation_id)[-1] == Message("assistant", "old answer 2")


def test_threads_appending_to_one_conversation_make_one_chain(store: HistoryStore) -> None:
    """The store is thread-safe: turns begun at once from several threads each follow the
    leaf the one before left, so nothing forks by accident and nothing is lost."""
    cid = turn(store, None, "start", "started").conversation_id
    errors: List[BaseException] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                turn(store, cid, f"t{n}.{i}", f"a{n}.{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = store.load(cid, branches=True).messages
    path = store.load(cid).messages
    assert len(path) == len(everything) == 42
    assert all(m.sibling_count == 1 for m in everything)
    # Each prompt is followed by its own answer.
    pairs: List[Tuple[str, str]] = [(path[i].content, path[i + 1].content) for i in range(0, 42, 2)]
    assert all(a == "a" + q[1:] for q, a in pairs[1:])


def test_threads_regenerating_one_answer_make_siblings(store: HistoryStore) -> None:
    first = turn(store, None, "q", "a")
    barrier = threading.Barrier(4)
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            answered(store.regenerate(first.message_id), f"again {n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    siblings = store.siblings(first.message_id)
    assert [m.sibling_index for m in siblings] == [1, 2, 3, 4, 5] and siblings[0].content == "a"
    assert store.load(first.conversation_id).leaf_id in {m.id for m in siblings[1:]}
