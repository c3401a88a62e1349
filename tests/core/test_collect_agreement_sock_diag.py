"""The bulk TIME_WAIT tally of the netlink reader against a record-by-record decode of the
very same kernel dump, on each of its paths (one port, a few crowded ports, many)."""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from portscope.core.collect import sock_diag
from portscope.core.collect.tables import SEVERAL, TIME_WAIT, Tables, TimeWaitTally
from support import make_server_time_wait, netlink_messages, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="netlink")


@pytest.fixture(scope="module")
def dump() -> Iterator[tuple[list[bytes], list[int]]]:
    """A TIME_WAIT-only IPv4 dump (the kernel filters the state, so every datagram is the
    bulk path's food) while 24 of our ports hold 2-4 TIME_WAIT each and one holds 400."""
    listeners = [tcp_listener() for _ in range(25)]
    try:
        for i, listener in enumerate(listeners):
            make_server_time_wait(listener, 400 if i == 0 else 2 + i % 3)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
            chunks = sock_diag._dump(nl, socket.AF_INET, socket.IPPROTO_TCP, 1 << TIME_WAIT)
        yield chunks, [listener.getsockname()[1] for listener in listeners]
    finally:
        for listener in listeners:
            listener.close()


def _reference(chunks: list[bytes]) -> dict[int, TimeWaitTally]:
    tallies: dict[int, TimeWaitTally] = {}
    for chunk in chunks:
        for rec in sock_diag._records(chunk):
            assert rec[1] == TIME_WAIT
            sport, dport = struct.unpack_from(">HH", rec, 4)
            expires = struct.unpack_from("=I", rec, 52)[0] / 1000
            tallies.setdefault(sport, TimeWaitTally()).add(1, dport, expires, expires)
    return tallies


@pytest.mark.parametrize("few", [0, 4, 10_000], ids=["sorted", "filtered", "filter-all"])
def test_bulk_tally_equals_record_by_record(
    dump: tuple[list[bytes], list[int]], few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks, ports = dump
    monkeypatch.setattr(sock_diag, "_FEW", few)
    tables = Tables()
    sock_diag._split_tcp(chunks, "ipv4", tables)
    expected = _reference(chunks)
    assert tables.rows == []
    assert tables.time_wait == expected
    assert tables.time_wait[ports[0]].count == 400
    assert tables.time_wait[ports[0]].remote_port == SEVERAL
    for i, port in enumerate(ports[1:], start=1):
        assert tables.time_wait[port].count == 2 + i % 3


def test_single_port_path_equals_record_by_record() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 50)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
            chunks = sock_diag._dump(nl, socket.AF_INET, socket.IPPROTO_TCP, 1 << TIME_WAIT)
    # Keep only our port's records, joined at the kernel's stride: one port, one group.
    ours = [
        bytes(rec_with_header)
        for chunk in chunks
        for rec_with_header in netlink_messages(chunk)
        if struct.unpack_from(">H", rec_with_header, sock_diag._BODY + 4)[0] == port
    ]
    assert len(ours) == 50
    tables = Tables()
    sock_diag._split_tcp([b"".join(ours)], "ipv4", tables)
    assert tables.time_wait == _reference([b"".join(ours)])
    assert tables.time_wait[port].count == 50
