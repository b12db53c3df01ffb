"""The `llmchat` command as a user meets it: a real subprocess (`python -m llmchat`) with real
pipes, talking over loopback to the fake LLM server.

What is checked: stdout carries only the answer and is byte-exact through a pipe for every API;
everything else goes to stderr; exit codes (0 ok, 1 error, 2 usage, 130 interrupted); errors are
one `error:` line with the server's own words and never a traceback; prompt assembly; settings
precedence (flags > LLMCHAT_* > config profile); keys never shown; Ctrl-C and a reader that
closes the pipe early.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from typing import Callable, Dict, List, Sequence

import pytest

from llmchat import __version__
from llmchat.demo.answer import answer_tokens

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # Linux

WAIT = 15.0  # upper bound for anything the tests wait on; never a fixed sleep

SECRET = "sk-test-Zq8v1SECRETkey0042"

APIS = ("openai-chat", "openai-responses", "anthropic", "ollama")

# Everything a byte-exact pipe must carry unchanged: line and paragraph separators that
# str.splitlines() and httpx's iter_lines() split on, NEL, emoji (astral, ZWJ, skin tone),
# CJK, CRLF, tabs, an SGR colour sequence and an OSC 52 clipboard write.
HOSTILE_TEXT = (
    "Start: sep\u2028line\u2029para\u0085nel; "
    "emoji \U0001f642\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \u5bb6\u65cf; "
    "CRLF\r\nnext\tTAB\t\tend; "
    "\x1b[31mred\x1b[0m and clip \x1b]52;c;aGk=\x07 done.\n"
    "last line without newline \u00e9\u00e8"
)


# --- helpers ---------------------------------------------------------------------------------


def _cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "llmchat", *args]


def spawn(args: Sequence[str], env: Dict[str, str], **kw) -> subprocess.Popen:
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(_cmd(*args), env=env, cwd=env["LLMCHAT_HOME"], **kw)


def run_many(jobs: Sequence[tuple], timeout: float = 30.0) -> List[tuple]:
    """Several (args, env, stdin bytes) runs at once, for the slow ones; results in order.
    Each stdin is a pipe already holding its (small) input and closed, so no run waits."""
    procs = []
    results = []
    try:
        for args, env, data in jobs:
            read_end, write_end = os.pipe()
            os.write(write_end, data)
            os.close(write_end)
            try:
                procs.append(spawn(args, env, stdin=read_end))
            finally:
                os.close(read_end)
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err.decode("utf-8", "replace")))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def read_until(fd: int, done: Callable[[bytes], bool], timeout: float = WAIT) -> bytes:
    """Read a pipe (or pty) with select until `done(data)` holds or EOF, within `timeout`."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out reading; got {len(data)} bytes: {data[:200]!r}")
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


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_of(prompt: str = "hi", count: int | None = None, text: str | None = None) -> str:
    return "".join(answer_tokens(prompt, count, text))


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr


