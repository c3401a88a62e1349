"""Choose whom to signal for a port: the topmost holders, minus everything we refuse.

Targets are (PID, start time) pairs captured when the person picked the row, never row
indexes; each is looked up again here, and a PID whose start time changed is refused.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psutil

from ..model import Holder, Proto, Snapshot
from .plan import Identity, KillPlan, Refusal, Target
from .refusals import (
    HIDDEN_OWNER,
    fixed_refusal,
    permission_denied,
    process_refusal,
    protected_pids,
)

T = TypeVar("T")
_MAX_PORTS = 8  # the confirmation shows a few; a process with hundreds is listed in short


def holders_on(snapshot: Snapshot, port: int, proto: Proto = "tcp") -> tuple[
    tuple[Holder, ...], bool
]:
    """Everyone holding the port's listening (or bound UDP) sockets, and whether any of those
    sockets has no visible owner. With no listener, the holders of live TCP connections on
    the port (a child that kept an accepted connection also blocks bind())."""
    sockets = snapshot.listeners_on(port, proto)
    holders: dict[int, Holder] = {}
    for sock in sockets:
        for h in sock.holders:
            holders.setdefault(h.pid, h)
    hidden = any(s.owner_hidden for s in sockets)
    if not sockets and proto == "tcp":
        stats = snapshot.port_stats(port)
        if stats is not None and not stats.client_side and stats.live:
            holders = {h.pid: h for h in stats.holders}
            hidden = not stats.holders
    return tuple(holders[p] for p in sorted(holders)), hidden


@dataclass(slots=True)
class _Looked:
    identity: Identity
    proc: psutil.Process
    ppid: int | None
    started: float


def plan_kill(
    identities: Iterable[Identity],
    port: int,
    proto: Proto = "tcp",
    *,
    all_holders: bool = False,
    owner_hidden: bool = False,
    snapshot: Snapshot | None = None,
) -> KillPlan:
    """Look every captured process up again and sort it into targets, refusals, gone.

    With the snapshot the targets were picked from, the ports each one holds come from it;
    without, psutil reads them (slow with many sockets: it parses every /proc/net line).
    """
    protected = protected_pids()
    refused: list[Refusal] = []
    gone: list[int] = []
    looked: list[_Looked] = []
    if owner_hidden:
        refused.append(Refusal(None, HIDDEN_OWNER))
    for pid, captured in dict(identities).items():
        reason = fixed_refusal(pid, protected)
        if reason:
            refused.append(Refusal(pid, reason))
            continue
        try:
            proc = psutil.Process(pid)
            started = proc.create_time()
            ppid = _ppid(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            gone.append(pid)
            continue
        except psutil.AccessDenied:
            refused.append(Refusal(pid, permission_denied(pid, None)))
            continue
        looked.append(_Looked((pid, captured), proc, ppid, started))
    chosen = looked if all_holders else topmost(looked)
    followers = tuple(x.proc.pid for x in looked if x not in chosen)
    targets: list[Target] = []
    for item in chosen:
        pid, captured = item.identity
        reason = process_refusal(pid, item.ppid, captured, item.started)
        if reason:
            refused.append(Refusal(pid, reason))
            continue
        target = describe_target(item.proc, item.started, item.ppid, snapshot)
        if target is None:
            gone.append(pid)
        else:
            targets.append(target)
    return KillPlan(port, proto, tuple(targets), tuple(refused), tuple(gone), followers)


def topmost(looked: Sequence[_Looked]) -> list[_Looked]:
    """Holders whose parent does not hold the socket too: a pre-fork master, not its workers
    (a master respawns killed workers, and stops them itself when it gets SIGTERM)."""
    pids = {x.proc.pid for x in looked}
    return [x for x in looked if x.ppid not in pids]


def describe_target(
    proc: psutil.Process, started: float, ppid: int | None, snapshot: Snapshot | None = None
) -> Target | None:
    try:
        with proc.oneshot():
            return Target(
                pid=proc.pid,
                started=started,
                name=proc.name(),
                user=_quiet(proc.username),
                cmdline=tuple(_quiet(proc.cmdline) or ()),
                ppid=ppid,
                children=tuple(sorted(c.pid for c in _quiet(proc.children) or ())),
                ports=_ports_in(snapshot, proc.pid) if snapshot else _ports(proc),
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return Target(pid=proc.pid, started=started, name=str(proc.pid), user=None, cmdline=())


def _ports_in(snapshot: Snapshot, pid: int) -> tuple[str, ...]:
    found: set[tuple[int, str, str]] = {
        (s.port, s.proto, f"[{s.address}]" if s.family == "ipv6" else s.address)
        for s in snapshot.sockets
        if pid in s.pids
    }
    return _shown(found)


def _ports(proc: psutil.Process) -> tuple[str, ...]:
    try:
        conns = proc.net_connections("inet")
    except psutil.Error:
        return ()
    found = set()
    for c in conns:
        if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr):
            proto = "tcp" if c.type == socket.SOCK_STREAM else "udp"
            host = f"[{c.laddr.ip}]" if ":" in c.laddr.ip else c.laddr.ip
            found.add((c.laddr.port, proto, host))
    return _shown(found)


def _shown(found: set[tuple[int, str, str]]) -> tuple[str, ...]:
    """"tcp 127.0.0.1:8000" lines, a long list cut short."""
    shown = [f"{proto} {host}:{port}" for port, proto, host in sorted(found)]
    if len(shown) > _MAX_PORTS:
        shown = [*shown[: _MAX_PORTS - 1], f"+{len(shown) - _MAX_PORTS + 1} more"]
    return tuple(shown)


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.AccessDenied:
        return None


def _quiet(getter: Callable[[], T]) -> T | None:
    """A field we may not read (another user's cwd, a user missing from passwd) is None."""
    try:
        return getter()
    except (psutil.AccessDenied, KeyError):
        return None
