"""The JSON contracts: plain dicts built from model values, shared by every --json."""

from __future__ import annotations

from .contracts import SCHEMAS
from .model import ClientDestination, Container, Holder, PortStats, Snapshot, Socket
from .roles.cast import holder_kinds
from .text import destination, user_of

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:  # types only: `list --json` need not import the probe and the killer
    from typing import Any

    from .diagnose.excluded import PortRange
    from .diagnose.free_ports import FreePorts
    from .diagnose.verdict import OtherAddress, ServerBind, Verdict
    from .kill.plan import After, KillResult
    from .roles.model import RoleKind, StopPlan

# One JSON object per process and role, shared by every socket it holds: 300 workers
# sharing 200 listeners are 300 objects, not 60,000, and the writer encodes each once.
# Keyed (id of a Holder, role), and (id of a holders tuple, None) for its whole list.
_Made = dict[tuple[int, "str | None"], "Any"]


def holder_json(h: Holder, role: str | None = None) -> dict[str, Any]:
    return {
        "pid": h.pid,
        "name": h.name,
        "user": h.user,
        "cmdline": list(h.cmdline),
        "started": h.started,
        "ppid": h.ppid,
        "role": role,
    }


def socket_json(
    s: Socket,
    made: _Made | None = None,
    kinds_of: dict[tuple[int, ...], dict[int, RoleKind]] | None = None,
    users: dict[int, str | None] | None = None,
) -> dict[str, Any]:
    """`made`, `kinds_of` and `users`: caches shared across one snapshot's sockets (the same
    holders recur on every listener of a pre-fork server; their roles are worked out once).

    "uid"/"user" are the kernel's owner of the socket, raw: all there is to say about a
    hidden owner (no processes). "v6only": IPV6_V6ONLY, null where not reported."""
    made = {} if made is None else made
    kinds_of = {} if kinds_of is None else kinds_of
    users = {} if users is None else users
    # By ids: the snapshot keeps every object alive while we write. Sockets the collector
    # gave one holders tuple share one list; one poll shares each Holder.
    processes = made.get((id(s.holders), None))
    if processes is None:
        group = tuple(map(id, s.holders))
        kinds = kinds_of.get(group)
        if kinds is None:
            kinds = kinds_of[group] = holder_kinds(s.holders)
        processes = []
        for h in s.holders:
            role = kinds.get(h.pid)
            found = made.get((id(h), role))
            if found is None:
                found = made[(id(h), role)] = holder_json(h, role)
            processes.append(found)
        made[(id(s.holders), None)] = processes
    return {
        "proto": s.proto,
        "family": s.family,
        "address": s.address,
        "port": s.port,
        "processes": processes,
        "uid": s.uid,
        "user": _socket_user(s, users),
        "v6only": s.v6only,
        # Only where docker-proxy holds it and the Docker API named the container.
        **({"container": container_json(s.container)} if s.container is not None else {}),
    }


def _socket_user(s: Socket, users: dict[int, str | None]) -> str | None:
    """The uid's account name (looked up once per uid); where the collector gives no uid
    (psutil), the holders' one user if they share one."""
    if s.uid is not None:
        if s.uid not in users:
            users[s.uid] = user_of(s.uid)
        return users[s.uid]
    names = {h.user for h in s.holders}
    return names.pop() if len(names) == 1 else None


def container_json(c: Container | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "id": c.id,
        "name": c.name,
        "image": c.image,
        "compose_project": c.compose_project,
        "compose_service": c.compose_service,
    }


def stop_json(plan: StopPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "how": plan.how,
        "pids": list(plan.pids),
        "command": plan.command,
        "why": plan.why,
        "container": container_json(plan.container),
        "unit": plan.unit,
        # The kernel facts the plan acts on (roles/evidence.py): why a reader may trust it.
        "evidence": [f.as_json() for f in plan.evidence],
        # Holders it will not signal without --allow-system (a root process, a user's socket)
        "withheld": [{"pid": pid, "reason": why} for pid, why in plan.withheld],
        # The signal kill sends the targets when it differs from SIGTERM (uwsgi: INT)
        "signal": plan.signal,
    }


def port_json(p: PortStats) -> dict[str, Any]:
    return {
        "port": p.port,
        "time_wait": p.time_wait,
        "time_wait_expires_in": _round(p.time_wait_last),
        "states": dict(p.states),
    }


def client_json(d: ClientDestination) -> dict[str, Any]:
    return {
        "destination": destination(d.address, d.port),
        "address": d.address,
        "port": d.port,
        "time_wait": d.time_wait,
        "states": dict(d.states),
    }


