"""What one run learned about owners, kept for the next: the user's own file, never trusted
blindly.

A cold `portscope check 8080` walks every /proc/PID/fd (0.6 s with 300 pre-fork workers)
and describes every holder with psutil; the next one, a second later, would do it all
again. So each run (the monitor included) stores its owner index and its process
descriptions here, and the next starts from them. Nothing in the file is believed on its
own word: the index takes a table only while the PID's start time matches and its process
has neither run nor changed its fd count since the table was read whole (else it reads it
again), however old the file; a description is checked against the start time, and its
parent re-read, before use, and taken only while it is younger than the walk period (30 s)
or its process has not run since it was read. A process whose table this user may not
read (another user's) is listed with its CPU time, and skipped only while that has not
moved. A stale file costs speed, never a wrong answer.

Where: `$XDG_RUNTIME_DIR/portscope/`, else `/run/user/UID/portscope/`, else
`~/.cache/portscope/` (the home of the effective user, so root under sudo keeps its own).
A base directory must be the user's, writable by nobody else and reached through no
symlink; `portscope/` must be a real directory of the user's with mode 0700, and the file
a regular file of the user's with no group or other bits (0600). Anything else (another
owner, a symlink, a wider mode, an unreadable, oversized or corrupt file, another boot,
user or PID namespace) is ignored: read as empty, and not written over. Writes go to a
temporary file renamed into place, so a reader never sees half a file; two runs at once
simply keep the later one's.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable

from ..hints import NamedTuple
from ..model import Holder
from ..processes import Described
from .owners import IndexState, TableState

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

NAME = "owners-v2.json"
VERSION = 3  # 2: descriptions carry their CPU-time witness; 3: refused PIDs
MAX_BYTES = 64 << 20  # far above what 10,000 processes leave; a bigger file is not ours


class Learned(NamedTuple):
    owners: IndexState
    described: dict[int, Described]


def store_dir(env: dict[str, str] | None = None) -> str | None:
    """This user's portscope directory, made if missing; None if no safe one exists."""
    env = dict(os.environ) if env is None else env
    uid = os.geteuid()
    bases = []
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        bases.append(runtime)
    bases.append(f"/run/user/{uid}")
    home = _home(uid)
    if home is not None:
        bases.append(os.path.join(home, ".cache"))
    for base in bases:
        if _private_base(base, uid, make=os.path.basename(base) == ".cache"):
            mine = os.path.join(base, "portscope")
            try:
                os.mkdir(mine, 0o700)
            except FileExistsError:
                pass
            except OSError:
                continue
            if _private(mine, uid, stat.S_ISDIR):
                return mine
            return None  # ours to use, but unsafe: better no store than a doubtful one
    return None


def _home(uid: int) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_dir
    except (ImportError, KeyError):
        return None


def _private_base(base: str, uid: int, make: bool) -> bool:
    """The user's own directory that nobody else may write into (XDG_RUNTIME_DIR is 0700;
    ~/.cache is often 0755, which is fine: others may look, not replace), reached through
    no symlink at all: a link anywhere on the way could point root's writes where a user's
    environment says."""
    try:
        if make and not os.path.isdir(base):
            os.mkdir(base, 0o700)
        st = os.lstat(base)
        if os.path.realpath(base) != os.path.normpath(base):
            return False
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o022


