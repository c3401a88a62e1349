"""The roles around one port as a snapshot shows it: the entry point `check` and `kill`
share, so the plan one advises is the plan the other carries out."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..model import Holder, Proto, Snapshot, Socket
from ..text import seconds
from .cast import cast_roles
from .containers import ContainerLookup, docker_lookup
from .model import Cast, StopPlan
from .privilege import withhold
from .procs import LiveProcesses, ProcessView, all_commands, all_parents


def holders_on(
    snapshot: Snapshot, port: int, proto: Proto = "tcp", hosts: tuple[str, ...] | None = None
) -> tuple[tuple[Holder, ...], bool]:
    """Everyone holding the port's listening (or bound UDP) sockets, and whether any of those
    sockets has no visible owner. With no listener, the holders of live TCP connections on
    the port (a child that kept an accepted connection also blocks bind()). `hosts` (the
    `--host` addresses): only the listeners that block a bind on one of them."""
    sockets = listeners(snapshot, port, proto, hosts)
    holders: dict[int, Holder] = {}
    for sock in sockets:
        for h in sock.holders:
            holders.setdefault(h.pid, h)
    hidden = any(s.owner_hidden for s in sockets)
    if not sockets and proto == "tcp":
        stats = snapshot.port_stats(port)
        if stats is not None and not stats.client_side and stats.live:
            holders = {h.pid: h for h in stats.holders}
            hidden = not stats.holders and not stats.kernel_held(snapshot.is_root)
    return tuple(holders[p] for p in sorted(holders)), hidden


def cast_port(
    snapshot: Snapshot,
    port: int,
    proto: Proto = "tcp",
    *,
    view: ProcessView | None = None,
    containers: ContainerLookup = docker_lookup,
    only: Iterable[tuple[int, float | None]] | None = None,
    allow_system: bool = False,
    hosts: tuple[str, ...] | None = None,
) -> Cast:
    """Roles and stop plan for `port`. `only`: the (PID, start time) pairs a person picked
    (the TUI's row); holders not among them are left out. `allow_system`: keep a root
    holder of another user's socket in the plan (privilege.py). `hosts`: the addresses
    asked (`--host`): only listeners blocking a bind there count, so of two containers on
    127.0.0.1 and ::1 the one on the address asked is stopped."""
    holders, _ = holders_on(snapshot, port, proto, hosts)
    if only is not None:
        # By PID: a start time that no longer matches is the killer's to refuse, not ours
        # to hide.
        picked = {pid for pid, _ in only}
        holders = tuple(h for h in holders if h.pid in picked)
    listening = bool(snapshot.listeners_on(port, proto))
    if not holders and not hidden_owner(snapshot, port, proto):
        return Cast((), nobody(snapshot, port, proto))
    # Children holding connections accepted on the port (socat fork, inetd) keep a plain
    # bind() failing after their listener stops: the plan must stop them too.
    stats = snapshot.port_stats(port) if proto == "tcp" and listening else None
    held = {h.pid for h in holders}
    served = tuple(h for h in (stats.holders if stats else ()) if h.pid not in held)
    view = view or LiveProcesses((*holders, *served))
    cast = cast_roles(
        holders, port, proto, view,
        is_root=snapshot.is_root, connections=not listening, containers=containers,
        served=served, bound=bound_by(listeners(snapshot, port, proto, hosts)),
    )
    return withhold(cast, socket_uids(snapshot, port, proto), view,
                             allow_system=allow_system)


def listeners(
    snapshot: Snapshot, port: int, proto: Proto, hosts: tuple[str, ...] | None = None
) -> tuple[Socket, ...]:
    """The port's listeners; with `hosts`, those a bind on one of them would collide with
    (the exact address, a wildcard of its family, a dual-stack `::`)."""
    sockets = snapshot.listeners_on(port, proto)
    if hosts is None:
        return tuple(sockets)
    from ..diagnose.probe import overlaps  # here: probe imports this module

    return tuple(s for s in sockets if any(overlaps(s, host) for host in hosts))


def bound_by(sockets: Iterable[Socket]) -> dict[int, tuple[tuple[str, int], ...]]:
    """For each holder, the (address, port) of the listeners it holds: a docker-proxy
    counts as Docker's only for the socket it really holds, never for its argv."""
    found: dict[int, list[tuple[str, int]]] = {}
    for sock in sockets:
        for h in sock.holders:
            found.setdefault(h.pid, []).append((sock.address, sock.port))
    return {pid: tuple(held) for pid, held in found.items()}


def socket_uids(snapshot: Snapshot, port: int, proto: Proto) -> dict[int, list[int | None]]:
    """For each holder of the port's listening sockets, the sockets' creator uids."""
    found: dict[int, list[int | None]] = {}
    for sock in snapshot.listeners_on(port, proto):
        for h in sock.holders:
            found.setdefault(h.pid, []).append(sock.uid)
    return found


def hidden_owner(snapshot: Snapshot, port: int, proto: Proto) -> bool:
    """Something holds the port that portscope cannot see (a socket without holders)."""
    sockets = snapshot.listeners_on(port, proto)
    if sockets:
        return any(s.owner_hidden for s in sockets)
    stats = snapshot.port_stats(port) if proto == "tcp" else None
    return (
        stats is not None and not stats.client_side and stats.live > 0 and not stats.holders
        and not stats.kernel_held(snapshot.is_root)
    )


def nobody(snapshot: Snapshot, port: int, proto: Proto) -> StopPlan:
    """No process holds the port: at most TIME_WAIT, which belongs to no one."""
    stats = snapshot.port_stats(port) if proto == "tcp" else None
    if stats is not None and stats.time_wait:
        plural = "socket belongs" if stats.time_wait == 1 else "sockets belong"
        return StopPlan(
            "none", (), None,
            f"no process holds {proto} port {port}: its {stats.time_wait:,} TIME_WAIT "
            f"{plural} to no process and clear by themselves in {seconds(stats.time_wait_last)}",
        )
    return StopPlan("none", (), None, f"no process holds {proto} port {port}")


def earlier_copy(holder: Holder, cwd: str, view: ProcessView | None = None) -> bool:
    """Is the holder probably an earlier copy of the user's own program? Only when it is
    true: it runs in the directory portscope runs in (not /), or another live process runs
    the very same command and is not its relative (a reloader's child, a worker)."""
    # The holder's cwd is already the kernel's resolved path (/proc/PID/cwd): no walk of a
    # directory a process chose (a hung mount would hang `check`); ours is resolved.
    if holder.cwd and cwd != "/" and holder.cwd == os.path.realpath(cwd):
        return True
    if not holder.cmdline:
        return False
    commands, parents = all_commands(), all_parents()
    relatives = _relatives(holder.pid, parents)
    me = os.getpid()
    return any(
        argv == holder.cmdline
        for pid, argv in commands.items()
        if pid not in relatives and pid != me
    )


def _relatives(pid: int, parents: dict[int, int]) -> set[int]:
    """`pid`, its ancestors and all its descendants."""
    found = {pid}
    if pid not in parents:  # gone
        return found
    up = parents[pid]
    while up and up not in found:
        found.add(up)
        up = parents.get(up, 0)
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found
