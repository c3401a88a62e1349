"""Shared assembly of a Snapshot, fed socket by socket by any collector."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from ..model import ClientTimeWait, Family, Holder, PortStats, Proto, Snapshot, Socket
from ..processes import ProcessTable, is_root
from ..record import field, mutable_record
from .system import tcp_tw_reuse
from .tables import SHARED_MAX, ClientPorts

DESTINATIONS = 20  # client destinations kept, busiest first: the words name the top ones


@mutable_record
class _PortAcc:
    time_wait: int = 0
    first: float | None = None
    last: float | None = None
    states: dict[str, int] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)
    remote_port: int = -1  # -1: none seen yet; -2: several different ones


class SnapshotBuilder:
    """Collects sockets of one poll; `build()` freezes them into a Snapshot.

    Per-port accumulation keeps memory and time proportional to ports, not sockets, which
    matters with 100,000 TIME_WAIT sockets.
    """

    def __init__(
        self,
        processes: ProcessTable,
        ephemeral: tuple[int, int],
        source: str,
        *,
        whole: bool = True,
    ) -> None:
        """`whole`: False for a poll that asks about part of the machine (one port), so the
        process cache keeps what the last whole poll needed."""
        self._processes = processes
        processes.begin_poll(whole)
        self._ephemeral = ephemeral
        self._source = source
        self._sockets: list[Socket] = []
        # PIDs -> their holders, once: 200 listeners of one pre-fork server share 300
        # holders, so they share one tuple (and serialize writes its processes once).
        self._groups: dict[tuple[int, ...], tuple[Holder, ...]] = {}
        self._ports: dict[int, _PortAcc] = {}
        self._hidden = 0
        self._destinations: Counter[tuple[str, int]] = Counter()
        # (local port, remote address, remote port) of TIME_WAIT given one by one (psutil)
        self._loose: list[tuple[int, str, int]] = []

    def listener(
        self,
        proto: Proto,
        family: Family,
        address: str,
        port: int,
        pids: Iterable[int],
        inode: int | None = None,
        uid: int | None = None,
        v6only: bool | None = None,
    ) -> None:
        group = tuple(pids)
        holders = self._groups.get(group)
        if holders is None:
            holders = self._groups[group] = self._processes.holders(group)
        if not holders:
            self._hidden += 1
        self._sockets.append(
            Socket(proto, family, address, port, holders, inode, uid, v6only=v6only)
        )

    def time_wait(
        self, port: int, remote_port: int, expires: float | None, remote_address: str | None = None
    ) -> None:
        """One TIME_WAIT socket; with its remote address, it counts toward its destination
        when it is a client's (decided in build(), once the listening ports are known)."""
        acc = self._acc(port, remote_port)
        if remote_address is not None:
            self._loose.append((port, remote_address, remote_port))
        acc.time_wait += 1
        if expires is not None:
            if acc.first is None or expires < acc.first:
                acc.first = expires
            if acc.last is None or expires > acc.last:
                acc.last = expires

    def time_wait_tally(
        self, port: int, count: int, remote_port: int, first: float | None, last: float | None
    ) -> None:
        """`count` TIME_WAIT sockets on `port` at once (remote_port -2: several remotes), so
        a collector that tallied them in bulk never makes one call per socket."""
        acc = self._acc(port, remote_port)
        acc.time_wait += count
        if first is not None and (acc.first is None or first < acc.first):
            acc.first = first
        if last is not None and (acc.last is None or last > acc.last):
            acc.last = last

    def client_destinations(self, counts: Mapping[tuple[str, int], int]) -> None:
        """Client TIME_WAIT per (remote address, remote port), tallied in bulk by a
        collector that already told clients from servers (tables.ClientPorts)."""
        self._destinations.update(counts)

    def live(self, port: int, remote_port: int, state: str, pids: Iterable[int]) -> None:
        acc = self._acc(port, remote_port)
        acc.states[state] = acc.states.get(state, 0) + 1
        acc.pids.update(pids)

    def _acc(self, port: int, remote_port: int) -> _PortAcc:
        acc = self._ports.get(port)
        if acc is None:
            acc = self._ports[port] = _PortAcc(remote_port=remote_port)
        elif acc.remote_port != remote_port:
            acc.remote_port = -2
        return acc

    def build(self, notes: Iterable[str] = (), listening: Iterable[int] = ()) -> Snapshot:
        """`notes`: what this poll could not see and why, one sentence each. `listening`:
        TCP ports listened on that were left out of a partial poll (they still tell a
        client's port from a server's)."""
        listening = {s.port for s in self._sockets if s.proto == "tcp"} | set(listening)
        ports: list[PortStats] = []
        client = _ClientSum()
        for port in sorted(self._ports):
            acc = self._ports[port]
            side = self._is_client_port(port, acc, listening)
            stats = PortStats(
                port=port,
                time_wait=acc.time_wait,
                time_wait_first=acc.first,
                time_wait_last=acc.last,
                states=dict(sorted(acc.states.items())),
                holders=() if side else self._processes.holders(sorted(acc.pids)),
                client_side=side,
                remote_port=acc.remote_port if acc.remote_port >= 0 else None,
            )
            ports.append(stats)
            if side and acc.time_wait:
                client.add(stats)
        sockets = sorted(self._sockets, key=lambda s: (s.port, s.proto, s.family, s.address))
        return Snapshot(
            taken_at=datetime.now(timezone.utc),
            sockets=tuple(sockets),
            ports=tuple(ports),
            hidden_owners=self._hidden,
            client_time_wait=client.freeze(
                self._client_destinations(listening), self._ephemeral, tcp_tw_reuse()
            ),
            source=self._source,
            is_root=is_root(),
            notes=tuple(notes),
        )

    def _client_destinations(self, listening: set[int]) -> Counter[tuple[str, int]]:
        found = Counter(self._destinations)
        if self._loose:
            low, high = self._ephemeral
            crowded = (p for p, acc in self._ports.items() if acc.time_wait > SHARED_MAX)
            clients = ClientPorts(range(low, high + 1), frozenset(listening), frozenset(crowded))
            found.update(
                (address, remote)
                for local, address, remote in self._loose
                if clients.local(local) and clients.server(remote)
            )
        return found

    def _is_client_port(self, port: int, acc: _PortAcc, listening: set[int]) -> bool:
        """An ephemeral local port whose sockets all talk to one remote port is a client's.

        When the remote port is itself ephemeral and nobody listens on it, we cannot tell a
        client from a stopped server. A lone TIME_WAIT socket is then taken for a client's
        (a client port carries one connection; a stopped server usually leaves several, and
        `check` still finds it); anything more keeps its row, since hiding a blocked server
        port would hide exactly what users came for.
        """
        low, high = self._ephemeral
        if port in listening or not low <= port <= high or acc.remote_port < 0:
            return False
        remote = acc.remote_port
        if remote in listening or not low <= remote <= high:
            return True
        return acc.time_wait == 1 and not acc.states


