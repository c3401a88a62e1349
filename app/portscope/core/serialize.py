"""The JSON contracts: plain dicts built from model values, shared by every --json."""

from __future__ import annotations

from typing import Any

from .diagnose.verdict import Verdict
from .kill.plan import After, KillResult
from .model import Holder, PortStats, Snapshot, Socket
from .roles.cast import holder_kinds
from .roles.docker_api import Container
from .roles.model import StopPlan


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


def socket_json(s: Socket) -> dict[str, Any]:
    kinds = holder_kinds(s.holders)
    return {
        "proto": s.proto,
        "family": s.family,
        "address": s.address,
        "port": s.port,
        "processes": [holder_json(h, kinds.get(h.pid)) for h in s.holders],
    }


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
    }


def port_json(p: PortStats) -> dict[str, Any]:
    return {
        "port": p.port,
        "time_wait": p.time_wait,
        "time_wait_expires_in": _round(p.time_wait_last),
        "states": dict(p.states),
    }


def snapshot_json(snap: Snapshot, port: int | None = None) -> dict[str, Any]:
    sockets = [s for s in snap.sockets if port is None or s.port == port]
    ports = [p for p in snap.ports if port is None or p.port == port]
    return {
        "taken_at": snap.taken_at.isoformat(),
        "hidden_owners": snap.hidden_owners,
        "sockets": [socket_json(s) for s in sockets],
        "ports": [port_json(p) for p in ports],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def verdict_json(v: Verdict) -> dict[str, Any]:
    """The `portscope check --json` contract (issue 3); keys and types are fixed."""
    tw = v.time_wait
    roles = {r.pid: r.kind for r in v.roles}
    return {
        "port": v.port,
        "proto": v.proto,
        "address": v.address,
        "verdict": v.kind,
        "attempts": [
            {"option": a.option, "ok": a.ok, "errno": a.errno, "error": a.error,
             "message": a.message}
            for a in v.attempts
        ],
        "holders": [
            {"pid": h.pid, "name": h.name, "user": h.user, "cmdline": list(h.cmdline),
             "ppid": h.ppid, "started": h.started, "role": roles.get(h.pid)}
            for h in v.holders
        ],
        "stop": stop_json(v.stop),
        "time_wait": None if tw is None else {
            "count": tw.count,
            "expires_in": _round(tw.expires_in),
            "reuseaddr_fixes": tw.reuseaddr_fixes,
        },
        "advice": list(v.advice),
        "suggested_port": v.suggested_port,
    }


def kill_json(result: KillResult, after: After, signal: str) -> dict[str, Any]:
    """The `portscope kill --json` contract (issue 4). `signal` per target is the last one it
    was sent (the chosen one if it never got one); "after" is the check verdict object."""
    plan = result.plan
    return {
        "port": plan.port,
        "targets": [
            {"pid": t.pid, "name": t.name, "signal": result.signals.get(t.pid, signal)}
            for t in plan.targets
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
        "restarted_by": None if after.restarted_by is None else {
            "pid": after.restarted_by[0], "name": after.restarted_by[1],
        },
    }
