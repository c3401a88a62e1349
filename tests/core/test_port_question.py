"""A question about one port (the monitor's `b`): one walk of the kernel's connection hash
for both families, the port's TIME_WAIT left out when it cannot be the cause, and a whole
poll that gives way to the question in the middle of its dump."""

from __future__ import annotations

import socket
import struct
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from portscope.core.collect import TIME_WAIT_LEFT_OUT, Yielded, sock_diag
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.collect.tables import LISTEN, TIME_WAIT
from portscope.core.diagnose.probe import diagnose
from portscope.core.model import Snapshot
from support import make_server_time_wait, netlink_messages, ss_time_wait, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="netlink")

ESTABLISHED = 1


class Port:
    """Listeners on 127.0.0.1 and ::1 sharing one port, each with a live connection and
    TIME_WAIT, and a neighbour's connection on another port that no answer may include."""

    def __init__(self) -> None:
        self.v4, self.v6 = _twin_listeners()
        self.port: int = self.v4.getsockname()[1]
        self.other = tcp_listener()
        self.open: list[socket.socket] = []
        for listener in (self.v4, self.v6, self.other):
            client = socket.create_connection(listener.getsockname()[:2])
            self.open += [client, listener.accept()[0]]
        make_server_time_wait(self.v4, 3)
        make_server_time_wait(self.v6, 2)

    def close(self) -> None:
        for sock in (*self.open, self.v4, self.v6, self.other):
            sock.close()


def _twin_listeners(tries: int = 50) -> tuple[socket.socket, socket.socket]:
    for _ in range(tries):
        v4 = tcp_listener()
        try:
            return v4, tcp_listener("::1", v4.getsockname()[1])
        except OSError:
            v4.close()
    raise AssertionError(f"no port free on both 127.0.0.1 and ::1 in {tries} tries")


@pytest.fixture()
def twins() -> Iterator[Port]:
    port = Port()
    try:
        yield port
    finally:
        port.close()


def _records(chunks: list[bytes]) -> Counter[tuple[int, int, int, int]]:
    """(family, state, local port, remote port) of each record."""
    found: Counter[tuple[int, int, int, int]] = Counter()
    for chunk in chunks:
        for message in netlink_messages(chunk):
            family, state = message[sock_diag._BODY], message[sock_diag._BODY + 1]
            sport, dport = struct.unpack_from(">HH", message, sock_diag._BODY + 4)
            found[family, state, sport, dport] += 1
    return found


def _port_dump(port: int, legacy: bool | None, time_wait: bool = True) -> list[bytes]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, sock_diag.NETLINK_SOCK_DIAG) as nl:
        sock_diag._legacy = legacy
        return sock_diag._port_dump(nl, port, time_wait)


def test_one_legacy_dump_holds_both_families_of_the_port_alone(
    twins: Port, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock_diag, "_legacy", None)
    legacy = _records(_port_dump(twins.port, None))
    assert sock_diag._legacy is True  # this kernel answers the old request: one walk
    per_family = _records(_port_dump(twins.port, False))
    assert legacy == per_family
    kinds = {(family, state) for family, state, _, _ in legacy}
    assert {(socket.AF_INET, ESTABLISHED), (socket.AF_INET6, ESTABLISHED)} <= kinds
    assert {(socket.AF_INET, TIME_WAIT), (socket.AF_INET6, TIME_WAIT)} <= kinds
    assert {sport for _, _, sport, _ in legacy} == {twins.port}  # no neighbour, no client
    assert LISTEN not in {state for _, state, _, _ in legacy}  # read apart, by family
    without = _records(_port_dump(twins.port, True, time_wait=False))
    assert without == Counter({k: n for k, n in legacy.items() if k[1] != TIME_WAIT})


