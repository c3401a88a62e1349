"""The Linux collector against real sockets, and against `ss` at the same moment."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.model import Snapshot
from portscope.core.rows import build_rows
from support import (
    PREFORK_SERVER,
    make_server_time_wait,
    ss_lines,
    tcp_listener,
    udp_socket,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def collect() -> Snapshot:
    return ProcNetCollector().collect()


def test_listener_found_with_this_pid() -> None:
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
        snap = collect()
    [found] = snap.listeners_on(port)
    assert (found.proto, found.family, found.address) == ("tcp", "ipv4", "127.0.0.1")
    assert os.getpid() in found.pids
    me = next(h for h in found.holders if h.pid == os.getpid())
    assert me.cwd == os.getcwd()
    assert me.started is not None and me.cmdline


def test_prefork_socket_lists_every_holder(spawn: Callable[..., tuple[object, str]]) -> None:
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = (int(x) for x in line.split())
    [found] = collect().listeners_on(port)
    master = proc.pid  # type: ignore[attr-defined]
    assert set(found.pids) == {master, *workers}
    assert {h.ppid for h in found.holders if h.pid != master} == {master}


def test_time_wait_counted_exactly_with_expiry() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 7)
        snap = collect()
        ss_count = sum(
            1 for ln in ss_lines("-tan", "state", "time-wait") if _ss_port(ln.split()[2]) == port
        )
    stats = snap.port_stats(port)
    assert stats is not None
    assert stats.time_wait == 7 == ss_count
    assert stats.time_wait_first is not None and stats.time_wait_last is not None
    assert 0 < stats.time_wait_first <= stats.time_wait_last <= 60
    assert not stats.client_side  # a server port with a listener is never folded away


def test_stopped_server_with_time_wait_stays_a_row() -> None:
    """Nobody listens any more, yet bind fails: the row users came for must not be hidden."""
    listener = tcp_listener()
    port = listener.getsockname()[1]
    make_server_time_wait(listener, 3)
    listener.close()
    snap = collect()
    assert not snap.listeners_on(port)
    stats = snap.port_stats(port)
    assert stats is not None and stats.time_wait == 3 and not stats.client_side


def test_client_time_wait_is_aggregated() -> None:
    """A client that closes first leaves TIME_WAIT on its own ephemeral ports: summed per
    destination, and no port of its own in the snapshot."""
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        client_ports = []
        for _ in range(5):
            c = socket.create_connection(("127.0.0.1", port))
            client_ports.append(c.getsockname()[1])
            conn, _ = listener.accept()
            c.close()  # the client's FIN first: TIME_WAIT lands on the client port
            conn.recv(1)
            conn.close()
        snap = collect()
    assert not {p.port for p in snap.ports} & set(client_ports)
    assert dict(snap.client_time_wait.by_remote_port)[port] >= 5
    [here] = [d for d in snap.client_time_wait.destinations if d.port == port]
    assert here.address == "127.0.0.1" and here.time_wait >= 5


def test_live_connection_states_and_holders() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        snap = collect()
        client.close()
        conn.close()
    stats = snap.port_stats(port)
    assert stats is not None
    assert stats.states.get("ESTABLISHED") == 1
    assert os.getpid() in {h.pid for h in stats.holders}


def test_udp_and_ipv6_appear() -> None:
    with udp_socket() as u4, udp_socket("::1") as u6, tcp_listener("::1") as t6:
        expected = {
            ("udp", "ipv4", "127.0.0.1", u4.getsockname()[1]),
            ("udp", "ipv6", "::1", u6.getsockname()[1]),
            ("tcp", "ipv6", "::1", t6.getsockname()[1]),
        }
        snap = collect()
    seen = {(s.proto, s.family, s.address, s.port) for s in snap.sockets}
    assert expected <= seen
    for s in snap.sockets:
        if (s.proto, s.family, s.address, s.port) in expected:
            assert os.getpid() in s.pids


def test_udp_and_tcp_are_separate_rows_on_one_port() -> None:
    with tcp_listener() as t:
        port = t.getsockname()[1]
        with udp_socket(port=port):
            snap = collect()
    assert {s.proto for s in snap.listeners_on(port, "tcp")} == {"tcp"}
    assert {s.proto for s in snap.listeners_on(port, "udp")} == {"udp"}


def test_listening_set_equals_ss() -> None:
    """Other tests open and close sockets meanwhile, so compare within ss before/after."""
    with tcp_listener(), tcp_listener("::1"), udp_socket(), udp_socket("::1"):
        before = _ss_listening()
        snap = collect()
        after = _ss_listening()
    ours = {(s.proto, s.address, s.port) for s in snap.sockets}
    assert before & after <= ours <= before | after
    assert len(before & after) >= 4


def test_wildcard_and_dual_stack_addresses_match_ss() -> None:
    with tcp_listener("0.0.0.0") as v4, tcp_listener("::", v6only=False) as dual:
        ports = {"0.0.0.0": v4.getsockname()[1], "::": dual.getsockname()[1]}
        snap = collect()
        ss = _ss_listening()
    for address, port in ports.items():
        assert ("tcp", address, port) in ss
        assert [s.address for s in snap.listeners_on(port)] == [address]


def _ss_listening() -> set[tuple[str, str, int]]:
    found = set()
    for proto, flag in (("tcp", "-tln"), ("udp", "-uln")):
        for line in ss_lines(flag):
            local = line.split()[3]
            address, _, port = local.rpartition(":")
            address = address.strip("[]").split("%")[0]
            found.add((proto, "::" if address == "*" else address, int(port)))
    return found


def _ss_port(local: str) -> int:
    return int(local.rpartition(":")[2])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root")
def test_unprivileged_user_sees_listener_with_hidden_owner(
    spawn: Callable[..., tuple[object, str]],
) -> None:
    from support import ROOT_LISTENER, run_as_nobody

    # Held by another root process: a forked child would inherit (and so own) our own fds.
    _, line = spawn(ROOT_LISTENER)
    port = int(line)
    snap = run_as_nobody(collect)
    assert isinstance(snap, Snapshot)
    [found] = snap.listeners_on(port)
    assert found.owner_hidden and found.uid == 0
    assert snap.hidden_owners >= 1 and not snap.is_root


def test_lone_time_wait_between_two_stopped_ephemeral_ports_is_folded() -> None:
    """Both ends ephemeral and nobody listens: one TIME_WAIT is a client's, not a row."""
    listener = tcp_listener()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    listener.close()
    client_port = client.getsockname()[1]
    client.close()  # the client closes first: TIME_WAIT on its ephemeral port
    conn.recv(1)
    conn.close()
    snap = collect()
    stats = snap.port_stats(client_port)
    # Summed with the clients, and in doubt (a killed server's lone TIME_WAIT looks the
    # same) its port keeps its count, flagged: no row, but a question by number finds it.
    # (An earlier test's client may have left a TIME_WAIT on the same port number, which
    # can tip the vote to a plain client's port: no count of its own then.)
    assert stats is None or (stats.time_wait >= 1 and stats.client_side)
    assert client_port not in {row.port for row in build_rows(snap)}
    assert ("127.0.0.1", port) in {(d.address, d.port) for d in snap.client_time_wait.destinations}