def assert_one_error(stderr: str, *, retries_allowed: bool = False) -> str:
    """stderr is exactly one `error:` line (plus, when allowed, `llmchat: ... retrying` lines)."""
    assert_clean(stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    others = [line for line in lines if not line.startswith("error:")]
    if retries_allowed:
        others = [line for line in others if not (line.startswith("llmchat:") and "retrying" in line)]
    assert len(errors) == 1, stderr
    assert others == [], stderr
    return errors[0]


def assert_usage_error(result: tuple, *needles: str) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert out == b""
    assert_clean(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def new_requests(srv, since: int) -> list:
    return srv.requests[since:]


def only_request(srv, since: int):
    requests = new_requests(srv, since)
    assert len(requests) == 1, requests
    return requests[0]


# --- stdout is the answer, byte for byte ----------------------------------------------------

STOP_WORDS = {"openai-chat": "stop", "openai-responses": "completed", "anthropic": "end_turn", "ollama": "stop"}


@pytest.mark.parametrize("raw", [False, True], ids=["pipe", "raw"])
@pytest.mark.parametrize("api", APIS)
def test_stdout_is_byte_exact_through_a_pipe(srv, run, api, raw):
    since = len(srv.requests)
    args = ["--api", api, "--base-url", srv.base_url(api, text=HOSTILE_TEXT), "--stats", "hi"]
    if raw:
        args.insert(0, "--raw")
    code, out, err = run(*args)
    assert code == 0, err
    assert out == HOSTILE_TEXT.encode("utf-8")
    # stderr: the --stats line and nothing else.
    assert_clean(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    stats = lines[0]
    for part in ("TTFT", "tok/s", "output tokens", f"stop: {STOP_WORDS[api]}"):
        assert part in stats, (part, stats)
    assert only_request(srv, since).api == api


def test_stdout_carries_only_the_answer_with_warnings_and_stats(srv, run):
    """A truncated answer: the warning and the stats go to stderr, stdout is the text alone."""
    code, out, err = run("--base-url", srv.base_url("openai-chat", text="just this", finish="length"), "--stats", "hi")
    assert code == 0, err
    assert out == b"just this"
    assert_clean(err)
    assert "warning:" in err and "just this" not in err
    assert "stop: length" in err


@pytest.mark.parametrize("api", APIS)
def test_finish_length_warns_and_exits_0(srv, run, api):
    text = "a short answer that ran out"
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, text=text, finish="length"), "hi")
    assert code == 0, err
    assert out == text.encode()
    assert_clean(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning:"), err
    assert "max-tokens" in lines[0] or "token limit" in lines[0]


# --- the demo model ---------------------------------------------------------------------------


def test_demo_model_without_key_config_or_flags(env):
    """Both runs stream the whole demo answer (~3.5 s), so they run side by side."""
    plain, chosen = run_many([(["hi"], env, b""), (["--api", "demo", "hi"], env, b"")])
    for code, out, err in (plain, chosen):
        assert code == 0, err
        assert b"demo model" in out
        assert "demo model" in err  # the notice names the built-in demo model...
        assert_clean(err)
    assert "no API key" in plain[2]
    # ...and the notice is on stderr only: stdout is the demo answer itself.
    assert plain[1] == text_of("hi").encode()
    assert chosen[1] == text_of("hi").encode()
    assert "error" not in plain[2].lower()


# --- prompt assembly --------------------------------------------------------------------------


def _sent_prompt(srv, since: int) -> str:
    body = only_request(srv, since).body
    return body["messages"][-1]["content"]


def test_prompt_from_the_argument_only(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "what", "is", "2+2?", input=b"")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "what is 2+2?"
    assert out == text_of("what is 2+2?", 3).encode()


def test_prompt_from_stdin_only_keeps_newlines(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), input=b"q\nsecond line\n")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "q\nsecond line\n"


def test_argument_then_a_blank_line_then_stdin(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "ARG", input=b"STDIN")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "ARG\n\nSTDIN"


def test_newlines_in_the_argument_are_kept(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "line 1\nline 2\n\n\tindented", input=b"")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "line 1\nline 2\n\n\tindented"


def test_dash_reads_stdin(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "-", input="from stdin \u00e9\n".encode())
    assert code == 0, err
    assert _sent_prompt(srv, since) == "from stdin \u00e9\n"


def test_invalid_utf8_on_stdin_becomes_replacement_characters(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), input=b"bad \xff\xfe bytes\n")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "bad \ufffd\ufffd bytes\n"


def test_double_dash_passes_a_prompt_that_looks_like_an_option(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "--", "--help me")
    assert code == 0, err
    assert _sent_prompt(srv, since) == "--help me"


def test_large_stdin_is_not_truncated(srv, run):
    line = "a line of text with \u00fcml\u00e4uts and \U0001f642 emoji, number {}\n"
    stdin = "".join(line.format(i) for i in range(18000))
    data = stdin.encode("utf-8")
    assert len(data) > 1_000_000
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "Summarise:", input=data)
    assert code == 0, err
    assert _sent_prompt(srv, since) == "Summarise:\n\n" + stdin


@pytest.mark.parametrize(
    "args, stdin",
    [([""], b""), ([], b""), (["   "], b""), ([], b"\n \n\t\n")],
    ids=["empty-arg", "nothing", "blank-arg", "blank-stdin"],
)
def test_empty_prompt_is_a_usage_error(srv, run, args, stdin):
    since = len(srv.requests)
    result = run("--base-url", srv.base_url("openai-chat"), *args, input=stdin)
    assert_usage_error(result, "prompt")
    assert new_requests(srv, since) == []


# --- request options --------------------------------------------------------------------------


