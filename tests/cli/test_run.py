"""`portscope run --port P -- COMMAND`: COMMAND is exec'd (same PID, its own exit code and
signals) with PORT=P and {port} replaced; a busy P is refused, or handled by --next, --wait
or --stop (the stop plan `kill` carries out, with its confirmation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.quiet_ports import quiet_ports
from cli.terminal import on_terminal
from support import ROOT_LISTENER, exited, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
# COMMAND for the tests: says which port it got, how, and in which process.
REPORT = "import os, sys; print(os.environ['PORT'], *sys.argv[1:], os.getpid(), flush=True)"


def run(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portscope", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_free_port_execs_command_with_port_set() -> None:
    port = quiet_ports()
    proc = run("--port", str(port), "--", sys.executable, "-c", REPORT, "{port}", "a{port}b")
    out, err = finish(proc)
    assert proc.returncode == 0, err
    # exec, not a child: COMMAND runs in the very process portscope was started as
    assert out == f"{port} {port} a{port}b {proc.pid}\n"
    assert err == ""


def test_exit_code_and_signals_are_commands_own() -> None:
    port = str(quiet_ports())
    code = run("--port", port, "--", sys.executable, "-c", "import sys; sys.exit(7)")
    finish(code)
    assert code.returncode == 7
    killed = run("--port", port, "--", sys.executable, "-c",
                 "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    finish(killed)
    assert killed.returncode == -signal.SIGTERM
    # Python ignores SIGPIPE; COMMAND must not inherit that (`COMMAND | head` must end it).
    status = run("--port", port, "--", "sh", "-c", "grep SigIgn /proc/self/status")
    out, _ = finish(status)
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), out


def test_a_busy_port_is_refused_in_one_line_and_command_never_runs(tmp_path: Path) -> None:
    port = quiet_ports()
    marker = tmp_path / "ran"
    with tcp_listener("127.0.0.1", port):
        proc = run("--port", str(port), "--", "touch", str(marker))
        out, err = finish(proc)
    assert proc.returncode == 1
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"portscope: port {port}/tcp is in use: ")
    assert f"pid {os.getpid()}" in err and err.endswith("(pass --next, --wait or --stop)\n")
    assert not marker.exists()


def test_next_takes_the_next_free_port() -> None:
    port = quiet_ports(2)
    with tcp_listener("127.0.0.1", port):
        proc = run("--port", str(port), "--next", "--", sys.executable, "-c", REPORT)
        out, err = finish(proc)
    assert proc.returncode == 0, err
    assert out == f"{port + 1} {proc.pid}\n"
    assert err.startswith(f"portscope: port {port}/tcp is in use: ")
    assert err.endswith(f"; starting on port {port + 1}\n")


def test_wait_blocks_until_the_port_frees_then_runs() -> None:
    port = quiet_ports()
    listener = tcp_listener("127.0.0.1", port)
    proc = run("--port", str(port), "--wait", "--", sys.executable, "-c", REPORT)
    try:
        assert proc.stderr is not None
        waiting = proc.stderr.readline()  # not a terminal: one line per new reason
        assert waiting.startswith("waiting: ") and f"pid {os.getpid()}" in waiting
        assert proc.poll() is None
    finally:
        listener.close()
    out, err = finish(proc)
    assert proc.returncode == 0, err
    assert out == f"{port} {proc.pid}\n"  # stdout is COMMAND's alone
    assert f"port {port}/tcp is free on 0.0.0.0" in err


def test_wait_times_out_with_exit_one(tmp_path: Path) -> None:
    port = quiet_ports()
    marker = tmp_path / "ran"
    with tcp_listener("127.0.0.1", port):
        started = time.monotonic()
        proc = run("--port", str(port), "--wait", "--timeout", "0.3", "--", "touch", str(marker))
        _, err = finish(proc)
    assert proc.returncode == 1 and "timed out after 0.3 s" in err
    assert time.monotonic() - started < 30 and not marker.exists()


def test_stop_stops_the_holder_then_runs(spawn: Spawn) -> None:
    holder, port = spawn(ROOT_LISTENER)
    proc = run("--port", port, "--stop", "--yes", "--", sys.executable, "-c", REPORT)
    out, err = finish(proc)
    assert proc.returncode == 0, err
    assert exited(holder) and holder.returncode == -signal.SIGTERM
    assert f"PID {holder.pid}" in err and "SIGTERM" in err
    assert out == f"{port} {proc.pid}\n"


def test_stop_without_a_terminal_or_yes_signals_nothing(spawn: Spawn) -> None:
    holder, port = spawn(ROOT_LISTENER)
    proc = run("--port", port, "--stop", "--", "true")
    out, err = finish(proc)
    assert proc.returncode == 2 and out == ""
    assert err == "portscope: no terminal to confirm on: pass --yes to stop without asking\n"
    assert not exited(holder, timeout=0.3)


def test_stop_asks_first_and_no_means_nothing_is_signalled(spawn: Spawn, tmp_path: Path) -> None:
    holder, port = spawn(ROOT_LISTENER)
    marker = tmp_path / "ran"
    seen, done = on_terminal(["run", "--port", port, "--stop", "--", "touch", str(marker)],
                             answer="n\n")
    assert done.returncode == 1
    assert f"{holder.pid}".encode() in seen and b"cancelled: nothing was signalled" in seen
    assert not exited(holder, timeout=0.3) and not marker.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "portscope: no COMMAND given: portscope run --port P -- COMMAND [ARG...]\n"),
        (["--", "/nonexistent/portscope-test"], 127,
         "portscope: '/nonexistent/portscope-test': command not found\n"),
        (["--yes", "--", "true"], 2, "portscope: --yes goes with --stop"),
        (["--next", "--wait", "--", "true"], 2, "not allowed with argument"),
    ],
)
def test_bad_commands_are_one_line(args: list[str], code: int, message: str) -> None:
    proc = run("--port", str(quiet_ports()), *args)
    out, err = finish(proc)
    assert proc.returncode == code and out == ""
    assert message in err and err.count("\n") == 1, err
