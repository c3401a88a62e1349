"""One process's fd table and the witnesses of its change, read from /proc, here or in helpers.

A cold walk (an owner index that knows nothing) reads every process's table: at 2,000
processes ~90,000 readlinks, ~0.5 s, nearly all of it in the kernel, in a thread that shares
the GIL with the monitor's screen. `read_many` hands such a walk to helper processes, one per
core, running this very file as a script (`python -I -S fd_reads.py PROC`, the PIDs taken
from stdin a share at a time, the tables marshalled back on stdout), so it imports the
standard library only, and proc_facts when it also describes the processes it walks (a
cold whole poll describes every holder: read by the helpers, those reads run on every core
instead of taking the CPU from them). A helper that fails or is late costs nothing but
time: the caller reads what it did not give, itself.

A helper reads a forked worker's table against its parent's (Inherited): kcmp(2) says in one
call that the worker's fd N is its parent's fd N, one open file, where readlink costs twice
that; at 2,000 workers of 44 fds the walk's CPU falls by about a third.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

TYPE_CHECKING = False  # typing's own flag would import typing at run time (in helpers too)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

# (fd count, (CPU time in ns, single-threaded), (start time, parent) or None, fd number ->
# socket inode or 0, socket inode -> one fd number holding it)
Table = tuple[int, tuple[int, bool], "tuple[int, int] | None", dict[str, int], dict[int, str]]

UNKNOWN = (-1, False)  # CPU time unreadable: the process must be taken as having run
HELPER_TIMEOUT = 10.0  # seconds: a /proc read never takes this long unless something is stuck


def read_table(
    proc: str, pid: int, cached: dict[str, int] | None = None, live: set[int] | None = None,
    inherited: Inherited | None = None,
) -> Table | None:
    """`pid`'s fd table; None if it is gone or not ours to read. With `cached` (the last
    read), only fd numbers that are new, or pointed at a socket not in `live`, are read;
    with `inherited`, those its parent holds too are compared with the parent's.
    The witnesses are taken before the table, so a change during or after the read shows."""
    count = fd_count(proc, pid)
    # The main thread's CPU time, then the stat: one thread then, and that time is the
    # process's (a thread started since needed the main thread to run, so it shows there;
    # one that ended before did what it did before the table is read). Else every
    # thread's, as activity() reads them.
    main = schedstat(f"{proc}/{pid}/schedstat")
    threads, stat = _read_stat(pid, proc)
    ran = (main, True) if threads == 1 and main >= 0 else activity(proc, pid, None)
    if inherited is not None and stat is not None:
        same = inherited.table(pid, stat[1], count)
        if same is not None:
            return count, ran, stat, *same
    try:
        # Names relative to the open directory: the kernel resolves one component per
        # readlink instead of four.
        dir_fd = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        names = os.listdir(dir_fd)
        cached = cached or {}
        live = live or set()
        fds: dict[str, int] = {}
        held: dict[int, str] = {}
        for name in map(sys.intern, names):  # "0".."N" once for all, not per table
            inode = cached.get(name)
            if inode is None or (inode and inode not in live):
                inode = socket_inode(name, dir_fd)
            fds[name] = inode
            if inode:
                held.setdefault(inode, name)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    return count, ran, stat, fds, held


# A parent's table as a template: (fds, held, the fd numbers as kcmp takes them, its CPU
# time when read, its schedstat kept open)
_Template = tuple[dict[str, int], dict[int, str], list[object], int, int]


class Inherited:
    """Tables read against the parent's: a forked worker holds what its parent held, at the
    same fd numbers, and kcmp(KCMP_FILE) tells in one call (~2.3 us) that its fd N is the
    very open file of the parent's fd N, where readlink costs ~5 us.

    Exact, not a guess: a worker whose fd count is its parent's, and whose every fd is the
    parent's, holds what the parent held; anything else is read by readlink. The parent's
    table is believed only while the parent has not run since it was read (its CPU time,
    checked after each worker), so a descriptor it replaced meanwhile cannot be taken for
    the old one; a parent that ran, or has threads, is no template at all. kcmp is used
    only where `proc` is this process's own /proc, whose PIDs are the ones kcmp takes."""

    def __init__(self, proc: str) -> None:
        self._proc = proc
        self._kcmp = _Kcmp.open(proc)
        self._counts: dict[int, int] = {}  # parent PID -> its fd count when first asked
        # parent PID -> (its fds, the socket held at each, their numbers as kcmp takes them,
        # its CPU time then, its schedstat kept open); None: no use
        self._templates: dict[int, _Template | None] = {}
        self.compared = 0  # tables taken from a parent's

    def table(
        self, pid: int, ppid: int, count: int
    ) -> tuple[dict[str, int], dict[int, str]] | None:
        """`pid`'s (fds, held) if its fds are all its parent's (`count`: its fd count, just
        read); None: read it by readlink. The parent's very dicts, shared by every worker
        taken from it (read, never changed): marshal then sends them once, not per worker."""
        if self._kcmp is None or count <= 0:
            return None
        if ppid not in self._counts:  # one stat, so that unlike parents are never read
            self._counts[ppid] = fd_count(self._proc, ppid)
        if self._counts[ppid] != count:
            return None
        template = self._template(ppid)
        if template is None or len(template[0]) != count:
            return None
        fds, held, numbers, ns, kept = template
        if not self._kcmp.same_files(ppid, pid, numbers):
            return None
        if schedstat_at(kept) != ns:  # the parent ran: its table may be another now
            self._templates[ppid] = None
            os.close(kept)
            return None
        self.compared += 1
        return fds, held

    def close(self) -> None:
        for ppid, template in self._templates.items():
            if template is not None:
                os.close(template[4])
                self._templates[ppid] = None

    def _template(self, ppid: int) -> _Template | None:
        if ppid in self._templates:
            return self._templates[ppid]
        self._templates[ppid] = None
        try:
            kept = os.open(f"{self._proc}/{ppid}/schedstat", os.O_RDONLY)
        except OSError:
            return None
        read = read_table(self._proc, ppid)
        if read is None or not read[1][1] or read[1][0] < 0 or schedstat_at(kept) != read[1][0]:
            os.close(kept)  # gone, threaded, or ran while read
            return None
        assert self._kcmp is not None  # table() asks only then
        numbers = self._kcmp.indices(int(name) for name in read[3])
        self._templates[ppid] = read[3], read[4], numbers, read[1][0], kept
        return self._templates[ppid]


