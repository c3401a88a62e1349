"""The owner index's witnesses read from /proc/PID/schedstat files kept open (kept_files.py),
against real processes this test starts.

The shortcut rests on one kernel behaviour: a pread from offset 0 of an open /proc file
makes the kernel write it afresh. If a kernel or Python ever served the first answer again,
every idle holder would look idle for ever; the first test catches that.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.collect import default_collector, fd_reads
from portscope.core.collect.kept_files import KeptSchedstat
from portscope.core.collect.owners import OwnerIndex
from support import reap, tcp_listener, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Holds a listener; each line on stdin makes it burn ~20 ms of CPU and answer.
_WORKER = """
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(os.fstat(s.fileno()).st_ino, flush=True)
for line in sys.stdin:
    end = time.thread_time() + 0.02
    while time.thread_time() < end:
        pass
    print("ran", flush=True)
"""


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.inode = int(self.proc.stdout.readline())
        self.pid = self.proc.pid
        self.settle()

    def run(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ran"
        self.settle()

    def settle(self) -> None:
        """Until it is blocked on stdin again: its answer comes before it gets there."""
        seen: list[int] = []
        wait_for(lambda: seen.append(_by_name(self.pid)) or seen[-2:-1] == seen[-1:], step=0.05)


@pytest.fixture
def worker() -> Iterator[Worker]:
    started = Worker()
    yield started
    reap(started.proc)


def _by_name(pid: int) -> int:
    return fd_reads.schedstat(f"/proc/{pid}/schedstat")


def _open_files(pid: int) -> int:
    """How many of this process's fds are open on `pid`'s schedstat (counted by what they
    point at: collectors of other tests may close theirs meanwhile)."""
    target, count = f"/proc/{pid}/schedstat", 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == target
        except OSError:
            continue
    return count


def test_a_kept_file_reads_the_cpu_time_afresh(worker: Worker) -> None:
    kept = KeptSchedstat()
    first = kept(worker.pid)
    assert first == _by_name(worker.pid) > 0
    assert kept.kept == {worker.pid}
    worker.run()
    again = kept(worker.pid)
    assert again > first  # not the first answer served again
    assert again == _by_name(worker.pid)  # blocked on stdin: nothing moves in between
    assert kept.kept == {worker.pid}  # read through the same file, not a new one


def test_a_gone_process_reads_as_unreadable_and_its_file_is_closed(worker: Worker) -> None:
    kept = KeptSchedstat()
    assert kept(worker.pid) > 0
    assert _open_files(worker.pid) == 1
    os.killpg(worker.pid, signal.SIGKILL)  # its own session: only the process this test made
    worker.proc.wait(timeout=5)
    wait_for(lambda: not os.path.exists(f"/proc/{worker.pid}"))
    assert kept(worker.pid) == -1
    assert kept.kept == set()
    assert _open_files(worker.pid) == 0


def test_no_more_files_are_kept_than_the_budget(worker: Worker) -> None:
    other = Worker()
    try:
        kept = KeptSchedstat(budget=1)
        assert kept(worker.pid) > 0
        assert kept(other.pid) > 0  # read by name, then closed
        assert kept.kept == {worker.pid}
        assert kept(other.pid) == _by_name(other.pid)
    finally:
        reap(other.proc)


def test_the_files_close_with_their_owner(worker: Worker) -> None:
    kept = KeptSchedstat()
    kept(worker.pid)
    kept(worker.pid)
    assert _open_files(worker.pid) == 1
    del kept
    gc.collect()
    assert _open_files(worker.pid) == 0


def test_the_owner_index_confirms_idle_holders_through_kept_files(
    worker: Worker, tmp_path: Path
) -> None:
    """An idle holder: confirmed, from the second poll on, by its kept file; once it has
    run, its table is checked again (and still found); once it is gone, its file is
    closed with its table."""
    (tmp_path / str(worker.pid)).symlink_to(f"/proc/{worker.pid}")
    index = OwnerIndex(str(tmp_path), keep_files=True)
    live = {worker.inode}
    assert index.holders(live) == {worker.inode: [worker.pid]}
    assert index.holders(live) == {worker.inode: [worker.pid]}
    assert index.idle == {worker.pid}
    assert index._schedstat.kept == {worker.pid}
    worker.run()
    assert index.holders(live) == {worker.inode: [worker.pid]}
    assert index.idle == set()  # it ran: not confirmed by its CPU time
    assert index.holders(live) == {worker.inode: [worker.pid]}
    assert index.idle == {worker.pid}
    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=5)
    (tmp_path / str(worker.pid)).unlink()
    assert index.holders(live) == {}
    assert index._schedstat.kept == set()


@pytest.mark.parametrize("polling", [True, False])
def test_only_a_polling_collector_keeps_files(worker: Worker, polling: bool) -> None:
    """The monitor, watch, export and wait poll for as long as they run and keep the
    files; a one-shot command's collector keeps none (they would only wait for its exit)."""
    collector = default_collector(polling=polling)
    for _ in range(2):  # the second poll confirms the worker by its CPU time
        snapshot = collector.collect()
        [listener] = [s for s in snapshot.sockets if s.inode == worker.inode]
        assert [h.pid for h in listener.holders] == [worker.pid]
    assert _open_files(worker.pid) == (1 if polling else 0)


def test_a_whole_read_of_its_own_table_leaves_its_kept_files_out(
    worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's own process holds the files it keeps (2,000 of them at 2,000 holders):
    a whole read of its own table, the rolling walk's once a period, reads none of them,
    and still finds the sockets it holds."""
    me = os.getpid()
    for pid in (worker.pid, me):
        (tmp_path / str(pid)).symlink_to(f"/proc/{pid}")
    with tcp_listener() as mine:
        inode = os.fstat(mine.fileno()).st_ino
        index = OwnerIndex(str(tmp_path), keep_files=True)
        live = {worker.inode, inode}
        for _ in range(2):
            assert index.holders(live) == {worker.inode: [worker.pid], inode: [me]}
        kept = {str(fd) for fd in index._schedstat.descriptors()}
        assert kept  # the worker's file at least
        read: list[str] = []
        real = fd_reads.socket_inode

        def counted(name: str, dir_fd: int) -> int:
            read.append(name)
            return real(name, dir_fd)

        monkeypatch.setattr(fd_reads, "socket_inode", counted)
        index._refresh(me, live, whole=True)
        assert read  # its other descriptors were read
        assert not kept & set(read)
        assert index.holders(live) == {worker.inode: [worker.pid], inode: [me]}
