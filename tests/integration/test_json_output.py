"""`llmchat --json`: every event of the turn as one JSON object per line on stdout, for scripts.

Real runs (`python -m llmchat` as a subprocess, real pipes, the fake LLM server on loopback) for
every API, an error, Ctrl-C and SIGTERM, reasoning and a tool-call-only answer; every line of
each is checked against docs/events.schema.json by a small validator of the part of JSON Schema
the file uses (no jsonschema dependency), and the lines' order (start first, finish last).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest

from llmchat.demo.answer import answer_tokens
from llmchat.demo.server import TOOL_ARGUMENTS
from llmchat.output import JsonWriter

WAIT = 15.0  # upper bound for anything the tests wait on; never a fixed sleep
APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "events.schema.json").read_text(encoding="utf-8"))

# What a pipe must carry exactly, inside JSON strings: separators str.splitlines() splits on,
# NEL, astral emoji, CRLF, tabs, quotes, backslashes and escape sequences.
HOSTILE_TEXT = (
    'sep\u2028line\u2029para\u0085nel "quoted" back\\slash; emoji \U0001f642\U0001f44d\U0001f3fd; '
    "CRLF\r\nnext\tTAB; \x1b[31mred\x1b[0m clip \x1b]52;c;aGk=\x07 \x00nul\x7f done.\n\u00e9"
)


# --- a validator for the JSON Schema the events file uses ---------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
}
_KNOWN = {"$schema", "$id", "$defs", "title", "description", "$ref", "oneOf", "type", "const", "enum"}
_KNOWN |= {"required", "additionalProperties", "properties", "minimum", "minLength", "items"}


def errors(value: Any, schema: Dict[str, Any], root: Dict[str, Any] = SCHEMA, where: str = "$") -> List[str]:
    """What is wrong with `value` against `schema` (empty: valid). A keyword this validator does
    not know fails loudly, so the schema cannot outgrow it unnoticed."""
    unknown = set(schema) - _KNOWN
    assert not unknown, f"the validator does not know {unknown}"
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        return errors(value, root["$defs"][ref[len("#/$defs/") :]], root, where)
    if "oneOf" in schema:
        matching = [option for option in schema["oneOf"] if not errors(value, option, root, where)]
        return [] if len(matching) == 1 else [f"{where}: matches {len(matching)} of oneOf, not 1: {value!r}"]
    found: List[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: {value!r} is not {types}"]
    if "const" in schema and (value != schema["const"] or type(value) is not type(schema["const"])):
        found.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and not any(value == option and type(value) is type(option) for option in schema["enum"]):
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        found.append(f"{where}: {value!r} < {schema['minimum']}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        found.append(f"{where}: {value!r} is shorter than {schema['minLength']}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += errors(item, schema["items"], root, f"{where}[{n}]")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                found.append(f"{where}: {name!r} is missing")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found += errors(item, properties[name], root, f"{where}.{name}")
            elif schema.get("additionalProperties", True) is False:
                found.append(f"{where}: {name!r} is not allowed")
    return found


def events_of(out: bytes) -> List[Dict[str, Any]]:
    """Every line of stdout, parsed and valid against the schema, in a valid order."""
    text = out.decode("utf-8")  # strict: invalid UTF-8 fails here
    assert text.endswith("\n"), out[-200:]
    lines = text[:-1].split("\n")
    events = []
    for line in lines:
        assert line == line.strip() and line, repr(line)
        for char in "\u2028\u2029\x85":
            assert char not in line, f"a raw {char!r} in a line: str.splitlines() would split it"
        event = json.loads(line)
        problems = errors(event, SCHEMA)
        assert not problems, problems
        events.append(event)
    assert text.splitlines() == lines  # any reader's way of splitting lines gives the same events
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "finish", kinds
    assert kinds.count("start") == 1 and kinds.count("finish") == 1, kinds
    assert kinds.count("error") == (1 if events[-1]["status"] == "error" else 0), kinds
    if "error" in kinds:
        assert kinds.index("error") == len(kinds) - 2, kinds
    return events


def joined(events: Sequence[Dict[str, Any]], kind: str = "text") -> str:
    return "".join(event["text"] for event in events if event["type"] == kind)


def of(events: Sequence[Dict[str, Any]], kind: str) -> List[Dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def spawn(args: Sequence[str], env: Dict[str, str], **kw: Any) -> subprocess.Popen:
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "llmchat", *args], env=env, cwd=env["LLMCHAT_HOME"], **kw)


def read_until(fd: int, done: Any, timeout: float = WAIT) -> bytes:
    """Read a pipe (or pty) until `done(data)` holds or EOF, within `timeout`."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out reading; got {len(data)} bytes: {data[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            break
        if not chunk:
            break
        data += chunk
    return data


