"""The monitor's first whole poll, taken by a forked child while Textual is imported
(ahead.py, ProcNetCollector.poll_ahead): the child's answer is what a poll here gives, the
collector's own next poll starts from what the child learned, and a child that fails, is
late or is interrupted costs time only. Real sockets and real forks; only processes these
tests start are signalled."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from portscope.core.collect.ahead import NICER, Ahead
from portscope.core.collect.owner_store import OwnerStore
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.model import Snapshot
from support import ROOT_LISTENER, reap, spawn_python, tcp_listener, wait_for


def _reaped(pid: int) -> bool:
    """Our child `pid` is gone and reaped (waitpid no longer knows it)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _holders(snapshot: Snapshot, port: int) -> set[int]:
    return {h.pid for s in snapshot.sockets if s.port == port for h in s.holders}


def _polling_ahead(tmp_path: Path) -> tuple[ProcNetCollector, int]:
    """A collector with a store of its own whose first whole poll a child takes, and the
    child's PID."""
    collector = ProcNetCollector(store=OwnerStore(str(tmp_path / "owners")))
    assert collector.poll_ahead()
    assert collector._ahead is not None
    return collector, collector._ahead._pid


@pytest.fixture
def listener() -> Iterator[tuple[int, int]]:
    """(port, PID) of a listener held by a process of this test."""
    proc, line = spawn_python(ROOT_LISTENER)
    try:
        yield int(line), proc.pid
    finally:
        reap(proc)


def test_the_first_whole_poll_is_the_childs_and_the_next_starts_from_what_it_learned(
    tmp_path: Path, listener: tuple[int, int]
) -> None:
    port, pid = listener
    collector, child = _polling_ahead(tmp_path)
    first = collector.collect()
    # The child's poll: this process read no fd table and described nobody for it.
    assert (collector.fd_reads, collector.described, collector.full_walks) == (0, 0, 0)
    assert _holders(first, port) == {pid}
    second = collector.collect()
    assert _reaped(child)  # exited once it had saved the store, and reaped here
    assert _holders(second, port) == {pid}
    # What did not change is the very objects the child's poll showed, as after a poll
    # of this collector's own: what follows a poll tells unchanged things by identity.
    # (This test's listener only: other people's sockets may change between the polls.)
    shown = {s.inode: s for s in first.listeners_on(port) if s.inode}
    again = [s for s in second.listeners_on(port) if s.inode in shown]
    assert again and all(s is shown[s.inode] for s in again)
    # And this collector's descriptions are the child's objects: telling that a listener
    # is unchanged is then one identity check per holder, not a field-by-field compare.
    described = {h.pid: h for s in shown.values() for h in s.holders}
    processes = collector._processes
    assert described and all(processes.holder(p) is h for p, h in described.items())
    # Restored from the store the child left: no walk of every fd table here either.
    assert collector.full_walks == 0
    assert collector.poll_ahead() is False  # once only


def test_the_child_is_not_found_holding_what_it_inherited(tmp_path: Path) -> None:
    """A socket of the monitor's (or its launcher's) is copied into the forked child: the
    child closes it first, so its poll names the monitor alone."""
    with tcp_listener() as mine:
        port = mine.getsockname()[1]
        collector, child = _polling_ahead(tmp_path)
        assert _holders(collector.collect(), port) == {os.getpid()}
        collector.collect()
        assert _reaped(child)


def test_a_question_before_the_first_poll_waits_for_the_child_and_leaves_it_its_answer(
    tmp_path: Path, listener: tuple[int, int]
) -> None:
    port, pid = listener
    collector, child = _polling_ahead(tmp_path)
    asked = collector.collect(port)
    assert _reaped(child)  # the store it saves is complete before this collector reads it
    assert _holders(asked, port) == {pid}
    walked = collector.fd_reads
    first = collector.collect()
    assert collector.fd_reads == walked  # the child's answer, kept for the whole poll
    assert _holders(first, port) == {pid}


def test_the_sketch_waits_for_nothing_once_the_childs_answer_is_in(
    tmp_path: Path, listener: tuple[int, int]
) -> None:
    port, _ = listener
    collector, child = _polling_ahead(tmp_path)
    collector.collect(port)  # the child has answered and exited
    assert _reaped(child)
    assert collector.sketch() is None  # the first whole poll is at hand: no sketch
    assert collector.collect().sockets


def test_no_child_without_a_store_to_hand_over_what_it_learns(tmp_path: Path) -> None:
    assert ProcNetCollector().poll_ahead() is False
    collector = ProcNetCollector(store=OwnerStore(str(tmp_path / "owners")))
    collector.collect()
    assert collector.poll_ahead() is False  # a poll ran: too late to be ahead of it


def test_no_fork_while_another_thread_runs(tmp_path: Path) -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        collector = ProcNetCollector(store=OwnerStore(str(tmp_path / "owners")))
        assert collector.poll_ahead() is False
        assert Ahead.start(lambda: 1, lambda: None) is None
    finally:
        release.set()
        thread.join()
    assert Ahead.start(lambda: 1, lambda: None) is not None or pytest.fail("no fork")


