"""What portscope trusts before it acts, in one place (domain.md 9).

Facts about a process come in two kinds:

- *kernel facts*, which the process's owner cannot forge: its PID, the parent chain, real
  and effective uid, start time, the sockets it holds and the socket's creator uid, and
  `/proc/PID/exe` (the binary the kernel runs, its owner and path);
- *claims*: comm, argv, cwd, environment, a script's contents, cgroup directory names.

Claims may shape words ("looks like nodemon"). Signalling anything but a socket's holders,
stopping a container or printing a command that names a service rests on kernel facts
only; every such decision records the facts it used as `Fact`s, which `check --json` and
`kill --json` show and the audit log keeps.

Everything here reads /proc with plain opens of files the kernel makes (they never block)
and never opens a path a process named, except through `read_script`, which refuses
anything but a small regular file its reader could read itself.

On the portable path (macOS, Windows, and Linux with PORTSCOPE_PORTABLE: platform_path.py)
the same facts come from psutil, and only those psutil has from the kernel: the parent,
real and effective uid and gid, and the executable as the OS reports it (psutil's
platform call, never its argv[0] guess). Supplementary groups are unknown there, so a
script readable only through one is not read; the socket's creator uid is unknown
(privilege.py decides what that means).
"""

from __future__ import annotations

import os
import stat

from .. import platform_path
from ..record import record

PROC = "/proc"
SCRIPT_LIMIT = 256 * 1024  # a shell script larger than this is not read: unknown
_CHAIN_LIMIT = 64  # parent chains are short; a loop in a racing read must still end


@record
class Fact:
    """One fact a decision rests on, as `--json` shows it under `evidence`."""

    pid: int | None
    fact: str  # "exe", "euid", "ancestor", "socket_uid", "docker", "interface", ...
    value: str
    owner: str | None = None  # who owns what `value` names (the binary's owner), if any

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"pid": self.pid, "fact": self.fact, "value": self.value}
        if self.owner is not None:
            out["owner"] = self.owner
        return out


@record
class Kernel:
    """The kernel facts of one process (Linux /proc, else psutil); None where unknown."""

    pid: int
    ppid: int | None
    ruid: int | None
    euid: int | None
    egid: int | None
    groups: tuple[int, ...]
    exe: str | None  # /proc/PID/exe as the kernel resolves it, or the OS's (never argv[0])
    exe_uid: int | None  # owner of that binary
    exe_trusted: bool  # root-owned, and no one but root can change it or its directories

    @property
    def program(self) -> str | None:
        return os.path.basename(self.exe) if self.exe else None

    def exe_fact(self) -> Fact:
        return Fact(self.pid, "exe", self.exe or "?", user_name(self.exe_uid))

    def euid_fact(self) -> Fact:
        return Fact(self.pid, "euid", str(self.euid), user_name(self.euid))


def kernel(pid: int) -> Kernel | None:
    """The process's kernel facts; None when it is gone or they may not be read."""
    if pid <= 0:
        return None
    if not platform_path.linux_proc():
        return _kernel_psutil(pid)
    base = f"{PROC}/{pid}"
    try:
        status = _small(f"{base}/status")
    except OSError:
        return None
    fields: dict[str, list[str]] = {}
    for line in status.decode("ascii", "replace").splitlines():
        key, _, rest = line.partition(":")
        if key in ("PPid", "Uid", "Gid", "Groups"):
            fields[key] = rest.split()
    uids = [int(v) for v in fields.get("Uid", []) if v.isdigit()]
    gids = [int(v) for v in fields.get("Gid", []) if v.isdigit()]
    ppid = fields.get("PPid", [""])[0] if fields.get("PPid") else ""
    exe = exe_uid = None
    trusted = False
    try:
        exe = os.readlink(f"{base}/exe")
    except OSError:
        exe = None
    if exe is not None:
        try:
            info = os.stat(f"{base}/exe")  # the very inode the kernel runs, even if deleted
            exe_uid = info.st_uid
            trusted = not exe.endswith(" (deleted)") and _root_only(info) and trusted_dir(
                os.path.dirname(exe)
            )
        except OSError:
            pass
    return Kernel(
        pid=pid,
        ppid=int(ppid) if ppid.isdigit() else None,
        ruid=uids[0] if uids else None,
        euid=uids[1] if len(uids) > 1 else None,
        egid=gids[1] if len(gids) > 1 else None,
        groups=tuple(int(v) for v in fields.get("Groups", []) if v.isdigit()),
        exe=exe,
        exe_uid=exe_uid,
        exe_trusted=trusted,
    )