# --- the validator itself ------------------------------------------------------------------------


def test_the_validator_rejects_what_the_schema_forbids():
    good = {"type": "text", "text": "hi"}
    assert errors(good, SCHEMA) == []
    assert errors({"type": "text"}, SCHEMA)  # text missing
    assert errors({"type": "text", "text": ""}, SCHEMA)  # an empty delta is no event
    assert errors({"type": "text", "text": "hi", "extra": 1}, SCHEMA)
    assert errors({"type": "nonsense"}, SCHEMA)
    start = {"type": "start", "version": 1, "model": "m", "api": "ollama", "conversation_id": None, "prompt_id": None, "message_id": None}
    assert errors(start, SCHEMA) == []
    assert errors(dict(start, version=2), SCHEMA)
    assert errors(dict(start, version=True), SCHEMA)  # a bool is not the integer 1
    assert errors(dict(start, conversation_id=0), SCHEMA)
    metrics = dict(
        ttft=0.1, tokens_per_second=None, rate_from_server=False, input_tokens=3, cached_input_tokens=None, output_tokens=5, exact=True, elapsed=1.0
    )
    steps = [{"stop_reason": "tool_calls", "tool_calls": 2, "metrics": metrics}, {"stop_reason": "stop", "tool_calls": 0, "metrics": metrics}]
    finish = {
        "type": "finish",
        "status": "complete",
        "stop_reason": "stop",
        "raw_stop_reason": "stop",
        "signal": None,
        "metrics": metrics,
        "steps": steps,
    }
    assert errors(finish, SCHEMA) == []
    assert errors(dict(finish, steps=[dict(steps[0], tool_calls=-1)]), SCHEMA)
    assert errors(dict(finish, steps={}), SCHEMA)
    result = {"type": "tool_result", "id": "c1", "name": "add", "is_error": False, "status": "done", "duration": 0.1, "content": "3"}
    assert errors(result, SCHEMA) == []
    assert errors(dict(result, status="running"), SCHEMA)  # only ended calls are results
    assert errors(dict(finish, status="done"), SCHEMA)
    assert errors(dict(finish, signal="SIGKILL"), SCHEMA)
    assert errors(dict(finish, metrics=dict(metrics, output_tokens=-1)), SCHEMA)
    assert errors(dict(finish, metrics=dict(metrics, exact="yes")), SCHEMA)


# --- real runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_every_api_gives_valid_events_with_the_exact_answer(srv, run, api):
    code, out, err = run("--json", "--api", api, "--base-url", srv.base_url(api, text=HOSTILE_TEXT), "-m", "a-model", "hi")
    assert code == 0, err
    events = events_of(out)
    assert joined(events) == HOSTILE_TEXT  # every character round-trips, escapes and separators included
    assert len(of(events, "text")) > 1  # an event per delta, not one at the end
    start, finish = events[0], events[-1]
    assert start["api"] == api and start["model"] == "a-model" and start["version"] == 1
    assert isinstance(start["conversation_id"], int) and start["prompt_id"] < start["message_id"]
    assert finish["status"] == "complete" and finish["stop_reason"] == "stop"
    assert finish["metrics"]["exact"] is True and finish["metrics"]["output_tokens"] > 0
    usage = of(events, "usage")
    assert usage and usage[-1]["output_tokens"] == finish["metrics"]["output_tokens"]
    assert "Traceback" not in err