# kcmp(2)'s syscall number where we know it (elsewhere every fd is read by readlink).
_KCMP = {"x86_64": 312, "aarch64": 272}
_KCMP_FILE = 0
_KCMP_VM = 1


class _Kcmp:
    """kcmp(2) through ctypes. Every argument is passed as the C type syscall(2) reads
    (long; unsigned long for the fd numbers, made once per parent), and the function has no
    `argtypes`: with them ctypes converts and checks five arguments on every call, ~1.5 us
    of the ~3.7 us one fd cost: ~120 ms for 2,000 workers of 44 fds."""

    def __init__(self, call: Callable[..., int], number: int) -> None:
        import ctypes

        self._call = call
        self._long = ctypes.c_long
        self._ulong = ctypes.c_ulong
        self._number = ctypes.c_long(number)

    @classmethod
    def open(cls, proc: str) -> _Kcmp | None:
        """None: not Linux on a known machine, `proc` not our own /proc (a stand-in, or
        another PID namespace's), or the call refused (seccomp)."""
        number = _KCMP.get(os.uname().machine)
        if number is None:
            return None
        try:
            if os.path.basename(os.path.realpath(f"{proc}/self")) != str(os.getpid()):
                return None
            import ctypes  # here: a process that never walks many tables does not load it

            call = ctypes.CDLL(None, use_errno=True).syscall
        except (OSError, AttributeError, ImportError):
            return None
        call.restype = ctypes.c_long
        kcmp = cls(call, number)
        me = os.getpid()
        # Our memory is our memory, unless refused: ENOSYS (no CONFIG_KCMP) or EPERM (a
        # seccomp filter, as Docker's).
        if not kcmp.same(me, me, _KCMP_VM, kcmp.indices([0])):
            return None
        return kcmp

    def indices(self, numbers: Iterable[int]) -> list[object]:
        """What `same` takes for these fd numbers (or other indices)."""
        return [self._ulong(n) for n in numbers]

    def same_files(self, pid1: int, pid2: int, fds: list[object]) -> bool:
        """True if each of these fds of `pid1` is the very open file of `pid2`'s fd of the
        same number; False at the first that is not (or is not open, or may not be read)."""
        return self.same(pid1, pid2, _KCMP_FILE, fds)

    def same(self, pid1: int, pid2: int, kind: int, indices: list[object]) -> bool:
        call, number = self._call, self._number
        first, second, what = self._long(pid1), self._long(pid2), self._long(kind)
        # 0: the same object; 1, 2, 3: not (an order); -1: refused, or no such fd (errno)
        return all(call(number, first, second, what, i, i) == 0 for i in indices)


