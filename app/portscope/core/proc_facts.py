"""Who a process is, read straight from /proc on Linux, exactly as psutil 7 reports it.

A one-shot `check` or `kill` is a whole Python process, and importing psutil alone costs it
~10 ms; describing a process here takes a few /proc reads. Every value is the one psutil's
`Process` gives, quirks included, so records made either way compare equal (tests check
field by field against psutil on every process of the machine): `name()` widened from
argv[0] when comm is cut at 15 characters, `cmdline()`'s separator guessing and text-mode
decoding, `create_time()` computed with the same float operations in the same order (`kill`
compares start times to refuse a reused PID), `exe()`/`cwd()` through psutil's readlink.

Failures map as psutil's do for our callers: a process gone, or a zombie, is None; a field
that may not be read (EACCES/EPERM: another user's exe or cwd when not root) is None.
"""

from __future__ import annotations

import os

from .record import record

PROC = "/proc"
AVAILABLE = os.path.exists(f"{PROC}/self/stat")  # Linux (or anything with a Linux /proc)
_CHUNK = 65536

# Read once per process lifetime, on first use: psutil reads btime on every create_time(),
# but it only moves if the clock is stepped, and the next run reads it again.
_ticks: int = 0
_btime: float = 0.0


@record
class Facts:
    """What /proc says about one process; None where a field could not be read."""

    pid: int
    name: str | None  # psutil's name(); None when /proc/PID/stat is unreadable
    ppid: int | None
    started: float | None  # seconds since the epoch, == psutil's create_time()
    cmdline: tuple[str, ...] | None
    cwd: str | None  # "" when the kernel has no link and the process is alive (psutil too)
    uid: int | None  # the real uid
    user: str | None  # its name, or str(uid) when no account has it
    exe: str | None = None  # only read when asked for
    # Not psutil's: the start time in clock ticks after boot, fd_reads.read_stat's number,
    # ProcessTable's identity of the PID.
    ticks: int | None = None

    @property
    def readable(self) -> bool:
        """False when the process is there but nothing about it may be read (its stat
        file refused, as with hidepid): the callers' AccessDenied fallback."""
        return self.name is not None


class _Gone(Exception):
    """The process exited (or is a zombie) while we read it."""


class _Denied(Exception):
    """EACCES/EPERM: psutil's AccessDenied."""


