"""Portable collector on psutil.net_connections(): macOS, Windows, and Linux's fallback.

psutil reports one PID per socket on Linux (not every holder) and no TIME_WAIT timers,
so expiries are None here. On macOS the system-wide call raises AccessDenied unless run as
root; then each process we may inspect (our own) is asked for its sockets instead, and the
snapshot says what that leaves out.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import psutil

from ..model import Family, Proto, Snapshot
from ..processes import ProcessTable
from .builder import SnapshotBuilder
from .sides import ClientSums, Sides, client_ports, pair
from .system import ephemeral_range
from .tables import reason

_Key = tuple[Proto, Family, str, int]
# psutil's sconn (system-wide) or pconn (per process): both have the fields read here.
_Conn = Any

HIDDEN_WITHOUT_ROOT = (
    "sockets of other users' processes, and TIME_WAIT, are hidden: listing them needs root "
    "here (run with sudo to see them)"
)


class PsutilCollector:
    name = "psutil"
    narrows = True  # collect(port=..., owners=...): see collect.snapshot_for

    def __init__(self) -> None:
        self._processes = ProcessTable()

    def collect(self, port: int | None = None, *, owners: bool | None = True) -> Snapshot:
        """With `port`, only that port's sockets; `owners=False`: no process described
        (psutil has read the PIDs anyway; describing them is what costs); None: described
        if any socket on `port` other than TIME_WAIT has one."""
        notes: list[str] = []
        found: Iterable[tuple[_Conn, set[int]]]
        try:
            found = _system_wide(psutil.net_connections(kind="inet"))
        except psutil.AccessDenied:  # macOS without root
            found = _per_process()
            notes.append(HIDDEN_WITHOUT_ROOT)
        except OSError as exc:  # the system's table unreadable: what processes show is left
            found = _per_process()
            notes.append(
                f"cannot list the system's sockets ({reason(exc)}): showing only those of "
                "processes portscope may inspect, and no TIME_WAIT"
            )
        found = list(found)
        if owners is None:
            owners = port is None or any(
                conn.laddr and conn.laddr.port == port and conn.status != psutil.CONN_TIME_WAIT
                for conn, _ in found
            )
        builder = SnapshotBuilder(
            self._processes, ephemeral_range(), self.name, whole=port is None and owners
        )
        listeners: dict[_Key, set[int]] = defaultdict(set)
        left_out: set[int] = set()
        # A whole poll tells clients from servers once every socket is known (sides.py):
        # (local port, remote address, remote port, state or None for TIME_WAIT, pids).
        connections: list[tuple[int, str, int, str | None, set[int]]] = []
        for conn, found_pids in found:
            if not conn.laddr:
                continue
            pids = found_pids if owners else set()
            if port is not None and conn.laddr.port != port:
                if conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN:
                    left_out.add(conn.laddr.port)
                continue
            proto: Proto = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
            family: Family = "ipv6" if conn.family == socket.AF_INET6 else "ipv4"
            address, local = conn.laddr.ip, conn.laddr.port
            remote_port = conn.raddr.port if conn.raddr else 0
            if proto == "udp":
                if not conn.raddr:
                    listeners[(proto, family, address, local)].update(pids)
            elif conn.status == psutil.CONN_LISTEN:
                listeners[(proto, family, address, local)].update(pids)
            else:
                state = None if conn.status == psutil.CONN_TIME_WAIT else _state_name(conn.status)
                connections.append(
                    (local, conn.raddr.ip if conn.raddr else "", remote_port, state, pids)
                )
        for (proto, family, address, local), pids in listeners.items():
            builder.listener(proto, family, address, local, pids)
        sides = Sides(frozenset())
        sums = ClientSums()
        if port is None:
            sides = client_ports(
                [pair(c[0], c[2]) for c in connections if c[3] is None],
                [pair(c[0], c[2]) for c in connections if c[3] is not None],
                {local for proto, _, _, local in listeners if proto == "tcp"},
                ephemeral_range(),
            )
            sums.kept = sides.doubtful
            builder.clients(sums)
        clients, doubtful = sides
        for local, remote_address, remote_port, state, pids in connections:
            if local in clients:
                if state is None:
                    sums.add_time_wait(local, remote_address, remote_port, None)
                else:
                    sums.add_live(remote_address, remote_port, state)
            if local in clients and local not in doubtful:
                continue
            if state is None:
                builder.time_wait(local, remote_port, None)
            else:
                builder.live(local, remote_port, state, pids)
        if not owners:
            notes.append("processes were not looked up: the question did not need them")
        return builder.build(notes, left_out)


def _system_wide(conns: list[Any]) -> Iterator[tuple[_Conn, set[int]]]:
    for conn in conns:
        yield conn, {conn.pid} if conn.pid else set()


def _per_process() -> Iterable[tuple[_Conn, set[int]]]:
    """Each socket that a process we may inspect holds, once, with every such holder.

    Processes we may not inspect (another user's), or that exit meanwhile, are skipped:
    the note says so once for all of them.
    """
    held: dict[tuple[object, ...], tuple[_Conn, set[int]]] = {}
    try:
        pids = psutil.pids()
    except OSError:
        return ()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.AccessDenied, psutil.NoSuchProcess, OSError):
            continue  # ZombieProcess is a NoSuchProcess
        for conn in conns:
            # A socket shared by a master and its workers is one socket, held by each.
            key = (conn.family, conn.type, conn.laddr, conn.raddr, conn.status)
            entry = held.get(key)
            if entry is None:
                held[key] = (conn, {pid})
            else:
                entry[1].add(pid)
    return held.values()


def _state_name(status: str) -> str:
    # psutil spells states "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT1"... like the kernel does.
    return status.upper()
