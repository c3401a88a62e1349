"""The owner cache (OwnerIndex) against real processes: it must stay exact while skipping
the full /proc/*/fd walk when nothing calls for one.

The index reads a /proc-like directory holding only this test's processes (symlinks into
the real /proc), so other tests running at the same time cannot trigger walks here; the
fds, sockets and processes are all real.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portscope.core.collect import Yielded, fd_reads, owners
from portscope.core.collect.owners import OwnerIndex
from portscope.core.collect.proc_collector import ProcNetCollector
from support import reap, run_as_nobody, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Holds a listener and a plain file; obeys one command per stdin line.
_SERVER = """
import os, signal, socket, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked children are reaped by the kernel
f = open(os.devnull)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(os.fstat(s.fileno()).st_ino, s.getsockname()[1], flush=True)
kids = []
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "fork":
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(60)
        kids.append(pid)
        print(pid, flush=True)
    elif cmd == "reuse":  # a new socket takes the fd number the file had
        number = f.fileno()
        f.close()
        t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
        assert t.fileno() == number
        print(os.fstat(t.fileno()).st_ino, flush=True)
    elif cmd == "close":
        s.close()
        print("closed", flush=True)
"""


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_SERVER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        inode, port = self.ask("")
        self.inode, self.port = int(inode), int(port)

    def ask(self, command: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().split()


@pytest.fixture
def server() -> Iterator[Server]:
    started = Server()
    yield started
    if started.proc.stdin:
        started.proc.stdin.close()
    reap(started.proc)  # kills its process group: the server and every child it forked


@pytest.fixture
def proc_view(tmp_path: Path) -> Path:
    return tmp_path


def _show(view: Path, pid: int) -> None:
    (view / str(pid)).symlink_to(f"/proc/{pid}")


def test_steady_state_is_confirmed_without_a_full_walk(server: Server, proc_view: Path) -> None:
    _show(proc_view, server.proc.pid)
    index = OwnerIndex(str(proc_view))
    live = {server.inode}
    assert index.holders(live) == {server.inode: [server.proc.pid]}
    assert index.full_walks == 1  # the first poll has nothing cached
    for _ in range(3):
        assert index.holders(live) == {server.inode: [server.proc.pid]}
        assert index.idle == {server.proc.pid}  # blocked on stdin: confirmed by CPU time
    assert index.full_walks == 1


def test_holder_closing_its_copy_is_dropped_while_the_other_stays(
    server: Server, proc_view: Path
) -> None:
    """The master closes its copy of a listener a worker still holds: the socket lives on,
    the master must leave its holders, and no full walk is needed to see it."""
    _show(proc_view, server.proc.pid)
    [child] = (int(x) for x in server.ask("fork"))
    _show(proc_view, child)
    index = OwnerIndex(str(proc_view))
    live = {server.inode}
    assert index.holders(live) == {server.inode: sorted([server.proc.pid, child])}
    assert server.ask("close") == ["closed"]
    assert index.holders(live) == {server.inode: [child]}
    assert index.holders(live) == {server.inode: [child]}
    assert index.full_walks == 1


def test_forked_child_is_found_and_dropped_without_a_full_walk(
    server: Server, proc_view: Path
) -> None:
    _show(proc_view, server.proc.pid)
    index = OwnerIndex(str(proc_view))
    live = {server.inode}
    index.holders(live)
    [child] = (int(x) for x in server.ask("fork"))
    _show(proc_view, child)
    assert index.holders(live) == {server.inode: sorted([server.proc.pid, child])}
    os.kill(child, signal.SIGKILL)  # a child of the server this test started
    wait_for(lambda: not os.path.exists(f"/proc/{child}"))
    assert index.holders(live) == {server.inode: [server.proc.pid]}
    assert index.full_walks == 1


def test_socket_in_a_reused_fd_number_is_still_found(server: Server, proc_view: Path) -> None:
    """Same fd count, same fd numbers, one of them a file before and a socket now: the
    process ran since it was read, so it is read again in full, without a full walk."""
    _show(proc_view, server.proc.pid)
    index = OwnerIndex(str(proc_view))
    index.holders({server.inode})
    [new] = (int(x) for x in server.ask("reuse"))
    live = {server.inode, new}
    pid = server.proc.pid
    assert index.holders(live) == {server.inode: [pid], new: [pid]}
    assert index.holders(live) == {server.inode: [pid], new: [pid]}
    assert index.full_walks == 1


def test_socket_nobody_holds_is_remembered(server: Server, proc_view: Path) -> None:
    """An inode without a visible holder (another user's, as non-root) costs one walk, not
    one per poll."""
    _show(proc_view, server.proc.pid)
    index = OwnerIndex(str(proc_view))
    orphan = 1  # no process has inode 1 open as a socket
    live = {server.inode, orphan}
    for _ in range(3):
        assert index.holders(live) == {server.inode: [server.proc.pid]}
    assert index.full_walks == 1


def test_the_rolling_walk_visits_each_table_once_a_period_a_share_per_poll(
    server: Server, proc_view: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 processes, a 30 s period, a poll a second (a frozen clock moved by hand): each
    poll visits its share (one or two tables), never all of them, and within one period
    every table has been visited; idle ones (all of these) are confirmed by their CPU time,
    without a read."""
    pids = [server.proc.pid, *(int(server.ask("fork")[0]) for _ in range(29))]
    for pid in pids:
        _show(proc_view, pid)
    # Until every child is asleep for good (a fork returns and enters sleep after we see it).
    settled: list[list[int]] = []
    wait_for(lambda: settled.append([owners.cpu_time(pid) for pid in pids]) or (
        len(settled) > 1 and settled[-1] == settled[-2]
    ), step=0.05)
    now = [1000.0]
    monkeypatch.setattr(owners, "clock", lambda: now[0])
    index = OwnerIndex(str(proc_view), full_every=30)
    live = {server.inode}
    assert index.holders(live) == {server.inode: sorted(pids)}
    assert index.reads == 30  # the first poll knows nothing: every table
    per_poll = []
    for _ in range(30):
        now[0] += 1
        before = index.rolled
        assert index.holders(live) == {server.inode: sorted(pids)}
        per_poll.append(index.rolled - before)
    assert max(per_poll) <= 2
    assert sum(per_poll) >= 30
    assert index.reads == 30
    assert index.full_walks == 1


# A holds a listener; B, which holds a file and one end of a socketpair to A, receives the
# listener over SCM_RIGHTS and closes the file: its fd count is as before and it holds no
# TCP socket the index checks it for, so only a whole read of its table can see it.
_PASSER = """
import os, socket, sys, time
a_end, b_end = socket.socketpair()
pid = os.fork()
if pid == 0:
    a_end.close()
    f = open(os.devnull)
    msg, fds, flags, addr = socket.recv_fds(b_end, 16, 1)
    f.close()
    print("got", flush=True)
    time.sleep(600)
    os._exit(0)
b_end.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(os.fstat(s.fileno()).st_ino, pid, flush=True)
sys.stdin.readline()
socket.send_fds(a_end, [b"x"], [s.fileno()])
time.sleep(600)
"""


def test_a_socket_passed_to_another_process_is_found_within_one_period(
    proc_view: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_PASSER)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        inode_text, child_text = proc.stdout.readline().split()
        inode, child = int(inode_text), int(child_text)
        _show(proc_view, proc.pid)
        _show(proc_view, child)
        index = OwnerIndex(str(proc_view), full_every=1.0)
        live = {inode}
        assert index.holders(live) == {inode: [proc.pid]}
        proc.stdin.write("\n")  # the parent sends; the child, blocked in recvmsg, receives
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "got"
        wait_for(lambda: index.holders(live) == {inode: sorted([proc.pid, child])}, timeout=3)
        assert index.full_walks == 1
    finally:
        reap(proc)


def test_collector_follows_fork_and_close_across_polls(server: Server) -> None:
    """The whole collector on the real /proc, polled as the TUI does: rows and holders
    change with the processes, nothing stale stays behind."""
    collector = ProcNetCollector()
    [row] = collector.collect().listeners_on(server.port)
    assert row.pids == (server.proc.pid,)
    [child] = (int(x) for x in server.ask("fork"))
    [row] = collector.collect().listeners_on(server.port)
    assert set(row.pids) == {server.proc.pid, child}
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{child}"))
    [row] = collector.collect().listeners_on(server.port)
    assert row.pids == (server.proc.pid,)
    assert server.ask("close") == ["closed"]
    assert collector.collect().listeners_on(server.port) == ()


def test_an_unchanged_listener_is_the_same_socket_from_poll_to_poll(server: Server) -> None:
    """Reused by the next whole poll while nothing about it changed (its rows and texts are
    then told unchanged by identity); a new holder makes a new Socket."""
    collector = ProcNetCollector()
    [first] = collector.collect().listeners_on(server.port)
    [again] = collector.collect().listeners_on(server.port)
    assert again is first
    [child] = (int(x) for x in server.ask("fork"))
    [forked] = collector.collect().listeners_on(server.port)
    assert forked is not first and set(forked.pids) == {server.proc.pid, child}
    [later] = collector.collect().listeners_on(server.port)
    assert later is forked


def test_a_warm_index_gives_way_between_confirmations_and_stays_exact(
    server: Server, proc_view: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "GIVE_WAY_EVERY", 1)  # a look before each confirmation
    _show(proc_view, server.proc.pid)
    [child] = (int(x) for x in server.ask("fork"))
    _show(proc_view, child)
    index = OwnerIndex(str(proc_view))
    live = {server.inode}
    both = {server.inode: sorted([server.proc.pid, child])}
    assert index.holders(live) == both
    asked = iter([0, 1])  # one table confirmed, then somebody waits
    with pytest.raises(Yielded):
        index.holders(live, give_way=lambda: next(asked, 1))
    assert server.ask("close") == ["closed"]  # changed while the index was interrupted
    assert index.holders(live) == {server.inode: [child]}
    assert index.full_walks == 1


def test_a_whole_poll_gives_way_to_a_question_about_one_port(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`b` pressed while the monitor polls: the poll stops at its next pause (Yielded)
    instead of making the question wait for the rest of it; the question gets the holder,
    and the next whole poll is whole and exact."""
    collector = ProcNetCollector()
    collector.collect()
    read_tables = collector._read_tables
    polling, go = threading.Event(), threading.Event()

    def paused(port: int | None = None, listening: bool = False, time_wait: bool = True,
               give_way: Callable[[], int] | None = None) -> object:
        tables = read_tables(port, listening, time_wait, give_way)
        if port is None and not go.is_set():
            polling.set()
            go.wait(10)
        return tables

    monkeypatch.setattr(collector, "_read_tables", paused)
    outcomes: list[object] = []

    def poll() -> None:
        try:
            outcomes.append(collector.collect())
        except Yielded as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=poll)]
    threads[0].start()
    assert polling.wait(10)
    answers: list[object] = []
    threads.append(threading.Thread(target=lambda: answers.append(collector.collect(server.port))))
    threads[1].start()
    wait_for(lambda: bool(collector._asking))  # the question waits for the poll's lock
    go.set()
    for thread in threads:
        thread.join(10)
    assert isinstance(outcomes[0], Yielded)
    [row] = answers[0].listeners_on(server.port)  # type: ignore[attr-defined]
    assert row.pids == (server.proc.pid,)
    assert not collector._asking
    [row] = collector.collect().listeners_on(server.port)
    assert row.pids == (server.proc.pid,)


def _read_as(index: OwnerIndex) -> dict[int, tuple[dict[str, int], int]]:
    return {pid: (table.fds, table.start) for pid, table in index._tables.items()}


def test_a_cold_walk_shared_with_helper_processes_reads_what_one_thread_reads(
    server: Server, proc_view: Path
) -> None:
    kids = [int(server.ask("fork")[0]) for _ in range(3)]
    for pid in (server.proc.pid, *kids):
        _show(proc_view, pid)
    (proc_view / "2147483647").symlink_to("/proc/2147483647")  # no such process
    # The helpers' own /proc: they read the forked children against the server's table
    # (fd_reads.Inherited), which must give what readlink gives.
    (proc_view / "self").symlink_to("/proc/self")
    live = {server.inode}
    alone = OwnerIndex(str(proc_view), helped_from=10**9)
    helped = OwnerIndex(str(proc_view), helped_from=1)
    assert alone.holders(live) == {server.inode: sorted([server.proc.pid, *kids])}
    assert helped.holders(live) == alone.holders(live)
    assert (helped.helped, alone.helped) == (4, 0)  # every live table came from a helper
    assert _read_as(helped) == _read_as(alone)
    # Its witnesses are the ones this process would take: the next poll confirms, no walk
    # (the one read is the PID nobody may read, tried again as new).
    reads = helped.reads
    assert helped.holders(live) == alone.holders(live)
    assert (helped.full_walks, helped.reads) == (1, reads + 1)
    # A process met later is read here when its fds are fewer than the threshold.
    later = int(server.ask("fork")[0])
    _show(proc_view, later)
    helped._helped_from = 10**9
    assert helped.holders(live)[server.inode] == sorted([server.proc.pid, *kids, later])
    assert helped.helped == 4


def test_new_processes_after_a_stale_restore_are_shared_with_helpers_and_make_it_heavy(
    server: Server, proc_view: Path
) -> None:
    """A store whose processes are gone (a restarted pre-fork server) leaves every running
    process new to the index: as many tables as a cold walk's, read by helpers from the
    threshold, and what `heavy` (the monitor's "draw the sockets first?") says before."""
    kids = [int(server.ask("fork")[0]) for _ in range(3)]
    first = OwnerIndex(str(proc_view), helped_from=1)
    assert first.heavy() is False  # nothing to read: an empty view
    _show(proc_view, server.proc.pid)
    first.holders({server.inode})
    learned = first.export()
    for pid in kids:  # the old generation's store; these are the new processes
        _show(proc_view, pid)
    index = OwnerIndex(str(proc_view), helped_from=1)
    index.restore(learned)
    assert index.heavy() is True
    assert index.holders({server.inode}) == {server.inode: sorted([server.proc.pid, *kids])}
    assert index.helped == 3 and index.full_walks == 0
    assert index.heavy() is False  # every process known now
    settled = OwnerIndex(str(proc_view), helped_from=10**9)
    settled.restore(learned)
    assert settled.heavy() is False  # 3 new tables of a few fds: a quick poll


@pytest.mark.parametrize("helper", ["false", "echo", "late", "missing"])
def test_helpers_that_fail_or_are_late_leave_the_walk_to_this_process(
    helper: str, server: Server, proc_view: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that exits non-zero, answers garbage, hangs past the timeout, or cannot be
    started costs time, never an owner."""
    late = tmp_path / "late"
    late.write_text("#!/bin/sh\nexec sleep 30\n")
    late.chmod(0o700)
    interpreter = {"false": "/bin/false", "echo": "/bin/echo", "late": str(late),
                   "missing": str(tmp_path / "no-such-python")}[helper]
    monkeypatch.setattr(sys, "executable", interpreter)
    monkeypatch.setattr(owners.fd_reads, "HELPER_TIMEOUT", 0.3)
    view = proc_view / "view"
    view.mkdir()
    _show(view, server.proc.pid)
    index = OwnerIndex(str(view), helped_from=1)
    assert index.holders({server.inode}) == {server.inode: [server.proc.pid]}
    assert index.helped == 0 and index.reads == 1


def test_a_helper_that_takes_no_share_leaves_every_table_to_the_others(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's PIDs go to whichever helper asks next, a share at a time: one that never
    asks (it failed, or its core was busy) leaves every table to the other, none to this
    process (fixed halves gave it half the walk)."""
    kids = [int(server.ask("fork")[0]) for _ in range(3 * owners.fd_reads.SHARE)]
    failed = tmp_path / "failed"
    stand_in = tmp_path / "python"
    stand_in.write_text(
        f"#!/bin/sh\nmkdir {failed} 2>/dev/null && exec /bin/false\nexec {sys.executable} \"$@\"\n"
    )
    stand_in.chmod(0o700)
    monkeypatch.setattr(sys, "executable", str(stand_in))
    pids = [server.proc.pid, *kids]
    tables, refused, _ = owners.fd_reads.read_many("/proc", pids, 2)
    assert failed.is_dir()  # one of the two helpers was /bin/false
    assert sorted(tables) == sorted(pids) and refused == {}
    assert all(server.inode in table[4] for table in tables.values())


def test_a_walk_longer_than_a_pipe_holds_still_reaches_the_helpers(
    server: Server, tmp_path: Path
) -> None:
    """The PIDs are written as the helpers take them: a walk of more than a pipe's 64 KiB
    (8,192 PIDs) is fed in rounds, its last share too. A stand-in /proc names the server
    with the largest PID (the last share); the others are not there."""
    (tmp_path / "4000000").symlink_to(f"/proc/{server.proc.pid}")
    pids = [*range(1, 10_001), 4_000_000]
    tables, refused, _ = owners.fd_reads.read_many(str(tmp_path), pids, 2)
    assert list(tables) == [4_000_000] and refused == {}
    assert server.inode in tables[4_000_000][4]


# Waits on stdin; on a line, starts a thread that spins 50 ms of CPU and then sleeps, and
# says so once it has spun.
_THREADS = """
import sys, threading, time
spun = threading.Event()
def spin():
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    spun.set()
    time.sleep(600)
print("ready", flush=True)
sys.stdin.readline()
threading.Thread(target=spin, daemon=True).start()
spun.wait()
print("threaded", flush=True)
sys.stdin.readline()
"""


def _read_while_idle(pid: int) -> tuple[fd_reads.Table, tuple[int, bool]]:
    """read_table's answer, and every thread's CPU time read just before and just after
    it, the same (the process did not run meanwhile: it is asleep, or about to be)."""
    for _ in range(100):
        before = fd_reads.activity("/proc", pid, None)
        table = fd_reads.read_table("/proc", pid)
        if table is not None and fd_reads.activity("/proc", pid, None) == before:
            return table, before
        time.sleep(0.01)
    raise AssertionError(f"{pid} kept running")


def test_a_tables_cpu_time_is_the_main_threads_alone_only_while_it_has_no_other() -> None:
    """read_table's witness, the CPU time taken before the table: one read of the main
    thread's schedstat while the stat says one thread, every thread's sum once there are
    two (a thread's time is not in the main thread's)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,  # its own group: what reap() stops
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "ready\n"
        table, every = _read_while_idle(proc.pid)
        assert table[1] == every and every[1] is True
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "threaded\n"
        table, every = _read_while_idle(proc.pid)
        assert table[1] == every and every[1] is False
        main = fd_reads.schedstat(f"/proc/{proc.pid}/schedstat")
        assert every[0] >= main + 40_000_000  # the spinning thread's 50 ms of CPU
    finally:
        reap(proc)


def test_helpers_hold_none_of_our_descriptors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper spawned while we hold an inheritable socket (one a parent passed us, say)
    does not hold it too: it sees its three standard streams alone."""
    seen = tmp_path / "seen"
    stand_in = tmp_path / "python"
    stand_in.write_text(f"#!/bin/sh\nexec ls /proc/self/fd > {seen}\n")
    stand_in.chmod(0o700)
    monkeypatch.setattr(sys, "executable", str(stand_in))
    with socket.socket() as passed:
        passed.set_inheritable(True)
        assert owners.fd_reads.read_many("/proc", [os.getpid()], 1) == ({}, {}, {})  # no answer
    # 3 is the directory ls lists, not one of ours.
    assert sorted(int(fd) for fd in seen.read_text().split()) == [0, 1, 2, 3]


# Starts as root; on a line from the test, becomes nobody (as `su` does before it execs:
# a credential change makes a process undumpable, exec or PR_SET_DUMPABLE makes it readable
# again) and listens.
_DROPPER = """
import ctypes, os, socket, sys
print("ready", flush=True)
sys.stdin.readline()
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can drop to nobody")
def test_a_table_we_may_not_read_is_tried_again_only_once_its_process_ran() -> None:
    """As nobody, root's process is refused once, then costs no read while it sleeps
    (it used to be read as new every poll); once it has become ours and listens, the next
    poll finds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DROPPER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    # A view nobody may list (pytest's tmp_path is under a 0700 directory of root's).
    with tempfile.TemporaryDirectory() as where:
        proc_view = Path(where)
        proc_view.chmod(0o755)
        _refused_then_found(proc, proc_view)


def _refused_then_found(proc: subprocess.Popen[str], proc_view: Path) -> None:
    try:
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        assert stdout.readline().strip() == "ready"
        _wait_asleep(proc.pid)
        _show(proc_view, proc.pid)

        def as_nobody() -> tuple[list[int], dict[int, list[int]], int]:
            index = OwnerIndex(str(proc_view))
            reads = []
            for _ in range(3):  # refused, then asleep: not read again
                index.holders(set())
                reads.append(index.reads)
            stdin.write("\n")
            stdin.flush()
            inode = int(stdout.readline())
            found = index.holders({inode})
            reads.append(index.reads)
            return reads, found, inode

        reads, found, inode = run_as_nobody(as_nobody)  # type: ignore[misc]
        assert reads == [1, 1, 1, 2]
        assert found == {inode: [proc.pid]}
    finally:
        reap(proc)


# A fresh interpreter (pytest has loaded much that a real run has not) drops to nobody, as
# a non-root user's portscope is, and walks a view of itself with helpers.
_COLD_AS_NOBODY = """
import _socket, os, sys  # not `socket`: it loads `select`, which the run under test may not
from portscope.core.collect.owners import OwnerIndex
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
view = sys.argv[1]
os.symlink(f"/proc/{os.getpid()}", f"{view}/{os.getpid()}")
s = _socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
inode = os.fstat(s.fileno()).st_ino
assert "select" not in sys.modules
print(OwnerIndex(view, helped_from=1).holders({inode}) == {inode: [os.getpid()]})
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can drop to nobody")
def test_a_cold_walk_with_helpers_as_a_user_with_less_than_root() -> None:
    """As nobody (who may not even run this interpreter, here under /root), the walk with
    helpers still answers: every step of it uses what the interpreter has loaded (a lazy
    import of `select` failed there: a C module under /root)."""
    with tempfile.TemporaryDirectory() as where:
        Path(where).chmod(0o777)  # nobody names itself in it
        done = subprocess.run(
            [sys.executable, "-c", _COLD_AS_NOBODY, where],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert (done.stdout, done.stderr[-300:], done.returncode) == ("True\n", "", 0)


def _wait_asleep(pid: int) -> None:
    """Until `pid`'s CPU time stops moving between two looks (it is blocked)."""
    seen = [owners.cpu_time(pid)]

    def settled() -> bool:
        seen.append(owners.cpu_time(pid))
        return seen[-1] == seen[-2]

    wait_for(settled)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can drop to nobody")
def test_a_refusal_is_stored_and_the_next_run_skips_a_process_that_has_not_run() -> None:
    """A one-shot run as nobody used to try every process of root's again; the store now
    says which were refused, and with what CPU time."""
    from portscope.core.collect.owner_store import Learned, OwnerStore

    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
    )
    try:
        assert sleeper.stdout is not None
        sleeper.stdout.readline()
        _wait_asleep(sleeper.pid)  # from here it does not run: the next run may skip it
        with tempfile.TemporaryDirectory() as where:
            Path(where).chmod(0o777)  # nobody writes its store here
            view = Path(where, "view")
            view.mkdir(mode=0o755)
            _show(view, sleeper.pid)
            path = f"{where}/owners"

            def as_nobody() -> tuple[int, int, int]:
                first = OwnerIndex(str(view))
                first.holders(set())
                assert OwnerStore(path).save(Learned(first.export(), {}))
                learned = OwnerStore(path).load()
                assert learned is not None
                second = OwnerIndex(str(view))
                second.restore(learned.owners)
                second.holders(set())
                return first.reads, second.reads, len(learned.owners.refused)

            assert run_as_nobody(as_nobody) == (1, 0, 1)
    finally:
        reap(sleeper)


def test_helpers_say_which_tables_they_may_not_read(tmp_path: Path) -> None:
    """A process whose fd table cannot be read (here a stand-in /proc entry whose fd is
    not a directory; for a user, another user's process) comes back refused, with its CPU
    time, so this process does not try it again."""
    entry = tmp_path / "4242"
    (entry / "task" / "4242").mkdir(parents=True)
    (entry / "task" / "4242" / "schedstat").write_text("777 0 0\n")
    (entry / "fd").write_text("")
    assert owners.fd_reads.read_many(str(tmp_path), [4242], 1) == ({}, {4242: (777, True)}, {})
    index = OwnerIndex(str(tmp_path), helped_from=1)
    assert index.holders(set()) == {}
    assert (index.reads, index.helped) == (0, 0)  # refused by the helper: not tried here
    assert index.holders(set()) == {} and index.reads == 0  # nor next poll: it has not run
