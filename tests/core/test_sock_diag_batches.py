"""The netlink reader handles TIME_WAIT in batches of about sock_diag._BATCH records, so a
poll's transient memory does not grow with the machine's TIME_WAIT: batches must add up to
exactly what one pass over the whole dump gives, busiest destinations included.

Real TIME_WAIT on loopback; only this test's own records are kept from the dump (the
machine's other sockets are not ours to count), re-cut into small datagrams."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from portscope.core.collect import sock_diag
from portscope.core.collect.system import ephemeral_range
from portscope.core.collect.tables import TIME_WAIT, Tables
from support import client_time_wait, make_server_time_wait, netlink_messages, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="netlink")

PER_DATAGRAM = 5




@pytest.mark.parametrize("busiest", [None, 1], ids=["every-destination", "busiest-only"])
def test_batches_add_up_to_one_pass(busiest: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sock_diag, "_BUSIEST", busiest)
    with tcp_listener() as busy, tcp_listener() as quiet, tcp_listener() as server:
        ports = busy.getsockname()[1], quiet.getsockname()[1], server.getsockname()[1]
        client_time_wait(busy, 30)
        client_time_wait(quiet, 12)
        make_server_time_wait(server, 20)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
            chunks = sock_diag._dump(nl, socket.AF_INET, socket.IPPROTO_TCP, 1 << TIME_WAIT)
    busy_port, quiet_port, served = ports
    # Ours: the server's TIME_WAIT on its port, the clients' towards our two listeners,
    # interleaved as the kernel's hash order has them.
    ours = [
        rec
        for chunk in chunks
        for rec in netlink_messages(chunk)
        if struct.unpack_from(">H", rec, sock_diag._BODY + 4)[0] == served
        or struct.unpack_from(">H", rec, sock_diag._BODY + 6)[0] in (busy_port, quiet_port)
    ]
    assert len(ours) >= 62
    datagrams = [
        b"".join(ours[i : i + PER_DATAGRAM]) for i in range(0, len(ours), PER_DATAGRAM)
    ]
    found = []
    for batch in (1_000_000, PER_DATAGRAM):  # one batch; a datagram per batch
        monkeypatch.setattr(sock_diag, "_BATCH", batch)
        tables = Tables()
        sock_diag._split_tcp(list(datagrams), "ipv4", tables, defer=True)
        batches = len(tables.bulk)
        sock_diag.settle(tables, ephemeral_range(), listening=set(ports))
        sums = tables.clients
        found.append((batches, (tables.time_wait, dict(sums.time_wait), sums.ports, sums.count,
                                sums.last, sums.kept)))
    (one, whole), (many, batched) = found
    assert (one, many) == (1, len(datagrams))
    assert batched == whole
    time_wait, destinations, _, count, _, _ = whole
    assert time_wait[served].count >= 20  # the server's (an earlier socket may share the port)
    assert count >= 42
    if busiest is None:
        assert destinations[("127.0.0.1", busy_port)] >= 30
        assert destinations[("127.0.0.1", quiet_port)] >= 12
    else:  # the busiest destination alone, with its whole count across the batches
        assert list(destinations) == [("127.0.0.1", busy_port)]
        assert destinations[("127.0.0.1", busy_port)] >= 30
