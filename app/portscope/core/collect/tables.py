"""What a socket-table reader hands the Linux collector: live sockets one by one, TIME_WAIT
already tallied per server port (100,000 of them must not become 100,000 objects), and the
client sockets summed per destination (sides.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..hints import NamedTuple
from ..model import TCP_STATES, Family, Proto
from ..record import field, mutable_record
from .sides import ClientSums, Sides, client_ports, pair

LISTEN = 0x0A
TIME_WAIT = 0x06
CLOSE = 0x07  # a bound, unconnected UDP socket shows TCP's CLOSE state
SEVERAL = -2  # remote_port of a tally whose sockets talk to different remote ports


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
    remote_address: str = ""  # of a TCP connection (not a listener's, nor UDP's)


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


@mutable_record
class Tables:
    rows: list[SocketRow] = field(default_factory=list)
    time_wait: dict[int, TimeWaitTally] = field(default_factory=dict)  # server ports only,
    # once settled: a client's TIME_WAIT is summed in `clients` instead
    notes: list[str] = field(default_factory=list)  # what could not be read, and why
    clients: ClientSums = field(default_factory=ClientSums)
    # Kept aside by a whole read until every socket is known (settle): whole datagrams of
    # TIME_WAIT (buffer, stride, address family) and TIME_WAIT decoded one by one (local
    # port, remote address, remote port, seconds to expiry).
    bulk: list[tuple[bytes, int, int]] = field(default_factory=list)
    loose: list[tuple[int, str, int, float | None]] = field(default_factory=list)

    def tally(self, port: int) -> TimeWaitTally:
        found = self.time_wait.get(port)
        if found is None:
            found = self.time_wait[port] = TimeWaitTally()
        return found

    def listening(self) -> frozenset[int]:
        return frozenset(r.port for r in self.rows if r.proto == "tcp" and r.state == LISTEN)

    def settle(
        self,
        ephemeral: tuple[int, int],
        time_wait: Iterable[int] = (),
        listening: Iterable[int] = (),
    ) -> Sides:
        """Tell clients from servers (sides.py), then tally the loose TIME_WAIT per server
        port (and doubtful client port) and sum the client ones, and move client
        connections from `rows` into `clients`. `time_wait`: pairs (sides.pair) of TIME_WAIT
        kept elsewhere (the bulk datagrams); `listening`: ports listened on besides those in
        `rows`. Returns the sides, for the caller's own TIME_WAIT."""
        ports = self.listening().union(listening)
        live = [r for r in self.rows if r.proto == "tcp" and r.state != LISTEN]
        sides = client_ports(
            [*time_wait, *(pair(local, remote) for local, _, remote, _ in self.loose)],
            [pair(r.port, r.remote_port) for r in live],
            ports,
            ephemeral,
        )
        clients, doubtful = sides
        self.clients.kept = doubtful
        for local, address, remote, expires in self.loose:
            if local in clients:
                self.clients.add_time_wait(local, address, remote, expires)
            if local not in clients or local in doubtful:
                self.tally(local).add(1, remote, expires, expires)
        self.loose.clear()
        if clients and live:
            kept = []
            for row in self.rows:
                if row.proto == "tcp" and row.state != LISTEN and row.port in clients:
                    state = TCP_STATES.get(row.state, f"{row.state:02X}")
                    self.clients.add_live(row.remote_address, row.remote_port, state)
                else:
                    kept.append(row)
            self.rows = kept
        return sides


def reason(exc: OSError) -> str:
    """Why a read failed, for a note: "Permission denied", not the whole exception."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__
