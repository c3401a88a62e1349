"""Every way to type a command wrong: one line on stderr, `portscope: ` first, exit 2,
nothing on stdout, no traceback, nothing signalled; and the spellings that are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from cli.terminal import assert_safe, on_terminal, portscope
from support import ROOT_LISTENER, exited, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]

HOST_OPTIONS = "use e.g. 0.0.0.0, ::, 127.0.0.1, [::1] or localhost"

PORTS = [
    ("８０８０", "not a port number: '８０８０' (expected 1-65535 in digits 0-9)"),  # noqa: RUF001
    ("٨٠", "not a port number: '٨٠'"),
    ("8_080", "not a port number: '8_080'"),
    ("+80", "not a port number: '+80'"),
    ("²", "not a port number: '²'"),
    ("80.5", "not a port number: '80.5'"),
    ("0x50", "not a port number: '0x50'"),
    ("abc", "not a port number: 'abc'"),
    ("", "no port number given (expected 1-65535, A-B or a comma list)"),
    ("0", "port must be 1-65535, got 0"),
    ("-1", "port must be 1-65535, got -1"),
    ("65536", "port must be 1-65535, got 65536"),
    ("9" * 5000, f"port must be 1-65535, got {'9' * 40}…"),
    ("\x1b[2J\u202e" + "x" * 60, "not a port number: '\\x1b[2J\\u202e" + "x" * 35 + "…'"),
]

HOSTS = [
    ("fe80::1%lo", "scoped addresses are not supported: 'fe80::1%lo'"),
    ("[fe80::1%lo]", "scoped addresses are not supported: '[fe80::1%lo]'"),
    ("224.0.0.1", "'224.0.0.1' is a multicast address"),
    ("ff02::1", "'ff02::1' is a multicast address"),
    ("255.255.255.255", "'255.255.255.255' is the broadcast address"),
    ("example.com", "not an IP address: 'example.com' (host names other than localhost"),
    ("999.1.1.1", f"not an IP address: '999.1.1.1' ({HOST_OPTIONS})"),
    ("::g", "not an IP address: '::g'"),
    ("[::1", "not an IP address: '[::1'"),
    ("[127.0.0.1]", "not an IP address: '[127.0.0.1]' (brackets are for IPv6 only)"),
    ("０.0.0.0", "not an IP address: '０.0.0.0'"),  # noqa: RUF001
]

DURATIONS = ["nan", "inf", "-1", "1e3", "86401", "soon", "", "9" * 400]
INTERVALS = ["nan", "inf", "0", "0.05", "3601", "-1", "fast"]
SIGNALS = ["HUP", "SIGHUP", "1", "015", "k\u0131ll", "", "TERM2"]

CASES: list[tuple[list[str], str]] = [
    *((["check", text], message) for text, message in PORTS),
    (["wait", "70000"], "port must be 1-65535, got 70000"),
    (["list", "--port", "８０"], "not a port number: '８０'"),  # noqa: RUF001
    (["kill", "http", "--yes"], "not a port number: 'http'"),
    *((["check", "8080", "--host", text], message) for text, message in HOSTS),
    (["wait", "8080", "--host", "localhost.localdomain"], "not an IP address"),
    *(
        ([command, "8080", "--timeout", text], "--timeout takes seconds from 0 to 86400, got ")
        for text in DURATIONS
        for command in ("wait", "kill")
    ),
    *(
        (["--interval", text, "list"], "--interval takes seconds from 0.1 to 3600, got ")
        for text in INTERVALS
    ),
    *(
        (["kill", "8080", "--yes", "--signal", text], "unknown signal: ")
        for text in SIGNALS
    ),
    (["list", "--frobnicate"], "unrecognized argument '--frobnicate' (try 'portscope list"),
    (["check", "8080", "8081", "x"], "not a port number: 'x'"),  # several ports are fine
    (["--frobnicate"], "unrecognized argument '--frobnicate' (try 'portscope --help')"),
    (["wait", "8080", "--timeout"], "argument --timeout: expected one argument"),
    *(
        ([command], "the following arguments are required: PORT")
        for command in ("check", "wait")
    ),
    (["kill"], "no port given: portscope kill PORT [PORT...], or --pid PID"),
    (["frobnicate"], "unknown command 'frobnicate': choose from list, check, wait, kill"),
    (["\x1b]0;pwned\x07"], "unknown command '\\x1b]0;pwned\\x07': choose from "),
]


@pytest.mark.parametrize(("args", "message"), CASES)
def test_bad_input_is_one_line_and_exit_two(args: list[str], message: str) -> None:
    result = portscope(*args)
    err = assert_safe(result.stderr)
    assert result.returncode == 2, err
    assert result.stdout == b""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("portscope: ") and message in err, err
    assert "Traceback" not in err


def test_signal_names_the_accepted_ones() -> None:
    err = portscope("kill", "8080", "--signal", "HUP").stderr.decode()
    assert err == (
        "portscope: unknown signal: 'HUP' (accepted: TERM (15), INT (2), KILL (9), "
        "with or without SIG)\n"
    )


@pytest.mark.parametrize(
    "bad",
    [["--timeout", "nan"], ["--timeout", "-1"], ["--signal", "HUP"], ["--signal", "1"],
     ["--frobnicate"]],
)
def test_kill_with_bad_options_signals_nothing(spawn: Spawn, bad: list[str]) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line, "--yes", *bad)
    assert result.returncode == 2 and result.stdout == b""
    assert not exited(proc, timeout=0.5)  # the listener is still alive and was not reaped
    check = portscope("check", line, "--host", "127.0.0.1", "--json")
    assert proc.pid in [h["pid"] for h in json.loads(check.stdout)["holders"]]


@pytest.mark.parametrize("spelling", ["sigterm", "15", "SIGTERM", "term", " TERM "])
def test_signal_spellings_send_sigterm(spawn: Spawn, spelling: str) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line, "--yes", "--json", "--signal", spelling)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["targets"][0]["signal"] == "TERM"
    assert exited(proc) and proc.returncode == -15


def test_kill_signal_by_number_nine(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    result = portscope("kill", line, "--yes", "--json", "--signal", "9")
    assert json.loads(result.stdout)["targets"][0]["signal"] == "KILL"
    assert exited(proc) and proc.returncode == -9


def test_good_values_are_accepted() -> None:
    with tcp_listener() as sock:
        port = str(sock.getsockname()[1])
    for args in (
        ["check", f" {port} "],
        ["check", port, "--host", ""],
        ["check", port, "--host", "0:0:0:0:0:0:0:1"],
        ["wait", port, "--timeout", "0"],
        ["wait", port, "--timeout", ".5"],
        ["--interval", "0.1", "list", "--port", port],
        ["--interval", "3600", "list", "--port", f"0{port}"],
    ):
        result = portscope(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == b""


@pytest.mark.parametrize(("taken", "other"), [("::1", "127.0.0.1"), ("127.0.0.1", "::1")])
def test_localhost_checks_both_loopbacks(taken: str, other: str) -> None:
    with tcp_listener(taken) as sock:
        port = str(sock.getsockname()[1])
        text = portscope("check", port, "--host", "localhost")
        as_json = portscope("check", port, "--host", "LOCALHOST", "--json")
    lines = text.stdout.decode().splitlines()
    assert text.returncode == 1
    assert lines[0] == f"localhost: in use on {taken}, free on {other}"
    assert f"pid {os.getpid()}" in lines[2]
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 1
    assert (data["address"], data["verdict"]) == (taken, "listening")


def test_localhost_free_on_both() -> None:
    with tcp_listener() as sock:
        port = str(sock.getsockname()[1])
    result = portscope("check", port, "--host", "localhost")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("localhost: free on 127.0.0.1 and ::1\n")


def test_wait_localhost_waits_for_both_binds() -> None:
    # 127.0.0.1 is free: a wait that probed only it would exit 0 at once.
    with tcp_listener("::1") as sock:
        port = str(sock.getsockname()[1])
        held = portscope("wait", port, "--host", "localhost", "--timeout", "0.3")
    assert held.returncode == 1
    err = held.stderr.decode()
    assert err.startswith("waiting on ::1: ") and "timed out after 0.3 s on ::1: " in err
    freed = portscope("wait", port, "--host", "localhost", "--timeout", "5")
    assert freed.returncode == 0
    assert freed.stdout.decode().startswith(f"port {port}/tcp is free on 127.0.0.1 and ::1")


# The live monitor refuses where Textual cannot draw, before importing it.
NO_TERMINAL = "the live monitor needs a terminal on stdin and stdout"


def test_monitor_without_a_terminal_points_at_list() -> None:
    result = portscope()  # stdin /dev/null, stdout a pipe
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == (
        f"portscope: {NO_TERMINAL}; use 'portscope list' (or 'portscope list --json') "
        "for a table\n"
    )


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("dumb", "portscope: TERM=dumb cannot draw the live monitor; use 'portscope list'"),
        (None, "portscope: TERM is not set, so the live monitor cannot draw; use"),
        ("", "portscope: TERM is not set, so the live monitor cannot draw; use"),
    ],
)
def test_monitor_on_a_terminal_that_cannot_draw(term: str | None, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    if term is not None:
        env["TERM"] = term
    seen, result = on_terminal([], stdout_too=True, env=env)
    text = assert_safe(seen)
    assert result.returncode == 2
    assert text.startswith(message) and text.count("\n") == 1, text


def test_monitor_with_one_end_on_a_terminal_still_refuses() -> None:
    seen, result = on_terminal([], env={**os.environ, "TERM": "xterm-256color"})
    assert result.returncode == 2 and result.stdout == b""  # stdout was a pipe
    assert assert_safe(seen).startswith(f"portscope: {NO_TERMINAL}")