def test_stored_ids_name_the_stored_turn_and_no_history_gives_none(srv, run, home):
    url = srv.base_url("openai-chat", text="stored answer")
    code, out, err = run("--json", "--base-url", url, "first")
    assert code == 0, err
    first = events_of(out)[0]
    code, out, err = run("--json", "-c", "--base-url", url, "second")
    assert code == 0, err
    second = events_of(out)[0]
    assert second["conversation_id"] == first["conversation_id"]
    assert second["prompt_id"] > first["message_id"]
    code, out, err = run("history", "show", str(first["conversation_id"]))
    assert code == 0 and b"stored answer" in out and b"second" in out, err
    code, out, err = run("--json", "--no-history", "--stats", "--base-url", url, "third")
    assert code == 0 and "TTFT" in err, err  # --stats stays on stderr
    start = events_of(out)[0]
    assert (start["conversation_id"], start["prompt_id"], start["message_id"]) == (None, None, None)


@pytest.mark.parametrize("api", APIS)
def test_a_tool_call_only_answer_gives_its_calls(srv, run, api):
    code, out, err = run("--json", "--api", api, "--base-url", srv.base_url(api, tool="get_weather", tokens=0), "hi")
    assert code == 0, err
    events = events_of(out)
    calls = of(events, "tool_call")
    assert [call["name"] for call in calls] == ["get_weather"]
    assert json.loads(calls[0]["arguments"]) == json.loads(TOOL_ARGUMENTS)
    assert joined(events) == ""
    assert events[-1]["status"] == "complete"
    # One stop reason for all four APIs (the Responses API and Ollama say "completed" / "stop" on
    # the wire: their decoders map an answer that is only calls to "tool_calls").
    assert events[-1]["stop_reason"] == "tool_calls"
    assert "get_weather" in err  # stderr still says that no tool ran


def test_reasoning_is_its_own_events_and_never_text(srv, run):
    code, out, err = run("--json", "--base-url", srv.base_url("openai-chat", reasoning=5, text="ANSWER-ONLY"), "hi")
    assert code == 0, err
    events = events_of(out)
    assert joined(events, "reasoning") == "".join(answer_tokens("", 5))
    assert joined(events) == "ANSWER-ONLY"
    kinds = [event["type"] for event in events]
    assert kinds.index("reasoning") < kinds.index("text")
    assert err == ""  # shown on stderr only with --reasoning, as without --json
    code, out, err = run("--json", "--reasoning", "--base-url", srv.base_url("openai-chat", reasoning=5, text="ANSWER-ONLY"), "hi")
    assert code == 0 and joined(events_of(out), "reasoning") in err


def test_an_error_ends_with_an_error_line_then_finish_and_exit_1(srv, run):
    url = srv.base_url("openai-chat", status=400, error_message="bad \x1b[31mrequest\u2028here")
    code, out, err = run("--json", "--base-url", url, "hi")
    assert code == 1
    events = events_of(out)
    error, finish = events[-2], events[-1]
    assert error["type"] == "error" and error["kind"] == "http" and error["status"] == 400
    assert "bad" in error["message"] and "\x1b" not in error["message"]  # the client's one clean line, as on stderr
    assert finish["status"] == "error" and finish["stop_reason"] is None
    assert [line for line in err.splitlines() if line.startswith("error:")] and "\x1b" not in err


def test_a_mid_stream_error_keeps_the_text_that_came(srv, run):
    code, out, err = run("--json", "--base-url", srv.base_url("openai-chat", tokens=20, error_after=5), "hi")
    assert code == 1, err
    events = events_of(out)
    assert joined(events) == "".join(answer_tokens("hi", 20)[:5])
    assert events[-1]["status"] == "error"


