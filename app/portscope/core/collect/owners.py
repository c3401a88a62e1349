"""Which processes hold which sockets, kept up to date without re-reading every fd per poll.

A full walk of /proc/*/fd (list each fd directory, readlink every fd) costs ~500 ms with 300
pre-fork workers holding 250 fds each, and almost nothing in it changes from one second to
the next. So each process's fd table is remembered (fd number -> live socket inode, 0 for
anything else) along with its fd count (`stat` of /proc/PID/fd reports it as st_size on
Linux >= 6.2; 0 on older kernels, which only makes the checks below do more). Per poll:

- new PIDs (a forked child inherits its parent's sockets): read in full;
- known holders are confirmed by one `stat` and one `readlink` of each fd that held a live
  socket (~5 us each, against ~200 us to list a 250-fd directory); a mismatch re-reads
  that process incrementally (only fd numbers that are new or pointed at a dead socket);
- a socket with no known holder: processes whose fd count changed are re-read, then those
  that ran at all since we read them (incrementally, then in full); a socket still without
  a holder (another user's, as non-root, or closed since the dump) is remembered as such so
  it costs no search per poll;
- every `full_every` seconds, a full walk bounds anything the shortcuts can miss (a process
  swapping a held socket for another at the same fd number and fd count, say).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass


@dataclass(slots=True)
class _FdTable:
    count: int  # fd count when read (st_size of the fd directory), 0 if the kernel hides it
    ran: int  # CPU time of all its threads at its last whole read (ns), -1 if unknown
    fds: dict[str, int]  # fd number -> live inet socket inode when read, or 0
    held: dict[int, str]  # inode -> one fd number holding it: what a confirmation re-reads


class OwnerIndex:
    def __init__(self, proc: str = "/proc", full_every: float = 30.0) -> None:
        self._proc = proc
        self._full_every = full_every
        self._tables: dict[int, _FdTable] = {}
        self._nobody: set[int] = set()  # live sockets that no visible process holds
        self._last_full = float("-inf")
        self.full_walks = 0  # for tests and the benchmark: how often the slow path ran

    def holders(self, live: set[int]) -> dict[int, list[int]]:
        """Map each live socket inode to every PID holding it (absent if none seen)."""
        self._nobody &= live
        pids = self._pids()
        for gone in self._tables.keys() - pids:
            del self._tables[gone]
        if time.monotonic() - self._last_full >= self._full_every:
            return self._full(pids, live)
        for pid in pids - self._tables.keys():
            self._refresh(pid, live, whole=True)
        for pid, table in list(self._tables.items()):
            if any(inode in live for inode in table.held) and not self._confirmed(
                pid, table, live
            ):
                self._refresh(pid, live)
        owners = self._owners(live)
        if not self._unknown(owners, live):
            return owners
        # A new socket. Suspects first: processes whose fd count moved; then those that ran
        # at all since we read them (a process that did not run cannot have changed its fd
        # table), incrementally, then in full (a number that held a pipe or file may hold
        # the socket now).
        moved = [pid for pid, table in self._tables.items() if self._count(pid) != table.count]
        ran = [p for p, table in self._tables.items() if _run_time(self._proc, p) != table.ran]
        for pids_to_read, whole in ((moved, False), (ran, False), (ran, True)):
            for pid in pids_to_read:
                self._refresh(pid, live, whole=whole)
            owners = self._owners(live)
            if not self._unknown(owners, live):
                return owners
        # Whatever is left has no holder we can see (closed since the dump, another user's
        # process): remember that, so it costs no more searching until the next full walk.
        self._nobody |= live - owners.keys()
        return owners

    def _unknown(self, owners: dict[int, list[int]], live: set[int]) -> bool:
        return bool(live - owners.keys() - self._nobody)

    def _full(self, pids: set[int], live: set[int]) -> dict[int, list[int]]:
        self._tables.clear()
        for pid in pids:
            self._refresh(pid, live, whole=True)
        self._last_full = time.monotonic()
        self.full_walks += 1
        owners = self._owners(live)
        self._nobody = live - owners.keys()
        return owners

    def _pids(self) -> set[int]:
        return {int(name) for name in os.listdir(self._proc) if name.isdigit()}

    def _count(self, pid: int) -> int:
        try:
            return os.stat(f"{self._proc}/{pid}/fd").st_size
        except OSError:
            return -1

    def _confirmed(self, pid: int, table: _FdTable, live: set[int]) -> bool:
        if self._count(pid) != table.count:
            return False
        fd_dir = f"{self._proc}/{pid}/fd"
        for inode, name in table.held.items():
            if inode not in live:
                continue  # died: it drops out of the answer by itself
            try:
                if os.readlink(f"{fd_dir}/{name}") != f"socket:[{inode}]":
                    return False
            except OSError:
                return False
        return True

    def _refresh(self, pid: int, live: set[int], whole: bool = False) -> None:
        fd_dir = f"{self._proc}/{pid}/fd"
        count = self._count(pid)
        old = None if whole else self._tables.get(pid)
        # Taken before the read, so a change after it shows next time. Only a whole read
        # moves it: an incremental one leaves fds it did not re-read unverified.
        ran = _run_time(self._proc, pid) if old is None else old.ran
        try:
            names = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to read: its sockets stay ownerless
            self._tables.pop(pid, None)
            return
        cached = old.fds if old is not None else {}
        fds: dict[str, int] = {}
        held: dict[int, str] = {}
        for name in names:
            inode = cached.get(name)
            if inode is None or (inode and inode not in live):
                inode = _socket_inode(f"{fd_dir}/{name}", live)
            fds[name] = inode
            if inode:
                held.setdefault(inode, name)
        self._tables[pid] = _FdTable(count, ran, fds, held)

    def _owners(self, live: set[int]) -> dict[int, list[int]]:
        owners: dict[int, list[int]] = defaultdict(list)
        for pid in sorted(self._tables):
            for inode in self._tables[pid].held.keys() & live:
                owners[inode].append(pid)
        return owners


def _socket_inode(path: str, live: set[int]) -> int:
    """The fd's inode if it is one of the live inet sockets, else 0 ("not one of ours")."""
    try:
        link = os.readlink(path)
    except OSError:
        return 0
    if link.startswith("socket:["):
        inode = int(link[8:-1])
        return inode if inode in live else 0
    return 0


def _run_time(proc: str, pid: int) -> int:
    """Nanoseconds all threads of `pid` have run (/proc/PID/task/*/schedstat), -1 if unknown.

    Any syscall (close, socket, accept, recvmsg of an fd) makes a thread run, so an unchanged
    value proves the fd table is as we read it. ~15 us for a single-threaded process.
    """
    task_dir = f"{proc}/{pid}/task"
    try:
        total = 0
        for tid in os.listdir(task_dir):
            with open(f"{task_dir}/{tid}/schedstat", "rb") as fh:
                total += int(fh.read().split(maxsplit=1)[0])
        return total
    except (OSError, ValueError, IndexError):
        return -1
