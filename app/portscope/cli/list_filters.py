"""`list --name/--pid/--user/--proto/--address/--port`: a snapshot narrowed to what was asked.

Values of one option are alternatives (`--port 3000 --port 8080`: either), options together
must all hold. The narrowed Snapshot is an ordinary one, so the table, the CSV and the JSON
contract are built from it exactly as from a whole one.

A port without a listener kept (its connections or TIME_WAIT, one PortStats for all
addresses) matches by its port, by TCP, and by the processes holding its live connections;
it has no address, so `--address` leaves it out.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from ..core.model import ClientTimeWait, Holder, PortStats, Snapshot, Socket
from ..core.record import replace


class Filters:
    """What `list` was asked to keep; `active` when anything was."""

    __slots__ = ("addresses", "names", "pids", "ports", "proto", "uids", "users")

    def __init__(self, args: argparse.Namespace) -> None:
        self.ports: frozenset[int] | None = (
            frozenset(p for group in args.port for p in group) if args.port else None
        )
        self.names = tuple(n.casefold() for n in args.name or ())
        self.pids = frozenset(args.pid or ())
        self.proto: str | None = args.proto
        self.addresses = frozenset(a for group in args.address or () for a in group)
        self.users, self.uids = _accounts(args.user or ())

    @property
    def active(self) -> bool:
        return bool(
            self.ports is not None or self.names or self.pids or self.proto or self.addresses
            or self.users or self.uids
        )

    def keeps_socket(self, s: Socket) -> bool:
        if self.ports is not None and s.port not in self.ports:
            return False
        if self.proto and s.proto != self.proto:
            return False
        if self.addresses and s.address not in self.addresses:
            return False
        if (self.users or self.uids) and not (
            s.uid in self.uids or any(h.user in self.users for h in s.holders)
        ):
            return False
        container = s.container.name.casefold() if s.container is not None else None
        if self.names and not (
            _named(s.holders, self.names)
            or (container is not None and any(n in container for n in self.names))
        ):
            return False
        return not self.pids or any(h.pid in self.pids for h in s.holders)

    def keeps_stats(self, p: PortStats) -> bool:
        if self.ports is not None and p.port not in self.ports:
            return False
        if self.proto == "udp" or self.addresses:
            return False
        if (self.users or self.uids) and not any(h.user in self.users for h in p.holders):
            return False
        if self.names and not _named(p.holders, self.names):
            return False
        return not self.pids or any(h.pid in self.pids for h in p.holders)


def narrowed(snap: Snapshot, filters: Filters) -> Snapshot:
    """`snap` with only the sockets and ports `filters` keep. This host's client summary
    goes (it is about the whole machine), and the hidden-owner count is of what is kept."""
    sockets = tuple(s for s in snap.sockets if filters.keeps_socket(s))
    listened = {s.port for s in sockets if s.proto == "tcp"}  # their rows show their stats
    return replace(
        snap,
        sockets=sockets,
        ports=tuple(p for p in snap.ports if p.port in listened or filters.keeps_stats(p)),
        hidden_owners=sum(1 for s in sockets if s.owner_hidden),
        client_time_wait=ClientTimeWait(),
    )


def _named(holders: tuple[Holder, ...], names: tuple[str, ...]) -> bool:
    return any(n in h.name.casefold() for h in holders for n in names)


def _accounts(given: Iterable[str]) -> tuple[frozenset[str], frozenset[int]]:
    """User names and uids for `--user NAME|UID`: a name matches the processes' user and,
    for a socket whose owner is hidden, the kernel's uid of the socket."""
    names: set[str] = set()
    uids: set[int] = set()
    for text in given:
        raw = text.strip()
        try:
            import pwd  # not on Windows
        except ImportError:
            names.add(raw)
            continue
        try:
            entry = pwd.getpwuid(int(raw)) if raw.isascii() and raw.isdigit() else (
                pwd.getpwnam(raw)
            )
        except (KeyError, ValueError, OverflowError):
            if raw.isascii() and raw.isdigit():
                uids.add(int(raw))  # a uid with no account: sockets can still carry it
            else:
                names.add(raw)
            continue
        names.add(entry.pw_name)
        uids.add(entry.pw_uid)
    return frozenset(names), frozenset(uids)