@pytest.mark.parametrize(
    "api, options, args, status, kind",
    [
        ("openai-chat", dict(tokens=5, no_end=1), (), "error", "cutoff"),
        ("anthropic", dict(tokens=20, drop_after=3), (), "error", "network"),
        ("openai-chat", dict(tokens=20, stall_after=2), ("--timeout", "1"), "error", "timeout"),
        ("openai-responses", dict(tokens=20, error_after=3, error_size=200000), (), "error", "api"),
        ("openai-chat", dict(tokens=5, usage_raw="1e30"), (), "complete", None),
        ("ollama", dict(tokens=20, server_rate=55.5), (), "complete", None),
        ("openai-chat", dict(tokens=20, finish="length"), (), "complete", None),
    ],
    ids=["no-end", "cut-off", "stall", "huge-error", "absurd-usage", "server-rate", "length"],
)
def test_hostile_and_odd_streams_still_give_valid_events(srv, run, api, options, args, status, kind):
    code, out, err = run("--json", "--api", api, "--base-url", srv.base_url(api, **options), *args, "hi")
    assert code == (1 if status == "error" else 0), err
    events = events_of(out)
    assert events[-1]["status"] == status
    if kind is not None:
        assert events[-2]["kind"] == kind
    if "server_rate" in options:
        assert events[-1]["metrics"]["tokens_per_second"] == 55.5 and events[-1]["metrics"]["rate_from_server"] is True
    if options.get("finish") == "length":
        assert events[-1]["stop_reason"] == "length" and "warning" in err


def test_retries_and_notices_are_events(srv, run):
    url = srv.base_url("openai-chat", text="recovered-json", status=503, fail_first=1, retry_after="0")
    code, out, err = run("--json", "--base-url", url, "hi")
    assert code == 0, err
    events = events_of(out)
    (retry,) = of(events, "retry")
    assert retry["attempt"] == 2 and retry["max_attempts"] > 2 and "503" in retry["reason"]
    assert joined(events) == "recovered-json" and "retrying" in err
    code, out, err = run("--json", "--base-url", srv.base_url("openai-chat", text="one of two", choices=2), "hi")
    assert code == 0, err
    events = events_of(out)
    assert of(events, "notice") and joined(events) == "one of two"


