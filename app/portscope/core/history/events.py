"""What changed between two polls: listeners that appeared, stopped, changed hands or came
back under a new PID.

A listener is keyed by (proto, family, address, port): SO_REUSEPORT siblings share a key and
count as one listener whose holders are all of theirs, as in the table. Four events:

- `listen`: a key appears. On the first poll every listener there is reported with
  `at_start` set (the caller decides whether to show them: they are the present, not news).
- `unlisten`: a key disappears; `listened_for` is measured from when this watcher first
  saw it, so for one that was there at the start (`at_start`) it is a lower bound.
- `holders`: the set of PIDs holding the key changed while it kept listening (a worker
  respawned, a child inherited the socket, the parent let go of it).
- `restart`: the same command line came back under a new PID: the key reappeared within
  RESTART_WINDOW seconds of its `unlisten`, or every old holder was replaced between two
  polls (a shell loop restarts its server in 0.3 s, faster than a 1 s poll sees the gap).
  It takes the place of the `listen` (or `holders`) event it explains, and names the new
  holder's parent as who restarted it when that parent still runs.

A socket listed without holders is not taken at its word at once (see `_Seen`): the
collector reads the socket table and the processes' fds a moment apart, and a socket opened
in between is found only once its process runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, NamedTuple

from ..model import Family, Holder, Proto, Snapshot
from ..record import record, replace
from ..roles import signatures as sig
from ..roles.procs import LiveProcesses
from ..rows import merged_sockets

EventKind = Literal["listen", "unlisten", "holders", "restart"]
# Seconds after an `unlisten` during which the same command listening again is a restart:
# a shell loop takes 0.3 s, a reloader about 1 s, supervisord backs off 1-3 s.
RESTART_WINDOW = 5.0
# Seconds a new socket listed without holders waits for them before it is reported as held
# by a process portscope cannot see (another user's, as non-root).
HOLD = 2.0


class ListenerKey(NamedTuple):
    proto: Proto
    family: Family
    address: str
    port: int


@record
class Restarter:
    """The new holder's parent: who brought the server back."""

    pid: int
    name: str  # raw: escape to show
    note: str = ""  # what the role model recognised: "shell loop", "reloader", "supervisord"


@record
class ListenerEvent:
    at: datetime  # the taken_at of the poll that saw the change
    kind: EventKind
    proto: Proto
    family: Family
    address: str
    port: int
    # Who holds it now; for `unlisten`, who held it when it was last seen.
    holders: tuple[Holder, ...]
    # For `holders` and `restart`: who held it before.
    previous: tuple[Holder, ...] = ()
    listened_for: float | None = None  # `unlisten`: seconds since this watcher first saw it
    # `listen`: it was already listening when the watch started; `unlisten`: so
    # `listened_for` is a lower bound.
    at_start: bool = False
    restarted_by: Restarter | None = None  # `restart`, when the new holder's parent runs

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(h.pid for h in self.holders)

    @property
    def names(self) -> tuple[str, ...]:
        """One per PID, in the same order (raw: escape to show)."""
        return tuple(h.name for h in self.holders)

    @property
    def previous_pids(self) -> tuple[int, ...]:
        return tuple(h.pid for h in self.previous)

    @property
    def key(self) -> str:
        """The same string as `Socket.key`, which the TUI keys its rows on."""
        return f"{self.proto}:{self.family}:[{self.address}]:{self.port}"


@record
class _Gone:
    holders: tuple[Holder, ...]
    at: datetime


@record
class _Seen:
    holders: tuple[Holder, ...]
    since: datetime
    at_start: bool = False
    # The table and the fd scan are read a moment apart, so a socket can be listed without
    # its holders: a closing one after its process let go of it (for one poll: it is gone
    # by the next), a new one opened between the two reads (until its process runs again
    # and is read anew: ~1 in 3 restarts of a shell loop polled at 20 Hz). Both wait, so
    # events name who really held the socket.
    letting_go: bool = False  # listed without the holders it had: a change if it stays so
    pending: bool = False  # new and listed without holders: reported with them, or at HOLD
    # This key's last holders before it stopped listening, while the socket is known only
    # without holders: what a restart is recognised against once they show.
    earlier: _Gone | None = None


FindRestarter = Callable[[Holder], "Restarter | None"]


