"""Test-bind a port like a server would and explain the kernel's answer as one Verdict.

The attempts are the truth (they are what the user's server will meet); the Snapshot only
explains them: who listens, which TIME_WAIT, which live connections.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import sys
from collections.abc import Callable, Iterable, Sequence

from ..collect import Collector, default_collector, snapshot_for
from ..model import Holder, Proto, Snapshot, Socket
from ..roles.model import Cast, StopPlan
from ..roles.port import cast_port, earlier_copy
from . import advice, excluded
from .bind_attempt import Attempt, Bind, bind_option, server_options, try_bind
from .excluded import PortRange
from .reuse import server_bind
from .verdict import OtherAddress, TimeWaitInfo, Verdict, VerdictKind

# How far above the asked port the suggestion looks before giving up.
SUGGEST_RANGE = 200
# What servers bind when told nothing, "localhost" or "all addresses": `check` with no --host
# reports on each, so a server binding `localhost` (node 17+ resolves it to ::1 first) or
# `::` learns what it will meet.
COMMON_ADDRESSES = ("0.0.0.0", "::", "127.0.0.1", "::1")
# (proto, IP version) -> the Windows excluded port ranges; tests pass recorded netsh output.
RangeReader = Callable[[Proto, int], Sequence[PortRange]]


def parse_port(text: str | int) -> int:
    """A port as a person types it; ValueError with a message they can act on."""
    raw = str(text).strip()
    try:
        value = int(raw, 10)
    except ValueError:
        raise ValueError(f"not a port number: {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"port must be 1-65535, got {value}")
    return value


def parse_address(text: str) -> str:
    """A literal IPv4/IPv6 address (brackets allowed: "[::]"); blank means 0.0.0.0."""
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    if not raw:
        return "0.0.0.0"
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ValueError(
            f"not an IP address: {text.strip()!r} (use e.g. 0.0.0.0, ::, 127.0.0.1)"
        ) from None


def attempt_all(port: int, address: str, proto: Proto) -> tuple[Attempt, ...]:
    return tuple(try_bind(port, address, proto, option) for option in server_options())


def diagnose(
    port: int,
    address: str = "0.0.0.0",
    proto: Proto = "tcp",
    snapshot: Snapshot | None = None,
    cwd: str | None = None,
    *,
    suggest: bool = True,
    survey: bool = False,
    windows: bool | None = None,
    excluded_ranges: RangeReader | None = None,
    collector: Collector | None = None,
    count_time_wait: bool = True,
) -> Verdict:
    """Probe the port and explain it. Thread-safe, prints nothing; ValueError on bad input.

    The binds run before the snapshot is taken, so what the snapshot shows is at least as new
    as what the kernel answered. `survey`: probe the other COMMON_ADDRESSES too. `windows`
    (default: this platform) and `excluded_ranges` (default: netsh, on Windows only) name a
    WSAEACCES inside an excluded port range. `count_time_wait=False`: the port's TIME_WAIT
    is counted only if it can be the cause (no errno, listener or live connection decides
    every address asked), so `time_wait` is None when something else decides: the
    monitor's `b` shows TIME_WAIT only as the cause, and 100,000 of them cost ~45 ms to
    count.
    """
    port = parse_port(port)
    address = parse_address(address)
    if proto not in ("tcp", "udp"):
        raise ValueError(f"protocol must be tcp or udp, got {proto!r}")
    attempts = attempt_all(port, address, proto)
    tried = survey_attempts(port, address, proto) if survey else {}
    reserved = _excluded_range(port, address, proto, attempts[0], windows, excluded_ranges)
    # Else only this port, and its processes only if a socket on it can have one (a free
    # port needs no /proc walk); from `collector` (the TUI's warm one) if given.
    source = collector
    lazy = snapshot is None and not count_time_wait and proto == "tcp"
    snap = snapshot
    if snap is None:
        source = source or default_collector()
        snap = snapshot_for(source, port, owners=None, time_wait=not lazy)
    kind, holders, sockets = classify(port, address, proto, attempts, snap, reserved)
    others = classify_others(port, proto, tried, snap, reserved)
    if lazy and not {kind, *(o.kind for o in others)} <= DECIDED_WITHOUT_TIME_WAIT:
        assert source is not None
        snap = snapshot_for(source, port, owners=None)  # TIME_WAIT may be the cause: counted
        kind, holders, sockets = classify(port, address, proto, attempts, snap, reserved)
        others = classify_others(port, proto, tried, snap, reserved)
    stats = snap.port_stats(port) if proto == "tcp" else None
    time_wait = None
    if stats is not None and stats.time_wait:
        reuse_ok = len(attempts) > 1 and attempts[1].ok and attempts[1].option == "SO_REUSEADDR"
        time_wait = TimeWaitInfo(stats.time_wait, stats.time_wait_last, reuse_ok)
    # An address asked (no survey): the plan is about the listeners blocking a bind there,
    # the container on that address among several (roles/port.py).
    asked = None if survey else (address,)
    cast = cast_port(snap, port, proto, hosts=asked) if kind in _HELD else None
    stop = cast.plan if cast is not None else _nothing_to_stop(kind)
    already = cast is not None and _earlier_copy(cast, holders, cwd)
    inherited = tuple(r.pid for r in cast.roles if r.kind == "inherited") if cast else ()
    suggested = None
    if suggest and kind not in ("free", "address_not_available"):
        suggested = nearest_free(port, address, proto)
    roles = cast.roles if cast else ()
    other_proto = snap.listeners_on(port, "udp" if proto == "tcp" else "tcp")
    hint = server_bind(kind, holders, roles, attempts)
    text = advice.compose(
        advice.Facts(
            port=port, address=address, proto=proto, kind=kind, attempts=attempts,
            holders=holders, sockets=sockets, time_wait=time_wait,
            live=stats.live if stats else 0, already_running=already, inherited=inherited,
            suggested_port=suggested, is_root=snap.is_root, stop=stop, roles=roles,
            others=others, other_proto=other_proto, server_bind=hint, excluded=reserved,
        )
    )
    return Verdict(
        port=port, address=address, proto=proto, kind=kind, attempts=attempts,
        holders=holders, time_wait=time_wait, sentence=text.sentence,
        explanation=text.explanation, advice=text.advice, suggested_port=suggested,
        already_running=already, inherited=inherited, stop=stop, roles=roles,
        others=others, other_proto=other_proto, server_bind=hint, excluded=reserved,
    )


def survey_attempts(port: int, asked: str, proto: Proto) -> dict[str, tuple[Attempt, ...]]:
    """The other COMMON_ADDRESSES, each probed as the asked one is."""
    return {a: attempt_all(port, a, proto) for a in COMMON_ADDRESSES if a != asked}


def classify_others(
    port: int, proto: Proto, tried: dict[str, tuple[Attempt, ...]], snap: Snapshot,
    reserved: PortRange | None = None,
) -> tuple[OtherAddress, ...]:
    """The surveyed addresses (survey_attempts), each named the way the asked one is."""
    found: list[OtherAddress] = []
    for address, attempts in tried.items():
        kind, holders, sockets = classify(port, address, proto, attempts, snap, reserved)
        found.append(OtherAddress(address, kind, holders, sockets))
    return tuple(found)


def first_blocked(
    port: int, addresses: Sequence[str], proto: Proto, bind: Bind = "plain"
) -> str | None:
    """The first address where a `bind` server's bind (+ listen) fails now, or None: the
    cheap test `wait` polls (one bind per address, no snapshot)."""
    option = bind_option(bind)
    return next((a for a in addresses if not try_bind(port, a, proto, option).ok), None)


def _excluded_range(
    port: int,
    address: str,
    proto: Proto,
    plain: Attempt,
    windows: bool | None,
    reader: RangeReader | None,
) -> PortRange | None:
    """On Windows a WSAEACCES inside an excluded range is that range, not a privilege."""
    if not (sys.platform == "win32" if windows is None else windows):
        return None
    if plain.errno != errno.EACCES:
        return None
    read = reader if reader is not None else excluded.read_ranges
    return excluded.containing(port, read(proto, ipaddress.ip_address(address).version))


_HELD = ("listening", "udp_bound", "connections", "owner_hidden")
# What classify decides before it looks at TIME_WAIT (the errno, a listener, a live
# connection), and nothing said about them counts TIME_WAIT (advice, _nothing_to_stop).
DECIDED_WITHOUT_TIME_WAIT: frozenset[VerdictKind] = frozenset({
    "free", "listening", "udp_bound", "connections", "kernel_held", "permission_denied",
    "address_not_available", "excluded_range",
})


def _earlier_copy(cast: Cast, holders: tuple[Holder, ...], cwd: str | None) -> bool:
    """Only servers and masters can be an earlier copy: a worker or a reloader's child is
    the same program by design, never a second copy."""
    here = cwd if cwd is not None else os.getcwd()
    tops = {r.pid for r in cast.roles if r.holds and r.kind in ("server", "master")}
    return any(earlier_copy(h, here) for h in holders if h.pid in tops)


def _nothing_to_stop(kind: VerdictKind) -> StopPlan:
    why = {
        "free": "nothing holds the port",
        "time_wait": "TIME_WAIT sockets belong to no process: there is nothing to stop; "
        "they clear by themselves",
        "permission_denied": "the port is privileged, not busy: nothing to stop",
        "address_not_available": "the address is not on this machine: nothing to stop",
        "kernel_held": "the kernel holds the closing connections of a process that already "
        "closed them: nothing to stop; they clear by themselves",
    }.get(kind, "nothing to stop")
    return StopPlan("none", (), None, why)


def classify(
    port: int,
    address: str,
    proto: Proto,
    attempts: tuple[Attempt, ...],
    snap: Snapshot,
    reserved: PortRange | None = None,
) -> tuple[VerdictKind, tuple[Holder, ...], tuple[Socket, ...]]:
    """Name what blocks the plain bind: the kernel's errno first, then the snapshot."""
    plain = attempts[0]
    if plain.ok:
        return "free", (), ()
    if plain.errno == errno.EACCES:
        return ("excluded_range" if reserved else "permission_denied"), (), ()
    if plain.errno == errno.EADDRNOTAVAIL:
        return "address_not_available", (), ()
    on_port = snap.listeners_on(port, proto)
    # The kernel said no: if no socket overlaps by address, name the port's listeners anyway
    # (the snapshot may lag), except a v6only `[::]`, which cannot block an IPv4 bind.
    sockets = tuple(s for s in on_port if overlaps(s, address)) or tuple(
        s for s in on_port if not _apart_by_v6only(s, address)
    )
    if sockets:
        holders = _union(s.holders for s in sockets)
        if not holders:
            return "owner_hidden", (), sockets
        return ("listening" if proto == "tcp" else "udp_bound"), holders, sockets
    stats = snap.port_stats(port) if proto == "tcp" else None
    if stats is not None and stats.live:
        if stats.holders:
            return "connections", stats.holders, ()
        if stats.kernel_held(snap.is_root):
            return "kernel_held", (), ()
        return "owner_hidden", (), ()
    if stats is not None and stats.time_wait:
        return "time_wait", (), ()
    return "owner_hidden", (), ()