def snapshot_json(snap: Snapshot, port: int | None = None) -> dict[str, Any]:
    """"ports": server ports only (a client's port is asked for by number, or summed in
    "clients": this host's client sockets per destination, busiest first)."""
    made: _Made = {}
    kinds_of: dict[tuple[int, ...], dict[int, RoleKind]] = {}
    users: dict[int, str | None] = {}
    sockets = [s for s in snap.sockets if port is None or s.port == port]
    ports = [p for p in snap.ports if p.port == port or (port is None and not p.client_side)]
    clients = snap.client_time_wait.destinations if port is None else ()
    return {
        "schema": SCHEMAS["list"],
        "taken_at": snap.taken_at.isoformat(),
        # Which path read it: "proc" (Linux's fast path), "psutil" (macOS, Windows), or
        # "psutil (portable)" when Linux was made to take the portable path.
        "source": snap.source,
        "hidden_owners": snap.hidden_owners,
        "sockets": [socket_json(s, made, kinds_of, users) for s in sockets],
        "ports": [port_json(p) for p in ports],
        "clients": [client_json(d) for d in clients],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def other_json(o: OtherAddress, made: _Made | None = None) -> dict[str, Any]:
    """`made`: shared with the verdict's other addresses (the same holders on each)."""
    made = {} if made is None else made
    holders = made.get((id(o.holders), None))
    if holders is None:
        holders = made[(id(o.holders), None)] = [
            _shared_holder(h, None, made) for h in o.holders
        ]
    return {"address": o.address, "verdict": o.kind, "holders": holders}


def _shared_holder(h: Holder, role: str | None, made: _Made) -> dict[str, Any]:
    found = made.get((id(h), role))
    if found is None:
        found = made[(id(h), role)] = _verdict_holder(h, role)
    return found


def server_bind_json(b: ServerBind | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "option": "SO_REUSEADDR" if b.reuseaddr else "plain",
        "program": b.program,
        "from": b.source,
    }


def range_json(r: PortRange | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"start": r.start, "end": r.end, "administered": r.administered}


def _verdict_holder(h: Holder, role: str | None) -> dict[str, Any]:
    return {"pid": h.pid, "name": h.name, "user": h.user, "cmdline": list(h.cmdline),
            "ppid": h.ppid, "started": h.started, "role": role}


def verdict_json(v: Verdict) -> dict[str, Any]:
    """The `portscope check --json` contract (issue 3); keys and types are fixed. Issue 11
    added "can_bind" (would a plain / a SO_REUSEADDR server start now), "others" (the other
    common addresses, [] unless surveyed), "other_proto" (the other protocol's sockets on
    this port), "server_bind" (which bind the port's server does, when shown) and
    "excluded_range" (Windows)."""
    tw = v.time_wait
    roles = {r.pid: r.kind for r in v.roles}
    made: _Made = {}  # a pre-fork server's 2,000 workers, on each address: one object each
    return {
        "schema": SCHEMAS["check"],
        "port": v.port,
        "proto": v.proto,
        "address": v.address,
        "verdict": v.kind,
        "attempts": [
            {"option": a.option, "ok": a.ok, "errno": a.errno, "error": a.error,
             "message": a.message}
            for a in v.attempts
        ],
        "holders": [_shared_holder(h, roles.get(h.pid), made) for h in v.holders],
        "stop": stop_json(v.stop),
        "time_wait": None if tw is None else {
            "count": tw.count,
            "expires_in": _round(tw.expires_in),
            "reuseaddr_fixes": tw.reuseaddr_fixes,
        },
        "advice": list(v.advice),
        "suggested_port": v.suggested_port,
        "can_bind": {"plain": v.can_bind("plain"), "reuseaddr": v.can_bind("reuseaddr")},
        "others": [other_json(o, made) for o in v.others],
        "other_proto": [socket_json(s) for s in v.other_proto],
        "server_bind": server_bind_json(v.server_bind),
        "excluded_range": range_json(v.excluded),
    }


def kill_json(result: KillResult, after: After, signal: str) -> dict[str, Any]:
    """The `portscope kill --json` contract (issue 4). `signal` per target is the last one it
    was sent (the chosen one if it never got one); "after" is the check verdict object."""
    plan = result.plan
    return {
        "schema": SCHEMAS["kill"],
        "port": plan.port,
        "targets": [
            {"pid": t.pid, "name": t.name, "signal": result.signals.get(t.pid, signal)}
            for t in plan.targets
        ],
        # Holders that were to stop with a target but outlived it, signalled after it
        "followers_signalled": [
            {"pid": pid, "signal": sent} for pid, sent in sorted(result.signals.items())
            if pid not in {t.pid for t in plan.targets}
        ],
        # pid is null only for a socket with no visible owner (run with sudo to see it)
        "refused": [{"pid": r.pid, "reason": r.reason} for r in result.refused],
        "exited": list(result.exited),
        "still_running": list(result.still_running),
        "escalated": result.escalated,
        "after": None if after.verdict is None else verdict_json(after.verdict),
        "after_summary": after.summary,
        "how": plan.how,
        "command": plan.stop.command if plan.stop is not None else None,
        "container": container_json(plan.stop.container if plan.stop is not None else None),
        "container_stopped": result.container_stopped,
        "unit": plan.stop.unit if plan.stop is not None else None,
        "evidence": [f.as_json() for f in plan.stop.evidence] if plan.stop is not None else [],
        # 0 only when every target exited and nothing holds the port once the watch ended
        "port_free": after.released,
        "restarted_by": None if after.restarted_by is None else {
            "pid": after.restarted_by[0], "name": after.restarted_by[1],
        },
    }


def free_json(found: FreePorts) -> dict[str, Any]:
    """The `portscope free --json` contract: the ports found, and why the others were not."""
    low, high = found.ephemeral if found.ephemeral is not None else (None, None)
    return {
        "schema": SCHEMAS["free"],
        "ports": list(found.ports),
        "wanted": found.wanted,
        "complete": found.complete,
        "range": {"start": found.first, "end": found.last},
        "addresses": list(found.addresses),
        "proto": found.proto,
        "bind": found.bind,
        "ephemeral": None if low is None else {"start": low, "end": high},
        "skipped": dict(found.skipped),
    }