def test_system_temperature_max_tokens_and_model_reach_the_request(srv, run):
    since = len(srv.requests)
    code, out, err = run(
        "--base-url",
        srv.base_url("openai-chat", text="ok"),
        "-s",
        "You are terse.",
        "--temperature",
        "0.25",
        "--max-tokens",
        "77",
        "-m",
        "my-model",
        "hello",
    )
    assert code == 0, err
    assert out == b"ok"
    body = only_request(srv, since).body
    assert body["model"] == "my-model"
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["messages"][-1] == {"role": "user", "content": "hello"}
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 77  # a local server, not api.openai.com
    assert "max_completion_tokens" not in body
    assert body["stream"] is True


def test_long_options(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", text="ok"), "--system", "sys", "--model", "long-model", "hello")
    assert code == 0, err
    body = only_request(srv, since).body
    assert body["model"] == "long-model"
    assert body["messages"][0] == {"role": "system", "content": "sys"}


def test_timeout_on_a_stalled_stream_keeps_the_partial_answer(srv, run):
    text = "one two three four five six"
    tokens = answer_tokens("hi", None, text)
    started = time.monotonic()
    code, out, err = run("--base-url", srv.base_url("openai-chat", text=text, stall_after=3), "--timeout", "1", "hi")
    assert code == 1, err
    assert out == "".join(tokens[:3]).encode()
    line = assert_one_error(err)
    assert "timed out" in line
    assert time.monotonic() - started < 10


# --- errors -----------------------------------------------------------------------------------

ERROR_TEXT = "alpha beta gamma delta epsilon zeta"
ERROR_TOKENS = answer_tokens("hi", None, ERROR_TEXT)


@pytest.mark.parametrize(
    "options, needles, partial, retries",
    [
        (dict(status=429, retry_after="0"), ["429", "Rate limit reached"], 0, 3),
        (dict(status=401), ["401", "Incorrect API key provided"], 0, 0),
        (dict(status=500, error_body="html", retry_after="0"), ["500", "500 Internal Server Error"], 0, 3),
        (dict(status=503, error_body="text", retry_after="0"), ["503", "upstream error: The engine is currently overloaded"], 0, 3),
        (dict(status=404, error_body="html"), ["404", "404 Not Found"], 0, 0),
        (dict(error_after=2), ["told to fail mid-stream"], 2, 0),
        (dict(drop_after=3), ["dropped"], 3, 0),
        (dict(no_end=1), ["cut off"], len(ERROR_TOKENS), 0),
        (dict(empty=1), ["empty"], 0, 0),
        (dict(content_type="text/html"), ["text/html", "Captive portal: sign in"], 0, 0),
    ],
    ids=["429", "401-json", "500-html", "503-text", "404-html", "error-after", "drop-after", "no-end", "empty", "html-200"],
)
def test_errors_are_one_line_exit_1_and_keep_partial_text(srv, run, options, needles, partial, retries):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", text=ERROR_TEXT, **options), "hi")
    assert code == 1, err
    assert out == "".join(ERROR_TOKENS[:partial]).encode()
    line = assert_one_error(err, retries_allowed=True)
    for needle in needles:
        assert needle in line, (needle, err)
    retry_lines = [x for x in err.splitlines() if x.startswith("llmchat:") and "retrying" in x]
    assert len(retry_lines) == retries, err
    assert len(new_requests(srv, since)) == retries + 1


@pytest.mark.parametrize("api", ["openai-responses", "anthropic", "ollama"])
@pytest.mark.parametrize(
    "options, needles, partial",
    [
        (dict(status=401), ["401", "Incorrect API key provided"], 0),
        (dict(error_after=2), ["told to fail mid-stream"], 2),
        (dict(no_end=1), ["cut off"], len(ERROR_TOKENS)),
    ],
    ids=["401", "error-after", "no-end"],
)
def test_errors_for_every_api(srv, run, api, options, needles, partial):
    code, out, err = run("--api", api, "--base-url", srv.base_url(api, text=ERROR_TEXT, **options), "hi")
    assert code == 1, err
    assert out == "".join(ERROR_TOKENS[:partial]).encode()
    line = assert_one_error(err)
    for needle in needles:
        assert needle in line, (needle, err)


def test_retry_before_the_first_token_then_success(srv, run):
    since = len(srv.requests)
    code, out, err = run("--base-url", srv.base_url("openai-chat", text="recovered", fail_first=2, retry_after="0"), "hi")
    assert code == 0, err
    assert out == b"recovered"
    assert_clean(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.startswith("llmchat:") and "retrying" in line for line in lines), err
    assert "error:" not in err
    assert [r.outcome for r in new_requests(srv, since)] == ["error", "error", "complete"]


def test_connection_refused(run, env):
    """Retried (with backoff: the slowest test here), then one error naming the origin, not the key."""
    port = free_port()
    code, out, err = run("--api", "openai-chat", "--base-url", f"http://127.0.0.1:{port}/v1", "hi", env=dict(env, OPENAI_API_KEY=SECRET))
    assert code == 1, err
    assert out == b""
    line = assert_one_error(err, retries_allowed=True)
    assert "cannot connect" in line and f"127.0.0.1:{port}" in line
    assert SECRET not in err


# --- usage errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--temperature", "5", "hi"], ["temperature"]),
        (["--max-tokens", "abc", "hi"], ["--max-tokens"]),
        (["--max-tokens", "0", "hi"], ["max tokens"]),
        (["--timeout", "0", "hi"], ["timeout"]),
        (["--no-such-option", "hi"], ["--no-such-option"]),
        (["--api", "nope", "hi"], ["nope"]),
        (["--profile", "missing", "hi"], ["missing"]),
        (["--base-url", "ftp://example.invalid", "hi"], ["base URL"]),
        (["--api", "openai-chat", "hi"], ["OPENAI_API_KEY"]),
        (["--api", "openai-responses", "hi"], ["OPENAI_API_KEY"]),
        (["--api", "anthropic", "hi"], ["ANTHROPIC_API_KEY"]),
    ],
    ids=[
        "temperature",
        "max-tokens-abc",
        "max-tokens-0",
        "timeout-0",
        "unknown-option",
        "api-nope",
        "profile",
        "bad-url",
        "no-openai-key",
        "no-openai-key-responses",
        "no-anthropic-key",
    ],
)
def test_usage_errors_exit_2_with_one_line(run, args, needles):
    assert_usage_error(run(*args), *needles)