def _waiting_child(then: object = None) -> tuple[Ahead, int]:
    """A child that answers the nice value it runs at once a byte comes on the returned
    pipe (the test holds its answer back with it)."""
    readable, writable = os.pipe()

    def work() -> int:
        os.read(readable, 1)
        return os.nice(0)

    ahead = Ahead.start(work, lambda: None)
    os.close(readable)
    assert ahead is not None
    return ahead, writable


def test_the_child_runs_nicer_and_answers_once() -> None:
    ahead, go = _waiting_child()
    assert not ahead.ready()
    os.write(go, b"x")
    os.close(go)
    answer = ahead.answer(10)
    assert answer == min(19, os.nice(0) + NICER)
    assert ahead.ready() and ahead.given
    assert ahead.answer(10) is None  # handed over once
    ahead.finish(10)
    assert _reaped(ahead._pid)


def test_ctrl_c_at_start_up_is_the_parents_to_answer() -> None:
    """The terminal sends SIGINT to the whole foreground group: the child answers anyway."""
    ahead, go = _waiting_child()
    os.kill(ahead._pid, signal.SIGINT)  # our own child
    os.write(go, b"x")
    os.close(go)
    assert isinstance(ahead.answer(10), int)
    ahead.finish(10)


def test_a_child_that_fails_or_is_late_gives_no_answer_and_is_reaped() -> None:
    def fails() -> object:
        raise RuntimeError("no poll")

    failed = Ahead.start(fails, lambda: None)
    assert failed is not None and failed.answer(10) is None
    failed.finish(10)
    assert _reaped(failed._pid)
    unpicklable = Ahead.start(lambda: threading.Lock(), lambda: None)
    assert unpicklable is not None and unpicklable.answer(10) is None
    unpicklable.finish(10)
    late, go = _waiting_child()  # never released
    started = time.monotonic()
    assert late.answer(0.2) is None
    assert time.monotonic() - started < 5
    assert _reaped(late._pid)  # killed at the deadline, and reaped
    os.close(go)


def test_what_the_child_does_after_answering_is_done_when_finish_returns(
    tmp_path: Path,
) -> None:
    mark = tmp_path / "after"
    ahead = Ahead.start(lambda: "answer", lambda: mark.write_text("saved"))
    assert ahead is not None and ahead.answer(10) == "answer"
    ahead.finish(10)
    assert mark.read_text() == "saved"


def test_the_real_monitor_names_a_listener_and_reaps_the_child_that_polled_first(
    tmp_path: Path,
) -> None:
    """`portscope` in a pseudo-terminal, launched as installed (the child forked before
    Textual loads): it names a listener of this test, the store the child saved is in the
    monitor's directory, the monitor is left with no child process, it keeps the
    listener's holder's /proc/PID/schedstat open between polls (kept_files.py), and ctrl+c
    quits it.
    The `/` filter on the listener's port keeps its row on screen however many listeners
    other people's servers add."""
    name = f"ahead{uuid.uuid4().hex[:8]}"
    proc, line = spawn_python(
        f"""
        import ctypes, socket, time
        ctypes.CDLL(None).prctl(15, b"{name}", 0, 0, 0)  # PR_SET_NAME: comm
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        print(s.getsockname()[1], flush=True)
        while True:
            time.sleep(1)
        """
    )
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "TERM": "xterm-256color",
           "COLUMNS": "160", "LINES": "48"}
    env.pop("PORTSCOPE_PORTABLE", None)
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    app = subprocess.Popen(
        [sys.executable, "-m", "portscope"], stdin=sub, stdout=sub, stderr=sub, env=env,
        start_new_session=True,  # then the pty becomes its controlling terminal, as a shell's
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(sub)
    seen = bytearray()

    def shows(text: bytes) -> bool:
        """Drained on every look: a monitor that cannot write its frames stops answering."""
        while select.select([main], [], [], 0)[0]:
            try:
                seen.extend(os.read(main, 1 << 16))
            except OSError:  # EIO: the monitor has closed the terminal (it quit)
                break
        return text in seen

    try:
        wait_for(lambda: shows(b" listening"), timeout=30)  # the header: the screen is up
        os.write(main, f"/{line}\r".encode())  # the port only: the name must come from /proc
        wait_for(lambda: shows(name.encode()), timeout=30)
        wait_for(lambda: shows(b"") and not psutil.Process(app.pid).children(), timeout=30)
        assert list((runtime / "portscope").iterdir())  # the owner store the child saved
        kept = f"/proc/{proc.pid}/schedstat"
        wait_for(lambda: shows(b"") and kept in _open_files(app.pid), timeout=30)
        os.write(main, b"\x03")  # ctrl+c: quits from the filter's input too
        wait_for(lambda: shows(b"") and app.poll() is not None, timeout=30)
        assert app.returncode == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        os.close(main)
        reap(proc)


def _open_files(pid: int) -> set[str]:
    """What `pid`'s descriptors point at (those that close meanwhile left out)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return found