def _kernel_psutil(pid: int) -> Kernel | None:
    """kernel() from psutil: what it reads from the kernel, and nothing it guesses."""
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            parent = proc.ppid()
            uids = _ids(proc, "uids")  # absent on Windows: unknown there
            gids = _ids(proc, "gids")
            exe = _os_exe(proc)
    except psutil.Error:  # gone, a zombie, or refused: nothing to rest a decision on
        return None
    exe_uid = None
    trusted = False
    if exe is not None and os.name == "posix":  # Windows' stat has no owner to trust
        try:
            info = os.stat(exe)  # the path: only root can swap a root-only one
            exe_uid = info.st_uid
            trusted = _root_only(info) and trusted_dir(os.path.dirname(exe))
        except OSError:
            pass
    return Kernel(
        pid=pid,
        ppid=parent,
        ruid=uids[0] if uids else None,
        euid=uids[1] if uids else None,
        egid=gids[1] if gids else None,
        groups=(),  # psutil does not say
        exe=exe,
        exe_uid=exe_uid,
        exe_trusted=trusted,
    )


def _ids(proc: object, which: str) -> tuple[int, int] | None:
    """(real, effective) from psutil's uids() or gids(); None where it has none."""
    getter = getattr(proc, which, None)
    if getter is None:
        return None
    found = getter()
    return int(found.real), int(found.effective)


def _os_exe(proc: object) -> str | None:
    """The executable as the OS reports it (Linux: the /proc/PID/exe link; macOS:
    proc_pidpath; Windows: QueryFullProcessImageName), through psutil's platform layer:
    its public exe() falls back to argv[0] when refused, a claim. None when unknown."""
    import psutil

    native = getattr(proc, "_proc", None)
    call = getattr(native, "exe", None)
    if call is None:  # a psutil without that layer: unknown rather than guessed
        return None
    try:
        path = call()
    except (psutil.Error, OSError):
        return None
    return path if isinstance(path, str) and path else None


def trusted_dir(path: str) -> bool:
    """Every directory from `path` up to / is root's and writable by root alone (a sticky
    /tmp is not: anyone may put a binary there)."""
    if not os.path.isabs(path):
        return False
    while True:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if stat.S_ISLNK(info.st_mode):  # /bin -> usr/bin: trust the link only if root's
            if info.st_uid != 0:
                return False
            target = os.path.join(os.path.dirname(path), os.readlink(path))
            return trusted_dir(os.path.normpath(target))
        if not _root_only(info):
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def _root_only(info: os.stat_result) -> bool:
    return info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def ancestors(pid: int) -> list[int]:
    """The kernel's parent chain above `pid`, nearest first, without PID 0."""
    chain: list[int] = []
    seen = {pid}
    current = pid
    while len(chain) < _CHAIN_LIMIT:
        parent = ppid(current)
        if parent is None or parent <= 0 or parent in seen:
            break
        chain.append(parent)
        seen.add(parent)
        current = parent
    return chain


def ppid(pid: int) -> int | None:
    if not platform_path.linux_proc():
        import psutil

        try:
            return psutil.Process(pid).ppid()
        except psutil.Error:
            return None
    try:
        data = _small(f"{PROC}/{pid}/stat")
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def read_script(path: str, reader: Kernel | None, cwd_pid: int | None = None) -> str | None:
    """A shell script's text, or None when it is not safe to read.

    The path is a claim (a shell's argv). It is read only if it is a regular file (never a
    FIFO, which would block, nor a device), opened without following a final symlink and
    without blocking, no larger than SCRIPT_LIMIT, and readable by the shell's own user
    (`reader`), so root reading it is no oracle for a file that user may not read. A
    relative path is taken from the shell's working directory as the kernel knows it.
    """
    if reader is None or reader.euid is None:
        return None
    if not os.path.isabs(path):
        if cwd_pid is None:
            return None
        cwd = f"{PROC}/{cwd_pid}/cwd" if platform_path.linux_proc() else _cwd(cwd_pid)
        if cwd is None:
            return None
        path = os.path.join(cwd, path)
    try:
        before = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(before.st_mode) or before.st_size > SCRIPT_LIMIT:
        return None
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
            return None  # swapped between the look and the open
        if not stat.S_ISREG(info.st_mode) or not readable_by(info, reader):
            return None
        data = os.read(fd, SCRIPT_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > SCRIPT_LIMIT:
        return None
    return data.decode("utf-8", "replace")


def _cwd(pid: int) -> str | None:
    import psutil

    try:
        return psutil.Process(pid).cwd() or None
    except psutil.Error:
        return None


def readable_by(info: os.stat_result, who: Kernel) -> bool:
    """Could `who` (its effective uid and groups) read a file with this mode and owner?"""
    if who.euid == 0:
        return True
    if info.st_uid == who.euid:
        return bool(info.st_mode & stat.S_IRUSR)
    if info.st_gid == who.egid or info.st_gid in who.groups:
        return bool(info.st_mode & stat.S_IRGRP)
    return bool(info.st_mode & stat.S_IROTH)


def _small(path: str) -> bytes:
    """A /proc file (never blocks, always small)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 16384)
    finally:
        os.close(fd)


def user_name(uid: int | None) -> str | None:
    """The account name of a uid, or the number when no account has it; None if unknown."""
    if uid is None:
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
