"""The rows a person reads: one per listening address, one per blocked port without one.

Shared by `portscope list` and the TUI so both show the same picture. A client's sockets
(a load test's, towards however many services) never make rows: a whole poll sums them
per destination (collect/sides.py) and the caller shows the sums as a line; a one-port
poll keeps a client's port, flagged `client_side`, shown only when asked for by number.
That keeps the row count to what a person can read.

Processes that listen on the same address and port with SO_REUSEPORT own one socket each,
but a person asks "who holds :8080", so they share one row whose holders are all of them
(keyed by the address, a row per socket would lose all but one under the same key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import text
from .hints import NamedTuple
from .model import Family, Holder, PortStats, Proto, Snapshot, Socket
from .record import record, replace
from .untrusted import shown

NO_LISTENER = "(no listener)"


@record
class TableRow:
    """One row: a socket (with its port's stats when TCP), or a port nobody listens on."""

    key: str
    port: int
    proto: Proto
    address: str | None  # None: a port with sockets but no listener
    holders: tuple[Holder, ...]
    socket: Socket | None
    stats: PortStats | None
    family: Family | None = None  # None for a no-listener row: its sockets may be of both

    @property
    def proto_label(self) -> str:
        return f"{self.proto}6" if self.family == "ipv6" else self.proto

    @property
    def address_label(self) -> str:
        if self.socket is None:
            return NO_LISTENER
        return text.address_label(self.socket)

    @property
    def time_wait(self) -> int:
        return self.stats.time_wait if self.stats else 0


class RowTexts(NamedTuple):
    port: str
    proto: str
    address: str
    pids: str
    process: str
    user: str
    time_wait: str
    other: str


def no_listener_key(port: int) -> str:
    return f"tcp:port:{port}"


def build_rows(
    snap: Snapshot, port: int | None = None, reuse: Mapping[str, TableRow] | None = None
) -> list[TableRow]:
    """Sockets in snapshot order, then ports with sockets but no TCP listener.

    With `port`, only that port, client-side or not (someone who asks by number wants it).
    `reuse`: the last poll's rows by key; one made of the very same Socket and PortStats is
    returned as it was (the collector reuses an unchanged listener's Socket).
    """
    stats = {p.port: p for p in snap.ports}
    rows: list[TableRow] = []
    with_listener: set[int] = set()
    for s in merged_sockets(snap.sockets):
        if port is not None and s.port != port:
            continue
        st = stats.get(s.port) if s.proto == "tcp" else None
        if s.proto == "tcp":
            with_listener.add(s.port)
        key = s.key
        last = reuse.get(key) if reuse is not None else None
        if last is not None and last.socket is s and last.stats is st:
            rows.append(last)
            continue
        rows.append(TableRow(key, s.port, s.proto, s.address, s.holders, s, st, s.family))
    for st in snap.ports:
        if st.port in with_listener or (port is not None and st.port != port):
            continue
        if st.client_side and port is None:
            continue
        rows.append(TableRow(no_listener_key(st.port), st.port, "tcp", None, st.holders, None, st))
    return rows


def merged_sockets(sockets: Iterable[Socket]) -> list[Socket]:
    """One Socket per key, in first-seen order: SO_REUSEPORT siblings become one whose
    holders are all of theirs (each process once, by PID)."""
    merged: dict[str, Socket] = {}
    for s in sockets:
        key = s.key  # a property that formats a string: once, not twice per socket
        first = merged.get(key)
        if first is None:
            merged[key] = s
            continue
        holders = {h.identity: h for h in (*first.holders, *s.holders)}
        union = tuple(sorted(holders.values(), key=lambda h: (h.pid, h.started or 0.0)))
        merged[key] = replace(first, holders=union)
    return list(merged.values())


def listening_count(rows: Iterable[TableRow]) -> int:
    """Rows with a listener: what a header's "N listening" counts."""
    return sum(row.socket is not None for row in rows)


def _process(row: TableRow) -> str:
    """"docker web (nginx:1.27)" for a port a container publishes, else the holders."""
    container = row.socket.container if row.socket is not None else None
    if container is not None:
        return f"docker {shown(container.name)} ({shown(container.image)})"
    return text.process_cell(row.holders)


def row_texts(row: TableRow) -> RowTexts:
    no_listener = row.socket is None
    return RowTexts(
        port=str(row.port),
        proto=row.proto_label,
        address=row.address_label,
        pids=text.pids_cell(row.holders),
        process="-" if no_listener and not row.holders else _process(row),
        user=text.user_cell(row.holders, row.socket.uid if row.socket else None),
        time_wait=text.time_wait_cell(row.stats),
        other=text.live_cell(row.stats),
    )