def test_a_sketch_is_offered_only_when_the_first_whole_poll_walks_many_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ProcNetCollector.sketch, the monitor's first frame: the listeners alone when the
    owner walk ahead is one helpers share (OwnerIndex.heavy, threshold set here), else
    None: the first whole poll will be quick, and is the first frame. (The other two
    reasons, however busy the machine, are out of the way.)"""
    from portscope.core.collect import LISTENERS_ONLY, proc_collector
    from support import quiet_port

    monkeypatch.setattr(proc_collector, "SKETCH_TIME_WAIT", 10**9)
    monkeypatch.setattr(proc_collector, "SKETCH_PROCESSES", 10**9)
    quick, heavy = ProcNetCollector(), ProcNetCollector()
    quick._owners._helped_from = 10**9
    heavy._owners._helped_from = 1  # this process's own fds are more than that
    with tcp_listener(port=quiet_port()) as listener:
        port = listener.getsockname()[1]
        assert quick.sketch() is None
        sketch = heavy.sketch()
        assert sketch is not None and LISTENERS_ONLY in sketch.notes
        [found] = sketch.listeners_on(port)
        assert not found.holders
        [held] = heavy.collect().listeners_on(port)
        assert held.pids == (os.getpid(),)


def test_a_sketch_is_offered_when_the_first_whole_poll_reads_many_time_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Few fd tables to walk, but SKETCH_TIME_WAIT or more TIME_WAIT sockets to read (the
    kernel's count, /proc/net/sockstat): the listeners are drawn first."""
    from portscope.core.collect import proc_collector
    from portscope.core.collect.system import time_wait_count
    from support import quiet_port

    monkeypatch.setattr(proc_collector, "SKETCH_PROCESSES", 10**9)
    collector = ProcNetCollector()
    collector._owners._helped_from = 10**9
    with tcp_listener(port=quiet_port()) as listener:
        make_server_time_wait(listener, 3)
        assert time_wait_count() >= 3
        monkeypatch.setattr(proc_collector, "SKETCH_TIME_WAIT", time_wait_count() + 100_000)
        assert collector.sketch() is None
        monkeypatch.setattr(proc_collector, "SKETCH_TIME_WAIT", 3)
        sketch = collector.sketch()
        assert sketch is not None and sketch.listeners_on(listener.getsockname()[1])
    (tmp_path / "net").mkdir()
    stat = tmp_path / "net" / "sockstat"
    stat.write_text("sockets: used 9\nTCP: inuse 2 orphan 0 tw 61234 alloc 3 mem 1\n")
    assert time_wait_count(str(tmp_path)) == 61234
    stat.write_text("TCP: inuse 2 orphan 0 tw\n")  # not the kernel's: no count, no error
    assert time_wait_count(str(tmp_path)) == 0


