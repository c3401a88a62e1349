from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from real_servers import real_server  # noqa: F401  (the fixture, for every test file)
from support import reap, spawn_python


@pytest.fixture(scope="session", autouse=True)
def private_state() -> Iterator[str]:
    """The suite's own state directory: the audit log and crash logs of the kills it makes
    land there (and are removed with it), never in the home of the person running it."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="portscope-state-")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = path
    yield path
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn() -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start Python children; every one is killed and reaped when the test ends."""
    started: list[subprocess.Popen[str]] = []

    def _spawn(code: str, **kwargs: object) -> tuple[subprocess.Popen[str], str]:
        proc, line = spawn_python(code, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc, line

    yield _spawn
    for proc in started:
        reap(proc)


@pytest.fixture
def passer() -> Iterator[subprocess.Popen[str]]:
    """A process that holds a listener until told to hand it to a new child and close its
    own copy (as a server that re-execs itself, or a supervisor, does)."""
    code = """
import os, socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
child = subprocess.Popen(
    [sys.executable, "-c", "import sys, time; print('ready', flush=True); time.sleep(600)"],
    pass_fds=[s.fileno()], stdout=subprocess.PIPE, text=True,
)
child.stdout.readline()
s.close()
print(child.pid, flush=True)
sys.stdin.readline()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own group: the child it started too
    proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream:
            stream.close()
