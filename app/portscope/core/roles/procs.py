"""What the role model may ask about a process, behind one small Protocol.

The live view reads /proc (through psutil) on demand and remembers each answer for the
life of one question, so asking about the same parent twice costs one read. Recorded views
(tests, and platforms that cannot run here: systemd as PID 1, macOS, Windows) answer the
same questions from JSON.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..model import Holder

if TYPE_CHECKING:
    import psutil

# psutil, subprocess and shutil are imported where they are used: `list` imports this
# module for ProcInfo alone and, warm, reads no process through psutil (15-20 ms saved).

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
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
        self._info: dict[int, ProcInfo | None] = {h.pid: _from_holder(h) for h in known}
        self._environ: dict[int, dict[str, str] | None] = {}
        self._children: dict[int, tuple[int, ...]] | None = None

    def get(self, pid: int) -> ProcInfo | None:
        if pid not in self._info:
            self._info[pid] = _read(pid)
        return self._info[pid]

    def children(self, pid: int) -> tuple[int, ...]:
        if self._children is None:
            import psutil

            table: dict[int, list[int]] = {}
            for proc in psutil.process_iter(["ppid"]):
                ppid = proc.info.get("ppid")
                if ppid is not None:
                    table.setdefault(ppid, []).append(proc.pid)
            self._children = {p: tuple(sorted(kids)) for p, kids in table.items()}
        return self._children.get(pid, ())

    def environ(self, pid: int, key: str) -> str | None:
        if pid not in self._environ:
            import psutil

            try:
                self._environ[pid] = psutil.Process(pid).environ()
            except (psutil.Error, OSError):
                self._environ[pid] = None
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


def _from_holder(h: Holder) -> ProcInfo:
    return ProcInfo(
        pid=h.pid, ppid=h.ppid, name=h.name, argv=h.cmdline, started=h.started,
        cwd=h.cwd, user=h.user, cgroup=_cgroup(h.pid),
    )


def _read(pid: int) -> ProcInfo | None:
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
    """The cgroup v2 path ("0::/system.slice/nginx.service"), or v1's systemd line."""
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    return cgroup_path(lines)


def cgroup_path(lines: list[str]) -> str | None:
    fallback = None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return path
        if controllers == "name=systemd":
            fallback = path
    return fallback
