"""Closed standard streams and encodings that cannot show a name: every command answers with
its documented exit code and no traceback, and a kill that stopped its target says so by
its exit code even when it cannot print (issue 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from support import exited, reap, spawn_python

PORTSCOPE = [sys.executable, "-m", "portscope"]
# A listener whose name is not ASCII: what a latin-1 terminal cannot encode.
NAMED = """
import ctypes, socket, time
ctypes.CDLL(None).prctl(15, ctypes.c_char_p("srv-日本".encode()), 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def listener() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, port = spawn_python(NAMED)
    yield proc, port
    reap(proc)


def run(args: list[str], closed: int, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run portscope with standard stream `closed` (0, 1 or 2) closed, as `<&-`, `>&-`
    and `2>&-` leave it; the others are pipes."""
    keep = {0: subprocess.DEVNULL, 1: subprocess.PIPE, 2: subprocess.PIPE}

    def close() -> None:
        os.close(closed)

    return subprocess.run(
        [*PORTSCOPE, *args], stdin=keep[0], stdout=keep[1], stderr=keep[2],
        preexec_fn=close, timeout=timeout,
    )


COMMANDS = [
    (["list"], 0),
    (["list", "--json"], 0),
    (["check", "{port}"], 1),
    (["check", "{port}", "--json"], 1),
    (["wait", "{port}", "--timeout", "0.2"], 1),
    (["free", "--range", "20000-20999"], 0),
    (["kill", "{port}", "--dry-run"], 0),
]


@pytest.mark.parametrize("closed", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
@pytest.mark.parametrize(("args", "code"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_closed_stream_costs_no_traceback(
    listener: tuple[subprocess.Popen[str], str], closed: int, args: list[str], code: int
) -> None:
    _, port = listener
    done = run([a.format(port=port) for a in args], closed)
    assert done.returncode == code, (done.stdout, done.stderr)
    for stream in (done.stdout, done.stderr):
        assert b"Traceback" not in (stream or b"")
    if closed == 2:  # an error line must not land on stdout instead
        assert b"portscope:" not in (done.stdout or b"")


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_kill_yes_exits_0_when_its_target_stopped_though_it_cannot_print(
    listener: tuple[subprocess.Popen[str], str], closed: int
) -> None:
    proc, port = listener
    done = run(["kill", port, "--yes"], closed)
    assert done.returncode == 0, done.stderr
    assert exited(proc) and proc.returncode == -signal.SIGTERM


def test_kill_without_stdin_refuses_in_one_line(
    listener: tuple[subprocess.Popen[str], str],
) -> None:
    proc, port = listener
    done = run(["kill", port], 0)
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and b"--yes" in done.stderr
    assert proc.poll() is None  # nothing was signalled


@pytest.mark.parametrize("args", [["list"], ["check", "{port}"], ["kill", "{port}", "--dry-run"]])
def test_a_latin1_terminal_gets_escapes_not_a_crash(
    listener: tuple[subprocess.Popen[str], str], args: list[str]
) -> None:
    _, port = listener
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    done = subprocess.run(
        [*PORTSCOPE, *(a.format(port=port) for a in args)], capture_output=True, env=env,
        stdin=subprocess.DEVNULL, timeout=60,
    )
    assert b"Traceback" not in done.stderr and b"UnicodeEncodeError" not in done.stderr
    text = done.stdout.decode("latin-1")
    assert "srv-\\u65e5\\u672c" in text  # the name, escaped for an encoding that lacks it


def test_a_huge_plan_line_is_cut_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20 KB argv[0] quoted in the plan's why must not scroll the PID and user away: the
    prompt's every line fits the terminal, cut with an ellipsis."""
    import io
    import time

    from portscope.cli import kill_cmd
    from portscope.core.kill.plan import KillPlan, Target
    from portscope.core.roles.model import StopPlan

    huge = "x" * 20_000
    target = Target(4242, time.time() - 5, huge, "alice", (huge, "--serve"))
    stop = StopPlan("signal", (4242,), "kill 4242", f"{huge} (PID 4242) reloads the server")
    plan = KillPlan(8080, "tcp", (target,), stop=stop)
    monkeypatch.setenv("COLUMNS", "80")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert kill_cmd.confirm([plan], "TERM") is False
    lines = err.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), max(map(len, lines))
    assert any(line.split()[:2] == ["PID", "4242"] for line in lines)
    assert len(lines) < 30 and any(line.endswith("…") for line in lines)
