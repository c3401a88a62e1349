"""Turn PIDs into Holder records, cached by (PID, start time) so a poll stays cheap."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from . import platform_path
from .collect.fd_reads import read_stat
from .hints import NamedTuple
from .model import Holder
from .record import replace

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any, TypeVar

    import psutil

    from . import proc_facts

    T = TypeVar("T")


class Described(NamedTuple):
    """A Holder as another run may take it over: valid while the PID's start time is
    `start`, for `max_age` seconds after `at`, and after that while the process has not
    run since it was read (its CPU time is still `ran`; ProcessTable.seed)."""

    start: int
    at: float  # owners.clock() when it was read
    holder: Holder
    ran: int = -1  # CPU time in ns just before it was read; -1: unknown


class Shared:
    """One object for equal command lines and strings among the holders one poll describes:
    each read of /proc makes its own copy, and a pre-fork server's 2,000 workers have one
    command line (~1 KB here), so the first poll's Snapshot, which the child that takes it
    pickles (ahead.py), was 1.8 MB (~20 ms to send and load) instead of 67 KB."""

    def __init__(self) -> None:
        self._argv: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._text: dict[str, str] = {}

    def argv(self, value: tuple[str, ...]) -> tuple[str, ...]:
        return self._argv.setdefault(value, value)

    def text(self, value: str | None) -> str | None:
        return value if value is None else self._text.setdefault(value, value)


class ProcessTable:
    """Looks processes up once; a PID whose start time changed is a new process.

    Each PID is checked at most once per poll (`begin_poll`), with a read of
    /proc/PID/stat on Linux (~10 us) rather than psutil's ~35 us: a pre-fork server's 300
    workers hold every one of its listeners, so the same PIDs come up again and again.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        ran: Callable[[int], int] | None = None,
    ) -> None:
        # pid -> (start key, holder, when described, CPU time before it was described)
        self._cache: dict[int, tuple[object, Holder, float, int]] = {}
        # A process's CPU time in ns (-1 if unknown): the witness that lets another run
        # take a description older than `max_age` (seed).
        self._ran = ran
        self._this_poll: dict[int, Holder | None] = {}
        self._asked: set[int] = set()  # PIDs asked about since the last whole poll began
        # First sights described ahead this poll (take_described), entries as _cache's:
        # cached once a socket names their PID, dropped with the poll if none does.
        self._early: dict[int, tuple[object, Holder, float, int]] = {}
        self._clock = clock
        self._shared = Shared()  # for the descriptions of this whole poll
        self.described = 0  # processes read with psutil: what a cache saves
        self.changed = False  # descriptions added or dropped since the last export

    def begin_poll(self, whole: bool = True) -> None:
        """Forget what the last poll checked. A whole poll also drops processes no poll
        asked about since the last whole one, so the cache follows what is on screen and
        cannot grow forever; a partial one (a single port's) keeps them for the next."""
        if whole:
            if self._asked:
                for pid in [p for p in self._cache if p not in self._asked]:
                    del self._cache[pid]
                    self.changed = True
            self._asked = set()
            self._shared = Shared()
        self._this_poll = {}
        self._early = {}

    def trust(self, pids: set[int]) -> None:
        """Take these PIDs' cached holders as checked for this poll: the caller knows they
        are the same processes as last poll (on Linux, their CPU time has not moved)."""
        for pid in pids:
            cached = self._cache.get(pid)
            if cached is not None and pid not in self._this_poll:
                self._this_poll[pid] = cached[1]
                self._asked.add(pid)

    def holder(self, pid: int) -> Holder | None:
        if pid in self._this_poll:
            return self._this_poll[pid]
        early = self._early.pop(pid, None)
        if early is not None:
            self._keep_first(pid, early)
            self._this_poll[pid] = early[1]
            self._asked.add(pid)
            return early[1]
        found = self._lookup(pid)
        self._this_poll[pid] = found
        self._asked.add(pid)
        return found

    def _lookup(self, pid: int) -> Holder | None:
        if pid not in self._cache and platform_path.linux_proc():
            return self._first_sight(pid)
        found = _identity(pid)
        if found is None:
            if self._cache.pop(pid, None) is not None:
                self.changed = True
            return None
        key, ppid = found
        cached = self._cache.get(pid)
        if cached is not None and cached[0] == key:
            known = cached[1]
            if ppid is not None and known.ppid != ppid:
                # Its parent exited: the same process, adopted (a worker whose master died).
                known = replace(known, ppid=ppid)
                self._cache[pid] = (key, known, cached[2], cached[3])
                self.changed = True
            return known
        ran = self._ran(pid) if self._ran is not None else -1  # before: a change shows
        holder = describe(pid, shared=self._shared)
        self.described += 1
        self.changed = True
        if holder is None:
            self._cache.pop(pid, None)
        else:
            self._cache[pid] = (key, holder, self._clock(), ran)
        return holder

    def _first_sight(self, pid: int) -> Holder | None:
        """A PID not in the cache, on Linux: described at once, its description's own read
        of /proc/PID/stat its identity (a cold walk of 2,000 processes: 2,000 reads fewer
        than checking the identity first)."""
        entry = self._describe_first(pid)
        if entry is None:
            return None  # gone, a zombie, or its stat unreadable: as _identity says
        self._keep_first(pid, entry)
        return entry[1]

    def _describe_first(self, pid: int) -> tuple[object, Holder, float, int] | None:
        from . import proc_facts

        ran = self._ran(pid) if self._ran is not None else -1  # before: a change shows
        facts = proc_facts.read(pid)
        if facts is None or facts.ticks is None:
            return None
        return facts.ticks, _holder(pid, facts, self._shared), self._clock(), ran

    def _keep_first(self, pid: int, entry: tuple[object, Holder, float, int]) -> None:
        self._cache[pid] = entry
        self.described += 1
        self.changed = True

    def take_described(
        self, described: Mapping[int, tuple[Any, ...]], ran: Mapping[int, int], at: float
    ) -> None:
        """Descriptions the helper processes that walked the fd tables made (a cold whole
        poll, fd_reads.read_many: proc_facts.Facts' fields, each read after its process's
        CPU time in `ran`, and after `at`): kept as first sights once a socket names their
        PID; one that holds no socket is dropped with the poll. Linux only (first sights)."""
        if not platform_path.linux_proc():
            return
        from . import proc_facts

        for pid, fields in described.items():
            if pid in self._cache or pid in self._this_poll:
                continue
            facts = proc_facts.Facts(*fields)
            if facts.ticks is not None:
                self._early[pid] = (facts.ticks, _holder(pid, facts, self._shared), at,
                                    ran.get(pid, -1))

    def holders(self, pids: tuple[int, ...] | list[int]) -> tuple[Holder, ...]:
        found = (self.holder(pid) for pid in sorted(set(pids)))
        return tuple(h for h in found if h is not None)

    def adopt(self, holders: Mapping[int, Holder]) -> None:
        """Hand out these objects for the cached descriptions they equal (copies made by
        another process: a forked child's poll, ProcNetCollector.poll_ahead), so that a
        poll's holders are the very objects that poll showed."""
        for pid, holder in holders.items():
            cached = self._cache.get(pid)
            if cached is not None and cached[1] is not holder and cached[1] == holder:
                self._cache[pid] = (cached[0], holder, cached[2], cached[3])

    def export(self) -> dict[int, Described]:
        """The descriptions this table holds, for the next run; clears `changed`."""
        self.changed = False
        return {
            pid: Described(key, at, holder, ran)
            for pid, (key, holder, at, ran) in self._cache.items()
            if isinstance(key, int)
        }

    def seed(
        self, saved: dict[int, Described], max_age: float, stats: dict[int, tuple[int, int]]
    ) -> None:
        """Take another run's descriptions whose PID has the same start time now, and that
        are younger than `max_age` seconds or whose process has not run since they were
        read (nothing it shows can change without it running: a name, a command line, a
        directory, a user); the parent is refreshed (an orphan is adopted without running).
        `stats`: (start, parent) already read, by PID."""
        now = self._clock()
        for pid, entry in saved.items():
            if pid in self._cache:
                continue
            stat = stats.get(pid) or read_stat(pid)
            if stat is None or stat[0] != entry.start:
                continue
            if not 0 <= now - entry.at < max_age and not self._idle_since(pid, entry.ran):
                continue
            holder = entry.holder
            if holder.ppid != stat[1]:
                holder = replace(holder, ppid=stat[1])
            self._cache[pid] = (entry.start, holder, entry.at, entry.ran)

    def _idle_since(self, pid: int, ran: int) -> bool:
        return ran >= 0 and self._ran is not None and self._ran(pid) == ran


