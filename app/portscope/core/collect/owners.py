"""Which processes hold which sockets, kept up to date without re-reading every fd per poll.

A full walk of /proc/*/fd (list each fd directory, readlink every fd) costs ~500 ms with 300
pre-fork workers holding 250 fds each, and almost nothing in it changes from one second to
the next. So each process's fd table is remembered (fd number -> socket inode, 0 for
anything else), with two cheap witnesses of change:

- its CPU time in ns (/proc/PID/schedstat): any syscall that could touch the fd table
  (close, socket, accept, recvmsg of an fd, exit) makes a thread run, so an unchanged value
  proves the table is as we read it (and that the PID still names the same process); the
  file is kept open between polls, so reading it again is one pread (kept_files.py);
- its fd count (`stat` of /proc/PID/fd gives it as st_size on Linux >= 6.2, else 0).

Per poll, a few us per process touched (an idle holder: one pread, ~2 us):

- new PIDs (a forked child inherits its parent's sockets): read in full; one whose table
  we may not read (another user's, as non-root) is tried again only once it has run;
- holders of live sockets: an idle one is confirmed by its CPU time alone; a busy one by
  one readlink per live socket it held; a mismatch re-reads it incrementally (only fd
  numbers that are new or pointed at a socket not live now);
- a socket with no known holder: processes whose fd count moved are re-read, then those
  that ran since their last full read (incrementally, then in full: a number that held a
  pipe may hold the socket now); one still without a holder (another user's, as non-root,
  or closed since the dump) is remembered so it costs no search per poll;
- a rolling walk bounds what the shortcuts cannot see (a socket passed to a process that
  already holds another copy of it, say): each whole poll visits its share of the tables,
  oldest first, so every table is visited once per `full_every` seconds without one poll
  paying for all of them (2,000 processes: ~70 a poll, not 2,000 every 30 s). A visit
  reads the table whole if its process ran since its last whole read; an idle one costs
  its CPU time alone. Only the first poll of an index that knows nothing walks everything.
  That walk, or the new processes' after a restore whose processes are gone, is read by
  helper processes on every core from HELPED_FROM fds (fd_reads.py).

The tables outlive the process (`export`, `restore`; owner_store keeps them in the user's
own file), so a one-shot command starts where the last one or the monitor left off,
however long ago. A restored table is the same process's only while its start time
matches, and is believed only while that process has not run (CPU time) since the table
was read whole; any other is read again, whole, before anything is answered, and so is
every process the tables do not name. Idle processes (nearly all of them) cost two small
reads, and the answer is what a full walk would give.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable

from ..hints import NamedTuple
from ..record import mutable_record
from . import Yielded, fd_reads
from .kept_files import KeptSchedstat

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

# Confirmations between two looks at whether a question waits (holders' give_way): ~1 ms.
GIVE_WAY_EVERY = 64
# Open fds from which a cold walk is shared with helper processes (fd_reads.read_many):
# below, starting them (~20 ms) costs about what they save. Measured: equal at 270
# processes of 40 fds, 30 % faster at 300 of 250, 35-40 % at 2,000 of 40.
HELPED_FROM = 20_000
# What a process counts for where the kernel does not give fd counts (before Linux 6.2).
FDS_UNCOUNTED = 50


class _Activity(NamedTuple):
    ns: int  # CPU time of all threads, -1 if unreadable
    single: bool  # one thread when counted: the main thread's schedstat then says it all


def clock() -> float:
    """Seconds on a clock every process on this boot shares, suspend included, so a full
    walk stored by one process can be aged by the next."""
    return time.clock_gettime(_CLOCK)


_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


@mutable_record
class _FdTable:
    count: int  # fd count when read (st_size of the fd directory), 0 if the kernel hides it
    ran: _Activity  # at the last whole read: what "has it run since?" compares against
    checked: _Activity  # at the last confirmation or read
    fds: dict[str, int]  # fd number -> socket inode when read (any socket), or 0
    held: dict[int, str]  # inode -> one fd number holding it: what a confirmation re-reads
    start: int = -1  # start time (clock ticks after boot) when read: the PID's identity
    owned: frozenset[int] = frozenset()  # held's inodes: the key of its OwnerIndex._groups


class TableState(NamedTuple):
    """One process's fd table as another run may restore it (never shared while in use:
    every read makes new dicts, so restored tables may share them)."""

    start: int
    fd_count: int
    ran: tuple[int, bool]
    checked: tuple[int, bool]
    fds: dict[str, int]


class IndexState(NamedTuple):
    # clock() of the oldest search that left a socket in `nobody`: the next run keeps
    # `nobody` only while that is under the walk period old.
    searched: float
    tables: dict[int, TableState]
    # Live sockets no visible process held after a search: not searched for again for
    # one walk period, in the next run as in the monitor.
    nobody: frozenset[int] = frozenset()
    # (PID, CPU time in ns, single-threaded) of processes whose table we may not read:
    # the next run tries them again only once they have run, as the monitor does.
    refused: tuple[tuple[int, int, bool], ...] = ()


class OwnerIndex:
    def __init__(
        self, proc: str = "/proc", full_every: float = 30.0, helped_from: int = HELPED_FROM,
        keep_files: bool = False,
    ) -> None:
        """`keep_files`: for an index polled for as long as its process runs (the monitor,
        watch, export, wait): the witnesses' files stay open between polls (kept_files.py).
        A one-shot command's would only stay open until it exits."""
        self._proc = proc
        self._full_every = full_every
        self._helped_from = helped_from
        self._tables: dict[int, _FdTable] = {}
        # Live sockets that no visible process held -> clock() of the search that said so.
        self._nobody: dict[int, float] = {}
        self._known = False  # a full walk or restored tables: every PID has been met
        # The rolling walk: PIDs in the order their tables are due to be read whole.
        self._rota: deque[int] = deque()
        self._rolled: float | None = None  # clock() of the last rolling step
        self._due = 0.0  # tables owed to the rolling walk (fractions carry over)
        # PIDs by the sockets their tables hold: 2,000 forked workers holding the same 40
        # are one group, intersected with the live sockets once per poll, not 2,000 times.
        self._groups: dict[frozenset[int], set[int]] = {}
        self.full_walks = 0  # for tests and the benchmark: how often the slow path ran
        self.reads = 0  # fd directories read (whole or in part): what a cache saves
        self.rolled = 0  # tables the rolling walk visited
        self.helped = 0  # tables helper processes read (fd_reads.read_many)
        self.changed = False  # tables read or dropped since the last export
        # Tables another run read (restore): believed only while their process has not run
        # since they were read whole, the first time this index meets them.
        self._inherited: set[int] = set()
        # PIDs that did not run since the last poll: the same process, so ProcessTable
        # may skip its start-time check.
        self.idle: set[int] = set()
        # CPU time (ns) read this poll, before each table read or confirmed: ProcessTable's
        # witness for a description, which need not be read again (2,000 reads cold).
        self.witnessed: dict[int, int] = {}
        # PID -> proc_facts.Facts' fields, as helpers read them this call (holders(describe=)).
        self.described: dict[int, tuple[Any, ...]] = {}
        # Why the last poll could not list the /proc root (then no socket has owners).
        self.unlisted: OSError | None = None
        # PIDs whose fd table we may not read (another user's, as non-root) -> their CPU
        # time when refused. Tried again once they have run (a setuid to us, an exec), not
        # every poll as if new: 2,000 such cost ~40 ms a poll, their CPU times ~10 ms.
        self._refused: dict[int, _Activity] = {}
        # The witnesses' files, kept open between polls (each confirmation one pread).
        self._schedstat = KeptSchedstat(proc, None if keep_files else 0)

    def holders(
        self, live: set[int], whole: bool = True, give_way: Callable[[], int] | None = None,
        describe: bool = False,
    ) -> dict[int, list[int]]:
        """Map each live socket inode to every PID holding it (absent if none seen).
        `whole`: `live` is every live socket, not one port's (only then may sockets that
        are gone be forgotten). `give_way`: asked every GIVE_WAY_EVERY confirmations of a
        warm index; true, and Yielded is raised, leaving each table as it was or as it was
        just confirmed (the next call confirms the rest). `describe`: helper processes that
        walk tables (a cold index's first call) describe those processes too, into
        `described` (fd_reads.read_many)."""
        self.idle = set()
        self.witnessed = {}
        self.described = {}
        now = clock()
        self._forget_nobody(now, live if whole else None)
        pids = self._pids()
        for gone in self._tables.keys() - pids:
            self._drop(gone)
        for gone in self._refused.keys() - pids:
            del self._refused[gone]
        self._schedstat.forget(self._schedstat.kept - pids)
        if not self._known:
            return self._full(pids, live, describe)
        new = self._new(pids)
        # Many only after a restore whose processes are gone.
        self._read_whole(new, live, describe)
        self._rota.extend(pid for pid in new if pid in self._tables)
        self._settle_inherited(live)
        for n, (pid, table) in enumerate(list(self._tables.items())):
            if give_way is not None and n % GIVE_WAY_EVERY == 0 and give_way():
                raise Yielded
            if pid in self.idle:
                continue  # settled just now: confirmed by its CPU time
            # isdisjoint, not any(genexpr): one C loop (300 workers x 200 sockets a poll)
            if not live.isdisjoint(table.held) and not self._confirmed(pid, table, live):
                self._refresh(pid, live)
        if whole:
            self._roll(now, live)
        owners = self._owners(live)
        if not self._unknown(owners, live):
            return owners
        # A new socket. Suspects first: processes whose fd count moved; then those that ran
        # since we last read them in full, incrementally, then in full.
        moved = [pid for pid, table in self._tables.items() if self._count(pid) != table.count]
        for pid in moved:
            self._refresh(pid, live)
        owners = self._owners(live)
        if not self._unknown(owners, live):
            return owners
        ran = [pid for pid, table in self._tables.items() if self._ran_since(pid, table.ran)]
        for whole in (False, True):
            for pid in ran:
                self._refresh(pid, live, whole=whole)
            owners = self._owners(live)
            if not self._unknown(owners, live):
                return owners
        # Whatever is left has no holder we can see (closed since the dump, another user's
        # process): remember that, so it costs no more searching for one walk period.
        for inode in live - owners.keys() - self._nobody.keys():
            self._nobody[inode] = now
        self.changed = True
        return owners

    def population(self) -> int:
        """How many processes the next poll meets (the /proc listing)."""
        return len(self._pids())

    def heavy(self) -> bool:
        """Whether the next poll reads tables of at least `helped_from` fds whole, a walk
        of a few hundred ms that helpers share: every table for an index that knows
        nothing, the new processes' for one that does (a restore whose processes are
        gone). What the monitor asks before drawing the sockets alone first."""
        pids = self._pids()
        return self._many_fds(self._new(pids) if self._known else pids)

    def _new(self, pids: set[int]) -> set[int]:
        """The PIDs among these with no table, but for refused ones that have not run (the
        same process, as unreadable as it was)."""
        return {
            pid for pid in pids - self._tables.keys()
            if (refused := self._refused.get(pid)) is None or self._ran_since(pid, refused)
        }

    def _forget_nobody(self, now: float, live: set[int] | None) -> None:
        """Sockets nobody held are searched for again once a walk period has passed since
        the search that said so; with `live` (every live socket), closed ones are dropped."""
        for inode, when in list(self._nobody.items()):
            if not 0 <= now - when < self._full_every or (live is not None and inode not in live):
                del self._nobody[inode]

    def _roll(self, now: float, live: set[int]) -> None:
        """Visit the tables whose turn has come: over `full_every` seconds, every one,
        oldest visit first, each read whole if its process ran since it was last read
        whole, so the rolling walk bounds staleness as a full walk did, at a steady share
        of each poll."""
        if self._rolled is None or self._full_every <= 0:
            share = len(self._tables) if self._full_every <= 0 else 0.0
        else:
            share = len(self._tables) * max(0.0, now - self._rolled) / self._full_every
        self._rolled = now
        self._due = min(self._due + share, float(len(self._tables)))
        if len(self._rota) > 2 * len(self._tables) + 64:  # PIDs that died, many times over
            self._rota = deque(self._tables)
        while self._due >= 1 and self._rota:
            pid = self._rota.popleft()
            if pid not in self._tables:
                continue  # died: its slot is not owed
            self._due -= 1
            self.rolled += 1
            # Not run since its last whole read: its table cannot have changed (a process
            # that received a socket ran to receive it), and costs one read to know.
            if self._ran_since(pid, self._tables[pid].ran):
                self._refresh(pid, live, whole=True)
            self._rota.append(pid)
        if not self._rota:
            self._due = 0.0

    def _settle_inherited(self, live: set[int]) -> None:
        """Another run's table is this process's fd table only if the process has not run
        since that table was read whole: else it is read again, whole. The shortcuts below
        (confirming by held sockets, searching only for sockets nobody holds) cannot see a
        socket that joined a process which another holder of it already answers for (a
        master that listened after our last read, while its workers are read fresh); the
        monitor bounds that with its full walk, and a one-shot command has no second
        poll, so for it the table must be exact."""
        for pid in self._inherited & self._tables.keys():
            table = self._tables[pid]
            # Not run: its fd table cannot have changed (the count need not be asked).
            if self._ran_since(pid, table.ran):
                self._refresh(pid, live, whole=True)
            else:
                table.checked = table.ran
                self.idle.add(pid)
                self.witnessed[pid] = table.ran.ns
        self._inherited.clear()

    def _unknown(self, owners: dict[int, list[int]], live: set[int]) -> bool:
        return bool(live - owners.keys() - self._nobody.keys())

    def _full(self, pids: set[int], live: set[int], describe: bool) -> dict[int, list[int]]:
        """The first poll of an index that knows nothing: every table, read whole."""
        self._tables.clear()
        self._groups.clear()
        self._inherited.clear()
        self._read_whole(pids, live, describe)
        now = clock()
        self._known = True
        self.changed = True  # every table: what spares the next run this walk
        self._rota = deque(self._tables)
        self._rolled = now
        self.full_walks += 1
        owners = self._owners(live)
        for inode in live - owners.keys():
            self._nobody[inode] = now
        return owners

    def _read_whole(self, pids: set[int], live: set[int], describe: bool = False) -> None:
        """Read these tables whole: many at once by helper processes on every core (the
        cold walk; PIDs new to a warm index are few but after a stale restore), the rest
        here. `describe`: the helpers' descriptions of these processes into `described`
        (the real /proc's processes only: descriptions are read there)."""
        helped: fd_reads.Answer = ({}, {}, {})
        if self._many_fds(pids):
            helped = fd_reads.read_many(
                self._proc, list(pids), os.cpu_count() or 1,
                describe=describe and self._proc == "/proc",
            )
        tables, refused, described = helped
        self.described.update(described)
        for pid in pids:
            read = tables.get(pid)
            if read is not None:
                self.reads += 1
                self.helped += 1
                self._take(pid, read, live)
            elif pid in refused:
                self._refused[pid] = _Activity(*refused[pid])
            else:
                self._refresh(pid, live, whole=True)

    def _many_fds(self, pids: set[int]) -> bool:
        """Whether these processes hold `helped_from` fds or more, what a walk of them
        costs: one stat each, until that many are counted."""
        counted = 0
        for pid in pids:
            counted += max(0, self._count(pid))
            if counted >= self._helped_from:
                return True
        return not counted and len(pids) * FDS_UNCOUNTED >= self._helped_from

    def _pids(self) -> set[int]:
        try:
            names = os.listdir(self._proc)
        except OSError as exc:
            self.unlisted = exc
            return set()
        self.unlisted = None
        # isascii: "²".isdigit() is True, but int() refuses it.
        return {int(name) for name in names if name.isascii() and name.isdigit()}

    def _count(self, pid: int) -> int:
        return fd_reads.fd_count(self._proc, pid)

    def _ran_since(self, pid: int, then: _Activity) -> bool:
        return then.ns < 0 or self._activity(pid, then) != then

    def _activity(self, pid: int, last: _Activity) -> _Activity:
        """_activity, reading a single-threaded process's CPU time from its kept file."""
        return _activity(self._proc, pid, last, self._schedstat)

    def _confirmed(self, pid: int, table: _FdTable, live: set[int]) -> bool:
        checked = table.checked
        if checked.single and checked.ns >= 0:
            # Its main thread's time says it all (nearly all of 2,000 workers, every poll):
            # one pread of its kept file, without the calls of _activity.
            if self._schedstat(pid) == checked.ns:
                self.idle.add(pid)
                self.witnessed[pid] = checked.ns
                return True
            now = _activity(self._proc, pid, None)  # it ran: every thread's time, read once
        else:
            now = self._activity(pid, checked)
            if now.ns >= 0 and now == checked:
                self.idle.add(pid)
                self.witnessed[pid] = now.ns
                return True
        if self._count(pid) != table.count:
            return False
        fd_dir = f"{self._proc}/{pid}/fd"
        for inode, name in table.held.items():
            if inode not in live:
                continue  # died: it drops out of the answer by itself
            try:
                if os.readlink(f"{fd_dir}/{name}") != f"socket:[{inode}]":
                    return False
            except OSError:
                return False
        table.checked = now
        self.witnessed[pid] = now.ns
        return True

    def _refresh(self, pid: int, live: set[int], whole: bool = False) -> None:
        before = self._tables.get(pid)
        old = None if whole else before
        self.reads += 1
        cached = old.fds if old is not None else None
        if pid == os.getpid():  # our kept files: known to be no sockets, so not read
            kept = self._schedstat.descriptors()
            cached = {**(cached or {}), **dict.fromkeys(map(str, kept), 0)} if kept else cached
        read = fd_reads.read_table(self._proc, pid, cached, live)
        if read is None and (refused := fd_reads.refused_at(self._proc, pid)) is not None:
            # New to the store, not a new CPU time: that costs the next run one read.
            self.changed = self.changed or pid not in self._refused
            self._refused[pid] = _Activity(*refused)
        self._take(pid, read, live, old)

    def _take(
        self, pid: int, read: fd_reads.Table | None, live: set[int], old: _FdTable | None = None
    ) -> None:
        """Keep a table just read (`old`: the one it was read incrementally against)."""
        if read is None:  # gone, or not ours to read: its sockets stay ownerless
            self._drop(pid)
            return
        self._refused.pop(pid, None)
        count, activity, stat, fds, held = read
        now = _Activity(*activity)
        self.witnessed[pid] = now.ns
        before = self._tables.get(pid)
        # Only a whole read moves `ran`: an incremental one leaves fds it kept unverified.
        ran = now if old is None else old.ran
        start = stat[0] if stat is not None else -1
        # Only live sockets are worth storing: new witnesses (CPU time, fd count) on the
        # same sockets, a process with none (every short-lived command, this one included),
        # or one whose other sockets came and went (netlink, unix: a busy machine has
        # many) are not, since a run that finds a table stale or missing reads it again,
        # and that costs a few reads where writing the store costs every table's (50 ms
        # at 2,000 processes).
        if before is None:
            moved = bool(held)
            worth = not live.isdisjoint(held)
        else:
            moved = before.held.keys() != held.keys()
            worth = moved and not live.isdisjoint(before.held.keys() ^ held.keys())
            worth = worth or before.start != start
        if worth:
            self.changed = True
        owned = before.owned if before is not None and not moved else frozenset(held)
        self._put(pid, _FdTable(count, ran, now, fds, held, start, owned))

    def _put(self, pid: int, table: _FdTable) -> None:
        before = self._tables.get(pid)
        if before is not None:
            if before.owned == table.owned:
                self._tables[pid] = table
                return
            self._ungroup(pid, before.owned)
        self._tables[pid] = table
        self._groups.setdefault(table.owned, set()).add(pid)

    def _ungroup(self, pid: int, owned: frozenset[int]) -> None:
        group = self._groups.get(owned)
        if group is not None:
            group.discard(pid)
            if not group:
                del self._groups[owned]

    def _drop(self, pid: int) -> None:
        table = self._tables.pop(pid, None)
        if table is not None:
            self._ungroup(pid, table.owned)
            if table.held:  # see _refresh: only sockets are worth storing
                self.changed = True

    def export(self) -> IndexState:
        """What this index learned, for the next run (see `restore`); clears `changed`."""
        self.changed = False
        return IndexState(
            min(self._nobody.values(), default=clock()),
            {
                pid: TableState(t.start, t.count, t.ran, t.checked, t.fds)
                for pid, t in self._tables.items()
                if t.start >= 0
            },
            frozenset(self._nobody),
            tuple((pid, a.ns, a.single) for pid, a in self._refused.items()),
        )

    def restore(self, state: IndexState) -> dict[int, tuple[int, int]]:
        """Start from another run's tables, however old: each table only while its PID's
        start time is unchanged (else it is another process), and only until the first
        `holders` has checked that its process has not run since (`_settle_inherited`).
        Call before the first `holders`. Returns what it read of each PID's stat (start
        time, parent): a ProcessTable may check its own entries against it."""
        stats: dict[int, tuple[int, int]] = {}
        # Tables shared by forked workers: derived once (`held` and its inodes).
        derived: dict[int, tuple[dict[int, str], frozenset[int]]] = {}
        for pid, saved in state.tables.items():
            stat = fd_reads.read_stat(pid, self._proc)
            if stat is None:
                continue
            stats[pid] = stat
            if stat[0] != saved.start:
                continue
            found = derived.get(id(saved.fds))
            if found is None:
                held: dict[int, str] = {}
                for name, inode in saved.fds.items():
                    if inode:
                        held.setdefault(inode, name)
                found = derived[id(saved.fds)] = (held, frozenset(held))
            self._put(pid, _FdTable(
                saved.fd_count, _Activity(*saved.ran), _Activity(*saved.checked), saved.fds,
                found[0], saved.start, found[1],
            ))
            self._inherited.add(pid)
        # Every PID the tables do not name is new to this index, and read whole, but for
        # those refused that have not run since (holders).
        self._refused = {pid: _Activity(ns, single) for pid, ns, single in state.refused}
        self._known = True
        self._rota = deque(self._tables)
        if 0 <= clock() - state.searched < self._full_every:
            self._nobody = dict.fromkeys(state.nobody, state.searched)
        return stats

    def _owners(self, live: set[int]) -> dict[int, list[int]]:
        """Every live socket's holders, in PID order: one intersection per group of tables
        that hold the same sockets."""
        owners: dict[int, list[int]] = {}
        for owned, group in self._groups.items():
            if owned:
                for inode in owned.intersection(live):
                    owners.setdefault(inode, []).extend(group)
        for pids in owners.values():
            pids.sort()
        return owners


def _activity(
    proc: str, pid: int, last: _Activity | None, main: Callable[[int], int] | None = None
) -> _Activity:
    """fd_reads.activity as an _Activity: `last` itself if it has not moved."""
    now = fd_reads.activity(proc, pid, last, main)
    return now if now is last else _Activity(*now)


def cpu_time(pid: int, proc: str = "/proc") -> int:
    """CPU time of all of `pid`'s threads in ns, -1 if unreadable: a process whose value has
    not moved has made no system call since (ProcessTable's witness for descriptions)."""
    return _activity(proc, pid, None).ns
