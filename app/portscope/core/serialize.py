"""The JSON contracts: plain dicts built from model values, shared by every --json."""

from __future__ import annotations

from typing import Any

from .model import Holder, PortStats, Snapshot, Socket


def holder_json(h: Holder) -> dict[str, Any]:
    return {
        "pid": h.pid,
        "name": h.name,
        "user": h.user,
        "cmdline": list(h.cmdline),
        "started": h.started,
    }


def socket_json(s: Socket) -> dict[str, Any]:
    return {
        "proto": s.proto,
        "family": s.family,
        "address": s.address,
        "port": s.port,
        "processes": [holder_json(h) for h in s.holders],
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
