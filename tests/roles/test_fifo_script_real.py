"""A listener whose parent is `bash <FIFO>` (issue 17: "no blocking or privileged I/O on
paths from process data").

An unprivileged user runs `bash /tmp/.../job.sh` where job.sh is a FIFO the user feeds
the server's command through and keeps open. Opening it, or reading it, would block
whoever does so; so portscope must never open it: `check`, `list`, `watch` and `kill`
answer within 5 s, and the TUI keeps answering keys while its history names who restarted
the server (on the UI thread) and `k` plans the stop.

Everything runs on 127.0.0.1 in the test's own process group; as root the shell runs as
`nobody` (domain.md 6), else as the test's own user.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portscope.core.collect import default_collector
from portscope.tui.app import PortscopeApp
from portscope.tui.help_screen import HelpScreen
from portscope.tui.kill_modal import KillModal
from real_servers import _kill_own_group, free_port, listener_holders, missing, ppid
from support import NOBODY
from tui.tui_fakes import until

ANSWER = 5.0  # seconds every command and key has to answer in (the done-when)
PY = "/usr/bin/python3"  # nobody may run it (an interpreter under /root it may not)


@dataclass
class FifoShell:
    proc: subprocess.Popen[bytes]
    fifo: Path
    writer: int  # our end of the FIFO, kept open: a reader of it blocks until we write
    port: int
    workdir: Path
    server: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _guard: threading.Timer | None = None

    def guard(self, seconds: float) -> None:
        """If a regression blocks on the FIFO, unblock it after `seconds`, so the test
        fails (its deadlines passed) instead of hanging the run; cancelled at teardown."""
        self._guard = threading.Timer(seconds, self.unblock)
        self._guard.daemon = True
        self._guard.start()

    def unblock(self) -> None:
        """A reader blocked in read() gets end-of-file once our writer is closed; one
        blocked in open() gets through when a writer comes and goes."""
        self.close_writer()
        _release(self.fifo, seconds=10)

    def close_writer(self) -> None:
        """Once (the fixture and a test's watchdog may both ask): a second close could hit
        a descriptor number reused by then."""
        with self._lock:
            if self.writer >= 0:
                os.close(self.writer)
                self.writer = -1

    def serve(self) -> int:
        """Feed the server's command; wait until it (the shell's child) listens."""
        os.write(self.writer, f"{PY} -m http.server {self.port} --bind 127.0.0.1\n".encode())
        deadline = time.monotonic() + 30
        while True:
            held = [p for p in listener_holders(self.port) if ppid(p) == self.proc.pid]
            if held and held[0] != self.server:
                self.server = held[0]
                return self.server
            assert self.proc.poll() is None, "the FIFO's shell exited"
            assert time.monotonic() < deadline, f"nothing listens on {self.port}"
            time.sleep(0.02)


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if not os.access("/usr/bin/setpriv", os.X_OK):
        missing("setpriv is not installed")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def fifo_shell() -> Iterator[FifoShell]:
    if not os.access(PY, os.X_OK):
        missing(f"{PY} is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="portscope-fifo-"))
    workdir.chmod(0o755)
    fifo = workdir / "job.sh"
    os.mkfifo(fifo, 0o600)
    if os.geteuid() == 0:
        os.chown(fifo, NOBODY, NOBODY)
    proc = subprocess.Popen(
        [*_as_user(), "bash", str(fifo)], cwd=workdir, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    writer = -1
    shell: FifoShell | None = None
    try:
        deadline = time.monotonic() + 30
        while writer < 0:  # ENXIO until bash has opened its end
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO and proc.poll() is None, exc
                assert time.monotonic() < deadline, "bash never opened the FIFO"
                time.sleep(0.02)
        shell = FifoShell(proc, fifo, writer, free_port(), workdir)
        shell.serve()
        yield shell
    finally:
        if shell is not None:
            if shell._guard is not None:
                shell._guard.cancel()
            shell.close_writer()
        elif writer >= 0:
            os.close(writer)
        _kill_own_group(proc)
        _release(fifo)
        shutil.rmtree(workdir, ignore_errors=True)


def _release(fifo: Path, seconds: float = 1.0) -> None:
    """If anything of ours still waits to open the FIFO (a regression), open and close its
    other end, so it reads end-of-file instead of hanging the test run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return  # ENXIO: no reader at all, so none waits
        time.sleep(0.05)


def timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "portscope", *args],
            capture_output=True, text=True, timeout=ANSWER * 4, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"portscope {' '.join(args)} did not answer in {ANSWER * 4} s")
    took = time.monotonic() - started
    assert took < ANSWER, f"portscope {' '.join(args)} took {took:.1f} s"
    return done, took


