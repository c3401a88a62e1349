"""Issue 11: client TIME_WAIT per destination, from real TIME_WAIT on loopback. connect()
picks a free local port per (remote address, remote port), so the ephemeral range runs out
for one destination at a time: the collectors tally the remote address too, and the words
say how much of the range each destination uses and warn before EADDRNOTAVAIL.

The machine's ip_local_port_range is never changed: the warning's arithmetic is tested with a
range passed in (record.replace on the real tally)."""

from __future__ import annotations

import socket
import struct
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from portscope.core import text
from portscope.core.collect import sock_diag
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.collect.psutil_collector import PsutilCollector
from portscope.core.collect.sides import client_ports, pair
from portscope.core.collect.system import ephemeral_range
from portscope.core.collect.tables import TIME_WAIT, Tables
from portscope.core.model import ClientTimeWait, Family
from portscope.core.record import replace
from support import client_time_wait, make_server_time_wait, ss_lines, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CLIENTS = 40



def time_wait_to(host: str, port: int) -> int:
    """TIME_WAIT sockets to host:port now, as `ss` counts them."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return len(ss_lines("-tan", "state", "time-wait", "dst", where))


@pytest.fixture(params=["127.0.0.1", "::1"])
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, int]]:
    """A server still listening, and CLIENTS client TIME_WAIT sockets to it; also how many
    were there before (an earlier test's clients of a server that had this port number)."""
    host: str = request.param
    with tcp_listener(host) as listener:
        port = listener.getsockname()[1]
        before = time_wait_to(host, port)
        client_time_wait(listener, CLIENTS)
        yield host, port, before


def ours_counted(client: ClientTimeWait, host: str, port: int, before: int) -> int:
    """Our destination's count, from every destination (the 20 busiest, by_destination, may
    all be other tests' on a busy machine)."""
    [n] = [d.time_wait for d in client.destinations if (d.address, d.port) == (host, port)]
    assert CLIENTS <= n <= CLIENTS + before
    return n


def ours(client: ClientTimeWait, host: str, port: int) -> ClientTimeWait:
    """The real tally with only our destination (other tests may add theirs meanwhile)."""
    mine = tuple(
        (d.address, d.port, d.time_wait) for d in client.destinations
        if (d.address, d.port) == (host, port)
    )
    return replace(client, by_destination=mine)


@pytest.mark.parametrize("source", ["netlink", "proc", "psutil"])
def test_every_collector_tallies_client_time_wait_per_destination(
    loaded: tuple[str, int, int], source: str
) -> None:
    host, port, before = loaded
    collector = (
        PsutilCollector() if source == "psutil"
        else ProcNetCollector(netlink=source == "netlink")
    )
    client = collector.collect().client_time_wait
    n = ours_counted(client, host, port, before)
    assert client.ephemeral == ephemeral_range()
    total = client.ephemeral_ports
    summary = text.client_pressure(ours(client, host, port))
    to = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert f"{n:,} of {total:,} ports to {to}" in summary
    short = text.client_pressure(ours(client, host, port), short=True)
    assert f"({n}/{total:,} ports to {to})" in short


def test_warning_before_the_range_runs_out(loaded: tuple[str, int, int]) -> None:
    host, port, _ = loaded
    client = ours(ProcNetCollector().collect().client_time_wait, host, port)
    assert text.client_warnings(client) == ()  # 40 of ~28,000: no pressure
    client = replace(client, by_destination=((host, port, CLIENTS),))  # exactly ours
    low = 40000
    tight = replace(client, ephemeral=(low, low + 49), tw_reuse=0)  # 40 of 50 ports
    [warning] = text.client_warnings(tight)
    to = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert warning == (
        f"80% of the ephemeral ports (40000-40049) are in TIME_WAIT to {to}: connect() to it "
        "fails with EADDRNOTAVAIL (Cannot assign requested address) once all 50 are taken"
    )
    assert f"{CLIENTS} of 50 ports to {to}" in text.client_pressure(tight)
    [short] = text.client_warnings(tight, short=True)
    assert short.startswith(f"80% of ephemeral ports to {to}")
    # Below the threshold: nothing; loopback under tcp_tw_reuse=2: said why it may hold off.
    assert text.client_warnings(replace(tight, ephemeral=(low, low + 99))) == ()
    [reused] = text.client_warnings(replace(tight, tw_reuse=2))
    assert reused.endswith("unless it reuses them (tcp_tw_reuse=2 lets connect() take over "
                           "loopback TIME_WAIT ports older than 1 s)")


def test_bulk_destination_tally_counts_socket_by_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The netlink reader's bulk pass against a record-by-record count of the same dump:
    clients to our listening port counted per destination, its own TIME_WAIT never."""
    monkeypatch.setattr(sock_diag, "_BUSIEST", None)  # every destination, for exact equality
    with tcp_listener() as listener, tcp_listener() as server:
        port, served = listener.getsockname()[1], server.getsockname()[1]
        before = time_wait_to("127.0.0.1", port)
        client_time_wait(listener, CLIENTS)
        # A server's own TIME_WAIT in the same datagrams: the group is split, not misread.
        make_server_time_wait(server, 5)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
            chunks = sock_diag._dump(nl, socket.AF_INET, socket.IPPROTO_TCP, 1 << TIME_WAIT)
    tables = Tables()
    sock_diag._split_tcp(chunks, "ipv4", tables, defer=True)
    assert tables.bulk and not tables.time_wait  # kept aside until settled
    sock_diag.settle(tables, ephemeral_range(), listening={port, served})
    # What the bulk pass decided, record by record: every TIME_WAIT on a local port it
    # called a client's counts toward its destination, every other one toward its port,
    # and one on a port only a tie called a client's (sides.py) toward both.
    clients, doubtful = tables.clients.ports, tables.clients.kept
    expected: Counter[tuple[str, int]] = Counter()
    servers: Counter[int] = Counter()
    for chunk in chunks:
        for rec in sock_diag._records(chunk):
            sport, dport = struct.unpack_from(">HH", rec, 4)
            if sport in clients:
                expected[(socket.inet_ntop(socket.AF_INET, bytes(rec[24:28])), dport)] += 1
            if sport not in clients or sport in doubtful:
                servers[sport] += 1
    assert tables.clients.time_wait == expected
    assert tables.clients.count == sum(expected.values())
    assert {p: t.count for p, t in tables.time_wait.items()} == servers
    assert not (clients - doubtful) & set(servers)  # no other client port has a tally
    assert CLIENTS <= tables.clients.time_wait[("127.0.0.1", port)] <= CLIENTS + before
    assert tables.time_wait[served].count >= 5 and served not in clients
    assert tables.bulk == [] and tables.loose == []


def test_client_summary_without_destinations_is_unchanged() -> None:
    """A collector that tallies no destinations (or an old snapshot) reads as before."""
    client = ClientTimeWait(12_004, 12_004, ((5432, 11_990),), 60.0)
    assert text.client_pressure(client) == text.client_summary(client) == (
        "12,004 client TIME_WAIT on 12,004 ephemeral ports, 11,990 of them to :5432; "
        "all clear in 60 s"
    )
    assert text.client_warnings(client) == ()
    full = replace(
        client, by_destination=(("127.0.0.1", 5432, 11_990),), ephemeral=(32768, 60999)
    )
    assert text.client_pressure(full) == (
        "12,004 client TIME_WAIT on 12,004 ephemeral ports, 11,990 of 28,232 ports to "
        "127.0.0.1:5432; all clear in 60 s"
    )


def test_packed_keys_and_pairs_name_each_record(loaded: tuple[str, int, int]) -> None:
    """The bulk pass makes destination keys and (local, remote) pairs for a whole datagram
    group by C-level slices: each must name what the record itself says."""
    host, port, before = loaded
    af = socket.AF_INET6 if ":" in host else socket.AF_INET
    family: Family = "ipv6" if ":" in host else "ipv4"
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
        chunks = sock_diag._dump(nl, af, socket.IPPROTO_TCP, 1 << TIME_WAIT)
    tables = Tables()
    sock_diag._split_tcp(chunks, family, tables, defer=True)
    assert tables.bulk
    seen = 0
    for buf, stride, group_af in tables.bulk:
        keys = sock_diag._destination_keys(buf, stride, group_af)
        pairs = sock_diag._pairs(buf, stride)
        for i, key in enumerate(keys):
            rec = buf[i * stride + sock_diag._BODY :]
            assert pairs[i] == pair(*struct.unpack(">HH", rec[4:8]))
            size = 4 if af == socket.AF_INET else 16
            expected = (socket.inet_ntop(af, rec[24 : 24 + size]), struct.unpack(">H", rec[6:8])[0])
            assert sock_diag._destination(key, group_af) == expected
            seen += expected == (host, port)
    assert CLIENTS <= seen <= CLIENTS + before


def test_a_group_of_both_sides_splits_alike_either_way() -> None:
    """A datagram group holding clients' and servers' TIME_WAIT is split from whichever side
    is smaller (sock_diag._split): both ways must give the same tallies and sums."""
    with tcp_listener() as listener, tcp_listener() as server:
        port, served = listener.getsockname()[1], server.getsockname()[1]
        client_time_wait(listener, CLIENTS)
        make_server_time_wait(server, 5)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
            chunks = sock_diag._dump(nl, socket.AF_INET, socket.IPPROTO_TCP, 1 << TIME_WAIT)
    found = []
    for few_clients in (True, False):
        tables = Tables()
        sock_diag._split_tcp(chunks, "ipv4", tables, defer=True)
        groups = list(tables.bulk)
        pairs = [p for buf, stride, _ in groups for p in sock_diag._pairs(buf, stride)]
        sides = client_ports(pairs, [], {port, served}, ephemeral_range())
        for buf, stride, af in groups:
            these = sock_diag._pairs(buf, stride)
            mask = [p & 0xFFFF in sides.clients for p in these]
            mine = 0 if few_clients else len(mask)  # only picks the way
            sock_diag._split(buf, stride, af, these, mask, mine, tables, sides)
        sums = tables.clients
        found.append((tables.time_wait, sums.time_wait, sums.ports, sums.count, sums.last))
    assert found[0] == found[1]
    time_wait, destinations, ports, _, _ = found[0]
    assert destinations[("127.0.0.1", port)] >= CLIENTS
    assert not (ports - sides.doubtful) & set(time_wait)  # only a doubtful port is both
    assert time_wait[served].count >= 5
