"""The owner cache (OwnerIndex) against real processes: it must stay exact while skipping
the full /proc/*/fd walk when nothing calls for one.

The index reads a /proc-like directory holding only this test's processes (symlinks into
the real /proc), so other tests running at the same time cannot trigger walks here; the
fds, sockets and processes are all real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.collect.owners import OwnerIndex
from portscope.core.collect.proc_collector import ProcNetCollector
from support import reap, wait_for

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


def test_periodic_full_walk_bounds_staleness(server: Server, proc_view: Path) -> None:
    _show(proc_view, server.proc.pid)
    index = OwnerIndex(str(proc_view), full_every=0)
    for _ in range(3):
        assert index.holders({server.inode}) == {server.inode: [server.proc.pid]}
    assert index.full_walks == 3


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