def refused_at(proc: str, pid: int) -> tuple[int, bool] | None:
    """After read_table gave None: the CPU time of a process still there (any user's may
    be read), whose table is not ours to read; None if it is gone."""
    ran = activity(proc, pid, None)
    return ran if ran[0] >= 0 else None


def fd_count(proc: str, pid: int) -> int:
    """Open fds (st_size of the fd directory, Linux >= 6.2; 0 before), -1 if gone."""
    try:
        return os.stat(f"{proc}/{pid}/fd").st_size
    except OSError:
        return -1


def socket_inode(name: str, dir_fd: int) -> int:
    """The fd's socket inode, else 0 ("not a socket").

    Any socket, not only those of the dump just read: a socket created but not yet bound
    or listening is in no dump, and its process may never run again once it listens
    (blocked in accept), so no witness would ever send us back to find it. Recorded now,
    it is found as soon as a dump shows it."""
    try:
        link = os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return 0
    if link.startswith("socket:["):
        try:
            return int(link[8:-1])
        except ValueError:  # not the kernel's "socket:[INODE]" (a stand-in /proc, say)
            return 0
    return 0


def activity(
    proc: str, pid: int, last: tuple[int, bool] | None,
    main: Callable[[int], int] | None = None,
) -> tuple[int, bool]:
    """(CPU time of all threads of `pid` in ns, single-threaded); `last` back, the very
    object, if it has not moved; UNKNOWN if unreadable.

    A process that was single-threaded at `last` is checked by its main thread alone (one
    read, by `main` if given: kept_files.py): it cannot have started a thread without
    running. Otherwise every thread's /proc/PID/task/TID/schedstat is summed.
    """
    if last is not None and last[1] and last[0] >= 0:
        ns = main(pid) if main is not None else schedstat(f"{proc}/{pid}/schedstat")
        if ns == last[0]:
            return last
    task_dir = f"{proc}/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return UNKNOWN
    total = 0
    for tid in tids:
        ns = schedstat(f"{task_dir}/{tid}/schedstat")
        if ns < 0:
            return UNKNOWN
        total += ns
    return total, len(tids) == 1