def test_a_kernel_without_the_legacy_request_gets_one_dump_per_family(
    twins: Port, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sock_diag._dump

    def no_legacy(*args: Any, legacy: bool = False, **kwargs: Any) -> list[bytes]:
        if legacy:
            raise sock_diag.SockDiagError(22, "sock_diag dump refused")
        return real(*args, **kwargs)

    monkeypatch.setattr(sock_diag, "_dump", no_legacy)
    monkeypatch.setattr(sock_diag, "_legacy", None)
    tables = sock_diag.read_tables(port=twins.port)
    assert sock_diag._legacy is False  # asked once, then never again
    families = {row.family for row in tables.rows if row.port == twins.port and row.state == 1}
    assert families == {"ipv4", "ipv6"}
    assert tables.time_wait[twins.port].count == ss_time_wait(twins.port) >= 5


def test_time_wait_left_out_of_a_question_says_so(twins: Port) -> None:
    collector = ProcNetCollector()
    counted = collector.collect(twins.port, owners=None)
    left_out = collector.collect(twins.port, owners=None, time_wait=False)
    stats, without = counted.port_stats(twins.port), left_out.port_stats(twins.port)
    assert stats is not None and stats.time_wait == ss_time_wait(twins.port) >= 5
    assert TIME_WAIT_LEFT_OUT not in counted.notes
    assert TIME_WAIT_LEFT_OUT in left_out.notes
    assert without is not None and without.time_wait == 0
    assert without.live == stats.live == 2  # the accepted connections stay counted
    for snap in (counted, left_out):
        listeners = snap.listeners_on(twins.port)
        assert {s.family for s in listeners} == {"ipv4", "ipv6"}
        assert all(h.pid for s in listeners for h in s.holders)


class Asked:
    """The collector, and the time_wait argument of every question put to it."""

    def __init__(self) -> None:
        self.inner = ProcNetCollector()
        self.name = self.inner.name
        self.time_wait: list[bool] = []

    narrows = True

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot:
        self.time_wait.append(time_wait)
        return self.inner.collect(port, owners=owners, time_wait=time_wait)


def test_a_listener_decides_without_counting_time_wait(twins: Port) -> None:
    asked = Asked()
    lazy = diagnose(twins.port, "127.0.0.1", collector=asked, count_time_wait=False)
    exact = diagnose(twins.port, "127.0.0.1", collector=ProcNetCollector())
    assert asked.time_wait == [False]  # one question, the TIME_WAIT left in the kernel
    assert lazy.kind == exact.kind == "listening"
    assert lazy.time_wait is None
    assert exact.time_wait is not None and exact.time_wait.count >= 5
    for field in ("sentence", "explanation", "advice", "holders", "stop", "others"):
        assert getattr(lazy, field) == getattr(exact, field), field


def test_time_wait_as_the_cause_is_counted_exactly(twins: Port) -> None:
    for sock in (*twins.open, twins.v4, twins.v6):
        sock.close()
    twins.open.clear()
    asked = Asked()
    verdict = diagnose(twins.port, collector=asked, survey=True, count_time_wait=False)
    assert verdict.kind == "time_wait"
    assert asked.time_wait == [False, True]  # nothing else decided: asked again, counted
    assert verdict.time_wait is not None
    assert verdict.time_wait.count == ss_time_wait(twins.port) >= 5
    assert {o.kind for o in verdict.others} == {"time_wait"}  # ::, 127.0.0.1, ::1


def test_a_whole_read_gives_way_between_datagrams() -> None:
    calls: list[int] = []

    def after_the_first() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Yielded):
        sock_diag.read_tables(give_way=after_the_first)
    assert len(calls) == 2  # asked before the first datagram was read, and gave way at once
    quiet: list[int] = []
    with tcp_listener() as ours:
        tables = sock_diag.read_tables(give_way=lambda: quiet.append(1))
        port = ours.getsockname()[1]
    assert len(quiet) >= 3  # asked before each family's datagrams and at the end
    assert port in {row.port for row in tables.rows}  # not given way: read whole