@pytest.mark.parametrize(
    "variables, needles",
    [
        ({"LLMCHAT_TIMEOUT": "abc"}, ["timeout", "abc"]),
        ({"LLMCHAT_API": "nope"}, ["nope"]),
        ({"LLMCHAT_PROFILE": "missing"}, ["missing"]),
    ],
    ids=["timeout", "api", "profile"],
)
def test_bad_environment_is_a_usage_error(run, env, variables, needles):
    assert_usage_error(run("hi", env=dict(env, **variables)), *needles)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:99999/v1", "http://127.0.0.1:abc/v1", "http://[::1/v1"],
    ids=["port-out-of-range", "port-not-a-number", "unclosed-ipv6"],
)
def test_malformed_base_url_is_a_usage_error(run, url):
    """Like `ftp://...`, a base URL that cannot be a URL is a usage error, not a traceback."""
    line = assert_usage_error(run("--base-url", url, "hi")).lower()
    assert "url" in line or "port" in line, line


def test_ollama_host_without_a_scheme(srv, run, env):
    """OLLAMA_HOST as Ollama itself accepts it: host:port, no scheme."""
    host = srv.base_url("ollama", text="via OLLAMA_HOST").removeprefix("http://")
    since = len(srv.requests)
    code, out, err = run("--api", "ollama", "hi", env=dict(env, OLLAMA_HOST=host))
    assert code == 0, err
    assert out == b"via OLLAMA_HOST"
    assert only_request(srv, since).path == "/api/chat"


@pytest.mark.parametrize(
    "toml, needles",
    [
        ("default = \n", ["not valid TOML"]),
        ('colour = "red"\n', ["unknown setting", "colour"]),
        ('[profiles.local]\nmodel = "m"\ncolour = "red"\n', ["unknown key", "colour"]),
        ('[profiles.local]\nmax_tokens = "many"\n', ["max_tokens"]),
        ('[profiles.local]\napi = "nope"\n', ["nope"]),
        ('default = "absent"\n', ["absent"]),
    ],
    ids=["bad-toml", "unknown-setting", "unknown-profile-key", "wrong-type", "unknown-api", "missing-default"],
)
def test_bad_config_is_a_usage_error(run, write_config, toml, needles):
    path = write_config(toml)
    line = assert_usage_error(run("hi"), *needles)
    assert str(path) in line