def read(pid: int, *, exe: bool = False) -> Facts | None:
    """Describe `pid`; None if it is gone or a zombie. `exe`: also resolve /proc/PID/exe."""
    base = f"{PROC}/{pid}"
    try:
        stat = _slurp(f"{base}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:  # refused (hidepid): the process is there, nothing about it is ours
        return Facts(pid, None, None, None, None, None, None, None)
    parsed = _parse_stat(stat)
    if parsed is None:
        return None
    comm, state, ppid, start = parsed
    if state == b"Z":
        return None
    try:
        cmdline = _cmdline(base)
        name = os.fsdecode(comm)
        if len(name) >= 15 and cmdline:
            # comm is cut at 15 bytes: psutil widens it to argv[0]'s base name if that
            # starts with it ("gnome-keyring-d" -> "gnome-keyring-daemon").
            extended = os.path.basename(cmdline[0])
            if extended.startswith(name):
                name = extended
        uid = _real_uid(base)
        cwd = _link_or_none(base, "cwd")
        path = _exe(base, cmdline) if exe else None
    except _Gone:
        return None
    user = None if uid is None else _user(uid)
    return Facts(pid, name, ppid, _started(start), cmdline, cwd, uid, user, path, int(start))


def _slurp(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK)
        if data:  # /proc files can be longer than one read (a long cmdline)
            more = os.read(fd, _CHUNK)
            while more:
                data += more
                more = os.read(fd, _CHUNK)
        return data
    finally:
        os.close(fd)


def _parse_stat(data: bytes) -> tuple[bytes, bytes, int, bytes] | None:
    """(comm, state, ppid, starttime) as psutil cuts them: comm runs from the first "(" to
    the last ")", since it may hold both."""
    rpar = data.rfind(b")")
    fields = data[rpar + 2 :].split()
    if len(fields) < 20:
        return None
    try:
        int(fields[19])  # read_stat's identity: the same number, or no process at all
        return data[data.find(b"(") + 1 : rpar], fields[0], int(fields[1]), fields[19]
    except ValueError:
        return None


def _started(start: bytes) -> float:
    """psutil's `float(starttime) / CLOCK_TICKS` plus `boot_time()`, in that order, so
    the float is bit-identical to its create_time()."""
    global _ticks, _btime
    if not _ticks:
        _btime = _boot_time()
        _ticks = os.sysconf("SC_CLK_TCK")
    return float(start) / _ticks + _btime


def _boot_time() -> float:
    for line in _slurp(f"{PROC}/stat").split(b"\n"):
        if line.startswith(b"btime"):
            return float(line.strip().split()[1])
    raise RuntimeError(f"line 'btime' not found in {PROC}/stat")


def _is_zombie(base: str) -> bool:
    try:
        data = _slurp(f"{base}/stat")
    except OSError:
        return False
    rpar = data.rfind(b")")
    return data[rpar + 2 : rpar + 3] == b"Z"


def _failed(base: str, error: OSError) -> bool:
    """psutil's wrap_exceptions for a file of /proc/PID that could not be read: raise
    _Gone when the process went (or became a zombie); True when refused (AccessDenied);
    False when the field is merely unreadable. Either way that field is None."""
    if isinstance(error, PermissionError):
        return True
    if isinstance(error, ProcessLookupError) or (
        isinstance(error, FileNotFoundError)
        and (_is_zombie(base) or not os.path.exists(f"{base}/stat"))
    ):
        raise _Gone from error
    return False


def _cmdline(base: str) -> tuple[str, ...] | None:
    try:
        raw = _slurp(f"{base}/cmdline")
    except OSError as error:
        _failed(base, error)
        return None
    # psutil reads it as text: the file system encoding (surrogateescape keeps non-UTF-8
    # bytes) and universal newlines, so "\r\n" and "\r" inside an argument become "\n".
    data = os.fsdecode(raw)
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    if not data:
        if _is_zombie(base):  # empty: a kernel thread, or a process that just died
            raise _Gone
        return ()
    # NUL-separated as exec left it; a process that rewrote its title (setproctitle)
    # often separates with spaces and leaves no trailing NUL.
    sep = "\x00" if data.endswith("\x00") else " "
    if data.endswith(sep):
        data = data[:-1]
    args = data.split(sep)
    if sep == "\x00" and len(args) == 1 and " " in data:
        args = data.split(" ")
    return tuple(args)


def _real_uid(base: str) -> int | None:
    try:
        status = _slurp(f"{base}/status")
    except OSError as error:
        _failed(base, error)
        return None
    return uid_from_status(status)


def uid_from_status(status: bytes) -> int | None:
    """The real uid: group 1 of the first match of psutil's
    br"Uid:\\t(\\d+)\\t(\\d+)\\t(\\d+)", without importing re."""
    at = status.find(b"Uid:\t")
    while at >= 0:
        fields = status[at + 5 : at + 64].split(b"\t", 2)
        # Groups 1 and 2 run to the next tab; group 3 only has to start with a digit.
        if (
            len(fields) == 3
            and fields[0].isdigit()
            and fields[1].isdigit()
            and fields[2][:1].isdigit()
        ):
            return int(fields[0])
        at = status.find(b"Uid:\t", at + 1)
    return None


def _user(uid: int) -> str:
    """The account's name; the answer kept USER_KEPT seconds: 2,000 workers of one user
    asked NSS 2,000 times (~10 ms from /etc/passwd; a directory service costs more)."""
    import pwd  # a C module: cheap, and only needed once a uid was read
    import time

    now = time.monotonic()
    kept = _users.get(uid)
    if kept is not None and 0 <= now - kept[1] < USER_KEPT:
        return kept[0]
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # an account the system cannot resolve: psutil gives the number
        name = str(uid)
    if len(_users) >= 4096:  # bounded, whatever uids come and go
        _users.clear()
    _users[uid] = (name, now)
    return name


USER_KEPT = 5.0  # seconds a uid's account name is reused (renamed accounts are rare)
_users: dict[int, tuple[str, float]] = {}


def _link(base: str, what: str) -> str | None:
    """psutil's Process._readlink with the fallback "": the target, "" when the link is
    missing but the process is alive (a kernel thread's exe), None when unreadable."""
    try:
        path = os.readlink(f"{base}/{what}")
    except (FileNotFoundError, ProcessLookupError) as error:
        if os.path.lexists(base):
            if _is_zombie(base):
                raise _Gone from error
            return ""
        if _failed(base, error):
            raise _Denied from error
        return None
    except OSError as error:
        if _failed(base, error):
            raise _Denied from error
        return None
    # Everything after a NUL is garbage (psutil issue 717); " (deleted)" is only dropped
    # when no file of that name exists.
    path = path.split("\x00")[0]
    if path.endswith(" (deleted)"):
        try:
            os.stat(path)
        except PermissionError as error:
            raise _Denied from error
        except OSError:
            path = path[:-10]
    return path


def _link_or_none(base: str, what: str) -> str | None:
    try:
        return _link(base, what)
    except _Denied:
        return None


def _exe(base: str, cmdline: tuple[str, ...] | None) -> str | None:
    """psutil's Process.exe(): when the link is refused or empty, argv[0] if it is an
    absolute path to an executable file (as seen by us)."""
    try:
        path = _link(base, "exe")
    except _Denied:
        return _guess_exe(cmdline)
    if path == "":
        return _guess_exe(cmdline) or ""
    return path


def _guess_exe(cmdline: tuple[str, ...] | None) -> str | None:
    if cmdline:
        exe = cmdline[0]
        if os.path.isabs(exe) and os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return None


def environ(pid: int) -> dict[str, str] | None:
    """The process's environment as psutil's environ() parses it (a NUL-separated block,
    decoded as the filesystem does; entries without "=" skipped, a double NUL ends it);
    None if it is gone or may not be read."""
    try:
        data = os.fsdecode(_slurp(f"{PROC}/{pid}/environ"))
    except OSError:
        return None
    found: dict[str, str] = {}
    pos = 0
    while True:
        end = data.find("\0", pos)
        if end <= pos:
            break
        equals = data.find("=", pos, end)
        if equals > pos:
            found[data[pos:equals]] = data[equals + 1 : end]
        pos = end + 1
    return found


def parents() -> dict[int, int]:
    """PID -> parent PID of every process /proc lists (zombies too, as psutil's
    process_iter has them); a process that exits meanwhile is left out."""
    found: dict[int, int] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            parsed = _parse_stat(_slurp(f"{PROC}/{name}/stat"))
        except OSError:
            continue
        if parsed is not None:
            found[int(name)] = parsed[2]
    return found


def children(pid: int) -> tuple[int, ...] | None:
    """The PIDs `pid` forked that are still running, sorted, from the kernel's list per
    thread (/proc/PID/task/TID/children): a few reads, where parents() reads every
    process's stat (35 ms at 2,000). None if the kernel has no such list or `pid` is gone:
    ask parents() then. Like parents(), a child forked or reaped meanwhile may be missed."""
    try:
        threads = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return None
    found: set[int] = set()
    for tid in threads:
        try:
            found.update(int(word) for word in _slurp(f"{PROC}/{pid}/task/{tid}/children").split())
        except FileNotFoundError:
            if not os.path.isdir(f"{PROC}/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # no CONFIG_PROC_CHILDREN
        except (OSError, ValueError):
            return None
    return tuple(sorted(found))


def cmdlines() -> dict[int, tuple[str, ...]]:
    """PID -> command line (as psutil's cmdline() reads it) of every process whose command
    line may be read; zombies and processes gone meanwhile are left out."""
    found: dict[int, tuple[str, ...]] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            argv = _cmdline(f"{PROC}/{name}")
        except _Gone:
            continue
        if argv is not None:
            found[int(name)] = argv
    return found
