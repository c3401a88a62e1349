"""Turn PIDs into Holder records, cached by (PID, start time) so a poll stays cheap."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import psutil

from .model import Holder

T = TypeVar("T")


class ProcessTable:
    """Looks processes up once; a PID whose start time changed is a new process."""

    def __init__(self) -> None:
        self._cache: dict[int, Holder] = {}

    def holder(self, pid: int) -> Holder | None:
        cached = self._cache.get(pid)
        try:
            proc = psutil.Process(pid)
            started = proc.create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self._cache.pop(pid, None)
            return None
        except psutil.AccessDenied:
            started = None
            proc = None
        if cached is not None and cached.started == started:
            return cached
        holder = describe(pid, proc)
        if holder is not None:
            self._cache[pid] = holder
        return holder

    def holders(self, pids: tuple[int, ...] | list[int]) -> tuple[Holder, ...]:
        found = (self.holder(pid) for pid in sorted(set(pids)))
        return tuple(h for h in found if h is not None)

    def forget_missing(self, alive: set[int]) -> None:
        """Drop cache entries of processes that are gone, so the cache cannot grow forever."""
        for pid in [p for p in self._cache if p not in alive]:
            del self._cache[pid]


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
