"""The conversation store: one SQLite file (WAL) that every face writes and reads.

Nothing is lost: the user's message is committed before its request is sent; the assistant's
message is created with it and its text is saved as it grows, every `FLUSH_INTERVAL` seconds
(on an injected clock, never per token), so a `kill -9`, a power cut or a closed terminal loses
at most about that much. A message left `streaming` by a process that is gone is marked
`interrupted` on the next start; one that a live process is still writing is left alone (its
writer's PID and start time are on the row). API keys are never stored: nothing here is given
one, and a base URL that could hold a credential is not kept.

Durability without waiting for the disk on the hot path: a commit survives the process dying as
soon as it returns (WAL), and a power cut once the WAL is synced to disk. Most writes sync as
they commit (`synchronous = FULL`). The two on the hot path -- `begin_turn`, just before the
request goes out, and the flushes of a growing answer -- commit without waiting and have the
store's syncer thread sync the WAL at once (`sync_soon`): a slow disk (an fsync can take tens
of milliseconds on a busy machine) never delays the first token or the stream, and the
power-cut window stays milliseconds.

Concurrency: every write is one short transaction (`BEGIN IMMEDIATE` when it has several
statements), SQLite waits up to `BUSY_TIMEOUT` for another process's lock, and busy errors are
retried up to `WRITE_DEADLINE`. A flush of a growing answer waits only briefly and otherwise
leaves its text for the next flush, so a busy database never stalls the stream. A turn's first
write (`begin_turn(..., defer_if_busy=True)`) waits only `BEGIN_BUSY_MS` too: when another
process holds the lock, the request goes out at once and the turn is written by the first flush
that finds the store free. Every failure is a `HistoryError` with a one-line message: the faces
warn and go on without storing.

Size: an answer is saved in pieces (`message_parts`), one row per flush, so saving costs the new
text only and no more than a flush's text is ever held; a finished answer of ordinary size is
joined back into its row (`JOIN_CHARS`), a longer one stays in pieces, however long it is.
Secrets (`redact.Redactor`) are replaced before anything is stored.

Tool calls and results (`AnswerWriter.add_part`) are pieces too, of kinds "tool_call" and
"tool_result" with a JSON `meta`, stored in their place among the text's pieces; each notes
its `offset` in the answer's text, so the order survives the text being joined into its row.
The answer's `content` stays its text alone (search, lists); `load` gives the parts with each
message (`StoredMessage.segments`), and `context` sends them back as the model's steps.

Trees: every message has a parent (none for a first prompt): a prompt follows an answer, an
answer its prompt. An edited prompt (`begin_edit`) and a regenerated answer (`regenerate`) are
siblings of the one they replace, and a prompt may follow any earlier answer (`begin_turn(...,
parent_id=...)`). A conversation's current leaf ends its current path: what `load` returns,
`context` sends and `-c` continues; every write moves it to the new message. Each message
remembers the child last chosen below it (`select_branch`), so stepping between siblings comes
back to the branch that was left. `fork` copies a path into a new conversation. Nothing is ever
deleted but a whole conversation.

The store is thread-safe (one lock around the connection) and imports neither Textual, Rich
nor asyncio: the one-shot face and the TUI share it.

The syncer: one long-lived thread per store (started on first use) runs, in order, what is
handed to it with `submit` -- the periodic saves of growing answers, the WAL syncs, and whatever
a face must not wait for (the TUI sends every store call there, so a store another process
holds locked never freezes its event loop). `close` runs what is left, waiting `CLOSE_WAIT`
seconds at most, and says in one line what it could not write.
"""

from __future__ import annotations

import _thread
import os
import queue
import re
import sqlite3
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar
from urllib.parse import urlsplit

from llmchat.conversation import Message
from llmchat.history import schema

if TYPE_CHECKING:  # the records module is imported by the methods that read (see its docstring)
    from llmchat.history.records import ConversationInfo, SearchHit, StoredMessage, Transcript

STREAMING, COMPLETE, CANCELLED, ERROR, INTERRUPTED = "streaming", "complete", "cancelled", "error", "interrupted"
MAX_STEPS = "max_steps"  # a stop reason llmchat gives, not the model: the answer reached `--max-steps` rounds of tool calls
FINAL_STATUSES = (COMPLETE, CANCELLED, ERROR, INTERRUPTED)

DB_NAME = "history.db"
# Whether any message refers to an attachment's bytes (by their sha256): answered from the
# partial index message_parts_attachments (schema version 6), not a scan of every piece.
REFERENCED = "SELECT 1 FROM message_parts WHERE kind = 'attachment' AND content = ? LIMIT 1"
# A prompt's attachments, in order: from the index message_parts_by_message (message_id, id).
PROMPT_ATTACHMENTS = "SELECT meta FROM message_parts WHERE message_id = ? AND kind = 'attachment' ORDER BY id"
ATTACHMENTS_DIR = "attachments"  # beside the database: <data>/attachments/ab/cdef... (sha256), 0600 in 0700 dirs
FLUSH_INTERVAL = 0.5  # seconds between saves of a growing answer
BUSY_TIMEOUT = 5.0  # seconds SQLite waits for another process's write lock
WRITE_DEADLINE = 15.0  # seconds a write that matters keeps retrying a busy database
FLUSH_BUSY_MS = 50  # a flush waits this long for the lock, then leaves its text for the next
BEGIN_BUSY_MS = 100  # a turn's first write waits this long, then the request goes out anyway
LATE_BEGIN_WAIT = 3.0  # seconds the end of an answer waits for a store that was locked all along
CLOSE_WAIT = 3.0  # seconds `close` waits for the syncer's writes before leaving them undone
# The most text one stored piece holds (less when SQLite allows less). SQLite copies a value
# two or three times on its way to the disk: small pieces keep that a small constant.
PIECE_CHARS = 1024 * 1024
JOIN_CHARS = 1024 * 1024  # a finished answer up to this long is joined into one row and indexed
TITLE_LENGTH = 80

_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, status, model, api, created_at, finished_at, ttft, "
    "tokens_per_second, input_tokens, output_tokens, tokens_exact, elapsed, stop_reason, error, superseded, reasoning, parent_id"
)
_CONVERSATION_COLUMNS = (
    "c.id, c.title, c.created_at, c.updated_at, c.profile, c.model, c.api, c.base_url, "
    "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id), c.current_leaf_id"
)
# begin_turn's parent_id: ROOT starts a new first prompt (an edit of the first one); None, the
# default, appends after the conversation's current leaf.
ROOT = 0
_APPEND = -1


class HistoryError(Exception):
    """The store cannot do what was asked; the message is one line that says why."""


class UnknownConversation(HistoryError):
    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"no conversation {conversation_id}")
        self.conversation_id = conversation_id


class UnknownMessage(HistoryError):
    """No message with that ID (in that conversation, when one is given)."""

    def __init__(self, message_id: int, conversation_id: Optional[int] = None) -> None:
        where = f" in conversation {conversation_id}" if conversation_id is not None else ""
        super().__init__(f"no message {message_id}{where}")
        self.message_id = message_id
        self.conversation_id = conversation_id


class _Busy(Exception):
    """Another process holds the write lock (only for writes that do not wait)."""


_T = TypeVar("_T")
_Part = Tuple[str, str, Dict[str, Any]]  # a tool part handed to the syncer: (kind, text, meta)
_Job = Tuple["Future[Any]", Callable[..., Any], Tuple[Any, ...], Dict[str, Any]]


_MAX_ID = 2**63 - 1  # SQLite's largest integer: no row has a larger ID


def _known_id(conversation_id: int) -> int:
    """`conversation_id`, or UnknownConversation for one no row can have (SQLite cannot even
    be asked about an integer beyond 2^63 - 1)."""
    if not 0 < conversation_id <= _MAX_ID:
        raise UnknownConversation(conversation_id)
    return conversation_id


def _sql_limit(limit: Optional[int]) -> int:
    """A LIMIT SQLite takes: none (-1) for None and for anything beyond its integers."""
    return -1 if limit is None or limit > _MAX_ID else limit


def default_path() -> Path:
    """history.db in the data directory (`LLMCHAT_HOME/data` when that is set)."""
    from llmchat.paths import data_dir

    return data_dir() / DB_NAME


def make_title(prompt: str) -> str:
    """The first non-blank line of the prompt, whitespace collapsed, control characters
    dropped, at most TITLE_LENGTH characters."""
    for line in prompt.splitlines():
        line = " ".join("".join(ch for ch in line if ch.isprintable() or ch.isspace()).split())
        if line:
            return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
    return "untitled"