def _identity(pid: int) -> tuple[object, int | None] | None:
    """(something that changes when a PID is reused, the parent PID if read on the way);
    None if the process is gone."""
    if platform_path.linux_proc():
        return read_stat(pid)
    import psutil

    try:
        return psutil.Process(pid).create_time(), None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return "?", None



def describe(
    pid: int, proc: psutil.Process | None = None, shared: Shared | None = None
) -> Holder | None:
    """Read what a person needs to recognise a process; fields we may not read become None.

    On Linux from /proc, with psutil's very values (proc_facts): a one-shot command then
    never imports psutil (~10 ms). A zombie is None there, as read_stat has it. `shared`:
    equal command lines and strings become one object."""
    from . import proc_facts

    if proc is not None or not platform_path.linux_proc():
        return describe_psutil(pid, proc)
    facts = proc_facts.read(pid)
    return None if facts is None else _holder(pid, facts, shared)


def _holder(pid: int, facts: proc_facts.Facts, shared: Shared | None = None) -> Holder:
    if not facts.readable:
        return Holder(pid=pid, name=str(pid), user=None, cmdline=(), started=None)
    name, cmdline, cwd = facts.name or str(pid), facts.cmdline or (), facts.cwd
    if shared is not None:
        name, cmdline, cwd = shared.text(name) or name, shared.argv(cmdline), shared.text(cwd)
    return Holder(
        pid=pid,
        name=name,
        user=facts.user,
        cmdline=cmdline,
        started=facts.started,
        cwd=cwd,
        ppid=facts.ppid,
    )


def describe_psutil(pid: int, proc: psutil.Process | None = None) -> Holder | None:
    """describe() through psutil: other platforms, and the reference the tests hold the
    /proc reader to."""
    import psutil  # here: a run whose processes all come from the owner store needs none

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
    import psutil

    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError, KeyError):
        # KeyError: psutil's username() for a uid missing from /etc/passwd
        return None


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)