class _ClientSum:
    def __init__(self) -> None:
        self.count = 0
        self.ports = 0
        self.by_remote: dict[int, int] = {}
        self.last: float | None = None

    def add(self, stats: PortStats) -> None:
        self.count += stats.time_wait
        self.ports += 1
        if stats.remote_port is not None:
            self.by_remote[stats.remote_port] = (
                self.by_remote.get(stats.remote_port, 0) + stats.time_wait
            )
        if stats.time_wait_last is not None and (
            self.last is None or stats.time_wait_last > self.last
        ):
            self.last = stats.time_wait_last

    def freeze(
        self,
        by_destination: Mapping[tuple[str, int], int],
        ephemeral: tuple[int, int],
        tw_reuse: int | None,
    ) -> ClientTimeWait:
        ranked = sorted(self.by_remote.items(), key=lambda kv: (-kv[1], kv[0]))
        # nlargest, not a sort: a stopped server's clients can make thousands of entries.
        destinations = heapq.nlargest(
            DESTINATIONS,
            ((address, port, n) for (address, port), n in by_destination.items()),
            key=lambda d: (d[2], -d[1]),
        )
        return ClientTimeWait(
            self.count, self.ports, tuple(ranked), self.last,
            by_destination=tuple(destinations), ephemeral=ephemeral, tw_reuse=tw_reuse,
        )