def storable_url(url: Optional[str]) -> Optional[str]:
    """The base URL when it is safe to keep: one with user info, a query string or a fragment
    may carry a credential, so it is not stored at all (continuing that conversation then
    needs --base-url, or its profile's)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" in parts.netloc or parts.query or parts.fragment:
        return None
    return url


# --- the writing process's identity ------------------------------------------------------

_boot_id: Optional[str] = None


def process_token(pid: int) -> str:
    """What tells this process apart from a later one with the same PID: the boot ID and the
    process start time (Linux); "" where that cannot be read."""
    global _boot_id
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        if _boot_id is None:
            with open("/proc/sys/kernel/random/boot_id", "rb") as f:
                _boot_id = f.read().strip().decode("ascii", "replace")
        start = stat[stat.rindex(b")") + 2 :].split()[19].decode("ascii")  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return ""
    return f"{_boot_id}:{start}"


_own_token: Optional[str] = None
_live_answers: Set[Tuple[str, int]] = set()  # (database path, message id) this process writes


def _writer_alive(pid: Optional[int], token: Optional[str], path: str, message_id: int) -> bool:
    """False only when the process that was writing the message is certainly gone."""
    if pid is None:
        return False
    if pid == os.getpid():
        return (path, message_id) in _live_answers
    if os.name != "posix":  # no safe check (os.kill(pid, 0) would signal the process)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        pass
    if token:
        current = process_token(pid)
        if current and current != token:
            return False  # the PID was reused by a process that started later
    return True


# --- the store ---------------------------------------------------------------------------


class HistoryStore:
    """Conversations and their messages in one SQLite file. Open with `HistoryStore.open`."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self._db = db
        self.path = path
        self._key = os.path.realpath(path)  # one key per file, however the path was spelt
        self._wal_path = str(path) + "-wal"
        self._clock = clock  # monotonic: when to flush
        self._now = now  # wall clock: the timestamps stored
        self.flush_interval = flush_interval
        self._lock = threading.RLock()
        self._busy_ms = int(BUSY_TIMEOUT * 1000)
        # A piece in bytes must fit SQLite's largest string; a character is at most 4 bytes.
        self._piece_chars = PIECE_CHARS  # Python 3.10 cannot ask: SQLite's default (10^9 bytes) holds it
        if sys.version_info >= (3, 11):
            self._piece_chars = max(1024, min(PIECE_CHARS, db.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) // 4 - 1024))
        self.warn: Optional[Callable[[str], None]] = None  # hears what `close` could not write
        # The syncer (see `submit`): its queue (None until first used), its thread's ID, set
        # when it has ended; `_state` guards starting it and closing.
        self._jobs: "Optional[queue.SimpleQueue[Optional[_Job]]]" = None
        self._syncer_id: Optional[int] = None
        self._syncer_ended = threading.Event()
        self._state = threading.Lock()
        self._closed = False
        self._abandoned = False  # `close` gave up waiting: what is left is not written
        self._current: Optional[Tuple[Callable[..., Any], Tuple[Any, ...]]] = None  # the job running
        self._writers: "Set[AnswerWriter]" = set()  # answers not finished (what `close` may leave)

    @classmethod
    def open(
        cls,
        path: Optional[Path] = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        flush_interval: float = FLUSH_INTERVAL,
        warn: Optional[Callable[[str], None]] = None,
    ) -> "HistoryStore":
        """Open (creating it 0600, and the directories it needs 0700, if needed) and upgrade
        the database. `warn` hears about a directory other users may write in."""
        path = Path(path) if path is not None else default_path()
        _prepare_file(path, warn)
        try:
            db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open {path}: {exc}") from None
        store = cls(db, path, clock=clock, now=now, flush_interval=flush_interval)
        store.warn = warn
        try:
            store._setup()
        except BaseException:
            db.close()
            raise
        return store

    def _setup(self) -> None:
        self._execute("PRAGMA journal_mode = WAL")
        self._execute("PRAGMA synchronous = FULL")
        self._execute("PRAGMA foreign_keys = ON")
        version = self.schema_version()
        if version > schema.VERSION:
            raise HistoryError(f"{self.path} was written by a newer llmchat (schema {version}; this one knows up to {schema.VERSION})")
        if version < schema.VERSION:
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
                if version < schema.VERSION:
                    schema.upgrade(db, version)

    def schema_version(self) -> int:
        return self._query("PRAGMA user_version")[0][0]

    def close(self, timeout: Optional[float] = None) -> None:
        """Run what was submitted, end the syncer and close the file. The syncer gets `timeout`
        seconds (a write may be waiting for another process's lock); past that, what is left
        is not written, `warn` (given to `open`) hears it in one line, and the connection is
        left to the process's exit. `timeout` None: `CLOSE_WAIT`. Idempotent."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            jobs = self._jobs
        if jobs is not None:
            jobs.put(None)
            wait = CLOSE_WAIT if timeout is None else max(0.0, timeout)
            if not self._on_syncer() and not self._syncer_ended.wait(wait):
                self._give_up(jobs)
                if not self._syncer_ended.wait(0.2):
                    return  # still inside SQLite: the connection stays open until the process ends
        with self._lock:
            self._db.close()

    # --- the syncer ----------------------------------------------------------------------------

    def submit(self, fn: Callable[..., _T], *args: Any, **kw: Any) -> "Future[_T]":
        """Run `fn(*args, **kw)` on the store's syncer thread, after everything submitted
        before it; its Future (the caller reads the result or the exception: nothing else
        reports it). One long-lived daemon thread per store, started on first use; `close`
        drains and ends it. From an event loop: `await asyncio.wrap_future(store.submit(...))`.
        A job that submits another and waits for it waits forever: call it directly there.
        HistoryError once the store is closed."""
        future: "Future[_T]" = Future()
        with self._state:
            if self._closed:
                raise HistoryError(f"{self.path}: the history store is closed")
            jobs = self._jobs
            if jobs is None:
                jobs = self._jobs = queue.SimpleQueue()
                # A bare `_thread`: `threading.Thread.start()` waits until the new thread runs,
                # milliseconds on a busy machine, and the first use is just before a request.
                self._syncer_id = _thread.start_new_thread(self._syncer, (jobs,))
            jobs.put((future, fn, args, kw))
        return future

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything submitted so far has run (tests, and a face about to read
        the file with another connection); False when `timeout` passed first."""
        if self._on_syncer():
            return True
        try:
            future = self.submit(_same, None)
        except HistoryError:  # closed: nothing runs any more
            return True
        try:
            future.result(timeout)
        except TimeoutError:
            return False
        return True

    def _on_syncer(self) -> bool:
        return self._syncer_id is not None and _thread.get_ident() == self._syncer_id

    def _wait_for(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(*args)` on the syncer, after what was submitted before, and its result; run at
        once when already there. HistoryError when the store is closed."""
        if self._on_syncer():
            return fn(*args)
        return self.submit(fn, *args).result()

    def _syncer(self, jobs: "queue.SimpleQueue[Optional[_Job]]") -> None:
        try:
            while True:
                job = jobs.get()
                if job is None:
                    break
                future, fn, args, kw = job
                del job
                if self._abandoned:
                    future.cancel()
                elif future.set_running_or_notify_cancel():
                    self._current = (fn, args)
                    try:
                        result = fn(*args, **kw)
                    except BaseException as exc:  # the caller hears it from the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                    self._current = None
                del future, fn, args, kw  # nothing of the last job stays alive while idle
        finally:
            self._syncer_ended.set()

    def _give_up(self, jobs: "queue.SimpleQueue[Optional[_Job]]") -> None:
        """`close` waited long enough: the syncer drops what is queued, the write it is in
        stops at its next try, and `warn` hears what is not stored."""
        self._abandoned = True
        try:
            self._db.interrupt()  # a long statement stops now; a wait for a lock at its next try
        except sqlite3.Error:
            pass
        others = dropped = 0
        running = self._current
        if running is not None and not _is_answer_job(*running):
            others += 1
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                continue
            job[0].cancel()
            if _is_answer_job(job[1], job[2]):
                dropped += _handed_chars(job[2])
            elif job[1] != self.sync:
                others += 1
        jobs.put(None)  # the syncer ends after the job it is in
        chars = dropped + sum(writer.unsaved_chars() for writer in list(self._writers))
        lost = []
        if chars:
            lost.append(f"the last {chars:,} characters of an answer (kept as far as it was saved, marked interrupted at the next start)")
        if others:
            lost.append(f"{others} other change{'s' if others != 1 else ''}")
        if lost and self.warn is not None:
            self.warn(f"warning: {self.path} was still busy when llmchat quit (locked by another process?); not saved: {' and '.join(lost)}")

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------

    def start_conversation(
        self,
        *,
        title: str = "",
        profile: Optional[str] = None,
        model: Optional[str] = None,
        api: Optional[str] = None,
        base_url: Optional[str] = None,
    ) -> int:
        """A new, empty conversation; its ID. With no title, the first prompt names it."""
        with self._transaction() as db:
            return self._new_conversation(db, title, (profile, model, api, base_url))

    def set_settings(
        self,
        conversation_id: int,
        *,
        profile: Optional[str] = None,
        model: Optional[str] = None,
        api: Optional[str] = None,
        base_url: Optional[str] = None,
    ) -> None:
        """The settings a continued conversation uses next time (the latest ones used)."""
        with self._transaction() as db:
            self._set_settings(db, conversation_id, (profile, model, api, base_url))

    def add_user_message(self, conversation_id: int, content: str) -> int:
        """Store a prompt after the current leaf (committed when this returns) and mark the
        conversation used now. The conversation's first prompt gives it its title unless it
        has one."""
        with self._transaction() as db:
            return self._add_prompt(db, conversation_id, content, _APPEND)

    def begin_answer(
        self,
        conversation_id: int,
        *,
        model: Optional[str] = None,
        api: Optional[str] = None,
        on_error: Optional[Callable[[HistoryError], None]] = None,
    ) -> "AnswerWriter":
        """The assistant's message after the current leaf, created now as `streaming`; write
        it through the handle. `on_error` hears (once, on the caller's thread, at its next flush
        or `finish`) about a flush that failed for another reason than a busy database; the
        text stays buffered and `finish` tries again."""
        with self._transaction() as db:
            message_id = self._add_answer(db, conversation_id, model, api, _APPEND)
        return self._writer(conversation_id, message_id, on_error)

    def begin_turn(
        self,
        conversation_id: Optional[int],
        prompt: str,
        *,
        profile: Optional[str] = None,
        model: Optional[str] = None,
        api: Optional[str] = None,
        base_url: Optional[str] = None,
        on_error: Optional[Callable[[HistoryError], None]] = None,
        secrets: Sequence[str] = (),
        defer_if_busy: bool = False,
        parent_id: Optional[int] = None,
        attachments: Sequence[Any] = (),
    ) -> "AnswerWriter":
        """Everything a face stores before its request, in one transaction: the conversation
        (a new one when `conversation_id` is None, else given these settings for its next
        continuation), the prompt, and the answer's row, streaming. Committed when this returns
        (on disk a moment later: see `sync_soon`). The handle has `conversation_id` and
        `prompt_id`. `secrets` are replaced by `***` in everything stored for the turn.

        Where the prompt goes: `parent_id` None appends it after the conversation's current
        leaf (a straight conversation); an answer's ID starts a new branch after that answer
        (`--from`); `ROOT` a new first prompt (see `begin_edit`). The new answer becomes the
        current leaf: what `load`, `context` and `-c` follow.

        With `defer_if_busy`, a store locked by another process for more than `BEGIN_BUSY_MS`
        does not hold the request back: the handle comes back with `begun` False, and the turn
        is written by its first flush that finds the store free (or by `finish`).

        `attachments` (llmchat.attachments.Attachment) are stored with the prompt: their bytes
        once each, by hash, in the data directory (`attachment_path`), the prompt referring to
        them; `context` sends them again."""
        redactor = _redactor(secrets)
        if redactor is not None:
            prompt = redactor.redact(prompt)
        chosen = _chosen(redactor, profile, model, api, base_url)
        if conversation_id is not None:
            _known_id(conversation_id)
        elif parent_id not in (None, ROOT):
            raise HistoryError("a new conversation has no message to follow")
        parent = _APPEND if parent_id is None else parent_id
        attached = tuple(attachments)
        self._save_blobs(attached)  # the bytes before the lock; checked again under it

        def begin(busy_ms: Optional[int]) -> Tuple[int, int, int]:
            cid = conversation_id
            with self._transaction(wait_for_disk=False, busy_ms=busy_ms) as db:
                if cid is None:
                    cid = self._new_conversation(db, "", chosen)
                else:
                    self._set_settings(db, cid, chosen)
                prompt_id = self._add_prompt(db, cid, prompt, parent)
                if attached:
                    self._add_attachments(db, prompt_id, attached)
                message_id = self._add_answer(db, cid, model, api, prompt_id)
            _live_answers.add((self._key, message_id))
            return cid, prompt_id, message_id

        return self._begin_writer(begin, conversation_id, on_error, redactor, defer_if_busy)

    def begin_edit(self, message_id: int, prompt: str, **options: Any) -> "AnswerWriter":
        """Edit-and-resend: `prompt` as a new sibling of the prompt `message_id` (a new branch
        from the point that prompt was asked at), with its answer begun; the new answer becomes
        the current leaf. `options` are `begin_turn`'s."""
        found = self._query("SELECT conversation_id, role, parent_id FROM messages WHERE id = ?", (_known_message(message_id),))
        if not found:
            raise UnknownMessage(message_id)
        conversation_id, role, parent_id = found[0]
        if role != "user":
            raise HistoryError(f"message {message_id} is an answer: only a prompt is edited (regenerate an answer)")
        return self.begin_turn(conversation_id, prompt, parent_id=ROOT if parent_id is None else parent_id, **options)

    def regenerate(
        self,
        message_id: int,
        *,
        profile: Optional[str] = None,
        model: Optional[str] = None,
        api: Optional[str] = None,
        base_url: Optional[str] = None,
        on_error: Optional[Callable[[HistoryError], None]] = None,
        secrets: Sequence[str] = (),
        defer_if_busy: bool = False,
        current: bool = True,
    ) -> "AnswerWriter":
        """A new answer to the same prompt, begun now as `streaming`: for an answer's ID, its
        sibling; for a prompt's, one more answer to it. No new prompt is stored. The new answer
        becomes the current leaf, and the conversation the most recently used -- unless not
        `current` (a replay against other models, say: stored beside, the user's branch and the
        conversation's settings left as they were). The handle's `prompt_id` is the prompt
        answered; what to send is `turn_context(message_id)`. The rest as `begin_turn`."""
        redactor = _redactor(secrets)
        chosen = _chosen(redactor, profile, model, api, base_url)
        _known_message(message_id)

        def begin(busy_ms: Optional[int]) -> Tuple[int, int, int]:
            with self._transaction(wait_for_disk=False, busy_ms=busy_ms) as db:
                found = db.execute("SELECT conversation_id, role, parent_id FROM messages WHERE id = ?", (message_id,)).fetchone()
                if found is None:
                    raise UnknownMessage(message_id)
                cid, role, parent = found
                prompt_id = message_id if role == "user" else parent
                if prompt_id is None:
                    raise HistoryError(f"answer {message_id} follows no prompt: nothing to ask again")
                if current:
                    self._set_settings(db, cid, chosen)
                    self._touch(db, cid)
                answer_id = self._add_answer(db, cid, model, api, prompt_id, link=current)
            _live_answers.add((self._key, answer_id))
            return cid, prompt_id, answer_id

        return self._begin_writer(begin, None, on_error, redactor, defer_if_busy)

    def _begin_writer(
        self,
        begin: Callable[[Optional[int]], Tuple[int, int, int]],
        conversation_id: Optional[int],
        on_error: Optional[Callable[[HistoryError], None]],
        redactor: Any,
        defer_if_busy: bool,
    ) -> "AnswerWriter":
        writer = AnswerWriter(self, conversation_id, None, on_error=on_error, redactor=redactor)
        if not defer_if_busy:
            writer._started(begin(None))
            return writer
        try:
            writer._started(begin(BEGIN_BUSY_MS))
        except _Busy:
            writer._begin = begin
        return writer

    def _new_conversation(self, db: sqlite3.Connection, title: str, chosen: tuple) -> int:
        profile, model, api, base_url = chosen
        now = self._now()
        cursor = db.execute(
            "INSERT INTO conversations (title, created_at, updated_at, used_seq, profile, model, api, base_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (title, now, now, _next_use(db), profile, model, api, storable_url(base_url)),
        )
        assert cursor.lastrowid is not None  # set by the INSERT that just added a row
        return cursor.lastrowid

    def _set_settings(self, db: sqlite3.Connection, conversation_id: int, chosen: tuple) -> None:
        profile, model, api, base_url = chosen
        cursor = db.execute(
            "UPDATE conversations SET profile = ?, model = ?, api = ?, base_url = ? WHERE id = ?",
            (profile, model, api, storable_url(base_url), conversation_id),
        )
        if cursor.rowcount == 0:
            raise UnknownConversation(conversation_id)

    def _add_prompt(self, db: sqlite3.Connection, conversation_id: int, content: str, parent: int) -> int:
        now = self._now()
        content = _clean(content)
        cursor = db.execute(
            "UPDATE conversations SET updated_at = ?, used_seq = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
            (now, _next_use(db), make_title(content), conversation_id),
        )
        if cursor.rowcount == 0:
            raise UnknownConversation(conversation_id)
        parent_id = self._parent(db, conversation_id, parent, "assistant")
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at, finished_at, parent_id) VALUES (?, 'user', ?, 'complete', ?, ?, ?)",
            (conversation_id, content, now, now, parent_id),
        )
        assert cursor.lastrowid is not None  # set by the INSERT that just added a row
        return self._linked(db, conversation_id, parent_id, cursor.lastrowid)

    def _add_answer(
        self, db: sqlite3.Connection, conversation_id: int, model: Optional[str], api: Optional[str], parent: int, *, link: bool = True
    ) -> int:
        global _own_token
        pid = os.getpid()
        if _own_token is None:
            _own_token = process_token(pid)
        if not db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone():
            raise UnknownConversation(conversation_id)
        parent_id = self._parent(db, conversation_id, parent, "user")
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, model, api, created_at, writer_pid, writer_token, parent_id)"
            " VALUES (?, 'assistant', '', 'streaming', ?, ?, ?, ?, ?, ?)",
            (conversation_id, model, api, self._now(), pid, _own_token, parent_id),
        )
        assert cursor.lastrowid is not None  # set by the INSERT that just added a row
        if not link:
            return cursor.lastrowid
        return self._linked(db, conversation_id, parent_id, cursor.lastrowid)

    @staticmethod
    def _parent(db: sqlite3.Connection, conversation_id: int, parent: int, role: str) -> Optional[int]:
        """The parent a new message gets: the current leaf for `_APPEND`, none for `ROOT`, else
        `parent`, which must be a message of the conversation with `role` (a prompt follows an
        answer, an answer its prompt)."""
        if parent == _APPEND:
            (leaf,) = db.execute("SELECT current_leaf_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            return leaf
        if parent == ROOT:
            if role == "assistant":  # a prompt: a new first one
                return None
            raise HistoryError("an answer follows a prompt")
        found = db.execute("SELECT role FROM messages WHERE id = ? AND conversation_id = ?", (_known_message(parent), conversation_id)).fetchone()
        if found is None:
            raise UnknownMessage(parent, conversation_id)
        if found[0] != role:
            raise HistoryError(
                f"message {parent} is {'a prompt' if found[0] == 'user' else 'an answer'}: a {'prompt follows an answer' if role == 'assistant' else 'answer follows a prompt'}"
            )
        return parent

    @staticmethod
    def _linked(db: sqlite3.Connection, conversation_id: int, parent_id: Optional[int], message_id: int) -> int:
        """A new message becomes its parent's chosen child and the conversation's current leaf."""
        if parent_id is not None:
            db.execute("UPDATE messages SET chosen_child_id = ? WHERE id = ?", (message_id, parent_id))
        db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (message_id, conversation_id))
        return message_id

    def _touch(self, db: sqlite3.Connection, conversation_id: int) -> None:
        """Mark the conversation used now (`most_recent`, the list's order)."""
        cursor = db.execute("UPDATE conversations SET updated_at = ?, used_seq = ? WHERE id = ?", (self._now(), _next_use(db), conversation_id))
        if cursor.rowcount == 0:
            raise UnknownConversation(conversation_id)

    def _writer(self, conversation_id: int, message_id: int, on_error: Optional[Callable[[HistoryError], None]]) -> "AnswerWriter":
        _live_answers.add((self._key, message_id))
        return AnswerWriter(self, conversation_id, message_id, on_error=on_error)

    def _close_message(self, db: sqlite3.Connection, message_id: int, values: Dict[str, Any]) -> None:
        """Set a streaming message's final `values` (inside a transaction). Its pieces are
        joined into the row when the whole is of ordinary size (and so indexed for search as
        the status changes); a longer answer keeps its pieces."""
        # Row by row, in the index's order, stopping once too long to join: a GROUP BY would
        # sort the pieces, texts and all, in memory.
        limit = min(JOIN_CHARS, self._piece_chars)
        total, pieces_found = 0, False
        for (size,) in db.execute(
            "SELECT length(content) FROM message_parts WHERE message_id = ? AND kind IN ('text', 'reasoning') ORDER BY id", (message_id,)
        ):
            pieces_found = True
            total += size
            if total > limit:
                break
        joined: Dict[str, Any] = {}
        if pieces_found and total <= limit:
            for kind, column in (("text", "content"), ("reasoning", "reasoning")):
                pieces = db.execute("SELECT content FROM message_parts WHERE message_id = ? AND kind = ? ORDER BY id", (message_id, kind)).fetchall()
                if pieces:
                    joined[column] = "".join(piece for (piece,) in pieces)
            db.execute("DELETE FROM message_parts WHERE message_id = ? AND kind IN ('text', 'reasoning')", (message_id,))
        assignments = [f"{column} = {column} || ?" for column in joined] + [f"{name} = ?" for name in values]
        db.execute(
            f"UPDATE messages SET {', '.join(assignments)}, writer_pid = NULL, writer_token = NULL WHERE id = ?",
            (*joined.values(), *values.values(), message_id),
        )

    def mark_interrupted_on_start(self, *, wait: bool = True) -> int:
        """Mark `interrupted` every message left streaming by a process that is gone (killed,
        crashed, powered off); its text up to the last flush stays. How many were marked.
        Without `wait`, a store another process holds locked is left for the next start."""
        rows = self._query("SELECT id, writer_pid, writer_token FROM messages WHERE status = 'streaming'")
        dead = [row[0] for row in rows if not _writer_alive(row[1], row[2], self._key, row[0])]
        if not dead:
            return 0
        marked = 0
        try:
            with self._transaction(busy_ms=None if wait else FLUSH_BUSY_MS) as db:
                for message_id in dead:
                    if db.execute("SELECT 1 FROM messages WHERE id = ? AND status = 'streaming'", (message_id,)).fetchone():
                        self._close_message(db, message_id, {"status": INTERRUPTED})
                        marked += 1
        except _Busy:
            return 0
        return marked

    def supersede(self, message_ids: Sequence[int]) -> None:
        """A turn (the IDs of its prompt and its answer) is about to be asked again in its place
        (the TUI's retry, from before conversations were trees): the current leaf moves back to
        where that turn was asked, so the next `begin_turn` is its sibling, and the turn stays
        stored on a branch of its own. Use `begin_edit` or `regenerate` instead in new code."""
        ids = [int(i) for i in message_ids]
        if not ids:
            return
        with self._transaction() as db:
            db.executemany("UPDATE messages SET superseded = 1 WHERE id = ?", [(i,) for i in ids])  # kept for readers of the file
            found = db.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?", (min(ids),)).fetchone()
            if found is None:
                return
            cid, parent_id = found
            (leaf,) = db.execute("SELECT current_leaf_id FROM conversations WHERE id = ?", (cid,)).fetchone()
            if leaf is not None and min(ids) in self._ancestry(db, leaf):
                db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (parent_id, cid))

    def select_branch(self, message_id: int, *, touch: bool = False) -> int:
        """Make the branch through `message_id` current (a face steps to a sibling with it): each
        message above it chooses the child toward it, and the current leaf becomes the leaf below
        it that was last chosen (or, where nothing was chosen, the newest), so stepping away and
        back returns to the same branch. With `touch`, the conversation also becomes the most
        recently used (`llmchat -c` continues it). Returns the new current leaf's ID."""
        _known_message(message_id)
        with self._transaction() as db:
            found = db.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if found is None:
                raise UnknownMessage(message_id)
            cid = found[0]
            path = self._ancestry(db, message_id)
            db.executemany("UPDATE messages SET chosen_child_id = ? WHERE id = ?", list(zip(path[:-1], path[1:])))
            leaf = message_id
            while True:
                (chosen,) = db.execute("SELECT chosen_child_id FROM messages WHERE id = ?", (leaf,)).fetchone()
                below = db.execute(
                    "SELECT id FROM messages WHERE parent_id = ? ORDER BY id = ? DESC, id DESC LIMIT 1", (leaf, chosen if chosen is not None else -1)
                ).fetchone()
                if below is None:
                    break
                leaf = below[0]
            db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (leaf, cid))
            if touch:
                self._touch(db, cid)
        return leaf

    def fork(self, conversation_id: int, message_id: int) -> int:
        """A new conversation holding a copy of the path from the first prompt to `message_id`
        (every figure and stored piece included), titled as the original with "(fork)", with its
        settings; it becomes the most recently used. Its ID. A message still streaming cannot be
        copied yet."""
        _known_id(conversation_id)
        _known_message(message_id)
        with self._transaction() as db:
            found = db.execute("SELECT title, profile, model, api, base_url FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if found is None:
                raise UnknownConversation(conversation_id)
            title, *settings = found
            if not db.execute("SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?", (message_id, conversation_id)).fetchone():
                raise UnknownMessage(message_id, conversation_id)
            path = self._ancestry(db, message_id)[::-1]
            marks = ",".join("?" * len(path))
            if db.execute(f"SELECT 1 FROM messages WHERE id IN ({marks}) AND status = 'streaming'", path).fetchone():
                raise HistoryError(f"a message up to {message_id} is still being written: fork it once it ends")
            suffix = " (fork)"
            title = (title or "untitled")[: TITLE_LENGTH - len(suffix)].rstrip() + suffix
            new_id = self._new_conversation(db, title, tuple(settings))
            copied: Optional[int] = None
            columns = (
                "role, content, status, model, api, created_at, finished_at, ttft, tokens_per_second, input_tokens,"
                " output_tokens, tokens_exact, elapsed, stop_reason, error, reasoning"
            )
            for old in path:
                cursor = db.execute(
                    f"INSERT INTO messages (conversation_id, parent_id, {columns}) SELECT ?, ?, {columns} FROM messages WHERE id = ?",
                    (new_id, copied, old),
                )
                new_message = cursor.lastrowid or 0
                db.execute(
                    "INSERT INTO message_parts (message_id, kind, content, meta) SELECT ?, kind, content, meta FROM message_parts WHERE message_id = ? ORDER BY id",
                    (new_message, old),
                )
                self._linked(db, new_id, copied, new_message)
                copied = new_message
        return new_id

    @staticmethod
    def _ancestry(db: sqlite3.Connection, message_id: int) -> List[int]:
        """`message_id` and the messages above it, up to its first prompt (leaf first)."""
        rows = db.execute(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM messages WHERE id = ?"
            " UNION ALL SELECT m.id, m.parent_id FROM messages m JOIN up ON m.id = up.parent_id) SELECT id FROM up",
            (message_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        title = make_title(title) if title.strip() else ""
        if not title:
            raise HistoryError("a title cannot be empty")
        cursor = self._execute("UPDATE conversations SET title = ? WHERE id = ?", (title, _known_id(conversation_id)))
        if cursor.rowcount == 0:
            raise UnknownConversation(conversation_id)

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages, and the attachments no other message refers to."""
        _known_id(conversation_id)
        with self._transaction() as db:
            hashes = {
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT p.content FROM message_parts p JOIN messages m ON m.id = p.message_id"
                    " WHERE m.conversation_id = ? AND p.kind = 'attachment'",
                    (conversation_id,),
                )
            }
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise UnknownConversation(conversation_id)
            # Under the write lock: a turn storing the same bytes meanwhile writes them again.
            for digest in hashes:
                if not db.execute(REFERENCED, (digest,)).fetchone():
                    self._remove_blob(digest)

    # --- reading ---------------------------------------------------------------------------

    def list_conversations(self, limit: Optional[int] = None) -> List[ConversationInfo]:
        """Newest first: the conversation with the latest prompt leads."""
        from llmchat.history.records import ConversationInfo

        rows = self._query(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c ORDER BY c.used_seq DESC LIMIT ?",
            (_sql_limit(limit),),
        )
        return [ConversationInfo(*row) for row in rows]

    def most_recent(self) -> Optional[ConversationInfo]:
        """The conversation the user last sent a prompt in."""
        found = self.list_conversations(limit=1)
        return found[0] if found else None

    def get(self, conversation_id: int) -> ConversationInfo:
        from llmchat.history.records import ConversationInfo

        rows = self._query(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?", (_known_id(conversation_id),))
        if not rows:
            raise UnknownConversation(conversation_id)
        return ConversationInfo(*rows[0])

    def load(self, conversation_id: int, *, leaf_id: Optional[int] = None, branches: bool = False) -> Transcript:
        """The conversation and the path of messages from its first prompt to its current leaf
        (to `leaf_id` when given: any message of it), oldest first, with each answer's metrics
        and each message's place among its siblings. With `branches`, every message instead,
        in the order written, those off that path marked `superseded`."""
        from llmchat.history.records import StoredMessage, Transcript

        with self._lock:  # one snapshot: the count and the messages agree
            self._execute("BEGIN")
            try:
                info = self.get(conversation_id)
                rows = self._query(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
                pieces = self._pieces(conversation_id)
                attached = self._attachment_metas(conversation_id)
                tools = self._tool_parts(conversation_id)
            finally:
                self._db.execute("COMMIT")
        parents = {row[0]: row[-1] for row in rows}
        leaf = info.current_leaf_id if leaf_id is None else leaf_id
        if leaf_id is not None and leaf_id not in parents:
            raise UnknownMessage(leaf_id, conversation_id)
        path = _path(parents, leaf)
        on_path = set(path)
        family: Dict[Optional[int], List[int]] = {}
        for message_id, parent_id in parents.items():  # in ID order: oldest sibling first
            family.setdefault(parent_id, []).append(message_id)
        place = {message_id: index for kin in family.values() for index, message_id in enumerate(kin, 1)}
        by_id = {row[0]: row for row in rows}
        chosen = [by_id[i] for i in path] if not branches else rows
        messages = [StoredMessage(*row) for row in chosen]
        for message in messages:
            if message.tokens_exact is not None:
                message.tokens_exact = bool(message.tokens_exact)
            message.superseded = message.id not in on_path
            message.sibling_index = place[message.id]
            message.sibling_count = len(family[message.parent_id])
            message.children = len(family.get(message.id, ()))
            joined = pieces.get(message.id)
            if joined:  # a streaming, interrupted or very long answer: its text is in pieces too
                message.content += joined.get("text", "")
                message.reasoning += joined.get("reasoning", "")
            message.attachments = attached.get(message.id, [])
            message.tool_parts = tools.get(message.id, [])
        return Transcript(info, messages, leaf)

    def path_to(self, conversation_id: Optional[int] = None, *, leaf_id: Optional[int] = None) -> List[StoredMessage]:
        """The messages from the first prompt to `leaf_id` (its conversation's, when only that is
        given) or to the conversation's current leaf: `load(...).messages`."""
        if conversation_id is None:
            if leaf_id is None:
                raise ValueError("path_to() needs a conversation or a message")
            conversation_id = self._conversation_of(leaf_id)
        return self.load(conversation_id, leaf_id=leaf_id).messages

    def message(self, message_id: int) -> StoredMessage:
        """One message, with its text, figures and place among its siblings."""
        return self._family(message_id, "id = ?")[0]

    def siblings(self, message_id: int) -> List[StoredMessage]:
        """The message and the others with the same parent (the answers to one prompt, the
        prompts after one answer, or the first prompts), oldest first; each knows its
        `sibling_index` and `sibling_count` (`‹ 2/3 ›`)."""
        return self._family(message_id, "parent_id IS (SELECT parent_id FROM messages WHERE id = ?)")

    def children(self, message_id: int) -> List[StoredMessage]:
        """The messages that follow `message_id` on every branch, oldest first."""
        self._conversation_of(message_id)
        return self._family(message_id, "parent_id = ?", need=False)

    def _family(self, message_id: int, where: str, need: bool = True) -> List[StoredMessage]:
        conversation_id = self._conversation_of(message_id)
        transcript = self.load(conversation_id, branches=True)
        found = self._query(f"SELECT id FROM messages WHERE conversation_id = ? AND {where}", (conversation_id, message_id))
        wanted = {row[0] for row in found}
        if need and not wanted:
            raise UnknownMessage(message_id)
        return [m for m in transcript.messages if m.id in wanted]

    def _conversation_of(self, message_id: int) -> int:
        found = self._query("SELECT conversation_id FROM messages WHERE id = ?", (_known_message(message_id),))
        if not found:
            raise UnknownMessage(message_id)
        return int(found[0][0])

    def context(self, conversation_id: int, *, leaf_id: Optional[int] = None) -> List[Message]:
        """The turns to send with the next prompt: those on the current path (on the path to
        `leaf_id` when given), exactly. A turn goes back to the model when its answer has text,
        whatever its status: a cancelled, failed or interrupted answer is sent as far as it got
        (the user saw it). A prompt whose answer has no text is left out, so the context never
        holds two user messages in a row (the TUI's rule too). An answer with tool calls goes
        as the model wrote it: its text, calls and their results, step by step
        (`tool_parts.answer_messages`)."""
        _known_id(conversation_id)
        with self._lock:  # one snapshot: the rows and their pieces agree
            self._execute("BEGIN")
            try:
                found = self._query("SELECT current_leaf_id FROM conversations WHERE id = ?", (conversation_id,))
                rows = self._query("SELECT id, role, content, parent_id FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
                pieces = self._pieces(conversation_id)
                attached = self._attachment_metas(conversation_id)
                tools = self._tool_parts(conversation_id)
            finally:
                self._db.execute("COMMIT")
        if not found:
            raise UnknownConversation(conversation_id)
        by_id = {row[0]: row for row in rows}
        if leaf_id is not None and leaf_id not in by_id:
            raise UnknownMessage(leaf_id, conversation_id)
        out: List[Message] = []
        prompt: Optional[str] = None
        prompt_id = 0
        for message_id in _path({row[0]: row[3] for row in rows}, found[0][0] if leaf_id is None else leaf_id):
            _, role, content, _ = by_id[message_id]
            if message_id in pieces:
                content += pieces[message_id].get("text", "")
            if role == "user":
                prompt, prompt_id = content, message_id
            elif prompt is not None:
                parts = tools.get(message_id)
                if parts:
                    from llmchat.history.tool_parts import answer_messages

                    answer = answer_messages(content, parts)
                else:
                    answer = [Message("assistant", content)] if content else []
                if answer:
                    metas = attached.get(prompt_id)
                    out.append(Message("user", prompt, self._attachments(metas) if metas else ()))
                    out.extend(answer)
                prompt = None
        return out

    # --- attachments -------------------------------------------------------------------------

    def attachment_path(self, sha256: str) -> Path:
        """Where an attachment's bytes are kept: <data>/attachments/ab/cdef... by their sha256."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise HistoryError(f"not an attachment hash: {sha256[:80]!r}")
        return self.path.parent / ATTACHMENTS_DIR / sha256[:2] / sha256[2:]

    def attachment_bytes(self, meta: Dict[str, Any]) -> bytes:
        """The stored bytes of an attachment (`StoredMessage.attachments`' dicts)."""
        path = self.attachment_path(str(meta.get("sha256", "")))
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise HistoryError(
                f"attachment {meta.get('name', '?')} ({str(meta.get('sha256'))[:12]}) cannot be read from {path}: {exc.strerror or exc}"
            ) from None

    def prompt_attachments(self, message_id: int) -> Tuple[Any, ...]:
        """A prompt's attachments (for an answer's ID, its prompt's), rebuilt from the stored
        bytes, to send them again (regenerate, replay: `turn.attachments`)."""
        found = self._query("SELECT role, parent_id FROM messages WHERE id = ?", (_known_message(message_id),))
        if not found:
            raise UnknownMessage(message_id)
        role, parent_id = found[0]
        prompt_id = message_id if role == "user" else parent_id
        if prompt_id is None:
            return ()
        rows = self._query(PROMPT_ATTACHMENTS, (prompt_id,))
        metas = [_meta(row[0]) for row in rows]
        return self._attachments(metas) if metas else ()

    def _attachments(self, metas: List[Dict[str, Any]]) -> Tuple[Any, ...]:
        """Attachments as sent, rebuilt from the stored bytes (the file on disk may have changed since)."""
        from llmchat.attachments import AttachmentError, from_bytes

        out = []
        for meta in metas:
            data = self.attachment_bytes(meta)
            try:
                out.append(from_bytes(str(meta.get("name") or "attachment"), data, max_text=max(len(data), 1)))
            except AttachmentError as exc:
                raise HistoryError(f"a stored attachment cannot be sent again: {exc}") from None
        return tuple(out)

    def _attachment_metas(self, conversation_id: int) -> Dict[int, List[Dict[str, Any]]]:
        """{prompt id: [its attachments' meta, in order]} for a conversation."""
        rows = self._query(
            "SELECT p.message_id, p.meta FROM message_parts p JOIN messages m ON m.id = p.message_id"
            " WHERE m.conversation_id = ? AND p.kind = 'attachment' ORDER BY p.id",
            (conversation_id,),
        )
        out: Dict[int, List[Dict[str, Any]]] = {}
        for message_id, meta in rows:
            out.setdefault(message_id, []).append(_meta(meta))
        return out

    def _add_attachments(self, db: sqlite3.Connection, prompt_id: int, attachments: Sequence[Any]) -> None:
        """The prompt's references to its attachments (inside its transaction), their bytes
        written again if a delete removed them since `_save_blobs`."""
        import json

        self._save_blobs(attachments)
        db.executemany(
            "INSERT INTO message_parts (message_id, kind, content, meta) VALUES (?, 'attachment', ?, ?)",
            [(prompt_id, a.sha256, json.dumps(attachment_meta(a), ensure_ascii=False)) for a in attachments],
        )

    def _save_blobs(self, attachments: Sequence[Any]) -> None:
        """Each attachment's bytes, once: a file named by their hash, written whole (a temporary
        file, 0600, renamed into place); one already there is kept."""
        from llmchat.paths import ensure_private_dir, write_private

        for item in attachments:
            path = self.attachment_path(item.sha256)
            if path.exists():
                continue
            try:
                ensure_private_dir(path.parent)
                write_private(path, item.data, sync=True)
            except OSError as exc:
                raise HistoryError(f"cannot store attachment {item.name}: {exc.strerror or exc} ({exc.filename or path})") from None

    def _remove_blob(self, sha256: str) -> None:
        try:
            os.unlink(self.attachment_path(sha256))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise HistoryError(f"cannot delete attachment {sha256[:12]}: {exc.strerror or exc}") from None

    def turn_context(self, message_id: int) -> Tuple[List[Message], str, int]:
        """What was sent for a turn, to send it again (regenerate, replay): the context before
        its prompt, the prompt's text and ID. `message_id` is the prompt or one of its answers."""
        conversation_id = self._conversation_of(message_id)
        found = self._query("SELECT role, parent_id FROM messages WHERE id = ?", (message_id,))
        role, parent_id = found[0]
        prompt_id = message_id if role == "user" else parent_id
        if prompt_id is None:
            raise HistoryError(f"answer {message_id} follows no prompt")
        prompt = self.message(prompt_id)
        before = self.context(conversation_id, leaf_id=prompt.parent_id) if prompt.parent_id is not None else []
        return before, prompt.content, prompt_id

    def search(self, text: str, limit: int = 50) -> List[SearchHit]:
        """Messages that hold every word of `text`, newest first, and conversations whose title
        does. With SQLite's FTS5 (nearly always there) a word matches whole words that start
        with it ("tide" finds "tides"), ignoring case and accents; without it, or for text with
        no letters or digits, it matches anywhere (case ignored for ASCII). A message still
        streaming is found once it ends."""
        from llmchat.history.records import SearchHit

        limit = _sql_limit(limit)
        words = re.findall(r"[^\W_]+", text)  # as FTS5 splits words: letters and digits
        terms = words if words else text.split()
        if not terms:
            return []
        columns = "m.id, m.conversation_id, m.role, m.model, m.content, m.created_at, c.title"
        if words and self._has_fts():
            match = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
            rows = self._query(
                f"SELECT {columns} FROM messages_fts f JOIN messages m ON m.id = f.rowid"
                " JOIN conversations c ON c.id = m.conversation_id"
                " WHERE messages_fts MATCH ? ORDER BY m.id DESC LIMIT ?",
                (match, limit),
            )
        else:
            like = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in terms)
            rows = self._query(
                f"SELECT {columns} FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {like} ORDER BY m.id DESC LIMIT ?",
                (*(_like(term) for term in terms), limit),
            )
        hits = [SearchHit(row[1], row[6], row[0], row[2], row[3], _snippet(row[4], terms), row[5]) for row in rows]
        titled = self._query(
            "SELECT c.id, c.title, c.updated_at FROM conversations c WHERE "
            + " AND ".join("c.title LIKE ? ESCAPE '\\'" for _ in terms)
            + " ORDER BY c.used_seq DESC LIMIT ?",
            (*(_like(term) for term in terms), limit),
        )
        found = {hit.conversation_id for hit in hits}
        hits += [SearchHit(cid, title, None, None, None, title, used) for cid, title, used in titled if cid not in found]
        hits.sort(key=lambda hit: hit.created_at, reverse=True)
        return hits if limit < 0 else hits[:limit]

    def _has_fts(self) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"))

    # --- the connection ----------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = (), *, wait: bool = True) -> sqlite3.Cursor:
        """One statement (in autocommit mode, its own transaction), retried while busy."""
        with self._lock:
            if wait:
                return self._run(sql, params, fetch=False, wait=True)
            self._set_busy_timeout(FLUSH_BUSY_MS)
            try:
                return self._run(sql, params, fetch=False, wait=False)
            finally:
                self._set_busy_timeout(int(BUSY_TIMEOUT * 1000))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> List[tuple]:
        with self._lock:
            return self._run(sql, params, fetch=True, wait=True)

    def _run(self, sql: str, params: Sequence[Any], *, fetch: bool, wait: bool) -> Any:
        deadline = time.monotonic() + WRITE_DEADLINE
        cleaned = False
        while True:
            try:
                cursor = self._db.execute(sql, params)
                return cursor.fetchall() if fetch else cursor
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._error(exc) from None
                if not wait:
                    raise _Busy() from None
                if self._abandoned:
                    raise HistoryError(f"{self.path} stayed locked by another process; not written (quitting)") from None
                if time.monotonic() >= deadline:
                    raise HistoryError(f"{self.path} stayed locked by another process for {WRITE_DEADLINE:.0f} s") from None
                time.sleep(0.02)
            except UnicodeEncodeError:
                if cleaned:
                    raise HistoryError("text that cannot be stored as UTF-8") from None
                # A lone surrogate (from a JSON "\ud83d" escape) cannot be encoded: U+FFFD instead.
                params = tuple(_clean(p) if isinstance(p, str) else p for p in params)
                cleaned = True
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def _transaction(self, *, wait_for_disk: bool = True, busy_ms: Optional[int] = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (the write lock up front, so a transaction never fails half-way for a
        lock) ... COMMIT, rolled back on any error. Without `wait_for_disk`, the commit does
        not wait for the disk and a background sync follows. With `busy_ms`, the lock is waited
        for that long only, then `_Busy` is raised (the store's own lock too: another thread's
        write may hold it, waiting for another process)."""
        with self._locked(busy_ms):
            if not wait_for_disk:
                self._set_synchronous("NORMAL")
            try:
                if busy_ms is None:
                    self._execute("BEGIN IMMEDIATE")
                else:
                    self._set_busy_timeout(busy_ms)
                    try:
                        self._run("BEGIN IMMEDIATE", (), fetch=False, wait=False)
                    finally:
                        self._set_busy_timeout(int(BUSY_TIMEOUT * 1000))
                try:
                    if self._abandoned:  # `close` gave up on this write and said so: it stays undone
                        raise HistoryError(f"{self.path} stayed locked by another process; not written (quitting)")
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException as exc:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    if isinstance(exc, sqlite3.Error):
                        raise self._error(exc) from None
                    raise
            finally:
                if not wait_for_disk:
                    self._set_synchronous("FULL")
        if not wait_for_disk:
            self.sync_soon()

    @contextmanager
    def _locked(self, busy_ms: Optional[int]) -> Iterator[None]:
        if not self._lock.acquire(timeout=-1 if busy_ms is None else busy_ms / 1000):
            raise _Busy()
        try:
            yield
        finally:
            self._lock.release()

    def sync_soon(self) -> None:
        """Sync the WAL (every commit so far) to disk off the caller's thread, now: on the
        syncer (at once when the commit was made there, else as its next job). `close` runs
        what is queued; `finish` and the other writes sync as they commit."""
        if self._on_syncer():
            self.sync()
            return
        try:
            self.submit(self.sync)
        except HistoryError:  # closed meanwhile
            self.sync()

    def sync(self) -> None:
        """Sync the WAL to disk (an fsync of the file SQLite appends commits to). Uses no
        SQLite connection, so it runs alongside the writes; never raises."""
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except OSError:  # no WAL: everything was checkpointed into the synced database file
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _set_synchronous(self, level: str) -> None:
        try:
            self._db.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _set_busy_timeout(self, ms: int) -> None:
        if ms != self._busy_ms:
            self._db.execute(f"PRAGMA busy_timeout = {int(ms)}")
            self._busy_ms = ms

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        return HistoryError(f"{self.path}: {exc}")

    # --- for AnswerWriter ----------------------------------------------------------------------

    def _append_parts(self, message_id: int, pieces: Sequence[Tuple[str, str, Optional[str]]]) -> None:
        """Store (kind, text, meta) pieces of a streaming message: new rows, never a rewrite of
        what is stored, so a save costs the new text only. Raises `_Busy` when another process
        holds the lock for more than `FLUSH_BUSY_MS` (nothing is stored then)."""
        rows = self._rows(message_id, pieces)
        if not rows:
            return
        with self._transaction(wait_for_disk=False, busy_ms=FLUSH_BUSY_MS) as db:
            _insert_parts(db, rows)

    def _rows(self, message_id: int, pieces: Sequence[Tuple[str, str, Optional[str]]]) -> List[Tuple[int, str, str, Optional[str]]]:
        """message_parts rows: text in pieces of at most the piece size; a tool part (with its
        meta) whole, as `AnswerWriter._part_row` cut it."""
        return [
            (message_id, kind, piece, meta) for kind, text, meta in pieces for piece in (_split(text, self._piece_chars) if meta is None else (text,))
        ]

    def _finish(self, message_id: int, pieces: Sequence[Tuple[str, str, Optional[str]]], values: Dict[str, Any]) -> None:
        """The rest of the text and the final values, in one transaction (so the status changes
        with the text complete: the search index takes it whole)."""
        rows = self._rows(message_id, pieces)
        with self._transaction() as db:
            _insert_parts(db, rows)
            self._close_message(db, message_id, values)
        _live_answers.discard((self._key, message_id))

    def _pieces(self, conversation_id: int) -> Dict[int, Dict[str, str]]:
        """The stored text pieces of a conversation's messages, joined: {message id: {kind: text}}
        (the answer's "text" and its "reasoning"; the tool parts are `_tool_parts`)."""
        joined: Dict[int, Dict[str, List[str]]] = {}
        rows = self._query(
            "SELECT p.message_id, p.kind, p.content FROM message_parts p JOIN messages m ON m.id = p.message_id"
            " WHERE m.conversation_id = ? AND p.kind IN ('text', 'reasoning') ORDER BY p.id",
            (conversation_id,),
        )
        for message_id, kind, text in rows:
            joined.setdefault(message_id, {}).setdefault(kind, []).append(text)
        return {mid: {kind: "".join(texts) for kind, texts in kinds.items()} for mid, kinds in joined.items()}

    def _tool_parts(self, conversation_id: int) -> Dict[int, List[Any]]:
        """{answer id: [its tool calls and results (tool_parts.ToolPart), in order]}."""
        rows = self._query(
            "SELECT p.message_id, p.id, p.kind, p.content, p.meta FROM message_parts p JOIN messages m ON m.id = p.message_id"
            " WHERE m.conversation_id = ? AND p.kind IN ('tool_call', 'tool_result') ORDER BY p.id",
            (conversation_id,),
        )
        if not rows:
            return {}
        from llmchat.history.tool_parts import parts_from_rows

        by_message: Dict[int, List[Tuple[int, str, str, Optional[str]]]] = {}
        for message_id, *row in rows:
            by_message.setdefault(message_id, []).append(tuple(row))
        return {mid: parts_from_rows(found) for mid, found in by_message.items()}


class AnswerWriter:
    """The assistant's message as it streams. `append` is called per token: it only buffers,
    and once `flush_interval` has passed on the store's clock, hands the save of what arrived
    since the last one (a new piece) to the store's syncer, without waiting for it. A face
    with a timer calls `flush_if_due` too, so text that arrived just before the stream stalled
    is saved within the interval even when no token follows. `flush` saves now and waits.
    `finish` stores the rest and sets the status and metrics (on the syncer, after the saves
    handed to it; it waits). Only the text not yet saved is held here: memory stays flat
    however long the answer. Everything but the lists below runs on the syncer.

    `pending` is that text, a list changed only in place: a face whose token loop must be as
    cheap as possible may bind `writer.pending.append` (a C call, ~4x cheaper than `append`)
    as long as a timer calls `flush_if_due` (oneshot.py does). `reasoning` is the same for the
    model's reasoning, stored with the answer.

    `begun` is False while a store that was locked when the turn began has not been written
    yet (see `HistoryStore.begin_turn`): the IDs are None until a flush writes the turn."""

    __slots__ = (
        "_store",
        "conversation_id",
        "message_id",
        "prompt_id",
        "pending",
        "reasoning",
        "_clock",
        "_interval",
        "_due",
        "_on_error",
        "finished",
        "failure",
        "_begin",
        "_ready",
        "_redactors",
        "_carry",
        "_unreported",
        "_text_chars",
        "stop_reason",
    )

    def __init__(
        self,
        store: HistoryStore,
        conversation_id: Optional[int],
        message_id: Optional[int],
        *,
        on_error: Optional[Callable[[HistoryError], None]] = None,
        redactor: Any = None,
    ) -> None:
        self._store = store
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.prompt_id: Optional[int] = None  # set by begin_turn
        self.pending: List[str] = []  # arrived, not yet in the database
        self.reasoning: List[str] = []  # reasoning arrived, not yet in the database
        self._clock = store._clock
        self._interval = store.flush_interval
        self._due = self._clock() + self._interval
        self._on_error = on_error
        self.finished = False
        self.failure: Optional[HistoryError] = None  # the first failed flush, if any
        self._begin: Optional[Callable[[Optional[int]], Tuple[int, int, int]]] = None  # a turn not written yet
        # Redacted, not yet stored: (kind, text, meta JSON) rows in the order they are stored.
        self._ready: List[Tuple[str, str, Optional[str]]] = []
        self._text_chars = 0  # the answer text put in `_ready` so far: where a tool part sits in it
        self._redactors: Optional[Dict[str, Any]] = None  # one per stream of text: each holds its own tail
        if redactor is not None and redactor.secrets:
            self._redactors = {"text": type(redactor)(redactor.secrets), "reasoning": type(redactor)(redactor.secrets)}
        self._carry: Dict[str, str] = {}  # half a surrogate pair, waiting for its other half
        self._unreported: Optional[HistoryError] = None  # a failed save `on_error` has not heard of
        # Why the answer stopped when llmchat stopped it (MAX_STEPS), stored in place of the
        # model's own reason (it asked for tools): a reopened answer can say why.
        self.stop_reason: Optional[str] = None
        store._writers.add(self)

    @property
    def begun(self) -> bool:
        return self._begin is None

    def reached_max_steps(self) -> None:
        """llmchat ends the answer, not the model: it asked for tools again after `--max-steps`
        rounds of them, and they do not run. Stored as the stop reason (MAX_STEPS)."""
        self.stop_reason = MAX_STEPS

    def _started(self, ids: Tuple[int, int, int]) -> None:
        self.conversation_id, self.prompt_id, self.message_id = ids
        self._begin = None

    def append(self, text: str) -> None:
        self.pending.append(text)
        if self._clock() >= self._due:
            self.flush_soon()

    def flush_if_due(self) -> None:
        if self._clock() >= self._due:
            self.flush_soon()

    def flush_soon(self) -> None:
        """Hand what arrived to the syncer to save, now, without waiting for the save."""
        self._due = self._clock() + self._interval
        self._report()
        if self.finished:
            return
        try:
            self._store.submit(self._save, self._hand())
        except HistoryError:  # the store is closed: `finish` says so
            pass

    def _hand(self) -> Tuple[List[str], List[str]]:
        """What arrived, (text, reasoning), moved out of the lists the face appends to: in
        place, as they may be bound elsewhere (and appended to meanwhile, from the end)."""
        moved = []
        for arrived in (self.pending, self.reasoning):
            count = len(arrived)
            moved.append(arrived[:count])
            del arrived[:count]
        return moved[0], moved[1]

    def unsaved_chars(self) -> int:
        """How much text is not in the database yet (arrived, or waiting for a free store),
        but for what was handed to the syncer and is still in its queue."""
        lists = (self.pending, self.reasoning, [row[1] for row in list(self._ready)])
        return sum(len(text) for texts in lists for text in list(texts)) + sum(len(text) for text in self._carry.values())

    @property
    def flush_interval(self) -> float:
        return self._interval

    def _take(self, final: bool, handed: Tuple[List[str], List[str]], part: Optional[_Part] = None) -> None:
        """Move what arrived into `_ready` as pieces of at most the store's piece size, redacted
        (the end of each text that could begin a secret, or half a surrogate pair, waits for
        what follows unless `final`). Joined a piece at a time: never a copy of all of it.
        A tool `part` follows the text handed with it: that text is taken whole (as if final)
        so that nothing of it is stored after the part."""
        size = self._store._piece_chars
        for kind, taken in (("text", handed[0]), ("reasoning", handed[1])):
            whole = final or (part is not None and kind == "text")
            carried = self._carry.pop(kind, None)
            if carried is not None:
                taken.insert(0, carried)
            if taken and not whole:
                last = taken[-1]
                if last and "\ud800" <= last[-1] <= "\udbff":  # half a surrogate pair: wait for the other half
                    self._carry[kind] = last[-1]
                    taken[-1] = last[:-1]
            redactor = self._redactors[kind] if self._redactors is not None else None
            feed = redactor.feed if redactor is not None else _same
            ready = self._ready
            group: List[str] = []
            length = 0
            pieces: List[str] = []
            for text in taken:
                group.append(text)
                length += len(text)
                if length >= size:
                    pieces.extend(_split(feed("".join(group)), size))
                    group, length = [], 0
            rest = feed("".join(group)) if group else ""
            if whole and redactor is not None:
                rest += redactor.flush()
            if rest:
                pieces.append(rest)
            for piece in pieces:
                ready.append((kind, piece, None))
                if kind == "text":
                    self._text_chars += len(piece)
        if part is not None:
            self._ready.append(self._part_row(*part))

    def _part_row(self, kind: str, text: str, meta: Dict[str, Any]) -> Tuple[str, str, Optional[str]]:
        """A tool part as stored: its text and meta's strings redacted, the text cut to one
        piece, and where it sits in the answer's text (`offset`, in characters)."""
        import json

        redact = self._redactors["text"].redact if self._redactors is not None else _same
        text = redact(text)
        limit = self._store._piece_chars
        if len(text) > limit:
            note = f"\n… [{len(text) - limit + 100:,} more characters not stored]"
            text = text[: limit - 100] + note
        meta = _redacted_meta(meta, redact)
        meta["offset"] = self._text_chars
        return (kind, text, json.dumps(meta, ensure_ascii=False, default=str))

    def add_part(self, kind: str, text: str, meta: Optional[Dict[str, Any]] = None) -> None:
        """Store a part of the answer that is not its text, in its place: after the text that
        arrived before this call. On the face's thread while the answer streams (as `append`);
        handed to the syncer now, saved in order with the text. Secrets are replaced in `text`
        and in meta's strings as in the answer's text.

        Kinds: "tool_call" (`text` the arguments as JSON text; meta {"id", "name", "server"})
        and "tool_result" (`text` the result; meta {"call_id", "name", "is_error", "status",
        "duration"}). Read back as `StoredMessage.segments` and, for the model, by `context`."""
        if kind in ("text", "reasoning", "attachment") or not kind:
            raise ValueError(f"not a part kind add_part stores: {kind!r}")
        self._due = self._clock() + self._interval
        self._report()
        if self.finished:
            return
        try:
            self._store.submit(self._save, self._hand(), (kind, text, dict(meta or {})))
        except HistoryError:  # the store is closed: `finish` says so
            pass

    def _pieces(self) -> List[Tuple[str, str, Optional[str]]]:
        return list(self._ready)

    def flush(self) -> bool:
        """Save the text that arrived since the last save, and wait for it (on the syncer,
        after what was handed to it); never raises. False when it could not be saved now (it
        stays buffered for the next flush and for `finish`)."""
        self._due = self._clock() + self._interval
        if self.finished:
            return True
        try:
            return self._store._wait_for(self._save, self._hand())
        except HistoryError:  # the store is closed
            return False
        finally:
            self._report()

    def _report(self) -> None:
        """Tell `on_error` (once) about a save that failed, on the calling thread: the face's
        own, not the syncer (a face's warning may draw on its screen)."""
        failure, self._unreported = self._unreported, None
        if failure is not None and self._on_error is not None:
            self._on_error(failure)

    def _save(self, handed: Tuple[List[str], List[str]], part: Optional[_Part] = None) -> bool:
        """A save of what was `handed` (and a tool part after it), on the syncer."""
        if self.finished:
            return True
        self._take(False, handed, part)
        pieces = self._pieces()
        try:
            if self._begin is not None:
                self._started(self._begin(FLUSH_BUSY_MS))
            if pieces:
                self._store._append_parts(self.message_id, pieces)  # type: ignore[arg-type]
        except _Busy:
            return False
        except HistoryError as exc:
            if self.failure is None:
                self.failure = exc
                self._unreported = exc  # `on_error` hears it on the face's thread (`_report`)
            return False
        self._ready.clear()
        return True

    def finish(
        self,
        status: str,
        metrics: Any = None,
        *,
        stop_reason: Optional[str] = None,
        error: Optional[str] = None,
    ) -> None:
        """Store the rest of the answer with its final status and, from a `Metrics`, its
        figures. Raises HistoryError when it cannot be saved (the row then keeps its last
        flushed text and becomes `interrupted` after this process ends; a turn never written,
        because the store stayed locked `LATE_BEGIN_WAIT` seconds more, is not stored).
        It runs on the syncer, after the saves handed to it, and waits for them: an event loop
        submits it instead (`store.submit(writer.finish, ...)`). Submitted, nobody waits for
        it, so a turn not written yet waits for the store as long as other writes do
        (`WRITE_DEADLINE`)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status!r}")
        values: Dict[str, Any] = {"status": status, "finished_at": self._store._now()}
        if metrics is not None:
            reported = metrics.reported_output_tokens
            values.update(
                ttft=metrics.ttft,
                tokens_per_second=metrics.tokens_per_second,
                input_tokens=metrics.input_tokens,
                output_tokens=reported if reported is not None or not metrics.deltas else metrics.output_tokens,
                tokens_exact=None if (reported is None and not metrics.deltas) else int(metrics.exact),
                elapsed=metrics.elapsed(),
            )
            if stop_reason is None and metrics.finish is not None:
                stop_reason = metrics.finish.reason
            if error is None and status == ERROR and metrics.error is not None:
                error = metrics.error.message
        if self.stop_reason is not None and status == COMPLETE:
            stop_reason = self.stop_reason  # llmchat stopped it, whatever the model's last reason
        values["stop_reason"] = stop_reason
        values["error"] = self._redactors["text"].redact(error) if error is not None and self._redactors else error
        late_wait = WRITE_DEADLINE if self._store._on_syncer() else LATE_BEGIN_WAIT
        try:
            self._store._wait_for(self._end, values, self._hand(), late_wait)
        finally:
            self._report()

    def _end(self, values: Dict[str, Any], handed: Tuple[List[str], List[str]], late_wait: float) -> None:
        """`finish`, on the syncer."""
        if self.finished:
            return
        if self._begin is not None:
            try:
                self._started(self._begin(int(late_wait * 1000)))
            except _Busy:
                self.finished = True
                self._store._writers.discard(self)
                raise HistoryError(f"{self._store.path} stayed locked by another process; this turn was not saved") from None
        self._take(True, handed)
        self._store._finish(self.message_id, self._pieces(), values)  # type: ignore[arg-type]
        self.finished = True
        self._store._writers.discard(self)
        self._ready.clear()


# --- helpers -------------------------------------------------------------------------------


def _prepare_file(path: Path, warn: Optional[Callable[[str], None]] = None) -> None:
    """The directories 0700 and the file 0600 before SQLite opens it: SQLite gives its -wal and
    -shm files the database file's permissions."""
    from llmchat.paths import ensure_private_dir, open_to_others

    directory = path.parent
    try:
        if directory.is_dir():
            note = open_to_others(directory)
            if note and warn is not None:
                warn(note)
        else:
            ensure_private_dir(directory)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = os.stat(path).st_mode
            if mode & 0o077:
                os.chmod(path, 0o600)
        else:
            os.close(fd)
    except OSError as exc:
        where = exc.filename or path
        raise HistoryError(f"cannot create {where}: {exc.strerror or exc}") from None


def attachment_meta(attachment: Any) -> Dict[str, Any]:
    """What the store keeps about an attachment beside its bytes (message_parts.meta)."""
    return {
        "name": attachment.name,
        "kind": attachment.kind,
        "mime": attachment.mime,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "width": attachment.width,
        "height": attachment.height,
        "pages": attachment.pages,
    }


def _meta(text: Optional[str]) -> Dict[str, Any]:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _redactor(secrets: Sequence[str]) -> Any:
    if not secrets:
        return None
    from llmchat.redact import Redactor  # imported only when there is something to mask (start-up is measured)

    return Redactor(secrets)


def _chosen(redactor: Any, profile: Optional[str], model: Optional[str], api: Optional[str], base_url: Optional[str]) -> tuple:
    if redactor is not None and base_url and redactor.redact(base_url) != base_url:
        base_url = None  # a known secret in it (in its path, say): not kept, as with a password
    return (profile, model, api, base_url)


def _known_message(message_id: int) -> int:
    if not 0 < message_id <= _MAX_ID:
        raise UnknownMessage(message_id)
    return message_id


def _path(parents: Dict[int, Optional[int]], leaf: Optional[int]) -> List[int]:
    """The IDs from the first prompt down to `leaf`, given each message's parent."""
    path: List[int] = []
    seen: Set[int] = set()
    node = leaf
    while node is not None and node in parents and node not in seen:
        seen.add(node)
        path.append(node)
        node = parents[node]
    return path[::-1]


def _same(text: Any) -> Any:
    return text


def _handed_chars(args: Tuple[Any, ...]) -> int:
    """The characters of the text a job saving an answer was handed (see `AnswerWriter._hand`)."""
    return sum(
        len(text) for arg in args if isinstance(arg, tuple) for texts in arg if isinstance(texts, list) for text in texts if isinstance(text, str)
    )


def _is_answer_job(fn: Callable[..., Any], args: Tuple[Any, ...]) -> bool:
    """A job that saves an answer (what it holds is counted as the answer's text)."""
    return isinstance(getattr(fn, "__self__", None), AnswerWriter) or any(isinstance(arg, AnswerWriter) for arg in args)


def _insert_parts(db: sqlite3.Connection, rows: List[Tuple[int, str, str, Optional[str]]]) -> None:
    """Insert pieces. Text is checked for lone surrogates only when SQLite refuses it: a check
    up front would copy every piece once more (the pieces of a fast stream are megabytes)."""
    sql = "INSERT INTO message_parts (message_id, kind, content, meta) VALUES (?, ?, ?, ?)"
    for message_id, kind, text, meta in rows:
        try:
            db.execute(sql, (message_id, kind, text, meta))
        except UnicodeEncodeError:  # raised while binding: this row was not inserted
            db.execute(sql, (message_id, kind, _clean(text), _clean(meta) if meta is not None else None))


def _redacted_meta(meta: Dict[str, Any], redact: Callable[[str], str]) -> Dict[str, Any]:
    """A copy of a part's meta with secrets replaced in every string (keys and nested values too)."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, dict):
            return {str(redact(str(k))): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return {str(redact(str(k))): clean(v) for k, v in meta.items()}


def _split(text: str, size: int) -> List[str]:
    """`text` in pieces of at most `size` characters, never between the halves of a
    surrogate pair."""
    if len(text) <= size:
        return [text] if text else []
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text) and "\ud800" <= text[end - 1] <= "\udbff":
            end -= 1
        pieces.append(text[start:end])
        start = end
    return pieces


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _snippet(content: str, terms: Sequence[str], width: int = 100) -> str:
    """One line of the message around the first term found in it."""
    flat = " ".join(content.split())
    lower = flat.lower()
    found = [i for i in (lower.find(term.lower()) for term in terms) if i >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    end = start + width
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def _next_use(db: sqlite3.Connection) -> int:
    return db.execute("SELECT coalesce(max(used_seq), 0) + 1 FROM conversations").fetchone()[0]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    text = str(exc)
    return "locked" in text or "busy" in text


def _clean(text: str) -> str:
    """Lone surrogates become U+FFFD; a split surrogate pair is joined."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
