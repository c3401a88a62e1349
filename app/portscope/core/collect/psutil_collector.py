"""Portable collector on psutil.net_connections(): macOS, Windows, and Linux's fallback.

psutil reports one PID per socket on Linux (not every holder) and no TIME_WAIT timers,
so expiries are None here.
"""

from __future__ import annotations

import socket
from collections import defaultdict

import psutil

from ..model import Family, Proto, Snapshot
from ..processes import ProcessTable
from .builder import SnapshotBuilder
from .system import ephemeral_range

_Key = tuple[Proto, Family, str, int]


class PsutilCollector:
    name = "psutil"

    def __init__(self) -> None:
        self._processes = ProcessTable()

    def collect(self) -> Snapshot:
        builder = SnapshotBuilder(self._processes, ephemeral_range(), self.name)
        listeners: dict[_Key, set[int]] = defaultdict(set)
        for conn in psutil.net_connections(kind="inet"):
            if not conn.laddr:
                continue
            proto: Proto = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
            family: Family = "ipv6" if conn.family == socket.AF_INET6 else "ipv4"
            address, port = conn.laddr.ip, conn.laddr.port
            remote_port = conn.raddr.port if conn.raddr else 0
            pids = {conn.pid} if conn.pid else set()
            if proto == "udp":
                if not conn.raddr:
                    listeners[(proto, family, address, port)].update(pids)
            elif conn.status == psutil.CONN_LISTEN:
                listeners[(proto, family, address, port)].update(pids)
            elif conn.status == psutil.CONN_TIME_WAIT:
                builder.time_wait(port, remote_port, None)
            else:
                builder.live(port, remote_port, _state_name(conn.status), pids)
        for (proto, family, address, port), pids in listeners.items():
            builder.listener(proto, family, address, port, pids)
        return builder.build()


def _state_name(status: str) -> str:
    # psutil spells states "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT1"... like the kernel does.
    return status.upper()
