"""The fast Linux collector and the psutil fallback, run on the same live sockets, agree on
listeners, ports and holders (the fast one may name more holders of a shared socket, since
psutil reports one PID per socket, never fewer)."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable

import pytest

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.collect.psutil_collector import PsutilCollector
from portscope.core.model import Snapshot
from support import (
    PREFORK_SERVER,
    make_server_time_wait,
    quiet_port,
    tcp_listener,
    udp_socket,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

Spawn = Callable[..., tuple[object, str]]
Key = tuple[str, str, str, int]


def _mine(snap: Snapshot, keys: set[Key]) -> dict[Key, set[int]]:
    return {
        (s.proto, s.family, s.address, s.port): set(s.pids)
        for s in snap.sockets
        if (s.proto, s.family, s.address, s.port) in keys
    }


@pytest.mark.parametrize("netlink", [True, False], ids=["sock_diag", "proc_net_text"])
def test_fast_and_psutil_agree_on_listeners_and_holders(spawn: Spawn, netlink: bool) -> None:
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    prefork_port, *workers = (int(x) for x in line.split())
    master = proc.pid  # type: ignore[attr-defined]
    with (
        tcp_listener() as t4,
        tcp_listener("::1") as t6,
        udp_socket() as u4,
        udp_socket("::1") as u6,
    ):
        mine = ("tcp", "ipv4", "127.0.0.1", t4.getsockname()[1])
        keys: set[Key] = {
            mine,
            ("tcp", "ipv6", "::1", t6.getsockname()[1]),
            ("udp", "ipv4", "127.0.0.1", u4.getsockname()[1]),
            ("udp", "ipv6", "::1", u6.getsockname()[1]),
            ("tcp", "ipv4", "127.0.0.1", prefork_port),
        }
        fast = ProcNetCollector(netlink=netlink)
        fast.collect()  # a second poll runs on the warm owner cache, the path that matters
        ours, theirs = _mine(fast.collect(), keys), _mine(PsutilCollector().collect(), keys)
    assert ours.keys() == theirs.keys() == keys
    for key in keys:
        assert theirs[key], key  # psutil found a holder...
        assert theirs[key] <= ours[key], key  # ...and the fast collector found it too
    assert ours[("tcp", "ipv4", "127.0.0.1", prefork_port)] == {master, *workers}
    assert ours[mine] == {os.getpid()}


@pytest.mark.parametrize("netlink", [True, False], ids=["sock_diag", "proc_net_text"])
def test_fast_and_psutil_agree_on_ports(netlink: bool) -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 5)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        try:
            fast = ProcNetCollector(netlink=netlink).collect().port_stats(port)
            slow = PsutilCollector().collect().port_stats(port)
        finally:
            client.close()
            conn.close()
    assert fast is not None and slow is not None
    assert fast.time_wait == slow.time_wait == 5
    assert fast.states == slow.states == {"ESTABLISHED": 1}
    assert {h.pid for h in slow.holders} <= {h.pid for h in fast.holders} == {os.getpid()}
    assert fast.client_side is slow.client_side is False
    # Only the fast collector knows when the TIME_WAIT sockets expire.
    assert fast.time_wait_first is not None and fast.time_wait_last is not None
    assert 0 < fast.time_wait_first <= fast.time_wait_last <= 60


TICK = 0.02  # /proc/net/tcp gives timers in clock ticks (1/100 s), rounded


def _both_readers() -> tuple[Snapshot, Snapshot, float]:
    """A netlink poll and a text poll, and at most how far apart they read the kernel
    (a busy machine can put a second between them; TIME_WAIT timers move meanwhile)."""
    started = time.monotonic()
    netlink = ProcNetCollector(netlink=True).collect(owners=False)
    text = ProcNetCollector(netlink=False).collect(owners=False)
    return netlink, text, time.monotonic() - started


def test_sock_diag_and_proc_text_tally_time_wait_alike() -> None:
    """Both readers of the fast collector count and time the same TIME_WAIT sockets."""
    # Quiet ports: a kernel-chosen one may carry another program's TIME_WAIT on the other
    # family, which the port's count (both families) would include.
    with tcp_listener(port=quiet_port()) as a, tcp_listener("::1", quiet_port()) as b:
        make_server_time_wait(a, 4)
        make_server_time_wait(b, 3)
        ports = (a.getsockname()[1], b.getsockname()[1])
        netlink, text, apart = _both_readers()
    for port, count in zip(ports, (4, 3), strict=True):
        nl, tx = netlink.port_stats(port), text.port_stats(port)
        assert nl is not None and tx is not None
        assert nl.time_wait == tx.time_wait == count
        assert nl.time_wait_first is not None and tx.time_wait_first is not None
        assert nl.time_wait_last is not None and tx.time_wait_last is not None
        # netlink gives milliseconds, the text clock ticks: equal within a tick and the gap
        # between the two reads.
        assert abs(nl.time_wait_first - tx.time_wait_first) < apart + TICK
        assert abs(nl.time_wait_last - tx.time_wait_last) < apart + TICK
        assert nl.remote_port == tx.remote_port


def test_many_crowded_ports_tally_alike() -> None:
    """TIME_WAIT on many ports of both families: netlink and text readers agree per port."""
    listeners = [
        tcp_listener("::1" if i % 5 == 0 else "127.0.0.1", quiet_port()) for i in range(20)
    ]
    try:
        for i, listener in enumerate(listeners):
            make_server_time_wait(listener, 2 + i % 3)
        ports = [listener.getsockname()[1] for listener in listeners]
        netlink, text, apart = _both_readers()
    finally:
        for listener in listeners:
            listener.close()
    for i, port in enumerate(ports):
        nl, tx = netlink.port_stats(port), text.port_stats(port)
        assert nl is not None and tx is not None
        assert nl.time_wait == tx.time_wait == 2 + i % 3
        assert nl.time_wait_first is not None and tx.time_wait_first is not None
        assert nl.time_wait_last is not None and tx.time_wait_last is not None
        assert abs(nl.time_wait_first - tx.time_wait_first) < apart + TICK
        assert abs(nl.time_wait_last - tx.time_wait_last) < apart + TICK
        assert nl.time_wait_first <= nl.time_wait_last
        assert nl.remote_port == tx.remote_port
