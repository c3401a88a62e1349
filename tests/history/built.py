"""Hand-built Snapshots for the pure tests of core/history: a frozen clock, chosen holders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from portscope.core.model import Family, Holder, PortStats, Proto, Snapshot, Socket

T0 = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def holder(
    pid: int, name: str = "server", cmdline: tuple[str, ...] | None = None, ppid: int = 1
) -> Holder:
    argv = (name, "--port", "8080") if cmdline is None else cmdline
    return Holder(pid, name, "alice", argv, 1_700_000_000.0 + pid, ppid=ppid)


def sock(
    port: int = 8080,
    *holders: Holder,
    address: str = "127.0.0.1",
    proto: Proto = "tcp",
    family: Family = "ipv4",
) -> Socket:
    return Socket(proto, family, address, port, tuple(holders))


def snap(seconds: float, *sockets: Socket, ports: tuple[PortStats, ...] = ()) -> Snapshot:
    return Snapshot(taken_at=at(seconds), sockets=tuple(sockets), ports=ports)