def overlaps(sock: Socket, address: str) -> bool:
    """Would a bind on `address` collide with this socket's address (same port)?

    0.0.0.0 overlaps every IPv4 address, :: every IPv6 one and, unless it set IPV6_V6ONLY,
    every IPv4 one too (dual-stack is assumed where the snapshot does not say: Linux's
    default). The probe's own `::` is dual-stack, so it overlaps every IPv4 socket.
    """
    mine = ipaddress.ip_address(address)
    try:
        theirs = ipaddress.ip_address(sock.address)
    except ValueError:
        return True
    mine = _unmapped(mine)
    theirs = _unmapped(theirs)
    if theirs.is_unspecified and theirs.version == 6:
        return mine.version == 6 or sock.v6only is not True
    if theirs.is_unspecified and mine.version == 4:
        return True
    if mine.is_unspecified and (mine.version == 6 or theirs.version == 4):
        return True
    return mine == theirs


def _apart_by_v6only(sock: Socket, address: str) -> bool:
    """A v6only `[::]` socket and an IPv4 address never collide."""
    if sock.v6only is not True or sock.address != "::":
        return False
    return _unmapped(ipaddress.ip_address(address)).version == 4


def nearest_free(port: int, address: str, proto: Proto) -> int | None:
    """The first port above `port` where a plain bind (+listen) succeeds, probed the same way.

    Below the unprivileged limit every port fails with EACCES, so the search starts there.
    """
    start = port + 1
    low = _unprivileged_start()
    if start < low and try_bind(start, address, proto, "plain").errno == errno.EACCES:
        start = low
    for candidate in range(start, min(65535, start + SUGGEST_RANGE) + 1):
        if try_bind(candidate, address, proto, "plain").ok:
            return candidate
    return None


def _unprivileged_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 1024


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> (
    ipaddress.IPv4Address | ipaddress.IPv6Address
):
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _union(groups: Iterable[tuple[Holder, ...]]) -> tuple[Holder, ...]:
    seen: dict[int, Holder] = {}
    for group in groups:
        for h in group:
            seen.setdefault(h.pid, h)
    return tuple(sorted(seen.values(), key=lambda h: h.pid))
