"""The answer to "why does bind() fail on this port?": one frozen value for CLI, TUI and JSON."""

from __future__ import annotations

from ..hints import Literal, get_args
from ..model import Holder, Proto, Socket
from ..record import record
from ..roles.model import Role, StopPlan
from .bind_attempt import Attempt, Bind
from .excluded import PortRange

VerdictKind = Literal[
    "free",
    "listening",
    "time_wait",
    "connections",
    "udp_bound",
    "owner_hidden",
    "kernel_held",  # closed by its process, still closing in the kernel (FIN-WAIT-2 ...)
    "permission_denied",
    "address_not_available",
    "excluded_range",  # Windows: inside a reserved range (Hyper-V, WSL, admin): WSAEACCES
]

VERDICT_KINDS: tuple[VerdictKind, ...] = get_args(VerdictKind)


@record
class TimeWaitInfo:
    """TIME_WAIT sockets on the port when it was probed."""

    count: int
    expires_in: float | None  # seconds until the last one expires; None where unknown
    reuseaddr_fixes: bool  # did the SO_REUSEADDR attempt succeed?


@record
class OtherAddress:
    """Another address a server commonly binds, probed on the same port: `check` with no
    --host names those that are taken (a server binding `localhost` or `::` meets them)."""

    address: str
    kind: VerdictKind
    holders: tuple[Holder, ...] = ()
    sockets: tuple[Socket, ...] = ()

    @property
    def taken(self) -> bool:
        return self.kind not in ("free", "address_not_available")


@record
class ServerBind:
    """Which bind the port's server does, when something shows it: a holder known to set
    SO_REUSEADDR, or the port's TIME_WAIT (it keeps its listener's flag: the SO_REUSEADDR
    attempt succeeding says the old server had set it)."""

    reuseaddr: bool
    program: str | None = None  # raw, as server_name() calls it ("gunicorn"); escape to show
    source: Literal["holder", "time_wait", "connections"] = "holder"


@record
class Verdict:
    """What the kernel said about one port, joined with who (or what) holds it."""

    port: int
    address: str
    proto: Proto
    kind: VerdictKind
    attempts: tuple[Attempt, ...]
    holders: tuple[Holder, ...] = ()
    # None: none on the port, or not counted (diagnose's count_time_wait=False, when
    # something other than TIME_WAIT decided the verdict)
    time_wait: TimeWaitInfo | None = None
    sentence: str = ""  # the verdict in one sentence
    explanation: tuple[str, ...] = ()  # why, one paragraph per item
    advice: tuple[str, ...] = ()  # what to do, most useful first
    suggested_port: int | None = None
    already_running: bool = False  # a holder looks like an earlier copy of the user's program
    inherited: tuple[int, ...] = ()  # PIDs that look like they inherited the socket
    stop: StopPlan | None = None  # what stops the port for good: `kill` carries out the same
    roles: tuple[Role, ...] = ()  # every process around the socket, controllers included
    others: tuple[OtherAddress, ...] = ()  # the other common addresses, when surveyed
    other_proto: tuple[Socket, ...] = ()  # sockets of the other protocol on this port
    server_bind: ServerBind | None = None
    excluded: PortRange | None = None  # the Windows excluded range holding the port

    @property
    def free(self) -> bool:
        return self.kind == "free"

    @property
    def reuseaddr_ok(self) -> bool:
        """Did the SO_REUSEADDR bind (+ listen) succeed? Windows probes SO_EXCLUSIVEADDRUSE
        instead, and a plain bind is what a server there does: then this is `free`."""
        return self.free or any(a.ok for a in self.attempts if a.option == "SO_REUSEADDR")

    def can_bind(self, bind: Bind = "plain") -> bool:
        """Would a server binding this way start now? What --reuseaddr exits 0 on."""
        return self.reuseaddr_ok if bind == "reuseaddr" else self.free

    @property
    def plain(self) -> Attempt:
        return self.attempts[0]
