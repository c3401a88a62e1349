"""Shell scripts around a real server (issue 17, "roles from structure, not words").

A script whose only `while` is in a comment, and a CI job's readiness loop, restart
nothing: `check` plans the server alone, and `kill --yes` leaves the script to run on to its
own end (its later steps run: it writes a file after the server is gone). A real restart
loop, in a script file or run through "$@", is still stopped loop first, then the server.

Every process here is started by the test on 127.0.0.1 in its own process group, and only
that group is signalled.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from real_servers import _kill_own_group, free_port, listener_holders, ppid

PY = shlex.quote(sys.executable)
READY = 30.0  # seconds for a server to listen: start-up is ~0.1 s, the rest is a busy machine


@dataclass(frozen=True)
class Job:
    proc: subprocess.Popen[bytes]
    port: int
    server: int  # the listener: the shell's child
    workdir: Path


Start = Callable[[Callable[[int, Path], list[str]]], Job]


@pytest.fixture
def job() -> Iterator[Start]:
    """start(argv_of): run argv_of(port, workdir) in a new session in workdir, and wait
    until a child of it listens on the port."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(argv_of: Callable[[int, Path], list[str]]) -> Job:
        workdir = Path(tempfile.mkdtemp(prefix="portscope-shell-job-"))
        port = free_port()
        argv = argv_of(port, workdir)
        with open(workdir / "log", "wb") as log:
            proc = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append((proc, workdir))
        deadline = time.monotonic() + READY
        while True:
            held = [p for p in listener_holders(port) if ppid(p) == proc.pid]
            if held:
                return Job(proc, port, held[0], workdir)
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "log").read_text(errors="replace")[-1500:]
                pytest.fail(f"{argv} did not listen on {port}; its log:\n{log_text}")
            time.sleep(0.02)

    yield start
    for proc, workdir in started:
        _kill_own_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def plan(port: int) -> dict[str, object]:
    checked = portscope("check", str(port), "--json")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    stop: dict[str, object] = json.loads(checked.stdout)["stop"]
    return stop


def kill(port: int) -> dict[str, object]:
    killed = portscope("kill", str(port), "--yes", "--json")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    outcome: dict[str, object] = json.loads(killed.stdout)
    return outcome


def ran_to_its_end(j: Job) -> None:
    """The script was not signalled: it exited by itself, with 0, after its last step."""
    assert j.proc.wait(timeout=15) == 0, (j.workdir / "log").read_text(errors="replace")
    assert (j.workdir / "after.txt").read_text() == "after\n"


def test_while_in_a_comment_makes_no_restarter(job: Start) -> None:
    def argv(port: int, wd: Path) -> list[str]:
        (wd / "job.sh").write_text(
            "#!/bin/bash\n"
            "# keep the port open while the job runs; until then nothing else happens\n"
            f"{PY} -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1\n"
            "echo after > after.txt\n"
        )
        return ["bash", "job.sh"]  # relative: read through the shell's own cwd

    j = job(argv)
    stop = plan(j.port)
    assert stop["how"] == "signal" and stop["pids"] == [j.server], stop
    outcome = kill(j.port)
    assert [t["pid"] for t in outcome["targets"]] == [j.server]  # type: ignore[attr-defined]
    ran_to_its_end(j)


def test_a_ci_readiness_loop_is_not_a_target(job: Start) -> None:
    """`server & while ! probe; do sleep 0.1; done; ...; wait`: the probe is python too,
    but not the server's command; the job's steps after `wait` still run."""

    def argv(port: int, wd: Path) -> list[str]:
        probe = (
            f"{PY} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\""
        )
        text = (
            f"{PY} -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 &\n"
            f"while ! {probe} 2>/dev/null; do sleep 0.1; done\n"
            "echo ready > ready.txt\n"
            "wait\n"
            "echo after > after.txt\n"
        )
        return ["bash", "-c", text]

    j = job(argv)
    deadline = time.monotonic() + READY
    while not (j.workdir / "ready.txt").exists():  # the loop is over: only `wait` is left
        assert time.monotonic() < deadline, "the readiness loop never ended"
        time.sleep(0.02)
    stop = plan(j.port)
    assert stop["pids"] == [j.server], stop
    kill(j.port)
    ran_to_its_end(j)


def _loop_script(port: int, wd: Path) -> list[str]:
    (wd / "serve.sh").write_text(
        "#!/bin/bash\n"
        "# restart the server whenever it exits\n"
        f"while true; do\n  {PY} -m http.server {port} --bind 127.0.0.1\n  sleep 0.3\ndone\n"
    )
    return ["bash", str(wd / "serve.sh")]


def _loop_args(port: int, wd: Path) -> list[str]:
    loop = 'while :; do "$@"; sleep 0.3; done'
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return ["bash", "-c", loop, "loop", *server]


@pytest.mark.parametrize("argv", [_loop_script, _loop_args], ids=["script-file", "args"])
def test_a_real_restart_loop_is_stopped_first(
    job: Start, argv: Callable[[int, Path], list[str]]
) -> None:
    j = job(argv)
    stop = plan(j.port)
    assert stop["pids"] == [j.proc.pid, j.server], stop
    # The loop holds nothing: it is a target on the kernel's word that it is the server's
    # parent, and what it runs as.
    facts = {(f["pid"], f["fact"]): f["value"] for f in stop["evidence"]}
    assert facts[(j.server, "ancestor")] == str(j.proc.pid)
    assert os.path.basename(facts[(j.proc.pid, "exe")]) == "bash"
    outcome = kill(j.port)  # exit 0: the port stayed free through the after-watch
    assert [t["pid"] for t in outcome["targets"]] == [j.proc.pid, j.server]  # type: ignore[attr-defined]
    assert j.proc.wait(timeout=15) != 0  # the loop was signalled, not left to run
    assert not listener_holders(j.port)
