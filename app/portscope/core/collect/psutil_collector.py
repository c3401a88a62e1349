"""Portable collector on psutil.net_connections(): macOS, Windows, and Linux's portable
path (platform_path.py).

psutil gives no TIME_WAIT timers, no socket creator uid and no IPV6_V6ONLY: they are None
here (unknown, never guessed). On Linux it names one PID per socket, the first holder its
/proc walk meets; the other holders of a listener (a pre-fork server's master and workers,
a reloader and its child, a child that inherited the fd) are that process's relatives, so
each relative is asked for its own sockets and counted where it holds the same listener
(`_relatives_holding`). On macOS the system-wide call raises AccessDenied unless run as
root; then each process we may inspect (our own) is asked for its sockets instead, and the
snapshot says what that leaves out.
"""

from __future__ import annotations

import socket
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import psutil

from .. import platform_path
from ..model import Family, Proto, Snapshot
from ..processes import ProcessTable
from . import NOT_LOOKED_UP
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
        self.name = platform_path.source_name(PsutilCollector.name)

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        """With `port`, only that port's sockets; `owners=False`: no process described
        (psutil has read the PIDs anyway; describing them is what costs); None: described
        if any socket on `port` other than TIME_WAIT has one. `time_wait` is not used:
        psutil reads every socket, so TIME_WAIT is counted anyway."""
        notes: list[str] = []
        found: Iterable[tuple[_Conn, set[int]]]
        whole = True  # the system's table was read (else: each process's own sockets)
        try:
            if platform_path.system_table_denied():  # PORTSCOPE_PORTABLE=macos-nonroot
                raise psutil.AccessDenied(msg="as macOS without root")
            found = _system_wide(psutil.net_connections(kind="inet"))
        except psutil.AccessDenied:  # macOS without root
            whole = False
            found = _per_process()
            notes.append(HIDDEN_WITHOUT_ROOT)
        except OSError as exc:  # the system's table unreadable: what processes show is left
            whole = False
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
        if owners and whole and sys.platform.startswith("linux"):
            _relatives_holding(found, port)
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
            notes.append(NOT_LOOKED_UP)
        return builder.build(notes, left_out)


def _system_wide(conns: list[Any]) -> Iterator[tuple[_Conn, set[int]]]:
    for conn in conns:
        yield conn, {conn.pid} if conn.pid else set()


def _listening(conn: _Conn) -> bool:
    if conn.type == socket.SOCK_STREAM:
        return bool(conn.status == psutil.CONN_LISTEN)
    return not conn.raddr  # a bound UDP socket


def _same(conn: _Conn) -> tuple[object, ...]:
    return (conn.family, conn.type, conn.laddr)


def _relatives_holding(found: list[tuple[_Conn, set[int]]], port: int | None) -> None:
    """Add to each listener's PIDs the relatives of its named holder (parent, children,
    siblings) that hold the same listener by their own socket lists. Init's children are
    never siblings here: that would be every daemon. Only a socket handed to an unrelated
    process (SCM_RIGHTS) is missed, as the one holder psutil names."""
    wanted = [
        (conn, pids) for conn, pids in found
        if pids and conn.laddr and _listening(conn) and (port is None or conn.laddr.port == port)
    ]
    if not wanted:
        return
    try:
        parents = {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}
    except (psutil.Error, OSError):
        return
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in parents.items():
        if parent is not None:
            children[parent].append(child)
    held: dict[int, set[tuple[object, ...]]] = {}  # pid -> its listeners, asked once a poll

    def listeners_of(pid: int) -> set[tuple[object, ...]]:
        if pid not in held:
            try:
                conns = psutil.Process(pid).net_connections(kind="inet")
            except (psutil.Error, OSError):  # gone, or not ours to inspect
                conns = []
            held[pid] = {_same(c) for c in conns if c.laddr and _listening(c)}
        return held[pid]

    # Who the listing already names for each listener (on Linux and macOS, every process
    # holding it): a relative named there is taken as it is, not asked again. Asking costs
    # a whole table read per process on Linux (psutil parses /proc/net/tcp for each one):
    # 300 workers under 20,000 TIME_WAIT made one poll take 15 s.
    named: dict[tuple[object, ...], set[int]] = defaultdict(set)
    for conn, pids in wanted:
        named[_same(conn)].update(pids)
    for conn, pids in wanted:
        key = _same(conn)
        for pid in list(pids):
            parent = parents.get(pid)
            near = set(children.get(pid, ()))
            if parent is not None and parent > 1:
                near.add(parent)
                near.update(children.get(parent, ()))
            pids.update(near & named[key])
            for other in near - pids:
                if key in listeners_of(other):
                    pids.add(other)


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