def schedstat(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return -1
    try:
        return schedstat_at(fd)
    finally:
        os.close(fd)


def schedstat_at(fd: int) -> int:
    """An open schedstat file's first field, time on the CPU in ns, written afresh by each
    read from offset 0 (so a file kept open reads as new); -1 if unreadable."""
    try:
        return int(os.pread(fd, 128, 0).split(maxsplit=1)[0])
    except (OSError, ValueError, IndexError):
        return -1


def read_stat(pid: int, proc: str = "/proc") -> tuple[int, int] | None:
    """(start time in clock ticks after boot, parent PID) from /proc/PID/stat; None if the
    process is gone, a zombie, or the file unreadable."""
    return _read_stat(pid, proc)[1]


def _read_stat(pid: int, proc: str) -> tuple[int, tuple[int, int] | None]:
    """(its thread count, or 0 if unknown; read_stat's answer)."""
    try:
        fd = os.open(f"{proc}/{pid}/stat", os.O_RDONLY)
    except OSError:
        return 0, None
    try:
        stat = os.read(fd, 1024)
    except OSError:
        return 0, None
    finally:
        os.close(fd)
    # Fields 3 (state), 4 (ppid), 20 (num_threads) and 22 (starttime), counted after the
    # ")" that ends the command name (which may itself hold ")" and spaces).
    fields = stat.rpartition(b")")[2].split()
    if len(fields) <= 19 or fields[0] == b"Z":
        return 0, None
    try:
        return int(fields[17]), (int(fields[19]), int(fields[1]))
    except ValueError:
        return 0, None


# What helpers answer: tables by PID; the PIDs whose table we may not read, with their CPU
# time then (activity); and, if asked, each process's description (proc_facts.Facts' fields),
# read after its table and so after the CPU time that table carries.
Answer = tuple[dict[int, Table], dict[int, tuple[int, bool]], dict[int, "tuple[Any, ...]"]]


def read_many(proc: str, pids: list[int], helpers: int, describe: bool = False) -> Answer:
    """Whole tables of `pids` read by `helpers` processes at once, while this one waits
    (asleep, the GIL released). `describe`: each helper also describes the processes whose
    tables it read and that hold a socket (proc_facts.read, the reads this process would
    make, on every core and not on this one, where it would take the CPU from the helpers).
    A PID in no part of the answer was gone, or its helper failed or did not answer within
    HELPER_TIMEOUT (it is killed): the caller reads it itself. Spawned with os.posix_spawn,
    not subprocess, which a one-shot command would import for this alone (~5 ms)."""
    answer: Answer = ({}, {}, {})
    blocks = _blocks(sorted(pid for pid in pids if 0 < pid < _MAX_PID))
    if helpers < 1 or not blocks or not sys.executable or not hasattr(os, "posix_spawn"):
        return answer
    answers: dict[int, tuple[int, list[bytes]]] = {}  # pipe -> (helper's PID, what it sent)
    ours = [fd for fd in _inheritable() if fd > 2]  # our pipes are close-on-exec: not here
    asked = ["describe"] if describe else []
    queue, feed = os.pipe()  # both close-on-exec
    os.set_blocking(feed, False)
    shares = sum(len(block) for block in blocks) // SHARE_BYTES
    try:
        for _ in range(min(helpers, shares)):
            try:
                child, pipe = _spawn(
                    [sys.executable, "-I", "-S", __file__, proc, *asked], ours, queue
                )
            except OSError:  # no interpreter there, too many processes: read here instead
                break
            answers[pipe] = (child, [])
    finally:
        os.close(queue)
    late = _read_all(answers, feed, blocks)
    for pipe, (child, chunks) in answers.items():
        os.close(pipe)
        if pipe in late:
            os.kill(child, 9)  # SIGKILL; `signal` would import enum
        try:
            exited = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
        except ChildProcessError:  # SIGCHLD ignored: reaped already, its status unknown
            exited = True
        if pipe in late or not exited:
            continue
        try:
            sent = marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            continue
        if type(sent) is not tuple or len(sent) not in (2, 4) or not all(
            type(x) is dict for x in (sent[0], sent[1], *sent[3:])
        ):
            continue  # not ours (a stand-in interpreter): nothing taken
        answer[0].update(
            (pid, table) for pid, table in sent[0].items()
            if type(pid) is int and type(table) is tuple and len(table) == 5
        )
        answer[1].update(
            (pid, ran) for pid, ran in sent[1].items()
            if type(pid) is int and type(ran) is tuple and len(ran) == 2
        )
        # Descriptions in our Facts' very fields (a helper started from a newer copy of this
        # package, installed while we ran, may have others).
        if describe and len(sent) == 4 and sent[2] == _facts_fields():
            answer[2].update(
                (pid, facts) for pid, facts in sent[3].items()
                if type(pid) is int and type(facts) is tuple and len(facts) == len(sent[2])
            )
    return answer


# The PIDs go to the helpers through one pipe, their stdin, SHARE at a time as each asks
# for more: a helper that started late, or shares its core with the monitor, takes fewer,
# and both finish together (fixed halves left a core idle for the last 100-150 ms of a
# 2,000-process walk). A share is SHARE PIDs as fixed-width text, written in blocks of
# whole shares no longer than PIPE_BUF (POSIX's least, 512 bytes), which a pipe writes
# whole or not at all: the pipe always holds whole shares, and each read takes one.
SHARE = 16
_WIDTH = 8  # "%7d ": Linux's PIDs stop at 4,194,304 (PID_MAX_LIMIT)
_MAX_PID = 10**7
SHARE_BYTES = SHARE * _WIDTH
_BLOCK = 512 // SHARE_BYTES * SHARE_BYTES


def _blocks(pids: list[int]) -> list[bytes]:
    text = b"".join(b"%7d " % pid for pid in pids)
    text += b" " * (-len(text) % SHARE_BYTES)
    return [text[at : at + _BLOCK] for at in range(0, len(text), _BLOCK)]


def _feed(feed: int, blocks: list[bytes], sent: int) -> int:
    """Write blocks[sent:] while the pipe has room; how many are written. All of them if
    no helper reads any more (EPIPE): there is no one left to give them to."""
    try:
        while sent < len(blocks):
            os.write(feed, blocks[sent])  # at most PIPE_BUF: all of it, or EAGAIN
            sent += 1
    except BlockingIOError:
        pass
    except OSError:
        return len(blocks)
    return sent


def _facts_fields() -> tuple[str, ...]:
    from ..proc_facts import Facts
    from ..record import fields

    return fields(Facts)


def _spawn(argv: list[str], ours: list[int], stdin: int) -> tuple[int, int]:
    """Start `argv` with stdout into a pipe (returned with its PID), `stdin`, stderr on
    /dev/null, and `ours` closed (our other inheritable descriptors): it would hold our
    sockets while it runs."""
    readable, writable = os.pipe()  # both close-on-exec
    actions: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, writable, 1),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in ours]
    try:
        child = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    except OSError:
        os.close(readable)
        raise
    finally:
        os.close(writable)
    return child, readable