def test_every_command_answers_with_a_fifo_script_parent(fifo_shell: FifoShell) -> None:
    port = str(fifo_shell.port)
    checked, _ = timed("check", port, "--json")
    assert checked.returncode == 1, checked.stderr
    stop = json.loads(checked.stdout)["stop"]
    # The FIFO is unknown: no loop, so only the listener is a target (not nobody's shell).
    assert stop["pids"] == [fifo_shell.server], stop

    listed, _ = timed("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert port in listed.stdout

    watch = subprocess.Popen(
        [sys.executable, "-m", "portscope", "watch", "--port", port, "--json", "--initial",
         "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    try:
        first = _line_within(watch, ANSWER)
        assert json.loads(first)["event"] == "listen"
        # A restart: the shell reads the next command from the FIFO, and `watch` names it
        # as who restarted the server (its parent), without opening the FIFO.
        old = fifo_shell.server
        os.kill(old, signal.SIGTERM)  # our own server (the shell's child)
        new = fifo_shell.serve()
        deadline = time.monotonic() + ANSWER
        restarted = None
        while restarted is None:
            event = json.loads(_line_within(watch, deadline - time.monotonic()))
            assert event["event"] in ("unlisten", "restart"), event
            if event["event"] == "restart":
                restarted = event
        assert restarted["pids"] == [new] and restarted["previous_pids"] == [old]
        assert restarted["restarted_by"] == {"pid": fifo_shell.proc.pid, "name": "bash"}
    finally:
        _kill_own_group(watch)  # type: ignore[arg-type]
        if watch.stdout:
            watch.stdout.close()

    killed, _ = timed("kill", port, "--yes", "--json")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert [t["pid"] for t in json.loads(killed.stdout)["targets"]] == [fifo_shell.server]
    assert fifo_shell.proc.poll() is None  # nobody's shell was not signalled


def _line_within(proc: subprocess.Popen[str], seconds: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, seconds))
    assert ready, f"watch printed nothing within {seconds:.1f} s"
    line = proc.stdout.readline()
    assert line, "watch ended"
    return line


async def test_the_tui_keeps_answering_keys_with_a_fifo_script_parent(
    fifo_shell: FifoShell,
) -> None:
    """The history runs on the UI thread: a restart makes it name the new server's parent
    (`bash <FIFO>`), with the FIFO open for writing, so a read of it would block forever.
    Each step, from the key (or the restart) to what it shows, takes less than 5 s. A guard
    unblocks the FIFO after 30 s, so that a regression fails instead of hanging."""
    before = gc.get_threshold()
    fifo_shell.guard(30)
    app = PortscopeApp(default_collector(), interval=0.2)
    async with app.run_test(size=(120, 36)) as pilot:

        async def step(what: str, keys: tuple[str, ...], done: Callable[[], object]) -> None:
            started = time.monotonic()
            if keys:
                await pilot.press(*keys)
            await until(pilot, done, timeout=ANSWER)
            took = time.monotonic() - started
            assert took < ANSWER, f"{what} took {took:.1f} s"

        await step("the first poll", (), lambda: app.latest_snapshot is not None)
        await step("a filter", ("slash", *str(fifo_shell.port), "enter"),
                   lambda: app.main.table.row_count >= 1 and not app.main.looking_up)

        started = time.monotonic()
        os.kill(fifo_shell.server, signal.SIGTERM)  # our server: the shell starts the next
        new = fifo_shell.serve()

        def restarted() -> bool:
            return any(
                e.kind == "restart" and e.pids == (new,) and e.restarted_by is not None
                for e in app.history.events
            )

        await step("the restart", (), restarted)
        assert time.monotonic() - started < ANSWER
        [event] = [e for e in app.history.events if e.kind == "restart" and e.pids == (new,)]
        assert event.restarted_by is not None
        assert event.restarted_by.pid == fifo_shell.proc.pid
        assert event.restarted_by.note == ""  # its script is not read here: no "shell loop"

        await step("? opens help", ("question_mark",), lambda: isinstance(app.screen, HelpScreen))
        await step("q closes it", ("q",), lambda: app.screen is app.main)
        await step("the row", (), lambda: app.main.table.row_count >= 1
                   and not app.main.looking_up)
        row = app.selected_row()
        assert row is not None and [h.pid for h in row.holders] == [new]

        def confirming() -> bool:
            return isinstance(app.screen, KillModal) and app.screen.stage == "confirm"

        await step("k plans the stop", ("k",), confirming)
        modal = app.screen
        assert isinstance(modal, KillModal)
        shown = modal.plan  # the FIFO is unknown: only the listener is a target
        assert shown is not None and [t.pid for t in shown.targets] == [new]
        await step("escape says no", ("escape",), lambda: app.screen is app.main)
        await pilot.press("q")
    assert fifo_shell.proc.poll() is None and listener_holders(fifo_shell.port)
    assert gc.get_threshold() == before and not gc.get_freeze_count()
