"""A forked worker's fd table read against its parent's (fd_reads.Inherited, kcmp(2)): the
same answer as readlink gives, fd by fd, whatever the worker or the parent changed.

Real processes of this test only: a parent holding a listener and a plain file, and the
workers it forks; every table is read through the real /proc (kcmp takes real PIDs), and
only these processes' tables are read.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.collect import fd_reads
from support import reap, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The parent obeys one command per stdin line; a worker it forks answers "PID INODE" (the
# socket it made, 0 for none) and sleeps; "reuse" has the parent itself put a new socket
# in its file's fd number.
_PARENT = """
import os, signal, socket, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
f = open(os.devnull)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(os.getpid(), os.fstat(s.fileno()).st_ino, flush=True)
keep = []
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "reuse":
        number = f.fileno(); f.close()
        t = socket.socket(); keep.append(t)
        assert t.fileno() == number
        print(os.getpid(), os.fstat(t.fileno()).st_ino, flush=True)
        continue
    if os.fork() == 0:
        made = None
        if cmd == "swap":  # the same count, one fd another file
            number = f.fileno(); f.close()
            made = socket.socket()
            assert made.fileno() == number
        elif cmd == "extra":  # one fd more
            made = socket.socket()
        print(os.getpid(), os.fstat(made.fileno()).st_ino if made else 0, flush=True)
        while True:
            time.sleep(60)
"""


class Parent:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_PARENT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        self.pid, self.listener = self._answer()

    def fork(self, how: str = "plain") -> tuple[int, int]:
        """A worker forked `how`: (its PID, the socket it made or 0), once it and the
        parent are both asleep again."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(how + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        _settle(answer[0])
        _settle(self.pid)
        return answer

    def reuse(self) -> int:
        """The parent puts a new socket in its file's fd number (it runs): the socket."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("reuse\n")
        self.proc.stdin.flush()
        _, inode = self._answer()
        _settle(self.pid)
        return inode

    def _answer(self) -> tuple[int, int]:
        assert self.proc.stdout is not None
        pid, inode = self.proc.stdout.readline().split()
        return int(pid), int(inode)


def _settle(pid: int) -> None:
    """Until `pid` is asleep: its CPU time stops moving (it answers before it sleeps)."""
    seen: list[int] = []
    path = f"/proc/{pid}/schedstat"
    wait_for(lambda: seen.append(fd_reads.schedstat(path)) or seen[-2:-1] == seen[-1:],
             step=0.05)


@pytest.fixture
def parent() -> Iterator[Parent]:
    started = Parent()
    _settle(started.pid)
    yield started
    if started.proc.stdin:
        started.proc.stdin.close()
    reap(started.proc)  # its process group: the parent and every worker


def _by_readlink(pid: int) -> dict[str, int]:
    table = fd_reads.read_table("/proc", pid)
    assert table is not None
    return table[3]


def _read(inherited: fd_reads.Inherited, pid: int) -> dict[str, int]:
    table = fd_reads.read_table("/proc", pid, inherited=inherited)
    assert table is not None
    first: dict[int, str] = {}
    for name, inode in table[3].items():
        if inode:
            first.setdefault(inode, name)
    assert table[4] == first  # held: each socket's first fd number
    return table[3]


def test_a_worker_that_changed_nothing_is_its_parents_table_by_kcmp(parent: Parent) -> None:
    worker, _ = parent.fork()
    inherited = fd_reads.Inherited("/proc")
    try:
        fds = _read(inherited, worker)
        assert inherited.compared == 1  # kcmp answered: catches a kernel or libc without it
        assert fds == _by_readlink(worker) == _by_readlink(parent.pid)
        assert parent.listener in fds.values()
    finally:
        inherited.close()


@pytest.mark.parametrize("how", ["swap", "extra"])
def test_a_worker_with_another_file_or_one_more_is_read_by_readlink(
    parent: Parent, how: str
) -> None:
    worker, made = parent.fork(how)
    plain, _ = parent.fork()
    inherited = fd_reads.Inherited("/proc")
    try:
        fds = _read(inherited, worker)
        assert inherited.compared == 0
        assert fds == _by_readlink(worker)
        assert made in fds.values() and parent.listener in fds.values()
        # Its sibling that changed nothing still comes from the parent's table.
        assert _read(inherited, plain) == _by_readlink(plain)
        assert inherited.compared == 1
    finally:
        inherited.close()


def test_a_parent_that_ran_since_its_table_was_read_is_no_template(parent: Parent) -> None:
    """The parent puts a new socket where its file was, then forks: the stale template
    says 'a file' at that number, kcmp says 'the parent's very file'; only the parent's CPU
    time tells them apart."""
    first, _ = parent.fork()
    inherited = fd_reads.Inherited("/proc")
    try:
        _read(inherited, first)
        assert inherited.compared == 1
        new = parent.reuse()
        later, _ = parent.fork()
        fds = _read(inherited, later)
        assert new in fds.values()
        assert fds == _by_readlink(later)
        assert inherited.compared == 1  # read by readlink
        _read(inherited, first)  # and the parent is no template for the rest of the walk
        assert inherited.compared == 1
    finally:
        inherited.close()


def test_a_stand_in_proc_is_not_compared_by_kcmp(parent: Parent, tmp_path: Path) -> None:
    """kcmp takes PIDs of this process's namespace: a /proc that is not its own (a
    stand-in, another namespace's) is read by readlink alone."""
    worker, _ = parent.fork()
    for pid in (parent.pid, worker):
        (tmp_path / str(pid)).symlink_to(f"/proc/{pid}")
    inherited = fd_reads.Inherited(str(tmp_path))
    table = fd_reads.read_table(str(tmp_path), worker, inherited=inherited)
    assert table is not None and table[3] == _by_readlink(worker)
    assert inherited.compared == 0
    (tmp_path / "self").symlink_to("/proc/self")  # now it is ours: the view is believed
    seen = fd_reads.Inherited(str(tmp_path))
    try:
        table = fd_reads.read_table(str(tmp_path), worker, inherited=seen)
        assert table is not None and table[3] == _by_readlink(worker)
        assert seen.compared == 1
    finally:
        seen.close()
