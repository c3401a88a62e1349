"""What history costs: memory of 1,000 ports' trends over 10 minutes and of a full event
log, and the time of one update, one listener diff, one table's sparklines and one details
trend.

    .venv/bin/python tests/benchmarks/history.py [PORTS]

Memory is what tracemalloc sees allocated by the TrendBook (and EventLog) after the rings
are full and have wrapped around; times are medians of a few runs on this machine.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

from portscope.core.history.events import ListenerEvent, ListenerWatch
from portscope.core.history.log import EventLog
from portscope.core.history.trends import TrendBook
from portscope.core.model import Holder, PortStats, Snapshot, Socket
from portscope.core.record import replace

T0 = datetime(2026, 11, 22, tzinfo=timezone.utc)


def snapshots(ports: int) -> tuple[Snapshot, Snapshot]:
    holder = Holder(10, "server", "alice", ("server", "--port", "8080"), 1.0, ppid=1)
    sockets = tuple(Socket("tcp", "ipv4", "127.0.0.1", 10000 + i, (holder,)) for i in range(ports))
    stats = tuple(
        PortStats(10000 + i, time_wait=300 + i, states={"ESTABLISHED": 1000 + i})
        for i in range(ports)
    )
    first = Snapshot(T0, sockets, stats)
    other = replace(first, ports=tuple(replace(p, time_wait=p.time_wait + 7) for p in stats))
    return first, other


def fill(book: TrendBook, pair: tuple[Snapshot, Snapshot], samples: int) -> None:
    for second in range(samples):
        snap = pair[second % 2]
        book.update(replace(snap, taken_at=T0 + timedelta(seconds=second)))


def median_ms(func: object, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    ports = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    pair = snapshots(ports)

    tracemalloc.start()
    book = TrendBook()
    fill(book, pair, book.capacity + 10)
    trend_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    holder = Holder(10, "server", "alice", ("server", "--port", "8080"), 1.0, ppid=1)
    tracemalloc.start()
    log = EventLog()
    log.add(
        ListenerEvent(T0, "unlisten", "tcp", "ipv4", "127.0.0.1", 8080 + i % 100, (holder,),
                      listened_for=float(i))
        for i in range(5000)
    )
    log_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    clock = [book.capacity + 10]

    def one_update() -> None:
        clock[0] += 1
        book.update(replace(pair[0], taken_at=T0 + timedelta(seconds=clock[0])))

    def sparklines() -> None:
        for port in range(10000, 10000 + ports):
            book.sparkline(port, 10)

    watch = ListenerWatch()
    watch.update(pair[0])

    def one_diff() -> None:
        clock[0] += 1
        watch.update(replace(pair[clock[0] % 2], taken_at=T0 + timedelta(seconds=clock[0])))

    print(f"ports: {ports}, samples per series: {book.capacity} (step {book.step:g} s)")
    print(f"trends memory: {trend_bytes / 1e6:.1f} MB")
    print(f"event log memory ({len(log)} events kept, {log.dropped} dropped): "
          f"{log_bytes / 1e6:.2f} MB (the holders are shared with the snapshots in real use)")
    print(f"trends update: {median_ms(one_update):.2f} ms")
    print(f"listener diff, {ports} listeners, nothing changed: {median_ms(one_diff):.2f} ms")
    print(f"sparklines for every port (10 cells): {median_ms(sparklines):.2f} ms")
    print(f"one details trend: {median_ms(lambda: book.trend(10000)):.3f} ms")


if __name__ == "__main__":
    main()
