"""Shared assembly of a Snapshot, fed socket by socket by any collector."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from ..model import ClientTimeWait, Family, Holder, PortStats, Proto, Snapshot, Socket
from ..processes import ProcessTable, is_root
from ..record import field, mutable_record
from .sides import ClientSums
from .system import tcp_tw_reuse


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
    matters with 100,000 TIME_WAIT sockets. A whole poll hands over its client sockets
    already summed per destination (`clients`, see sides.py), so only server ports (and
    the few client ports a tie decided, flagged `client_side`) get an accumulator and a
    PortStats; a one-port poll hands over its port whoever's it is, and build() marks a
    client's port `client_side` by the older, per-port rule.
    """

    def __init__(
        self,
        processes: ProcessTable,
        ephemeral: tuple[int, int],
        source: str,
        *,
        whole: bool = True,
        previous: Mapping[int, Socket] | None = None,
    ) -> None:
        """`whole`: False for a poll that asks about part of the machine (one port), so the
        process cache keeps what the last whole poll needed. `previous`: the last poll's
        listeners by inode; one unchanged is that very Socket again, so everything after
        (rows, texts, the table) tells it unchanged by identity (5,000 listeners: ~20 ms
        a poll)."""
        self._processes = processes
        processes.begin_poll(whole)
        self._ephemeral = ephemeral
        self._source = source
        self._sockets: list[Socket] = []
        self._previous = previous or {}
        # PIDs -> their holders, once: 200 listeners of one pre-fork server share 300
        # holders, so they share one tuple (and serialize writes its processes once).
        self._groups: dict[tuple[int, ...], tuple[Holder, ...]] = {}
        self._ports: dict[int, _PortAcc] = {}
        self._hidden = 0
        self._clients: ClientSums | None = None  # set by a poll that told clients apart

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
        last = self._previous.get(inode) if inode else None
        if (
            last is not None and last.port == port and last.address == address
            and last.proto == proto and last.family == family and last.uid == uid
            and last.v6only == v6only and last.container is None and last.holders == holders
        ):
            self._sockets.append(last)
            return
        self._sockets.append(
            Socket(proto, family, address, port, holders, inode, uid, v6only=v6only)
        )

    def time_wait(self, port: int, remote_port: int, expires: float | None) -> None:
        """One TIME_WAIT socket on `port`."""
        self.time_wait_tally(port, 1, remote_port, expires, expires)

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

    def clients(self, sums: ClientSums) -> None:
        """The poll's client sockets, summed per destination: every port given to this
        builder is then a server's."""
        self._clients = sums

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
        told = self._clients
        ports: list[PortStats] = []
        for port in sorted(self._ports):
            acc = self._ports[port]
            # Told: a server's port, or a client's only a tie decided (sides.py: kept, so a
            # question about that port by number still finds its TIME_WAIT).
            side = port in told.kept if told is not None else self._is_client_port(
                port, acc, listening
            )
            ports.append(PortStats(
                port=port,
                time_wait=acc.time_wait,
                time_wait_first=acc.first,
                time_wait_last=acc.last,
                states=dict(sorted(acc.states.items())),
                holders=() if side else self._processes.holders(sorted(acc.pids)),
                client_side=side,
                remote_port=acc.remote_port if acc.remote_port >= 0 else None,
            ))
        sockets = sorted(self._sockets, key=lambda s: (s.port, s.proto, s.family, s.address))
        reuse = tcp_tw_reuse()
        client = (
            self._clients.freeze(self._ephemeral, reuse) if self._clients is not None
            else ClientTimeWait(ephemeral=self._ephemeral, tw_reuse=reuse)
        )
        return Snapshot(
            taken_at=datetime.now(timezone.utc),
            sockets=tuple(sockets),
            ports=tuple(ports),
            hidden_owners=self._hidden,
            client_time_wait=client,
            source=self._source,
            is_root=is_root(),
            notes=tuple(notes),
        )

    def _is_client_port(self, port: int, acc: _PortAcc, listening: set[int]) -> bool:
        """A one-port poll: an ephemeral local port whose sockets all talk to one remote
        port is a client's (the whole poll's facts, sides.py, are not there to ask).

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
