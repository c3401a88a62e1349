"""Which end of a connection is the client's (core/collect/sides.py), rule by rule, on
(local port, remote port) pairs as a poll reads them. The real sockets are in
tests/cli/test_list_clients.py and tests/core/test_precision_client.py; here each fact is
set up alone, including the ones a loopback test cannot make on demand."""

from __future__ import annotations

from portscope.core.collect.sides import ClientSums, client_ports, pair

EPHEMERAL = (32768, 60999)


def pairs(local: int, remotes: range | list[int]) -> list[int]:
    return [pair(local, r) for r in remotes]


def test_a_listener_at_the_remote_end_makes_a_client_whatever_its_destinations() -> None:
    # A load test towards 20 local services, each client port used towards all of them.
    servers = list(range(8000, 8020))
    tw = [p for local in range(40000, 40500) for p in pairs(local, servers)]
    sides = client_ports(tw, [], set(servers), EPHEMERAL)
    assert sides.clients == frozenset(range(40000, 40500)) and not sides.doubtful


def test_the_pattern_across_ports_tells_clients_of_stopped_servers() -> None:
    """Nobody listens any more: 20 service ports each gather 30 client ports, each client
    port talks to a few services. Client ports outside the ephemeral range too (a load
    generator that binds its own)."""
    tw = [pair(10_000 + c, 8000 + (c * 7 + k) % 20) for c in range(600) for k in range(3)]
    sides = client_ports(tw, [], set(), EPHEMERAL)
    assert sides.clients == frozenset(range(10_000, 10_600))
    assert not sides.clients & set(range(8000, 8020))


def test_clients_on_their_own_ports_towards_stopped_ephemeral_servers() -> None:
    """A load generator binding ports below the range (10,000+) towards servers that got
    ephemeral ports and stopped: the range points the wrong way, the pattern decides."""
    servers = range(45000, 45020)
    tw = [pair(10_000 + c, s) for c in range(300) for s in servers]
    assert client_ports(tw, [], set(), EPHEMERAL).clients == frozenset(range(10_000, 10_300))


def test_a_stopped_servers_own_time_wait_stays_its_port() -> None:
    """The server closed first: its port talks to many client ports, each of which talks
    to it alone; even when one client's port number happens to be a local listener's."""
    tw = pairs(45000, range(50000, 50003))
    assert not client_ports(tw, [], set(), EPHEMERAL).clients
    tw = pairs(45000, [*range(50000, 50005), 8080])
    assert not client_ports(tw, [], {8080}, EPHEMERAL).clients


def test_server_side_time_wait_of_many_stopped_servers_from_shared_client_ports() -> None:
    """The benchmark's load: client ports 10,000+ each used once per server port, the
    servers closing first. Each client port is seen from 20 servers, but each server port
    talks to hundreds of them: the servers' ports stay theirs."""
    servers = range(40000, 40020)
    tw = [pair(s, c) for s in servers for c in range(10_000, 10_300)]
    assert not client_ports(tw, [], set(), EPHEMERAL).clients


def test_a_tie_on_an_ephemeral_port_is_a_client_in_doubt_unless_live() -> None:
    """One pair each way: a client's lone TIME_WAIT to a stopped ephemeral server looks
    exactly like a killed server's lone TIME_WAIT from an ephemeral client. Summed with the
    clients and kept as a port too (doubtful). With a live connection (a child holding what
    its stopped server accepted) the port stays a server's."""
    sides = client_ports([pair(40001, 45000)], [], set(), EPHEMERAL)
    assert sides.clients == sides.doubtful == frozenset({40001})
    sides = client_ports([], [pair(40001, 45000), pair(45000, 40001)], set(), EPHEMERAL)
    assert not sides.clients
    # A tie leaning on the range: an ephemeral client port to a non-ephemeral service...
    assert client_ports([pair(40001, 5432)], [], set(), EPHEMERAL).clients == {40001}
    # ... and a stopped service's port to an ephemeral client port: the service's.
    assert not client_ports([pair(5432, 40001)], [], set(), EPHEMERAL).clients


def test_a_client_port_with_a_rare_destination_among_busy_ones_stays_a_clients() -> None:
    busy = [pair(40000 + i, 5432) for i in range(50)]
    rare = [pair(40000, 9999), pair(40000, 7777), pair(40001, 9999)]
    sides = client_ports([*busy, *rare], [], set(), EPHEMERAL)
    assert {40000, 40001} <= sides.clients


def test_sums_per_destination_with_live_connections() -> None:
    sums = ClientSums()
    for local in range(40000, 40003):
        sums.add_time_wait(local, "127.0.0.1", 5432, 30.0 + local - 40000)
    sums.add_time_wait(40000, "::1", 5432, 10.0)
    sums.add_live("127.0.0.1", 5432, "ESTABLISHED")
    sums.add_live("10.0.0.9", 443, "SYN_SENT")
    frozen = sums.freeze(EPHEMERAL, 2)
    assert (frozen.count, frozen.ports, frozen.live, frozen.last_expiry) == (4, 3, 2, 32.0)
    assert frozen.by_remote_port == ((5432, 4),)
    assert frozen.by_destination[0] == ("127.0.0.1", 5432, 3)
    first, *rest = frozen.destinations
    assert (first.address, first.port, first.time_wait, first.states) == (
        "127.0.0.1", 5432, 3, {"ESTABLISHED": 1}
    )
    assert {(d.address, d.port, d.time_wait, d.live) for d in rest} == {
        ("::1", 5432, 1, 0), ("10.0.0.9", 443, 0, 1),
    }