def test_no_server_is_an_error_event(run, env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run("--json", "--base-url", f"http://127.0.0.1:{port}/v1", "--connect-timeout", "2", "hi", env=dict(env, OPENAI_API_KEY="k"))
    assert code == 1, err
    events = events_of(out)
    assert events[-2]["kind"] == "network" and events[-1]["status"] == "error"


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_ends_with_a_cancelled_finish(srv, env, sig, code, name):
    proc = spawn(["--json", "--base-url", srv.base_url("openai-chat", tps=40, tokens=2000), "hi"], env)
    try:
        first = read_until(proc.stdout.fileno(), lambda data: data.count(b'"type":"text"') >= 2)
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    events = events_of(first + rest)
    finish = events[-1]
    assert finish["status"] == "cancelled" and finish["signal"] == name and finish["stop_reason"] is None
    assert 0 < len(joined(events)) < len("".join(answer_tokens("hi", 2000)))
    assert b"Traceback" not in err


def test_ctrl_c_before_the_first_token_still_gives_start_and_finish(srv, env):
    since = len(srv.requests)
    proc = spawn(["--json", "--base-url", srv.base_url("openai-chat", ttft=30), "hi"], env)
    try:
        first = read_until(proc.stdout.fileno(), lambda data: b'"type":"start"' in data)  # the prompt is stored: the request goes next
        assert srv.wait_for(lambda reqs: len(reqs) > since, WAIT)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    events = events_of(first + rest)
    assert [event["type"] for event in events] == ["start", "finish"]
    assert events[-1]["status"] == "cancelled" and events[-1]["metrics"]["ttft"] is None


def test_events_are_flushed_as_they_happen(srv, env):
    """The first text event is readable while the answer is still streaming."""
    proc = spawn(["--json", "--base-url", srv.base_url("openai-chat", tps=20, tokens=2000), "hi"], env)  # 100 s of answer
    try:
        early = read_until(proc.stdout.fileno(), lambda data: data.count(b'"type":"text"') >= 3)
        assert proc.poll() is None and b'"type":"finish"' not in early
    finally:
        proc.kill()
        proc.communicate(timeout=WAIT)


def _open_pty() -> tuple:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    return master, slave


def test_json_wins_over_raw_and_over_a_terminal(srv, env, run):
    code, out, err = run("--json", "--raw", "--base-url", srv.base_url("openai-chat", text="plain"), "hi")
    assert code == 0 and joined(events_of(out)) == "plain", err
    master, slave = _open_pty()
    try:
        proc = spawn(["--json", "--base-url", srv.base_url("openai-chat", text="# Title\n\n**bold**"), "hi"], env, stdout=slave)
    finally:
        os.close(slave)
    try:
        out = read_until(master, lambda data: False)  # to EOF
        proc.wait(timeout=WAIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    events = events_of(out.replace(b"\r\n", b"\n"))  # the terminal's line discipline adds the CRs
    assert joined(events) == "# Title\n\n**bold**"  # not rendered


def test_json_without_a_prompt_on_a_terminal_is_a_usage_error(srv, env):
    master, slave = _open_pty()
    try:
        proc = spawn(["--json", "--base-url", srv.base_url("openai-chat")], env, stdin=slave, stdout=slave)
    finally:
        os.close(slave)
    try:
        _, err = proc.communicate(timeout=WAIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert b"--json" in err and b"prompt" in err


def test_a_reader_that_goes_away_is_not_an_error(srv, env):
    proc = spawn(["--json", "--base-url", srv.base_url("openai-chat", tokens=20000), "hi"], env)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()
        code = proc.wait(timeout=WAIT)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads(first)["type"] == "start"
    assert code == 0 and err == b""


# --- the writer's strings ----------------------------------------------------------------------


def _written(feed: Any) -> List[Dict[str, Any]]:
    out = io.BytesIO()
    writer = JsonWriter(out, lambda: dict(model="m", api="demo", conversation_id=None, prompt_id=None, message_id=None))
    feed(writer)
    writer.finish(status="complete", stop_reason="stop", raw_stop_reason=None, signal=None, metrics=None)
    writer.close()
    return [json.loads(line) for line in out.getvalue().decode("utf-8").splitlines()]


def test_surrogates_are_joined_across_deltas_and_a_lone_one_is_replaced():
    def feed(writer: JsonWriter) -> None:
        writer.write("a\ud83d")  # a pair split across two deltas (some servers do)
        writer.write("\ude42b")
        writer.write("lone \udc00 low")
        writer.reasoning("think \ud83d")
        writer.reasoning("\ude42")
        writer.write("end \ud83d")  # a high half with nothing after it

    events = _written(feed)
    assert joined(events) == "a\U0001f642blone \ufffd lowend \ufffd"
    assert joined(events, "reasoning") == "think \U0001f642"
    assert events[-1]["type"] == "finish"


def test_line_separators_are_escaped_and_read_back_the_same():
    out = io.BytesIO()
    writer = JsonWriter(out, lambda: dict(model="\u2028m", api="demo", conversation_id=None, prompt_id=None, message_id=None))
    writer.write("a\u2028b\u2029c\x85d\x1b\x00")
    writer.event("tool_call", id="x", name="n\u2028", arguments='{"a": "\u2029"}')
    writer.close()
    data = out.getvalue()
    assert b"\\u2028" in data and b"\\u2029" in data and b"\\u0085" in data and b"\\u001b" in data and b"\\u0000" in data
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["model"] == "\u2028m"
    assert json.loads(lines[1])["text"] == "a\u2028b\u2029c\x85d\x1b\x00"
    assert json.loads(lines[2])["name"] == "n\u2028"