def _inheritable() -> list[int]:
    """Our descriptors that a spawned program would keep (Python opens its own
    close-on-exec; a parent may have passed others)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                found.append(int(name))
        except OSError:  # the listing's own descriptor, closed since
            pass
    return found


def _read_all(
    answers: dict[int, tuple[int, list[bytes]]], feed: int, blocks: list[bytes]
) -> set[int]:
    """Feed the helpers `blocks` of PIDs (closing `feed` once all are written, which is
    their end of the walk), and read every pipe to its end, taking what each has as it
    comes (a helper blocked on a full pipe would wait for us); the pipes still open at
    HELPER_TIMEOUT. Between rounds, a short sleep rather than select(): a C module outside
    the interpreter itself, which a process that dropped privileges, or outlived an
    upgrade, may no longer import."""
    open_pipes = set(answers)
    for pipe in open_pipes:
        os.set_blocking(pipe, False)
    deadline = time.monotonic() + HELPER_TIMEOUT
    sent = 0
    try:
        while open_pipes and time.monotonic() < deadline:
            if feed >= 0:
                sent = _feed(feed, blocks, sent)
                if sent == len(blocks):
                    os.close(feed)
                    feed = -1
            for pipe in list(open_pipes):
                try:
                    while data := os.read(pipe, 65536):  # a pipe's whole buffer, at most
                        answers[pipe][1].append(data)
                    open_pipes.discard(pipe)  # the end
                except BlockingIOError:
                    pass  # nothing more yet
                except OSError:  # the pipe failed: its answer is taken only if whole
                    open_pipes.discard(pipe)
            if open_pipes:
                time.sleep(0.001)
    finally:
        if feed >= 0:
            os.close(feed)
    return open_pipes


def _serve(proc: str, describe: bool) -> None:
    """The helper: the tables of the PIDs read from stdin (a share at a time, until its
    end), and those refused, to stdout (marshal); with `describe`, proc_facts' fields and
    the Facts of each process that holds a socket."""
    tables: dict[int, Table] = {}
    refusals: dict[int, tuple[int, bool]] = {}
    described: dict[int, tuple[Any, ...]] = {}
    inherited = Inherited(proc)
    describer = _describer() if describe else None
    for pid in (int(pid) for share in iter(_share, b"") for pid in share.split()):
        table = read_table(proc, pid, inherited=inherited)
        if table is not None:
            tables[pid] = table
            # Only a process that holds a socket can be a holder worth describing.
            if describer is not None and table[4] and (facts := describer[1](pid)) is not None:
                described[pid] = facts
        elif (ran := refused_at(proc, pid)) is not None:
            refusals[pid] = ran
    answer: tuple[Any, ...] = (tables, refusals)
    if describer is not None:
        answer = (tables, refusals, describer[0], described)
    sys.stdout.buffer.write(marshal.dumps(answer))


def _describer() -> tuple[tuple[str, ...], Callable[[int], tuple[Any, ...] | None]] | None:
    """In a helper: Facts' field names, and proc_facts.read giving their values, with equal
    strings and command lines one object (marshal writes each once: a pre-fork server's
    2,000 workers share one command line). This file runs as a script there, outside its
    package: the package is imported from the directory this file is installed in."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))))
    try:
        from portscope.core import proc_facts
        from portscope.core.record import fields
    except ImportError:
        return None
    names = fields(proc_facts.Facts)
    same: dict[object, object] = {}

    def describe(pid: int) -> tuple[Any, ...] | None:
        facts = proc_facts.read(pid)
        if facts is None:
            return None
        values = (getattr(facts, name) for name in names)
        return tuple(same.setdefault(v, v) if type(v) in (str, tuple) else v for v in values)

    return names, describe


def _share() -> bytes:
    return os.read(0, SHARE_BYTES)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2:] == ["describe"])
