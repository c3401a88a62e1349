"""Processes' /proc/PID/schedstat files kept open between polls: the owner index's witness.

Every poll confirms each holder of a live socket by its CPU time (owners.py): 2,000 idle
pre-fork workers are 2,000 reads of /proc/PID/schedstat a poll. Opened by name, one is three
system calls and a walk of the path (~6.7 us); kept open, it is one pread from offset 0,
which makes the kernel write the file afresh (~2 us): 13.4 ms against 3.2-4.8 ms for the
2,071 processes of load (c) in tests/benchmarks/scale.py, on 2 cores.

A kept file names the process it was opened for, not its PID: once that process is gone,
reading it fails (ESRCH) even if the PID now names another, and the PID's file is opened
again by name, so a reused PID reads as what it is, as before. At most half the soft limit
on open files is kept, so nothing else in the program runs short of descriptors. Only a
collector polled for as long as its process runs keeps any (budget 0 keeps none: a one-shot
command's would only wait for its exit), and they are closed with it (weakref.finalize).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .fd_reads import schedstat, schedstat_at


class KeptSchedstat:
    """Called with a PID: the CPU time in ns of its main thread, -1 if it cannot be read."""

    def __init__(self, proc: str = "/proc", budget: int | None = None) -> None:
        self._proc = proc
        self._fds: dict[int, int] = {}  # PID -> its schedstat, open
        self._budget = half_the_soft_limit() if budget is None else budget
        if self._budget:  # imported here: a one-shot command's index keeps no file
            import weakref

            weakref.finalize(self, _close_all, self._fds)

    def __call__(self, pid: int) -> int:
        fd = self._fds.get(pid)
        if fd is not None:
            ns = schedstat_at(fd)
            if ns >= 0:
                return ns
            self.forget((pid,))  # gone (ESRCH): the PID's file anew
        path = f"{self._proc}/{pid}/schedstat"
        if len(self._fds) >= self._budget:
            return schedstat(path)  # by name, as without kept files
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return -1
        ns = schedstat_at(fd)
        if ns >= 0:
            self._fds[pid] = fd
        else:
            os.close(fd)
        return ns

    @property
    def kept(self) -> set[int]:
        """The PIDs whose file is open."""
        return set(self._fds)

    def descriptors(self) -> list[int]:
        """The open files' descriptors: this process's own fd table holds them, and they
        are no sockets (2,000 of them cost 21.6 ms a read of that table, once every walk
        period)."""
        return list(self._fds.values())

    def forget(self, pids: Iterable[int]) -> None:
        """Close these PIDs' files (processes no longer listed)."""
        for pid in pids:
            fd = self._fds.pop(pid, None)
            if fd is not None:
                os.close(fd)


def half_the_soft_limit() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft // 2


def _close_all(fds: dict[int, int]) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            continue
    fds.clear()