class ListenerWatch:
    """Feed it every Snapshot in order; each `update` returns what changed since the last.

    `port`: watch only that port. `find_restarter`: who started a holder (its parent, read
    live by default; tests pass their own). `start_events`: the first update returns a
    "listen" event (at_start) for each listener; without, nothing (5,000 listeners' events
    made for a caller that drops them cost ~10 ms of the monitor's first frame).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        restart_window: float = RESTART_WINDOW,
        hold: float = HOLD,
        find_restarter: FindRestarter | None = None,
        start_events: bool = True,
    ) -> None:
        self._port = port
        self._start_events = start_events
        self._window = restart_window
        self._hold = hold
        self._find_restarter = find_restarter or parent_of
        self._seen: dict[ListenerKey, _Seen] = {}
        self._gone: dict[ListenerKey, _Gone] = {}
        self._started = False

    def update(self, snap: Snapshot) -> list[ListenerEvent]:
        now = snap.taken_at
        current = self._listeners(snap)
        if not self._started:
            self._started = True
            for key, holders in current.items():
                self._seen[key] = _Seen(holders, now, at_start=True)
            if not self._start_events:
                return []
            return [_event(now, "listen", key, holders, at_start=True)
                    for key, holders in current.items()]
        for key in [k for k, g in self._gone.items() if _age(now, g.at) > self._window]:
            del self._gone[key]
        events: list[ListenerEvent] = []
        for key in [k for k in self._seen if k not in current]:
            last = self._seen.pop(key)
            if last.pending:  # seen once without holders and gone: never reported
                if last.earlier is not None:
                    self._gone[key] = last.earlier
                continue
            events.append(_event(
                now, "unlisten", key, last.holders,
                listened_for=_age(now, last.since), at_start=last.at_start,
            ))
            self._gone[key] = _Gone(last.holders, now)
        for key, holders in current.items():
            seen = self._seen.get(key)
            if seen is None:
                earlier = self._gone.pop(key, None)
                if holders:
                    events.append(self._arrival(now, key, holders, self._recent(earlier, now)))
                    self._seen[key] = _Seen(holders, now)
                else:
                    self._seen[key] = _Seen((), now, pending=True, earlier=earlier)
            elif seen.pending:
                if holders or _age(now, seen.since) >= self._hold:
                    before = self._recent(seen.earlier, now)
                    events.append(self._arrival(now, key, holders, before))
                    self._seen[key] = _Seen(holders, seen.since, earlier=seen.earlier)
            elif not holders and seen.holders and not seen.letting_go:
                self._seen[key] = replace(seen, letting_go=True)
            elif not _same_pids(seen.holders, holders):
                before = seen.holders or self._recent(seen.earlier, now)
                event = self._arrival(now, key, holders, before, "holders")
                events.append(event)
                if event.kind == "restart":  # a new server: its listening time starts now
                    self._seen[key] = _Seen(holders, now)
                else:
                    self._seen[key] = _Seen(holders, seen.since, seen.at_start)
            elif holders != seen.holders or seen.letting_go:
                # The same PIDs: fresher details only.
                self._seen[key] = _Seen(holders, seen.since, seen.at_start, earlier=seen.earlier)
        return events

    def _recent(self, gone: _Gone | None, now: datetime) -> tuple[Holder, ...]:
        """The holders of the key's previous life, if it ended within the restart window."""
        if gone is None or _age(now, gone.at) > self._window:
            return ()
        return gone.holders

    def _arrival(
        self,
        now: datetime,
        key: ListenerKey,
        holders: tuple[Holder, ...],
        before: tuple[Holder, ...],
        otherwise: EventKind = "listen",
    ) -> ListenerEvent:
        """A restart if a new PID runs a command an old holder ran; else `otherwise`."""
        new = same_command(before, holders)
        if new is None:
            return _event(now, otherwise, key, holders, previous=before)
        return _event(
            now, "restart", key, holders, previous=before,
            restarted_by=self._find_restarter(new),
        )

    def _listeners(self, snap: Snapshot) -> dict[ListenerKey, tuple[Holder, ...]]:
        found: dict[ListenerKey, tuple[Holder, ...]] = {}
        for s in merged_sockets(snap.sockets):
            if self._port is None or s.port == self._port:
                found[ListenerKey(s.proto, s.family, s.address, s.port)] = s.holders
        return found


def same_command(before: Iterable[Holder], now: Iterable[Holder]) -> Holder | None:
    """The first new holder running a command line an old holder ran, when every old holder
    is gone (one that stayed means the server did not restart: a worker was respawned)."""
    old = tuple(before)
    old_pids = {h.pid for h in old}
    holders = tuple(now)
    if not old or old_pids & {h.pid for h in holders}:
        return None
    commands = {h.cmdline for h in old if h.cmdline}
    return next((h for h in holders if h.cmdline in commands), None)


def parent_of(holder: Holder) -> Restarter | None:
    """The holder's parent as it runs now, and what the role model calls it.

    The TUI feeds its history on the UI thread, so this opens no path a process names: a
    shell loop is recognised from its `-c` text alone, never from its script file (a FIFO
    there would freeze the screen)."""
    if holder.ppid is None or holder.ppid <= 0:
        return None
    view = LiveProcesses((holder,))
    parent = view.get(holder.ppid)
    if parent is None:
        return None
    child = view.get(holder.pid)
    note = ""
    if child is not None and sig.shell_loop(parent, child, live=False):
        note = "shell loop"
    elif sig.reloader(parent, child, view):
        note = "reloader"
    else:
        note = sig.supervisor_daemon(parent) or ""
    return Restarter(parent.pid, parent.name, note)


def _event(
    at: datetime,
    kind: EventKind,
    key: ListenerKey,
    holders: tuple[Holder, ...],
    *,
    previous: tuple[Holder, ...] = (),
    listened_for: float | None = None,
    at_start: bool = False,
    restarted_by: Restarter | None = None,
) -> ListenerEvent:
    return ListenerEvent(
        at, kind, key.proto, key.family, key.address, key.port, holders,
        previous=previous, listened_for=listened_for, at_start=at_start,
        restarted_by=restarted_by,
    )


def _pids(holders: tuple[Holder, ...]) -> frozenset[int]:
    return frozenset(h.pid for h in holders)


def _same_pids(before: tuple[Holder, ...], now: tuple[Holder, ...]) -> bool:
    """The same processes hold it (in any order). Asked of every listener every poll: one
    holder each, the common case, is two PIDs compared, not two sets made."""
    if len(before) == 1 == len(now):
        return before[0].pid == now[0].pid
    return _pids(before) == _pids(now)


def _age(now: datetime, since: datetime) -> float:
    """Seconds from `since` to `now`; never negative (a wall clock stepped back)."""
    return max(0.0, (now - since).total_seconds())
