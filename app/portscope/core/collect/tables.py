"""What a socket-table reader hands the Linux collector: live sockets one by one, TIME_WAIT
already tallied per local port (100,000 of them must not become 100,000 objects)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping

from ..hints import NamedTuple
from ..model import Family, Proto
from ..record import field, mutable_record, record

LISTEN = 0x0A
TIME_WAIT = 0x06
CLOSE = 0x07  # a bound, unconnected UDP socket shows TCP's CLOSE state
SEVERAL = -2  # remote_port of a tally whose sockets talk to different remote ports
# A client port carries one connection per destination, so few TIME_WAIT: tcp_max_tw_buckets
# (131,072 by default) spread over ~28,000 ephemeral ports is under 5 each. A port with more
# is a (stopped) server's, whose clients are not destinations.
SHARED_MAX = 64


class SocketRow(NamedTuple):
    """One socket that is not TIME_WAIT, decoded."""

    proto: Proto
    family: Family
    state: int
    address: str
    port: int
    remote_port: int
    uid: int
    inode: int
    v6only: bool | None = None  # IPV6_V6ONLY of an IPv6 listener; None where not reported


@mutable_record
class TimeWaitTally:
    """TIME_WAIT sockets on one local port; expiries in seconds from now."""

    count: int = 0
    first: float | None = None
    last: float | None = None
    remote_port: int = -1  # -1: none yet; SEVERAL: more than one

    def add(self, count: int, remote_port: int, first: float | None, last: float | None) -> None:
        self.count += count
        if self.remote_port == -1:
            self.remote_port = remote_port
        elif self.remote_port != remote_port:
            self.remote_port = SEVERAL
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last


@record
class ClientPorts:
    """Which TIME_WAIT sockets are a client's, counted per destination: the local port is
    ephemeral and nobody listens on it, the remote port is a server's (listened on here, or
    outside the ephemeral range). Per socket, not per local port: Linux gives one local port
    to connections with different destinations."""

    ephemeral: range
    listening: frozenset[int]
    crowded: frozenset[int] = frozenset()  # local ports with more than SHARED_MAX TIME_WAIT

    @classmethod
    def of(
        cls,
        rows: Iterable[SocketRow],
        ephemeral: tuple[int, int],
        time_wait: Mapping[int, TimeWaitTally] | None = None,
    ) -> ClientPorts:
        listening = frozenset(r.port for r in rows if r.proto == "tcp" and r.state == LISTEN)
        crowded = frozenset(p for p, t in (time_wait or {}).items() if t.count > SHARED_MAX)
        return cls(range(ephemeral[0], ephemeral[1] + 1), listening, crowded)

    def local(self, port: int) -> bool:
        return port in self.ephemeral and port not in self.listening and port not in self.crowded

    def server(self, port: int) -> bool:
        return port in self.listening or port not in self.ephemeral


@mutable_record
class Tables:
    rows: list[SocketRow] = field(default_factory=list)
    time_wait: dict[int, TimeWaitTally] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why
    # Client TIME_WAIT per (remote address, remote port): see ClientPorts. Counted once the
    # listening ports are known, from TIME_WAIT kept aside meanwhile: whole datagrams
    # (buffer, stride, address family) and sockets decoded one by one (local port, remote
    # address, remote port).
    destinations: Counter[tuple[str, int]] = field(default_factory=Counter)
    bulk: list[tuple[bytes, int, int]] = field(default_factory=list)
    loose: list[tuple[int, str, int]] = field(default_factory=list)

    def tally(self, port: int) -> TimeWaitTally:
        found = self.time_wait.get(port)
        if found is None:
            found = self.time_wait[port] = TimeWaitTally()
        return found

    def count_loose(self, clients: ClientPorts) -> None:
        """Add the one-by-one TIME_WAIT to `destinations`, then drop them."""
        self.destinations.update(
            (address, remote)
            for local, address, remote in self.loose
            if clients.local(local) and clients.server(remote)
        )
        self.loose.clear()


def reason(exc: OSError) -> str:
    """Why a read failed, for a note: "Permission denied", not the whole exception."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__