def test_version_and_help(run):
    code, out, err = run("--version")
    assert (code, out, err) == (0, f"llmchat {__version__}\n".encode(), "")
    code, out, err = run("--help")
    assert code == 0, err
    assert b"--raw" in out and b"Usage" in out
    assert_clean(err)


def test_console_script_version(env):
    script = shutil.which("llmchat", path=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    assert script, "the llmchat console script is not installed"
    proc = subprocess.run([script, "--version"], stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout == f"llmchat {__version__}\n".encode()


# --- config and profiles ----------------------------------------------------------------------


@pytest.fixture
def profiles(srv, write_config):
    url = srv.base_url("openai-chat", text="from the profile")
    other = srv.base_url("openai-chat", text="from the other profile")
    write_config(
        'default = "local"\n\n'
        f'[profiles.local]\napi = "openai-chat"\nbase_url = "{url}"\nmodel = "m1"\n\n'
        f'[profiles.other]\napi = "openai-chat"\nbase_url = "{other}"\nmodel = "o1"\n'
    )


def _model_sent(srv, since: int) -> str:
    return only_request(srv, since).body["model"]


def test_default_profile_is_used(srv, run, profiles):
    since = len(srv.requests)
    code, out, err = run("hi")
    assert code == 0, err
    assert out == b"from the profile"
    assert _model_sent(srv, since) == "m1"
    assert err == ""  # not the demo model: no notice


def test_other_profile_by_flag(srv, run, profiles):
    since = len(srv.requests)
    code, out, err = run("-p", "other", "hi")
    assert code == 0, err
    assert out == b"from the other profile"
    assert _model_sent(srv, since) == "o1"


def test_flag_beats_env_beats_config(srv, run, env, profiles):
    since = len(srv.requests)
    assert run("-m", "m2", "hi")[0] == 0
    assert _model_sent(srv, since) == "m2"

    with_env = dict(env, LLMCHAT_MODEL="m3")
    since = len(srv.requests)
    assert run("hi", env=with_env)[0] == 0
    assert _model_sent(srv, since) == "m3"

    since = len(srv.requests)
    assert run("-m", "m2", "hi", env=with_env)[0] == 0
    assert _model_sent(srv, since) == "m2"


def test_models_lists_profiles_and_marks_the_default(run, profiles):
    code, out, err = run("models")
    assert code == 0, err
    lines = out.decode().splitlines()
    local = [line for line in lines if re.search(r"\blocal\b", line)]
    other = [line for line in lines if re.search(r"\bother\b", line)]
    assert len(local) == 1 and local[0].startswith("*"), out
    assert len(other) == 1 and not other[0].startswith("*"), out
    assert "m1" in local[0] and "o1" in other[0]


def test_config_path(run, home):
    code, out, err = run("config", "path")
    assert code == 0, err
    assert out == f"{home / 'config.toml'}\n".encode()


def test_api_key_env_is_sent_as_bearer_and_never_shown(srv, run, env, write_config):
    url = srv.base_url("openai-chat", text="authorised")
    write_config(f'default = "keyed"\n[profiles.keyed]\napi = "openai-chat"\nbase_url = "{url}"\nmodel = "k1"\napi_key_env = "MY_TEST_KEY"\n')
    keyed = dict(env, MY_TEST_KEY=SECRET)
    since = len(srv.requests)
    code, out, err = run("--stats", "hi", env=keyed)
    assert code == 0, err
    assert out == b"authorised"
    assert only_request(srv, since).headers.get("authorization") == f"Bearer {SECRET}"
    assert SECRET.encode() not in out and SECRET not in err

    # The server rejects the key: the error names the status, never the key.
    since = len(srv.requests)
    bad = srv.base_url("openai-chat", status=401)
    code, out, err = run("--base-url", bad, "hi", env=keyed)
    assert code == 1
    assert "401" in assert_one_error(err)
    assert only_request(srv, since).headers.get("authorization") == f"Bearer {SECRET}"
    assert SECRET.encode() not in out and SECRET not in err

    code, out, err = run("models", env=keyed)
    assert code == 0 and SECRET.encode() not in out and SECRET not in err


# --- signals and pipes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig, code, word",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_signal_keeps_the_partial_answer(srv, env, sig, code, word):
    full = text_of("hi", 2000).encode()
    since = len(srv.requests)
    proc = spawn(["--raw", "--base-url", srv.base_url("openai-chat", tps=40, tokens=2000), "hi"], env)
    try:
        first = read_until(proc.stdout.fileno(), lambda data: len(data) > 0)
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = first + rest
    err = err.decode("utf-8", "replace")
    assert proc.returncode == code, err
    assert 0 < len(out) < len(full)
    assert full.startswith(out)
    assert word in err
    assert_clean(err)
    assert "KeyboardInterrupt" not in err
    assert srv.wait_for(lambda reqs: len(reqs) > since and reqs[since].outcome == "disconnected", WAIT), srv.requests[since:]


def test_a_pasted_key_with_a_newline_is_trimmed_and_a_bad_key_never_echoed(srv, env, run):
    env = dict(env, OPENAI_API_KEY="sk-SECRET123 \n")
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "hi", env=env)
    assert code == 0, err
    assert srv.requests[-1].headers["authorization"] == "Bearer sk-SECRET123"
    env = dict(env, OPENAI_API_KEY="sk-SEC RET\u00e9")
    code, out, err = run("--base-url", srv.base_url("openai-chat", tokens=3), "hi", env=env)
    assert code == 2 and "OPENAI_API_KEY" in err and "SEC" not in err and "RET" not in err


def test_sigint_before_the_first_token(srv, env):
    """Ctrl-C while waiting for a slow first token: no answer, exit 130, connection closed."""
    since = len(srv.requests)
    started = time.monotonic()
    proc = spawn(["--base-url", srv.base_url("openai-chat", ttft=30), "hi"], env)
    try:
        # The request has reached the server: llmchat is waiting for the answer.
        assert srv.wait_for(lambda reqs: len(reqs) > since, WAIT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode("utf-8", "replace")
    assert proc.returncode == 130, err
    assert out == b""
    assert_clean(err)
    assert "KeyboardInterrupt" not in err
    assert srv.wait_for(lambda reqs: reqs[since].outcome == "disconnected", WAIT), srv.requests[since]
    assert time.monotonic() - started < 20


def test_reader_closing_the_pipe_early_is_not_an_error(srv, env):
    """`llmchat ... | head -c 100`: the answer is far larger than a pipe buffer."""
    full = text_of("hi", 20000).encode()
    proc = spawn(["--base-url", srv.base_url("openai-chat", tokens=20000), "hi"], env)
    try:
        # More than the pipe holds: llmchat is still writing when the reader goes away.
        assert len(full) > fcntl.fcntl(proc.stdout.fileno(), F_GETPIPE_SZ) + 100
        head = read_until(proc.stdout.fileno(), lambda data: len(data) >= 100)
        proc.stdout.close()
        code = proc.wait(timeout=WAIT)
        err = proc.stderr.read().decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert full.startswith(head)
    assert code == 0, err
    assert_clean(err)
    assert "BrokenPipe" not in err and "Broken pipe" not in err
    assert "error" not in err.lower(), err


def open_pty() -> tuple:
    """A pseudo-terminal of 24 x 100 (a fresh pty reports 0 x 0)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    return master, slave


def _run_with_stderr_on_a_tty(args: Sequence[str], env: Dict[str, str]) -> tuple:
    """stdout a pipe, stderr a pseudo-terminal: (exit code, stdout bytes, stderr bytes)."""
    master, slave = open_pty()
    try:
        proc = spawn(args, env, stderr=slave)
    finally:
        os.close(slave)
    try:
        err = read_until(master, lambda data: False)  # to EOF: the child closed the terminal
        out, _ = proc.communicate(timeout=WAIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_no_color_is_honoured_for_reasoning_on_a_terminal(srv, env):
    url = srv.base_url("openai-chat", reasoning=5, text="ANSWER-ONLY")
    thought = "".join(answer_tokens("", 5))  # what the fake server sends as reasoning
    assert thought.strip() and thought not in "ANSWER-ONLY"

    code, out, err = _run_with_stderr_on_a_tty(["--reasoning", "hi", "--base-url", url], dict(env, NO_COLOR="1"))
    assert code == 0, err
    assert out == b"ANSWER-ONLY"
    assert b"\x1b" not in err, err
    assert thought.encode() in err

    # The same on a terminal without NO_COLOR is dimmed: the test does reach the colour path.
    code, out, err = _run_with_stderr_on_a_tty(["--reasoning", "hi", "--base-url", url], env)
    assert code == 0, err
    assert out == b"ANSWER-ONLY"
    assert b"\x1b[" in err
    assert thought.encode() in re.sub(rb"\x1b\[[0-9;]*m", b"", err)


def test_reasoning_is_hidden_without_the_flag(srv, run, env):
    url = srv.base_url("openai-chat", reasoning=5, text="ANSWER-ONLY")
    thought = "".join(answer_tokens("", 5))
    code, out, err = run("--base-url", url, "hi")
    assert code == 0, err
    assert out == b"ANSWER-ONLY"
    assert err == ""

    code, out, err = _run_with_stderr_on_a_tty(["--base-url", url, "hi"], dict(env, NO_COLOR="1"))
    assert code == 0
    assert out == b"ANSWER-ONLY"
    assert thought.strip().encode() not in err and b"\x1b" not in err


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "rendered"])
def test_control_sequences_are_stripped_on_a_terminal(srv, env, raw):
    """The other side of byte-exactness: a terminal on stdout never gets the model's escapes."""
    master, slave = open_pty()
    args = ["--base-url", srv.base_url("openai-chat", text=HOSTILE_TEXT), "hi"]
    try:
        proc = spawn((["--raw"] if raw else []) + args, env, stdout=slave)
    finally:
        os.close(slave)
    try:
        shown = read_until(master, lambda data: False)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"\x1b]52" not in shown and b"aGk=" not in shown
    assert b"\x1b[31m" not in shown
    assert b"red" in shown and "\U0001f642".encode() in shown


# --- the demo server subcommand ---------------------------------------------------------------


@pytest.mark.parametrize("pick", ["free-port", "port-0"])
def test_demo_server_subcommand(env, run, pick):
    port = free_port() if pick == "free-port" else 0
    server = spawn(["demo-server", "--port", str(port)], env)
    try:
        # Its first line on stdout names the URL it listens on.
        line = read_until(server.stdout.fileno(), lambda data: b"\n" in data).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert int(match.group(1)) == port if port else int(match.group(1)) > 0, line
        url = match.group(0)

        code, out, err = run("--base-url", f"{url}/v1", "-m", "x", "hi")
        assert code == 0, err
        assert out == text_of("hi").encode()
        assert err == ""

        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=WAIT)
        err = server.stderr.read().decode("utf-8", "replace")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code == 130, err
    assert_clean(err)


# --- what the faces import -----------------------------------------------------------------

_IMPORTS_PROBE = """
import runpy, sys
sys.argv = ["llmchat", *sys.argv[1:]]
try:
    runpy.run_module("llmchat", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("typer", "click", "textual", "rich") if m in sys.modules]
providers = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("llmchat.providers.") and m != "llmchat.providers.base")
sys.stderr.write("PROBE " + repr((code, heavy, providers, "sqlite3" in sys.modules)) + "\\n")
"""


def _probe_imports(env: Dict[str, str], *args: str) -> tuple:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=WAIT,
    )
    line = next(text for text in proc.stderr.decode().splitlines() if text.startswith("PROBE "))
    return eval(line[len("PROBE ") :])  # noqa: S307 - our own repr of plain data


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "pipe"])
def test_pipe_faces_import_no_typer_textual_rich_and_one_provider(srv, env: Dict[str, str], raw: bool) -> None:
    args = ["--api", "anthropic", "--base-url", srv.base_url("anthropic"), "hi"] + (["--raw"] if raw else [])
    code, heavy, providers, sqlite = _probe_imports(env, *args)
    assert code == 0
    assert heavy == []  # the plain command line never needs Typer; pipes never need Rich
    assert providers == ["anthropic"]
    assert sqlite  # the conversation was stored


def test_no_history_never_imports_sqlite3(srv, env: Dict[str, str], write_config) -> None:
    """--no-history (or `history = false`) pays nothing for the history: not even the import."""
    args = ["--base-url", srv.base_url("openai-chat"), "hi"]
    assert _probe_imports(env, "--no-history", *args) == (0, [], ["openai_chat"], False)
    write_config("history = false\n")
    assert _probe_imports(env, *args) == (0, [], ["openai_chat"], False)


def test_help_and_usage_errors_still_come_from_click(env: Dict[str, str]) -> None:
    code, heavy, _, _ = _probe_imports(env, "--no-such-option")
    assert code == 2 and "typer" in heavy
