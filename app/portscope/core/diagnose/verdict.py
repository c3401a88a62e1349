"""The answer to "why does bind() fail on this port?": one frozen value for CLI, TUI and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..model import Holder, Proto
from ..roles.model import Role, StopPlan
from .bind_attempt import Attempt

VerdictKind = Literal[
    "free",
    "listening",
    "time_wait",
    "connections",
    "udp_bound",
    "owner_hidden",
    "permission_denied",
    "address_not_available",
]

VERDICT_KINDS: tuple[VerdictKind, ...] = get_args(VerdictKind)


@dataclass(frozen=True, slots=True)
class TimeWaitInfo:
    """TIME_WAIT sockets on the port when it was probed."""

    count: int
    expires_in: float | None  # seconds until the last one expires; None where unknown
    reuseaddr_fixes: bool  # did the SO_REUSEADDR attempt succeed?


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the kernel said about one port, joined with who (or what) holds it."""

    port: int
    address: str
    proto: Proto
    kind: VerdictKind
    attempts: tuple[Attempt, ...]
    holders: tuple[Holder, ...] = ()
    time_wait: TimeWaitInfo | None = None
    sentence: str = ""  # the verdict in one sentence
    explanation: tuple[str, ...] = ()  # why, one paragraph per item
    advice: tuple[str, ...] = ()  # what to do, most useful first
    suggested_port: int | None = None
    already_running: bool = False  # a holder looks like an earlier copy of the user's program
    inherited: tuple[int, ...] = ()  # PIDs that look like they inherited the socket
    stop: StopPlan | None = None  # what stops the port for good: `kill` carries out the same
    roles: tuple[Role, ...] = ()  # every process around the socket, controllers included

    @property
    def free(self) -> bool:
        return self.kind == "free"

    @property
    def plain(self) -> Attempt:
        return self.attempts[0]