def test_many_processes_make_a_sketch_and_the_store_waits_for_the_whole_poll(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From SKETCH_PROCESSES processes the first whole poll walks or checks each one (its
    stored table by CPU time): the listeners come first, and the store is restored by
    that poll, after the sketch, not before it."""
    from portscope.core.collect import proc_collector
    from portscope.core.collect.owner_store import OwnerStore

    path = str(tmp_path / "owners")
    ProcNetCollector(store=OwnerStore(path)).collect()  # the run before this one
    monkeypatch.setattr(proc_collector, "SKETCH_TIME_WAIT", 10**9)
    for many, sketched in ((True, True), (False, False)):
        collector = ProcNetCollector(store=OwnerStore(path))
        collector._owners._helped_from = 10**9
        population = collector._owners.population()
        monkeypatch.setattr(proc_collector, "SKETCH_PROCESSES", 1 if many else 10**9)
        assert population > 1
        assert (collector.sketch() is not None) is sketched
        assert collector._restored is not sketched  # many: restored by the whole poll
        assert collector.collect().sockets
        assert collector._restored


def test_the_readme_states_the_thresholds_the_collector_uses() -> None:
    """The README says from how many descriptors, or TIME_WAIT sockets, the monitor draws
    the sockets first."""
    from portscope.core.collect.owners import HELPED_FROM
    from portscope.core.collect.proc_collector import SKETCH_PROCESSES, SKETCH_TIME_WAIT

    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = " ".join(readme.read_text(encoding="utf-8").split())
    assert f"holding {HELPED_FROM:,} or more descriptors" in text
    assert f"meet {SKETCH_PROCESSES:,} or more processes" in text
    assert f"or read {SKETCH_TIME_WAIT:,} or more TIME_WAIT sockets. Then the first" in text


@pytest.mark.parametrize("netlink", [True, False], ids=["sock_diag", "proc_net"])
def test_the_listeners_alone_are_read_without_time_wait_or_owners(
    netlink: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor's first frame (ProcNetCollector.sketch, drawn whatever the machine
    here): the listening sockets, TCP and UDP, with no TIME_WAIT counted and no process
    looked up, said in the notes; the whole poll that follows counts the TIME_WAIT."""
    from portscope.core.collect import LISTENERS_ONLY, NOT_LOOKED_UP, proc_collector
    from support import quiet_port

    monkeypatch.setattr(proc_collector, "SKETCH_PROCESSES", 0)
    collector = ProcNetCollector(netlink=netlink)
    with tcp_listener(port=quiet_port()) as listener, udp_socket() as udp:
        make_server_time_wait(listener, 3)
        port, udp_port = listener.getsockname()[1], udp.getsockname()[1]
        sketch = collector.sketch()
        whole = collector.collect(owners=False)
    assert sketch is not None
    [found] = sketch.listeners_on(port)
    assert not found.holders and sketch.listeners_on(udp_port, "udp")
    stats = sketch.port_stats(port)
    assert stats is None or (stats.time_wait == 0 and stats.live == 0)
    assert LISTENERS_ONLY in sketch.notes and NOT_LOOKED_UP in sketch.notes
    counted = whole.port_stats(port)
    assert counted is not None and counted.time_wait == 3
    assert LISTENERS_ONLY not in whole.notes
