from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from portscope.core import platform_path
from real_servers import real_server  # noqa: F401  (the fixture, for every test file)
from support import reap, spawn_python

# The modules that run a second time on the portable path (issue 22): the commands and the
# monitor as a person meets them. `PORTSCOPE_PORTABLE=1 pytest -m portable` runs them so
# (with the variable set, the other tests are left out: many check the fast path's facts).
PORTABLE_MODULES = frozenset({
    "cli/test_list.py", "cli/test_list_filters.py", "cli/test_check.py",
    "cli/test_check_ports.py", "cli/test_wait.py", "cli/test_wait_listening.py",
    "cli/test_kill_cmd.py", "cli/test_kill_ports.py", "cli/test_free.py", "cli/test_run.py",
    "cli/test_hostile_cli.py", "cli/test_portable.py", "history/test_watch_cli.py",
    "tui/test_app.py", "tui/test_live.py", "tui/test_bind_panel.py", "tui/test_kill_modal.py",
    "tui/test_force_kill.py", "tui/test_hostile_tui.py", "tui/test_warm_probes.py",
    "roles/test_kill_dialog_real.py", "roles/test_kill_proof_real.py",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "portable: also run on the portable path (PORTSCOPE_PORTABLE=1 -m portable)"
    )
    if platform_path.portable():
        # The picture tests are left out of that run on purpose: their stored pictures are
        # not "unused" (syrupy would fail the run for them).
        config.option.warn_unused_snapshots = True


@pytest.hookimpl(tryfirst=True)  # before -m reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = os.path.dirname(__file__)
    for item in items:
        module = os.path.relpath(str(item.path), tests).replace(os.sep, "/")
        if module in PORTABLE_MODULES:
            item.add_marker(pytest.mark.portable)
    if platform_path.portable():
        kept = [i for i in items if i.get_closest_marker("portable")]
        left = [i for i in items if not i.get_closest_marker("portable")]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = kept


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
