"""What the role model may ask about a process, behind one small Protocol.

The live view reads /proc (directly on Linux, else through psutil) on demand and remembers
each answer for the life of one question, so asking about the same parent twice costs one
read. Recorded views (tests, and platforms that cannot run here: systemd as PID 1, macOS,
Windows) answer the same questions from JSON.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from ..hints import Protocol
from ..model import Holder
from ..record import record
from .cgroups import cgroups_of, read_cgroup

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import TypeVar

    import psutil

    T = TypeVar("T")

# psutil, subprocess and shutil are imported where they are used, and on Linux psutil not at
# all (core/proc_facts.py reads /proc): `list` imports this module for ProcInfo alone, and
# `check` asks about the parents of every server it finds.


@record
class ProcInfo:
    pid: int
    ppid: int | None
    name: str
    argv: tuple[str, ...]
    started: float | None
    exe: str | None = None
    cwd: str | None = None
    user: str | None = None
    uid: int | None = None
    cgroup: str | None = None  # the unified-hierarchy path ("/system.slice/nginx.service")

    @property
    def program(self) -> str:
        """The program's base name: "python3.11" for /usr/bin/python3.11, else `name`."""
        if self.exe:
            return os.path.basename(self.exe)
        if self.argv:
            return os.path.basename(self.argv[0])
        return self.name


class ProcessView(Protocol):
    platform: str

    def get(self, pid: int) -> ProcInfo | None: ...

    def children(self, pid: int) -> tuple[int, ...]: ...

    def environ(self, pid: int, key: str) -> str | None:
        """One variable of the process's environment (None: unset or unreadable)."""
        ...


class LiveProcesses:
    """The machine's processes as they are now; answers are cached per instance."""

    def __init__(self, known: Iterable[Holder] = ()) -> None:
        self.platform = sys.platform
        # What the snapshot already read about its holders needs no second psutil read;
        # only the cgroup (for containers and units) is added.
        from .. import platform_path

        known = tuple(known)
        # On Linux, a pre-fork server's workers from their cgroup's member list (cgroups.py)
        cgroups = cgroups_of(h.pid for h in known) if platform_path.linux_proc() else {}
        self._info: dict[int, ProcInfo | None] = {
            h.pid: _from_holder(h, cgroups.get(h.pid)) for h in known
        }
        self._environ: dict[int, dict[str, str] | None] = {}
        self._children: dict[int, tuple[int, ...]] | None = None

    def get(self, pid: int) -> ProcInfo | None:
        if pid not in self._info:
            self._info[pid] = _read(pid)
        return self._info[pid]

    def children(self, pid: int) -> tuple[int, ...]:
        if self._children is None:
            table: dict[int, list[int]] = {}
            for child, ppid in all_parents().items():
                table.setdefault(ppid, []).append(child)
            self._children = {p: tuple(sorted(kids)) for p, kids in table.items()}
        return self._children.get(pid, ())

    def environ(self, pid: int, key: str) -> str | None:
        if pid not in self._environ:
            self._environ[pid] = _environ(pid)
        env = self._environ[pid]
        return None if env is None else env.get(key)


    def list_sockets(self) -> list[tuple[str, str]]:
        """(listen address, unit) from `systemctl list-sockets`, asked only when PID 1 is
        systemd and holds a port: the one fact /proc does not give (socket activation)."""
        import shutil
        import subprocess

        info = self.get(1)
        if info is None or info.name != "systemd" or shutil.which("systemctl") is None:
            return []
        try:
            out = subprocess.run(
                ["systemctl", "list-sockets", "--all", "--no-legend", "--no-pager"],
                capture_output=True, text=True, timeout=2, check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        rows = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] != "LISTEN":
                rows.append((parts[0], parts[1]))
        return rows

    def services(self, pid: int) -> tuple[str, ...]:
        """Windows services hosted by `pid` (what `tasklist /svc` shows)."""
        import psutil

        iterate = getattr(psutil, "win_service_iter", None)
        if iterate is None:
            return ()
        try:
            return tuple(s.name() for s in iterate() if s.pid() == pid)
        except (psutil.Error, OSError):
            return ()


