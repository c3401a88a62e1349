"""Linux collector: the kernel's socket tables plus a cached fd index for owners.

Tables come over netlink sock_diag (what `ss` uses) when the kernel allows it, else from
/proc/net/*. Owners come from OwnerIndex, which re-reads /proc/PID/fd only where something
changed. TIME_WAIT sockets belong to no process and never enter the owner lookup.

Permission and missing-file problems never raise: what could not be read is skipped and
said in the Snapshot's notes (a refused netlink, an unreadable table, an unlistable /proc).

A one-shot question asks for less (`collect(port=..., owners=...)`): one port's sockets
and TIME_WAIT, and no process lookups at all where the answer needs none (a free port).
With an OwnerStore, owners start from what the last run learned (owner_store.py says why
that cannot make an answer wrong) and what this one learned is stored for the next.
`collect` is thread-safe: the TUI's probes share the poller's collector, warm, under its
lock, rather than building a cold one.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable

from ..model import TCP_STATES, Snapshot, Socket
from ..processes import ProcessTable
from . import LISTENERS_ONLY, NOT_LOOKED_UP, Yielded, proc_net, sock_diag
from .builder import SnapshotBuilder
from .owner_store import Learned, OwnerStore
from .owners import OwnerIndex, clock, cpu_time
from .system import ephemeral_range, time_wait_count
from .tables import CLOSE, LISTEN, Tables, reason

FULL_EVERY = 30.0  # seconds in which the rolling walk reads every fd table whole (owners.py)
SAVE_EVERY = 5.0  # seconds between two writes of the owner store by one collector
# From these, the monitor's first whole poll is slow enough to draw the listeners alone
# first (sketch). TIME_WAIT sockets: 100,000 take ~0.1 s to read, more while Textual starts.
SKETCH_TIME_WAIT = 50_000
# Processes: each is walked, or its stored table checked by its CPU time and its
# description too (2,000 took ~0.4 s with a store that knew them, while Textual starts).
SKETCH_PROCESSES = 1_000

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from .ahead import Ahead  # the monitor's alone: a one-shot command never imports it
# Seconds a poll waits for the child taking the first whole poll ahead (poll_ahead) to
# answer, then to exit, before it kills the child and polls itself: a /proc read never
# takes this long unless something is stuck, and then this process's own would be too.
AHEAD_WAIT = 10.0


class ProcNetCollector:
    """Reads the kernel's socket tables directly; owners are every holder of a socket."""

    name = "proc"
    narrows = True  # collect(port=..., owners=...): see collect.snapshot_for

    def __init__(
        self,
        proc_root: str = "/proc",
        netlink: bool | None = None,
        store: OwnerStore | None = None,
        full_every: float = FULL_EVERY,
        keep_files: bool = False,
    ) -> None:
        """`keep_files`: polled for as long as the process runs (OwnerIndex)."""
        self._proc_root = proc_root
        self._processes = ProcessTable(clock, self._cpu_time)
        self._owners = OwnerIndex(proc_root, full_every, keep_files=keep_files)
        self._full_every = full_every
        # Another /proc root is another machine's picture: it is never stored.
        self._store = store if proc_root == "/proc" else None
        self._restored = False
        self._saved_at = float("-inf")
        self._lock = _thread.allocate_lock()  # threading's Lock, without importing threading
        # Questions about one port waiting for the lock: a whole poll in flight gives way
        # to them (Yielded) at its next pause, rather than making a key's answer wait for
        # the rest of a 60 ms poll.
        self._asking: set[object] = set()  # a token each (set.add is atomic: no lock)
        # The last whole poll's listeners by inode: unchanged ones are reused (builder.py).
        self._listeners: dict[int, Socket] = {}
        # Netlink answers for this kernel only, so another /proc root means text tables.
        self._netlink = proc_root == "/proc" if netlink is None else netlink
        self._udp_netlink: bool | None = None
        self._netlink_note: str | None = None  # set once netlink is refused, kept after
        self._ahead: Ahead | None = None  # the child taking the first whole poll (poll_ahead)
        self._handed: Snapshot | None = None  # its answer, until this collector's own poll

    def _cpu_time(self, pid: int) -> int:
        """A process's CPU time, as the owner walk read it this poll (before its table)
        or, if it did not, now: ProcessTable's witness for a description."""
        ns = self._owners.witnessed.get(pid)
        return ns if ns is not None else cpu_time(pid, self._proc_root)

    @property
    def full_walks(self) -> int:
        """How many times owners needed a full /proc/*/fd walk (the slow path)."""
        return self._owners.full_walks

    @property
    def fd_reads(self) -> int:
        """/proc/PID/fd directories read so far, whole or in part (tests, benchmark)."""
        return self._owners.reads

    @property
    def described(self) -> int:
        """Processes described with psutil so far (tests, benchmark)."""
        return self._processes.described

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        """The machine's sockets; with `port`, only that port's (its listeners, stats and
        TIME_WAIT; owners are looked up for its sockets alone, and the owner index keeps
        its other tables as they were, for the next whole poll to confirm). `owners=False`:
        no process is looked up, so sockets carry no holders (a note says so); None: looked
        up only if a socket on `port` can have one (collect.snapshot_for). `time_wait=False`
        (with `port`): its TIME_WAIT is left out (a note says so; collect.snapshot_for).

        A whole poll raises Yielded when a question about one port came meanwhile. The first
        whole poll after poll_ahead is the child's."""
        if port is None:
            with self._lock:
                if self._ahead is not None and owners:
                    early = self._ahead.answer(AHEAD_WAIT)
                    if isinstance(early, Snapshot):
                        # What this collector's own first poll shows unchanged is these
                        # very objects, as after a poll of its own (_adopt).
                        self._listeners = {s.inode: s for s in early.sockets if s.inode}
                        self._handed = early
                        return early
                self._finish_ahead()
                return self._collect(None, owners, give_way=self._asking.__len__)
        token = object()
        self._asking.add(token)
        try:
            with self._lock:
                self._asking.discard(token)  # answered now: no poll gives way to it
                self._finish_ahead()
                return self._collect(port, owners, time_wait=time_wait)
        finally:
            self._asking.discard(token)

    def poll_ahead(self) -> bool:
        """Have a forked child take the first whole poll now (ahead.py), and the next
        collect() of a whole poll with owners hand over its Snapshot: the monitor calls this
        before importing Textual, so the walk of every fd table and the descriptions run on
        the other core meanwhile. The child then saves the owner store, and this collector's
        own first poll restores what it learned (owner_store.py: checked, as any run's).
        False if no child was started: none is needed again (called already, or a poll
        ran), no owner store could hand over what the child learns, or forking is unsafe."""
        if self._ahead is not None or self._restored or self._store is None:
            return False
        if self._store.path is None:
            return False
        from .ahead import Ahead

        self._ahead = Ahead.start(
            lambda: self._collect(None, True, keep=False), self._keep
        )
        return self._ahead is not None

    def _finish_ahead(self) -> None:
        """Before this collector reads anything itself: the child ahead has exited, so the
        owner store holds what it learned (its answer, if not handed over yet, stays for the
        first whole poll)."""
        if self._ahead is None:
            return
        self._ahead.finish(AHEAD_WAIT)
        if self._ahead.given:
            self._ahead = None

    def sketch(self) -> Snapshot | None:
        """What the monitor shows first: the listening sockets alone (no process looked
        up, no TIME_WAIT or connection read, a note says so; from the text tables, without
        netlink, that costs a whole read) when the first whole poll will be slow, because
        it must read SKETCH_TIME_WAIT or more TIME_WAIT, read or check SKETCH_PROCESSES or
        more processes (each is walked, or its stored table checked by its CPU time), or
        walk many fd tables the store does not know (OwnerIndex.heavy); None when it will
        be quick, and a frame of the sockets alone would only delay the one naming their
        processes (5,000 listeners of a few processes: ~0.3 s later). With that many
        processes the store is not read here: the whole poll restores it, after this
        frame. After poll_ahead, whether the first whole poll is slow is known, not
        guessed: the sketch is drawn if the child's answer is not in yet, and the store
        is left for this collector's own first poll, after the child's."""
        with self._lock:
            if self._ahead is not None:  # a child takes the first whole poll
                # Not in by now (the monitor asks once its screen is up): a slow one.
                if self._ahead.ready():
                    return None
                return self._collect(None, False, listeners_only=True)
            slow = (
                time_wait_count(self._proc_root) >= SKETCH_TIME_WAIT
                or self._owners.population() >= SKETCH_PROCESSES
            )
            if not slow:
                self._restore()  # what is left to walk is what the store does not know
                slow = self._owners.heavy()
            return self._collect(None, False, listeners_only=True) if slow else None

    def _collect(
        self, port: int | None, want: bool | None, listeners_only: bool = False,
        give_way: Callable[[], int] | None = None, time_wait: bool = True, keep: bool = True,
    ) -> Snapshot:
        """`give_way`: true while a question about one port waits (then Yielded). `keep`:
        False leaves the owner store to the caller (poll_ahead's child: the answer first)."""
        tables = self._read_tables(port, listeners_only, time_wait, give_way)
        if give_way is not None and give_way():
            raise Yielded
        owners = want is not False and (
            want or port is None or any(row.port == port for row in tables.rows)
        )
        whole = port is None and owners
        builder = SnapshotBuilder(
            self._processes, ephemeral_range(), self.name, whole=whole,
            previous=self._listeners if whole else None,
        )
        for port_, tally in tables.time_wait.items():
            if (port is not None and port_ != port) or listeners_only:
                continue  # /proc/net reads them all; netlink sent only what was asked
            builder.time_wait_tally(port_, tally.count, tally.remote_port, tally.first, tally.last)
        if port is None and not listeners_only:  # a whole read told clients from servers
            builder.clients(tables.clients)
        found: dict[int, list[int]] = {}
        if owners:
            self._restore()
            self._adopt()
            asked = tables.rows if port is None else [r for r in tables.rows if r.port == port]
            began = clock()
            found = self._owners.holders(
                {r.inode for r in asked if r.inode}, port is None, give_way=give_way,
                # A whole poll describes every holder: helpers that walk describe too.
                describe=whole,
            )
            self._processes.take_described(self._owners.described, self._owners.witnessed, began)
            # Idle since the last poll means the same process: no start-time check needed.
            self._processes.trust(self._owners.idle)
        left_out: set[int] = set()
        for row in tables.rows:
            listening = LISTEN if row.proto == "tcp" else CLOSE  # bound UDP shows CLOSE
            if port is not None and row.port != port:
                if row.proto == "tcp" and row.state == LISTEN:
                    left_out.add(row.port)
                continue
            pids = found.get(row.inode, ()) if row.inode else ()
            if row.state == listening:
                builder.listener(
                    row.proto, row.family, row.address, row.port, pids, row.inode, row.uid,
                    row.v6only,
                )
            elif row.proto == "tcp" and not listeners_only:
                state = TCP_STATES.get(row.state, f"{row.state:02X}")
                builder.live(row.port, row.remote_port, state, pids)
        notes = tables.notes
        if listeners_only:
            notes.append(LISTENERS_ONLY)
        if not owners:
            notes.append(NOT_LOOKED_UP)
        elif self._owners.unlisted is not None:
            notes.append(
                f"cannot list {self._proc_root} ({reason(self._owners.unlisted)}): "
                "no socket shows its processes"
            )
        snapshot = builder.build(notes, left_out)
        if whole:
            self._listeners = {s.inode: s for s in snapshot.sockets if s.inode}
        if owners and keep:
            self._keep()
        return snapshot

    def _restore(self) -> None:
        """Start from the stored owners, once, before the first lookup."""
        if self._restored or self._store is None:
            return
        self._restored = True
        learned = self._store.load()
        if learned is not None:
            stats = self._owners.restore(learned.owners)
            self._processes.seed(learned.described, self._full_every, stats)

    def _adopt(self) -> None:
        """This collector's first own poll after the child's answer: the processes it shows
        unchanged are the child's very objects (as its listeners are: collect), as a poll
        of this collector's would have left them. Everything after a poll (the builder, rows,
        listener events) tells an unchanged socket or process by identity; equal copies
        would be compared field by field on every poll (the monitor at 2,000 holders took
        16.8 % of a core so, 6.5 % with these objects)."""
        if self._handed is None:
            return
        handed, self._handed = self._handed, None
        self._processes.adopt({h.pid: h for s in handed.sockets for h in s.holders})

    def _keep(self) -> None:
        """Store what changed: at once the first time (a one-shot command has no second),
        then at most every SAVE_EVERY seconds (the monitor polls every second)."""
        if self._store is None or not (self._owners.changed or self._processes.changed):
            return
        now = clock()
        if now - self._saved_at < SAVE_EVERY:
            return
        self._saved_at = now
        self._store.save(Learned(self._owners.export(), self._processes.export()))

    def _read_tables(
        self, port: int | None = None, listening: bool = False, time_wait: bool = True,
        give_way: Callable[[], int] | None = None,
    ) -> Tables:
        """`time_wait=False`: the port's TIME_WAIT may be left out (the text tables hold
        them anyway, and they are counted). `give_way`: see _collect (netlink only)."""
        if self._netlink:
            try:
                return self._read_netlink(port, listening, time_wait, give_way)
            except OSError as exc:  # not allowed here (sandbox, seccomp, old kernel)
                self._netlink = False
                self._netlink_note = (
                    f"netlink sock_diag refused ({reason(exc)}): "
                    f"reading {self._proc_root}/net instead"
                )
        tables = proc_net.read_tables(f"{self._proc_root}/net", whole=port is None)
        if self._netlink_note is not None:
            tables.notes.insert(0, self._netlink_note)
        return tables

    def _read_netlink(
        self, port: int | None, listening: bool = False, time_wait: bool = True,
        give_way: Callable[[], int] | None = None,
    ) -> Tables:
        """TCP over netlink; UDP too where udp_diag answers, else from the text tables.
        With `port`, the listeners and that port's other sockets (the kernel filters)."""
        if self._udp_netlink is None:
            self._udp_netlink = sock_diag.udp_available()

        # A whole read, the listeners and `port`'s other sockets, or the listeners alone.
        def read(with_udp: bool) -> Tables:
            return sock_diag.read_tables(
                with_udp=with_udp, port=port, listening=listening, time_wait=time_wait,
                give_way=give_way,
            )

        if self._udp_netlink:
            try:
                return read(True)
            except OSError:
                # Maybe only the UDP dump is refused (udp_diag unloaded since): TCP alone
                # decides whether netlink is usable, so try it without UDP before giving up.
                self._udp_netlink = False
        tables = read(False)
        udp = proc_net.read_tables(f"{self._proc_root}/net", with_tcp=False)
        tables.rows.extend(udp.rows)
        tables.notes.extend(udp.notes)
        return tables
