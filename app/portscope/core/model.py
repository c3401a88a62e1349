"""Immutable values that flow from a collector to the CLI and the TUI.

Everything here is a frozen record (core/record.py) so a Snapshot can be handed from a worker
thread to the UI (or serialised to JSON) without anyone being able to change it under the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .hints import Literal
from .record import field, record
from .untrusted import shown, shown_argv

Proto = Literal["tcp", "udp"]
Family = Literal["ipv4", "ipv6"]

# TCP states by the names `ss` and the kernel use; LISTEN and TIME_WAIT get their own columns.
TCP_STATES: Mapping[int, str] = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}

# The states a socket reaches after its process closed it.
CLOSING = frozenset({"FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK"})


@record
class Holder:
    """A process that has the socket open (one of possibly several)."""

    pid: int
    name: str
    user: str | None
    cmdline: tuple[str, ...]
    started: float | None  # process creation time, seconds since the epoch
    cwd: str | None = None
    ppid: int | None = None

    @property
    def identity(self) -> tuple[int, float | None]:
        """(PID, start time): what tells this process apart from a later one with its PID."""
        return (self.pid, self.started)

    @property
    def command(self) -> str:
        """The command line for display, escaped (the raw argv is `cmdline`)."""
        return shown_argv(self.cmdline) if self.cmdline else f"[{shown(self.name)}]"


@record
class Container:
    """A Docker container that publishes a port (through docker-proxy)."""

    id: str
    name: str
    image: str
    compose_project: str | None = None
    compose_service: str | None = None


@record
class Socket:
    """A listening TCP socket or a bound UDP socket."""

    proto: Proto
    family: Family
    address: str
    port: int
    holders: tuple[Holder, ...] = ()
    inode: int | None = None  # Linux only; 0/None when the platform does not say
    uid: int | None = None  # owning uid as the kernel reports it, even when holders are hidden
    # IPV6_V6ONLY of an IPv6 socket, from sock_diag; None where unknown (/proc/net has no
    # such column, psutil does not say) or not IPv6. A `[::]` listener with it set does not
    # block IPv4 binds.
    v6only: bool | None = None
    # The container this socket publishes, when docker-proxy holds it and the Docker API
    # said which (core/roles/published.py); None otherwise.
    container: Container | None = None

    @property
    def key(self) -> str:
        """Stable identity across polls: the TUI keys its rows on this, never on an index."""
        return f"{self.proto}:{self.family}:[{self.address}]:{self.port}"

    @property
    def owner_hidden(self) -> bool:
        return not self.holders

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(h.pid for h in self.holders)


@record
class PortStats:
    """Non-listening TCP sockets on one local port, all addresses and families together."""

    port: int
    time_wait: int = 0
    # Seconds until the first and the last TIME_WAIT socket expires; None where unknown.
    time_wait_first: float | None = None
    time_wait_last: float | None = None
    states: Mapping[str, int] = field(default_factory=dict)  # other states, e.g. ESTABLISHED
    # Processes holding live (non-TIME_WAIT) sockets on this port; empty for client ports.
    holders: tuple[Holder, ...] = ()
    # True for a client's ephemeral port: the aggregate, not the table, shows these.
    client_side: bool = False
    # For client-side ports: the remote port most of its sockets talk to.
    remote_port: int | None = None

    @property
    def live(self) -> int:
        return sum(self.states.values())

    def kernel_held(self, is_root: bool) -> bool:
        """Only closing sockets and no process holding any: root sees every process's
        sockets, so these are orphans the kernel finishes closing (a server that shut down
        cleanly leaves them in FIN-WAIT-2): no process to stop, they clear by themselves."""
        return is_root and not self.holders and bool(self.states) and set(self.states) <= CLOSING

    @property
    def total(self) -> int:
        return self.time_wait + self.live


@record
class ClientDestination:
    """This host's client sockets to one destination (remote address and port), summed."""

    address: str
    port: int
    time_wait: int = 0
    states: Mapping[str, int] = field(default_factory=dict)  # live connections by state

    @property
    def live(self) -> int:
        return sum(self.states.values())


@record
class ClientTimeWait:
    """Client sockets (TIME_WAIT and live connections of this host's clients) summed, so a
    load test cannot flood a table: core/collect/sides.py tells them from a server's."""

    count: int = 0
    ports: int = 0
    # (remote port, count), largest first
    by_remote_port: tuple[tuple[int, int], ...] = ()
    last_expiry: float | None = None
    # (remote address, remote port, count), largest first: connect() picks a free local port
    # per destination, so the ephemeral range runs out for one destination at a time.
    by_destination: tuple[tuple[str, int, int], ...] = ()
    ephemeral: tuple[int, int] | None = None  # the range client ports come from
    tw_reuse: int | None = None  # net.ipv4.tcp_tw_reuse (Linux); None where unknown
    # Every destination with client sockets (the busiest DESTINATIONS_KEPT), TIME_WAIT and
    # live ones, busiest first: what `list --json` prints as "clients".
    destinations: tuple[ClientDestination, ...] = ()
    live: int = 0  # live client connections, all destinations

    @property
    def ephemeral_ports(self) -> int:
        """How many local ports connect() can pick from (0 if unknown)."""
        if self.ephemeral is None:
            return 0
        low, high = self.ephemeral
        return max(0, high - low + 1)


@record
class Snapshot:
    """One poll of the machine's sockets."""

    taken_at: datetime
    sockets: tuple[Socket, ...]
    ports: tuple[PortStats, ...]
    hidden_owners: int = 0
    client_time_wait: ClientTimeWait = ClientTimeWait()
    source: str = ""
    is_root: bool = False
    # What this poll could not see and why (a table it could not read, a fallback it took),
    # one sentence each, for the header and `list`; empty when everything was read.
    notes: tuple[str, ...] = ()

    def listeners_on(self, port: int, proto: Proto = "tcp") -> tuple[Socket, ...]:
        return tuple(s for s in self.sockets if s.port == port and s.proto == proto)

    def port_stats(self, port: int) -> PortStats | None:
        for stats in self.ports:
            if stats.port == port:
                return stats
        return None