def _from_holder(h: Holder, cgroup: str | None) -> ProcInfo:
    return ProcInfo(
        pid=h.pid, ppid=h.ppid, name=h.name, argv=h.cmdline, started=h.started,
        cwd=h.cwd, user=h.user, cgroup=cgroup,
    )


def _read(pid: int) -> ProcInfo | None:
    """On Linux from /proc with psutil's values (proc_facts), so a `check` that asks about
    a server's parent never imports psutil; elsewhere through psutil."""
    from .. import platform_path, proc_facts

    if not platform_path.linux_proc():
        return _read_psutil(pid)
    facts = proc_facts.read(pid, exe=True)
    if facts is None:  # gone, or a zombie
        return None
    if not facts.readable:
        return ProcInfo(pid=pid, ppid=None, name=str(pid), argv=(), started=None)
    return ProcInfo(
        pid=pid,
        ppid=facts.ppid,
        name=facts.name or str(pid),
        argv=facts.cmdline or (),
        started=facts.started,
        exe=facts.exe or None,
        cwd=facts.cwd or None,
        user=facts.user,
        uid=facts.uid,
        cgroup=_cgroup(pid),
    )


def _read_psutil(pid: int) -> ProcInfo | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return ProcInfo(
                pid=pid,
                ppid=_quiet(proc.ppid),
                name=_quiet(proc.name) or str(pid),
                argv=tuple(_quiet(proc.cmdline) or ()),
                started=_quiet(proc.create_time),
                exe=_quiet(proc.exe) or None,
                cwd=_quiet(proc.cwd) or None,
                user=_quiet(proc.username),
                uid=_uid(proc),
                cgroup=_cgroup(pid),
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return ProcInfo(pid=pid, ppid=None, name=str(pid), argv=(), started=None)


def _quiet(getter: Callable[[], T]) -> T | None:
    import psutil

    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError, KeyError):
        return None


def _uid(proc: psutil.Process) -> int | None:
    import psutil

    try:
        return int(proc.uids().real)
    except (psutil.Error, AttributeError):
        return None


def _cgroup(pid: int) -> str | None:
    """The cgroup v2 path ("0::/system.slice/nginx.service"), or v1's systemd line; None
    on the portable path (psutil has no cgroups: no unit or container is named by one)."""
    from .. import platform_path

    return read_cgroup(pid) if platform_path.linux_proc() else None




def all_parents() -> dict[int, int]:
    """PID -> parent PID of every process: from /proc on Linux (no psutil to import, and
    no Process object per process: 30 ms for 300), else psutil."""
    from .. import platform_path, proc_facts

    if platform_path.linux_proc():
        return proc_facts.parents()
    import psutil

    found: dict[int, int] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info.get("ppid")
        if ppid is not None:
            found[proc.pid] = ppid
    return found


def child_pids(pid: int) -> tuple[int, ...]:
    """The PIDs whose parent is `pid`, sorted: on Linux the kernel's list of them (a master
    of 2,000 workers: a few reads, proc_facts.children), else from every process's parent."""
    from .. import platform_path, proc_facts

    if platform_path.linux_proc() and (kids := proc_facts.children(pid)) is not None:
        return kids
    return tuple(sorted(c for c, parent in all_parents().items() if parent == pid))


def all_commands() -> dict[int, tuple[str, ...]]:
    """PID -> command line of every process whose command line may be read; as
    all_parents, from /proc on Linux, else psutil."""
    from .. import platform_path, proc_facts

    if platform_path.linux_proc():
        return proc_facts.cmdlines()
    import psutil

    return {
        proc.pid: tuple(proc.info.get("cmdline") or ())
        for proc in psutil.process_iter(["cmdline"])
    }


def _environ(pid: int) -> dict[str, str] | None:
    from .. import platform_path, proc_facts

    if platform_path.linux_proc():
        return proc_facts.environ(pid)
    import psutil

    try:
        return psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