def _private(path: str, uid: int, kind: Callable[[int], bool]) -> bool:
    """Not a symlink, of `kind`, the user's, and no group or other permission bits."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return kind(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077


def load(path: str, identity: dict[str, Any]) -> Learned | None:
    """The file's contents if it is safe, well-formed and of this boot, user and PID
    namespace (`identity`); else None."""
    uid = os.geteuid()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != uid
            or st.st_mode & 0o077
            or st.st_size > MAX_BYTES
        ):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("identity") != identity:
            return None
        return _decode(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return None


def save(path: str, identity: dict[str, Any], learned: Learned) -> bool:
    """Write atomically (a temporary file renamed into place); False if it could not be."""
    data = json.dumps(_encode(identity, learned), separators=(",", ":")).encode("ascii")
    where, name = os.path.split(path)
    tmp = os.path.join(where, f".{name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        try:  # noqa: SIM105  # contextlib.suppress: importing contextlib costs ~0.7 ms
            os.unlink(tmp)
        except OSError:
            pass
        return False


class OwnerStore:
    """The store file of this user (found on first use, so a run that needs no owners never
    touches the disk)."""

    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self._found = path is not None
        self._identity: dict[str, Any] | None = None

    @property
    def path(self) -> str | None:
        if not self._found:
            self._found = True
            where = store_dir()
            self._path = None if where is None else os.path.join(where, NAME)
        return self._path

    def load(self) -> Learned | None:
        path, who = self.path, self._who()
        return None if path is None or who is None else load(path, who)

    def save(self, learned: Learned) -> bool:
        path, who = self.path, self._who()
        return path is not None and who is not None and save(path, who, learned)

    def _who(self) -> dict[str, Any] | None:
        if self._identity is None:
            self._identity = identity()
        return self._identity


def identity(proc: str = "/proc") -> dict[str, Any] | None:
    """What the file must match to be of this machine's present: the boot, the effective
    user, the PID namespace (a container sharing the home sees other processes)."""
    try:
        with open(f"{proc}/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        pidns = os.stat(f"{proc}/self/ns/pid").st_ino
    except OSError:
        return None
    return {"version": VERSION, "uid": os.geteuid(), "boot": boot, "pidns": pidns}


# The layout: fd tables are shared between processes that have the same one (forked
# workers inherit their master's), and so are command lines, so 300 workers are one table.


def _encode(who: dict[str, Any], learned: Learned) -> dict[str, Any]:
    tables: dict[tuple[tuple[str, int], ...], int] = {}
    argvs: dict[tuple[str, ...], int] = {}
    pids = {}
    for pid, t in learned.owners.tables.items():
        key = tuple(t.fds.items())
        number = tables.setdefault(key, len(tables))
        pids[str(pid)] = [t.start, t.fd_count, *t.ran, *t.checked, number]
    described = {}
    for pid, d in learned.described.items():
        h = d.holder
        argv = argvs.setdefault(h.cmdline, len(argvs))
        described[str(pid)] = [
            d.start, d.at, d.ran, h.name, h.user, argv, h.started, h.cwd, h.ppid,
        ]
    return {
        "identity": who,
        "searched": learned.owners.searched,
        "tables": [[int(n) for pair in key for n in pair] for key in tables],
        "pids": pids,
        "nobody": sorted(learned.owners.nobody),
        "refused": [[pid, ns, single] for pid, ns, single in learned.owners.refused],
        "argvs": [list(argv) for argv in argvs],
        "described": described,
    }


def _decode(data: dict[str, Any]) -> Learned:
    """Strict: any value of the wrong type raises, and the whole file is ignored. (Types
    are checked a row at a time, with `map(type, ...)`: 2,000 processes are ~30,000
    values, and a call per value was a third of a warm `list`'s time.)"""
    tables = []
    for flat in _list(data["tables"]):
        numbers = _list(flat)
        if not _all_int(numbers) or len(numbers) % 2:
            raise ValueError("not an fd table")
        pairs = zip(numbers[::2], numbers[1::2], strict=True)
        tables.append({sys.intern(str(name)): inode for name, inode in pairs})
    index: dict[int, TableState] = {}
    for pid, row in _dict(data["pids"]).items():
        start, count, ran_ns, ran_one, checked_ns, checked_one, number = _list(row)
        if not _all_int((start, count, ran_ns, checked_ns, number)):
            raise TypeError("integer expected")
        index[_int(pid)] = TableState(
            start, count, (ran_ns, _bool(ran_one)), (checked_ns, _bool(checked_one)),
            tables[number],
        )
    argvs = [tuple(_str(a) for a in _list(argv)) for argv in _list(data["argvs"])]
    described: dict[int, Described] = {}
    for pid, row in _dict(data["described"]).items():
        start, at, ran, name, user, argv, started, cwd, ppid = _list(row)
        if not _all_int((start, ran, argv)):
            raise TypeError("integer expected")
        holder = Holder(
            pid=_int(pid), name=_str(name), user=_opt(user, _str), cmdline=argvs[argv],
            started=_opt(started, _float), cwd=_opt(cwd, _str), ppid=_opt(ppid, _int),
        )
        described[holder.pid] = Described(start, _float(at), holder, ran)
    searched = _float(data["searched"])
    nobody = frozenset(_int(inode) for inode in _list(data["nobody"]))
    refused = []
    for row in _list(data["refused"]):
        pid, ns, single = _list(row)
        if not _all_int((pid, ns)):
            raise TypeError("integer expected")
        refused.append((pid, ns, _bool(single)))
    return Learned(IndexState(searched, index, nobody, tuple(refused)), described)


def _all_int(values: list[Any] | tuple[Any, ...]) -> bool:
    """Every value an int (not a bool: type, not isinstance)."""
    return not values or set(map(type, values)) == {int}


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("list expected")
    return value


def _dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("object expected")
    return value


def _int(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("integer expected")
    return value


def _float(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError("number expected")
    return float(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("boolean expected")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("string expected")
    return value


def _opt(value: object, kind: Callable[[object], Any]) -> Any:
    return None if value is None else kind(value)
