"""Turn PIDs into Holder records, cached by (PID, start time) so a poll stays cheap."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import psutil

from .model import Holder

T = TypeVar("T")


class ProcessTable:
    """Looks processes up once; a PID whose start time changed is a new process.

    Each PID is checked at most once per poll (`begin_poll`), with a read of
    /proc/PID/stat on Linux (~10 us) rather than psutil's ~35 us: a pre-fork server's 300
    workers hold every one of its listeners, so the same PIDs come up again and again.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[object, Holder]] = {}  # pid -> (start key, holder)
        self._this_poll: dict[int, Holder | None] = {}

    def begin_poll(self) -> None:
        """Forget what the last poll checked; drop processes it no longer asked about, so
        the cache follows what is on screen and cannot grow forever."""
        if self._this_poll:
            for pid in [p for p in self._cache if p not in self._this_poll]:
                del self._cache[pid]
        self._this_poll = {}

    def trust(self, pids: set[int]) -> None:
        """Take these PIDs' cached holders as checked for this poll: the caller knows they
        are the same processes as last poll (on Linux, their CPU time has not moved)."""
        for pid in pids:
            cached = self._cache.get(pid)
            if cached is not None and pid not in self._this_poll:
                self._this_poll[pid] = cached[1]

    def holder(self, pid: int) -> Holder | None:
        if pid in self._this_poll:
            return self._this_poll[pid]
        found = self._lookup(pid)
        self._this_poll[pid] = found
        return found

    def _lookup(self, pid: int) -> Holder | None:
        key = _start_key(pid)
        if key is None:
            self._cache.pop(pid, None)
            return None
        cached = self._cache.get(pid)
        if cached is not None and cached[0] == key:
            return cached[1]
        holder = describe(pid)
        if holder is None:
            self._cache.pop(pid, None)
        else:
            self._cache[pid] = (key, holder)
        return holder

    def holders(self, pids: tuple[int, ...] | list[int]) -> tuple[Holder, ...]:
        found = (self.holder(pid) for pid in sorted(set(pids)))
        return tuple(h for h in found if h is not None)


def _start_key(pid: int) -> object | None:
    """Something that changes when a PID is reused; None if the process is gone."""
    if _HAS_PROC_STAT:
        try:
            fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        except OSError:
            return None
        try:
            stat = os.read(fd, 1024)
        except OSError:
            return None
        finally:
            os.close(fd)
        # Field 22 (starttime), counted after the ")" that ends the command name.
        fields = stat.rpartition(b")")[2].split()
        return fields[19] if len(fields) > 19 and fields[0] != b"Z" else None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return "?"


_HAS_PROC_STAT = os.path.exists("/proc/self/stat")


def describe(pid: int, proc: psutil.Process | None = None) -> Holder | None:
    """Read what a person needs to recognise a process; fields we may not read become None."""
    try:
        proc = proc or psutil.Process(pid)
        with proc.oneshot():
            name = _safe(proc.name) or str(pid)
            return Holder(
                pid=pid,
                name=name,
                user=_safe(proc.username),
                cmdline=tuple(_safe(proc.cmdline) or ()),
                started=_safe(proc.create_time),
                cwd=_safe(proc.cwd),
                ppid=_safe(proc.ppid),
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return Holder(pid=pid, name=str(pid), user=None, cmdline=(), started=None)


def _safe(getter: Callable[[], T]) -> T | None:
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError, KeyError):
        # KeyError: psutil's username() for a uid missing from /etc/passwd
        return None


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)
