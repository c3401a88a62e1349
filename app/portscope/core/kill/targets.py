"""Choose whom to signal for a port: the stop plan's targets, minus everything we refuse.

Targets are (PID, start time) pairs captured when the person picked the row, never row
indexes; each is looked up again here, and a PID whose start time changed is refused.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

import psutil

from ..model import Proto, Snapshot
from ..record import mutable_record

if TYPE_CHECKING:
    from ..collect import Collector
from ..roles import evidence
from ..roles.containers import ContainerLookup, docker_lookup
from ..roles.port import cast_port
from ..roles.port import holders_on as holders_on  # where kill_cmd and tests look for it
from ..roles.procs import ProcessView, child_pids
from ..text import user_of
from .plan import Identity, KillPlan, Refusal, Target
from .refusals import (
    HIDDEN_OWNER,
    fixed_refusal,
    permission_denied,
    process_refusal,
    protected_pids,
    system_refusal,
)

T = TypeVar("T")
_MAX_PORTS = 8  # the confirmation shows a few; a process with hundreds is listed in short


@mutable_record
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
    allow_system: bool = False,
    owner_hidden: bool = False,
    snapshot: Snapshot | None = None,
    view: ProcessView | None = None,
    containers: ContainerLookup = docker_lookup,
    collector: Collector | None = None,
    hosts: tuple[str, ...] | None = None,
) -> KillPlan:
    """The stop plan for the picked holders (the one `check` advises), its signal targets
    looked up again and sorted into targets, refusals and gone.

    Targets are the plan's controllers in order (a shell loop before the server it runs, the
    master, the reloader); holders that stop with them are followers, watched afterwards.
    """
    picked = dict(identities)
    if snapshot is None:  # a whole one: the confirmation lists each target's other ports
        from ..collect import default_collector

        snapshot = (collector or default_collector()).collect()
    cast = cast_port(
        snapshot, port, proto, view=view, containers=containers, only=picked.items(),
        allow_system=allow_system, hosts=hosts,
    )
    stop = cast.plan
    refused: list[Refusal] = [Refusal(None, HIDDEN_OWNER)] if owner_hidden else []
    refused += [Refusal(pid, reason) for pid, reason in stop.withheld]
    # Picked but not holding the port in this snapshot: still looked at, so a reused or
    # protected PID is refused out loud rather than dropped.
    held = {r.pid for r in cast.roles if r.holds}
    missing = [pid for pid in picked if pid not in held]
    if stop.how != "signal" and (held or not missing):
        return KillPlan(port, proto, (), tuple(refused), stop=stop, roles=cast.roles, hosts=hosts)
    started = {r.pid: r.started for r in cast.roles}
    base = [*stop.pids, *(stop.followers if all_holders else ())] if held else []
    wanted = [*base, *missing]
    protected = protected_pids()
    gone: list[int] = []
    targets: list[Target] = []
    for pid in wanted:
        reason = fixed_refusal(pid, protected, allow_system=allow_system)
        if reason:
            refused.append(Refusal(pid, reason))
            continue
        try:
            proc = psutil.Process(pid)
            actual = proc.create_time()
            ppid = _ppid(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            gone.append(pid)
            continue
        except psutil.AccessDenied:
            refused.append(Refusal(pid, permission_denied(pid, None)))
            continue
        captured = picked.get(pid, started.get(pid))
        # Every target, a holder or a controller above it: sshd and system daemons too.
        reason = process_refusal(pid, ppid, captured, actual) or system_refusal(
            pid, allow_system=allow_system
        )
        if reason:
            refused.append(Refusal(pid, reason))
            continue
        target = describe_target(proc, actual, ppid, snapshot)
        if target is None:
            gone.append(pid)
        else:
            targets.append(target)
    followers = tuple(p for p in stop.followers if p not in wanted)
    return KillPlan(
        port, proto, tuple(targets), tuple(refused), tuple(gone), followers,
        stop=stop, roles=cast.roles, hosts=hosts,
    )


def describe_target(
    proc: psutil.Process, started: float, ppid: int | None, snapshot: Snapshot | None = None
) -> Target | None:
    k = evidence.kernel(proc.pid)
    try:
        with proc.oneshot():
            return Target(
                pid=proc.pid,
                started=started,
                name=proc.name(),
                user=_quiet(proc.username),
                cmdline=tuple(_quiet(proc.cmdline) or ()),
                ppid=ppid,
                children=child_pids(proc.pid),
                ports=_ports_in(snapshot, proc.pid) if snapshot else _ports(proc),
                exe=k.exe if k else None,
                euser=user_of(k.euid) if k and k.euid is not None else None,
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return Target(pid=proc.pid, started=started, name=str(proc.pid), user=None, cmdline=())


def _ports_in(snapshot: Snapshot, pid: int) -> tuple[str, ...]:
    found: set[tuple[int, str, str]] = set()
    for s in snapshot.sockets:  # a loop, not `pid in s.pids`: no tuple of 300 per socket
        for h in s.holders:
            if h.pid == pid:
                found.add((s.port, s.proto, f"[{s.address}]" if s.family == "ipv6" else s.address))
                break
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
