"""Ports a server can bind now, found the way `check` tests one: a real bind (+ listen).

A port the bind test allows is still left out when handing it to a server would be a trap:
TIME_WAIT on it (a plain bind may fail, and some server just used it), the ephemeral range
(an outgoing connection may take it any moment), a Windows excluded range (WinNAT may reserve
it), and a well-known dev port that a server already holds on the other address family
(`localhost:3000` in a browser reaches the ::1 one first, not the new server on 0.0.0.0).
"""

from __future__ import annotations

import errno
import ipaddress
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..collect import default_collector, snapshot_for
from ..collect.system import ephemeral_range
from ..hints import Literal
from ..model import Family, Proto, Snapshot
from ..record import record
from . import excluded
from .bind_attempt import Bind, bind_option, try_bind
from .excluded import PortRange

# Ports dev servers pick by default (React/Next/Express, Angular, Flask, Vite, Django,
# webpack-dev-server, Jupyter, PHP ...): two of them on one port are the usual trap.
DEV_PORTS = frozenset({
    3000, 3001, 4000, 4200, 5000, 5001, 5173, 5174, 8000, 8008, 8080, 8081, 8443, 8888, 9000,
})
Skip = Literal["in_use", "time_wait", "ephemeral", "excluded", "other_family", "denied"]
SKIPS: tuple[Skip, ...] = (
    "in_use", "time_wait", "ephemeral", "excluded", "other_family", "denied",
)
# (proto, IP version) -> the Windows excluded port ranges, as in probe.py; tests pass theirs.
RangeReader = Callable[[Proto, int], Sequence[PortRange]]
LOWEST = 1024  # the default search starts above the privileged ports


@record
class FreePorts:
    """What a search found, and why it passed over the others (a count per reason)."""

    ports: tuple[int, ...]
    wanted: int
    first: int
    last: int
    addresses: tuple[str, ...]
    proto: Proto
    bind: Bind
    ephemeral: tuple[int, int] | None  # the range left out (None: not left out)
    skipped: Mapping[Skip, int]

    @property
    def complete(self) -> bool:
        return len(self.ports) >= self.wanted


class Judge:
    """Answers "can a server take this port now?" for many ports from one snapshot (the
    TIME_WAIT ports, the other family's listeners) and one read of the excluded ranges."""

    def __init__(
        self,
        addresses: Sequence[str],
        proto: Proto = "tcp",
        bind: Bind = "plain",
        *,
        snapshot: Snapshot | None = None,
        excluded_ranges: RangeReader | None = None,
        dev_ports: frozenset[int] = DEV_PORTS,
    ) -> None:
        self.addresses = tuple(addresses)
        self.proto: Proto = proto
        self.bind: Bind = bind
        snap = snapshot or snapshot_for(default_collector(), None, owners=False)
        self._time_wait = (
            {p.port for p in snap.ports if p.time_wait} if proto == "tcp" else set()
        )
        others = _other_families(self.addresses)
        self._other = {
            s.port for s in snap.sockets if s.proto == proto and s.family in others
        } & dev_ports
        read = excluded_ranges or excluded.read_ranges
        versions = {ipaddress.ip_address(a).version for a in self.addresses}
        self._excluded: tuple[PortRange, ...] = tuple(
            r for version in sorted(versions) for r in read(proto, version)
        )

    def skip(self, port: int) -> Skip | None:
        """Why a server should not be handed `port` now, or None if it can take it.
        ValueError if an address is not this machine's (every bind there would fail)."""
        if excluded.containing(port, self._excluded) is not None:
            return "excluded"
        if port in self._other:
            return "other_family"
        if port in self._time_wait and self.bind == "plain":
            return "time_wait"
        option = bind_option(self.bind)
        for address in self.addresses:
            attempt = try_bind(port, address, self.proto, option)
            if attempt.ok:
                continue
            if attempt.errno == errno.EADDRNOTAVAIL:
                raise ValueError(f"{address} is not an address of this machine")
            if attempt.errno == errno.EACCES:
                return "denied"
            return "time_wait" if port in self._time_wait else "in_use"
        return None


def find_free(
    count: int = 1,
    first: int = LOWEST,
    last: int = 65535,
    addresses: Sequence[str] = ("0.0.0.0",),
    proto: Proto = "tcp",
    bind: Bind = "plain",
    *,
    rng: random.Random | None = None,
    judge: Judge | None = None,
    ephemeral: tuple[int, int] | None = None,
) -> FreePorts:
    """The first `count` ports from `first` up to `last` a server can take (in random order
    with `rng`). `ephemeral`: the range to leave out (default: this host's)."""
    judge = judge or Judge(addresses, proto, bind)
    low, high = ephemeral or ephemeral_range()
    skipped = dict.fromkeys(SKIPS, 0)
    found: list[int] = []
    order = range(first, last + 1) if rng is None else _shuffled(first, last, rng)
    for port in order:
        reason: Skip | None = "ephemeral" if low <= port <= high else judge.skip(port)
        if reason is None:
            found.append(port)
            if len(found) >= count:
                break
        else:
            skipped[reason] += 1
    return FreePorts(
        tuple(found), count, first, last, judge.addresses, judge.proto, judge.bind,
        (low, high), skipped,
    )


def _shuffled(first: int, last: int, rng: random.Random) -> Iterator[int]:
    """Every port of first..last once, in random order, without building the list while
    most draws still hit a new port (one port is usually all that is asked for)."""
    size = last - first + 1
    seen: set[int] = set()
    while len(seen) < size // 2:
        port = first + rng.randrange(size)
        if port not in seen:
            seen.add(port)
            yield port
    rest = [p for p in range(first, last + 1) if p not in seen]
    rng.shuffle(rest)
    yield from rest


def _other_families(addresses: Sequence[str]) -> set[Family]:
    """The families a bind on `addresses` does not test: `::` is dual-stack (try_bind clears
    IPV6_V6ONLY), so it tests both."""
    covered: set[Family] = set()
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.version == 4:
            covered.add("ipv4")
        else:
            covered.add("ipv6")
            if ip.is_unspecified:
                covered.add("ipv4")
    return {"ipv4", "ipv6"} - covered  # type: ignore[return-value]
