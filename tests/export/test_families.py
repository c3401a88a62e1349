"""The exporter's metrics from hand-built snapshots: bounded series (5,000 listeners, 3,000
TIME_WAIT ports, 2,000 destinations), "other" buckets that keep the totals, label values
escaped at the same boundary as every surface, stable labels for a pre-fork server, the
event and restart counters, and scrapes that never poll."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families  # the `test` extra

from portscope.core.export.exporter import Exporter
from portscope.core.export.families import Limits
from portscope.core.model import (
    ClientDestination,
    ClientTimeWait,
    Container,
    Holder,
    PortStats,
    Snapshot,
    Socket,
)
from portscope.core.untrusted import shown

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
Samples = dict[str, list[tuple[dict[str, str], float]]]


def holder(pid: int, name: str = "server", ppid: int = 1, argv: tuple[str, ...] = ()) -> Holder:
    return Holder(pid, name, "alice", argv or (name, "--port", "8080"), 1.7e9 + pid, ppid=ppid)


def listener(port: int, *holders: Holder, address: str = "127.0.0.1") -> Socket:
    return Socket("tcp", "ipv4", address, port, tuple(holders), inode=port, uid=1000)


def snapshot(
    *sockets: Socket, ports: tuple[PortStats, ...] = (), client: ClientTimeWait | None = None,
    seconds: float = 0.0, hidden: int = 0,
) -> Snapshot:
    return Snapshot(
        T0 + timedelta(seconds=seconds), tuple(sockets), ports, hidden_owners=hidden,
        client_time_wait=client or ClientTimeWait(ephemeral=(32768, 60999)),
    )


class Feed:
    """A collector that hands out the snapshots it is given, and counts its polls."""

    name = "feed"

    def __init__(self, *snaps: Snapshot) -> None:
        self.snaps: Iterator[Snapshot] = iter(snaps)
        self.polls = 0

    def collect(self) -> Snapshot:
        self.polls += 1
        return next(self.snaps)


def samples(exporter: Exporter) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(exporter.text().decode()):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def one(found: Samples, name: str, **labels: str) -> float:
    [value] = [v for got, v in found.get(name, []) if labels.items() <= got.items()]
    return value


def exported(*snaps: Snapshot, limits: Limits | None = None) -> Exporter:
    exporter = Exporter(Feed(*snaps), limits)
    for _ in snaps:
        assert exporter.poll() is None
    return exporter


def test_five_thousand_listeners_and_their_neighbours_stay_bounded() -> None:
    listeners = [listener(10_000 + i, holder(100_000 + i, f"srv{i}")) for i in range(5_000)]
    ports = tuple(PortStats(20_000 + i, time_wait=1 + i % 7, time_wait_last=30.0 + i % 50)
                  for i in range(3_000))
    destinations = tuple(
        ClientDestination(f"10.0.{i // 250}.{i % 250}", 443, time_wait=3_000 - i,
                          states={"ESTABLISHED": 2})
        for i in range(2_000)
    )
    client = ClientTimeWait(
        count=sum(d.time_wait for d in destinations), live=2 * len(destinations),
        destinations=destinations, ephemeral=(32768, 60999),
    )
    found = samples(exported(snapshot(*listeners, ports=ports, client=client)))

    assert one(found, "portscope_listeners") == 5_000  # all counted, not all labelled
    processes = found["portscope_listener_processes"]
    assert len(processes) == len(found["portscope_listener_info"]) == 500
    assert {int(labels["port"]) for labels, _ in processes} == set(range(10_000, 10_500))
    # TIME_WAIT: the 500 busiest ports, the rest in "other", nothing lost
    time_wait = found["portscope_time_wait_sockets"]
    assert len(time_wait) == 501
    assert sum(v for _, v in time_wait) == sum(p.time_wait for p in ports)
    sevens = sum(1 for p in ports if p.time_wait == 7)
    assert sum(1 for labels, v in time_wait if v == 7 and labels["port"] != "other") == sevens
    assert one(found, "portscope_time_wait_clears_seconds", port="other") == 79.0
    # destinations: the 20 busiest, the rest summed
    client_tw = found["portscope_client_time_wait_sockets"]
    assert len(client_tw) == len(found["portscope_ephemeral_ports_used"]) == 21
    assert one(found, "portscope_client_time_wait_sockets", destination="10.0.0.0:443") == 3_000
    assert sum(v for _, v in client_tw) == client.count
    assert sum(v for _, v in found["portscope_ephemeral_ports_used"]) == client.count + client.live
    assert one(found, "portscope_ephemeral_port_range_size") == 28_232
    assert len(found["portscope_listener_restarts_total"]) == 500  # counters at 0, bounded
    # 5 port-labelled metrics of at most 500 (+ other), 2 of 21 destinations, a few more
    series = sum(len(v) for v in found.values())
    assert series <= 5 * 501 + 2 * 21 + 30, series


def test_limits_are_the_options() -> None:
    listeners = [listener(9_000 + i, holder(50_000 + i)) for i in range(50)]
    ports = tuple(PortStats(30_000 + i, time_wait=10 + i) for i in range(50))
    found = samples(exported(snapshot(*listeners, ports=ports), limits=Limits(10, 3)))
    assert len(found["portscope_listener_processes"]) == 10
    top = {labels["port"] for labels, _ in found["portscope_time_wait_sockets"]}
    assert top == {*(str(30_000 + i) for i in range(40, 50)), "other"}
    assert one(found, "portscope_time_wait_sockets", port="other") == sum(range(10, 50))


HOSTILE = ("\x1b]0;pwned\x07", 'a"b\\c\nd{e="1"}', "\u202eevil", "x" * 500)


@pytest.mark.parametrize("name", HOSTILE)
def test_label_values_from_processes_are_escaped(name: str) -> None:
    sock = listener(8080, Holder(4242, name, name, (name,), 1.7e9))
    container = Container("abc", name, "img")
    proxied = Socket("tcp", "ipv4", "0.0.0.0", 8081, (holder(4243, "docker-proxy"),),
                     container=container)
    exporter = exported(snapshot(sock, proxied))
    body = exporter.text().decode()
    for raw in ("\x1b", "\x07", "\u202e", "\nd{"):
        assert raw not in body
    found = samples(exporter)
    info = {labels["port"]: labels for labels, _ in found["portscope_listener_info"]}
    wanted = shown(name)[:199] + "…" if len(name) > 200 else shown(name)
    assert info["8080"]["process"] == wanted and info["8080"]["user"] == wanted
    assert info["8081"]["container"] == wanted
    # OpenMetrics too (what Prometheus asks for)
    om, content_type = exporter.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert b"\x1b" not in om and om.endswith(b"# EOF\n")


def test_a_pre_fork_server_keeps_its_labels_as_workers_come_and_go() -> None:
    argv = ("/venv/bin/python3", "/venv/bin/gunicorn", "app:app")
    master = holder(500, "gunicorn", ppid=1, argv=argv)
    workers = [holder(501 + i, "gunicorn", ppid=500, argv=argv) for i in range(4)]
    first = snapshot(listener(8000, master, *workers[:2]))
    later = snapshot(listener(8000, master, *workers), seconds=1)
    exporter = exported(first)
    info_before = samples(exporter)["portscope_listener_info"]
    exporter = exported(first, later)
    found = samples(exporter)
    assert found["portscope_listener_info"] == info_before
    [(labels, _)] = info_before
    assert (labels["process"], labels["role"], labels["user"]) == ("gunicorn", "master", "alice")
    assert one(found, "portscope_listener_processes", port="8000") == 5


def test_hidden_sockets_and_their_user() -> None:
    hidden = Socket("tcp", "ipv4", "0.0.0.0", 22, (), uid=0)
    found = samples(exported(snapshot(hidden, hidden=1)))
    [(labels, _)] = found["portscope_listener_info"]
    assert (labels["process"], labels["role"], labels["user"]) == ("", "hidden", "root")
    assert one(found, "portscope_listener_processes", port="22") == 0
    assert one(found, "portscope_hidden_sockets") == 1


def test_events_and_restarts_are_counted_from_the_second_poll() -> None:
    argv = ("node", "server.js")
    a, b = listener(3000, holder(10, "node", argv=argv)), listener(4000, holder(11))
    snaps = [
        snapshot(a, b),  # the present: no events
        snapshot(b, seconds=1),  # 3000 stops
        snapshot(listener(3000, holder(12, "node", argv=argv)), b, seconds=2),  # back: restart
        snapshot(listener(3000, holder(13, "node", argv=argv)), b, listener(5000, holder(14)),
                 seconds=3),  # replaced between polls: restart; 5000 new: listen
    ]
    found = samples(exported(*snaps))
    assert one(found, "portscope_listener_events_total", event="listen") == 1
    assert one(found, "portscope_listener_events_total", event="unlisten") == 1
    assert one(found, "portscope_listener_events_total", event="restart") == 2
    assert one(found, "portscope_listener_restarts_total", port="3000", proto="tcp") == 2
    assert one(found, "portscope_listener_restarts_total", port="5000", proto="tcp") == 0


def test_restarts_beyond_max_ports_count_in_other() -> None:
    argv = ("srv",)
    first = snapshot(*(listener(p, holder(p, "srv", argv=argv)) for p in (1000, 2000, 3000)))
    gone = snapshot(seconds=1)
    back = snapshot(*(listener(p, holder(p + 1, "srv", argv=argv)) for p in (1000, 2000, 3000)),
                    seconds=2)
    found = samples(exported(first, gone, back, limits=Limits(max_ports=2)))
    restarts = {(labels["proto"], labels["port"]): v
                for labels, v in found["portscope_listener_restarts_total"]}
    assert restarts == {("tcp", "1000"): 1, ("tcp", "2000"): 1, ("other", "other"): 1}


class Failing:
    name = "failing"

    def __init__(self, good: Snapshot) -> None:
        self.good: Snapshot | None = good

    def collect(self) -> Snapshot:
        good, self.good = self.good, None
        if good is None:
            raise PermissionError("no /proc for you")
        return good


def test_a_failed_poll_is_counted_and_the_last_good_one_served() -> None:
    exporter = Exporter(Failing(snapshot(listener(8080, holder(1)))))
    assert exporter.poll() is None
    error = exporter.poll()
    assert error is not None and "PermissionError" in error
    found = samples(exporter)
    assert one(found, "portscope_collect_errors_total") == 1
    assert one(found, "portscope_listener_processes", port="8080") == 1
    assert one(found, "portscope_collect_duration_seconds_count") == 1


def test_before_any_good_poll_only_the_counters_are_served() -> None:
    failing = Failing(snapshot())
    failing.good = None
    exporter = Exporter(failing)
    assert exporter.poll() is not None
    found = samples(exporter)
    assert one(found, "portscope_collect_errors_total") == 1
    assert "portscope_listeners" not in found


def test_scrapes_never_poll_and_share_one_encoding_per_poll() -> None:
    feed = Feed(snapshot(listener(80, holder(1))), snapshot(listener(81, holder(2)), seconds=1))
    exporter = Exporter(feed)
    exporter.poll()
    plain = "text/plain;version=0.0.4"
    bodies = [exporter.exposition(plain) for _ in range(50)]
    assert feed.polls == 1
    assert all(body[0] is bodies[0][0] for body in bodies)  # encoded once
    assert bodies[0][1].startswith("text/plain; version=0.0.4")
    gz, _ = exporter.exposition(plain, gzipped=True)
    import gzip

    assert gzip.decompress(gz) == bodies[0][0]
    exporter.poll()
    after = exporter.exposition(plain)
    line = 'portscope_listener_processes{address="127.0.0.1",family="ipv4",port="%d"'
    assert (line % 81).encode() in after[0] and (line % 80).encode() not in after[0]


def test_a_histogram_of_poll_times() -> None:
    times = iter([0.0, 0.003, 1.0, 1.2, 2.0, 14.0])
    exporter = Exporter(
        Feed(snapshot(), snapshot(seconds=1), snapshot(seconds=2)), clock=lambda: next(times)
    )
    for _ in range(3):
        exporter.poll()
    found = samples(exporter)
    buckets = {labels["le"]: v for labels, v in found["portscope_collect_duration_seconds_bucket"]}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 2 and buckets["10.0"] == 2
    assert buckets["+Inf"] == 3
    assert one(found, "portscope_collect_duration_seconds_sum") == pytest.approx(12.203)
