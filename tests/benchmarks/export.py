"""Benchmark of `portscope export`: what a scrape costs next to a warm poll under 20,000
TIME_WAIT and 300 processes, and the exporter's RSS over a soak with churn.

Run:  .venv/bin/python tests/benchmarks/export.py [--runs 30] [--soak 600]

Prints two markdown tables. The first: medians over --runs of a warm poll (the collector
alone, and the exporter's whole poll: collect, events, metric families), of encoding one
poll's metrics (done once per poll and format, then kept), and of a scrape of a real
`portscope export` process: the HTTP round trip a client sees and the CPU the exporter
spends per scrape (measured with --interval 3600, so no poll runs meanwhile). The second:
a real exporter polling every second and scraped every second (as Prometheus would) for
--soak seconds beside 300 processes and ~20,000 server-side TIME_WAIT (topped up as they
expire), while listeners open and close, servers start, restart on their port and stop,
and bursts of client TIME_WAIT hit new destinations; its RSS is sampled every 5 s, and its
high-water mark every second, to say when the peak came, what the soak did in that second
and how many processes the machine ran (another job's raise the exporter's RSS). Every
load is built on loopback and torn down; TIME_WAIT expires by itself within 60 s. Not a
test module: pytest collects test_*.py only. Linux.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from collect import machine  # noqa: E402
from loads import TimeWaitMaker, count_time_wait, prefork_servers  # noqa: E402
from polling import monitor_collector  # noqa: E402

from portscope.core.export.exporter import Exporter  # noqa: E402
from portscope.core.roles.published import WithContainers  # noqa: E402

PLAIN = "text/plain;version=0.0.4"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"
TICKS = os.sysconf("SC_CLK_TCK")
TIME_WAIT = 20_000  # the soak's own live TIME_WAIT (each lasts 60 s: topped up as they go)
RAMP = 2_000  # at most this many made a second, so they expire spread out, not at once


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def median_time(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextlib.contextmanager
def exporter_process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real `portscope export` on a free loopback port; its process and URL."""
    run_dir = Path(tempfile.mkdtemp(prefix="portscope-bench-"))
    os.chmod(run_dir, 0o700)
    log = run_dir / "export.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portscope", "export", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving " not in (text := log.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the exporter did not start: {text}")
            time.sleep(0.05)
        yield proc, text.split("serving ", 1)[1].split()[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        for path in run_dir.rglob("*"):
            if path.is_file():
                path.unlink()
        for path in sorted(run_dir.rglob("*"), reverse=True):
            path.rmdir()
        run_dir.rmdir()


def scrape(url: str, accept: str = PLAIN, gzipped: bool = False) -> bytes:
    headers = {"Accept": accept, **({"Accept-Encoding": "gzip"} if gzipped else {})}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        body: bytes = r.read()
        return body


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def machine_processes() -> int:
    """Processes on the machine: the exporter reads every one's fd table, so another job's
    thousands of processes raise its RSS (legitimately) during a soak here."""
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def machine_time_wait() -> int:
    """TIME_WAIT sockets on the machine (sockstat's count: cheap even at 100,000); other
    work on a shared machine adds to the load built here."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def cost_table(runs: int) -> list[str]:
    rows: list[tuple[str, str]] = []
    notes: list[str] = []
    maker = TimeWaitMaker()
    try:
        built = maker.make(20_000)
        with prefork_servers(300, fds=250, listeners=8):
            notes.append(f"20,000 TIME_WAIT built in {built:.1f} s; "
                         f"{count_time_wait():,} TIME_WAIT on the machine")
            low = high = machine_time_wait()
            collector = WithContainers(monitor_collector())
            exporter = Exporter(collector)
            exporter.poll()  # cold: fills the owner cache, as the exporter's first poll does
            collector.collect()
            rows.append(("warm poll: the collector alone", ms(median_time(collector.collect,
                                                                         runs))))
            rows.append(("warm poll: the exporter's (collect, events, families)",
                         ms(median_time(exporter.poll, runs))))

            def encode(accept: str) -> Callable[[], object]:
                def once() -> object:
                    exporter._encoded.clear()  # as right after a poll
                    return exporter.exposition(accept)
                return once

            rows.append(("encoding one poll, text format (once per poll)",
                         ms(median_time(encode(PLAIN), runs))))
            rows.append(("encoding one poll, OpenMetrics (once per poll)",
                         ms(median_time(encode(OPENMETRICS), runs))))
            size = len(exporter.exposition(PLAIN)[0])
            series = sum(1 for line in exporter.text().splitlines()
                         if line and not line.startswith(b"#"))
            notes.append(f"one poll's exposition: {series:,} series, {size / 1024:.1f} KB "
                         "(text format)")
            with exporter_process("--interval", "3600") as (proc, url):
                for accept in (PLAIN, OPENMETRICS):
                    scrape(url, accept)  # the one encoding of this poll
                rows.append(("scrape, HTTP round trip, text format",
                             ms(median_time(lambda: scrape(url), runs))))
                rows.append(("scrape, HTTP round trip, OpenMetrics + gzip (as Prometheus)",
                             ms(median_time(lambda: scrape(url, OPENMETRICS, True), runs))))
                many = max(runs, 200)
                before = cpu_seconds(proc.pid)
                for _ in range(many):
                    scrape(url, OPENMETRICS, True)
                spent = (cpu_seconds(proc.pid) - before) / many
                rows.append((f"scrape, exporter CPU per scrape (over {many})", ms(spent)))
            now = machine_time_wait()
            notes.append(f"TIME_WAIT on the machine while measuring: {min(low, now):,} to "
                         f"{max(high, now):,}")
    finally:
        maker.close()
    lines = ["| under 20,000 TIME_WAIT + 300 processes sharing 8 listeners | median |",
             "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return [*lines, "", *(f"- {n}" for n in notes)]


RESTARTABLE = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("ready", flush=True)
time.sleep(3600)
"""


def start_restartable(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(RESTARTABLE), str(port)], stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def client_burst(count: int) -> None:
    """`count` client TIME_WAIT sockets towards a new destination (the client closes
    first), so destinations come and go as a crawler's do."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        for _ in range(count):
            client = socket.create_connection(server.getsockname())
            accepted, _ = server.accept()
            client.close()
            accepted.recv(1)
            accepted.close()


def soak_table(seconds: float) -> list[str]:
    random.seed(20)
    samples: list[tuple[float, float, float]] = []  # (elapsed, rss, hwm)
    time_wait: list[int] = []
    processes: list[int] = []
    # Where the high-water mark last rose (read every second): (elapsed, hwm, processes and
    # TIME_WAIT on the machine, what the soak did in that second).
    peak: tuple[float, float, int, int, list[str]] = (0.0, 0.0, 0, 0, [])
    scrapes = failed = 0
    socks: list[socket.socket] = []
    restartable: dict[int, subprocess.Popen[str]] = {}
    maker = TimeWaitMaker()
    try:
        made: list[tuple[float, int]] = []  # (when, how many): ours live 60 s each
        with prefork_servers(300, fds=250, listeners=8), \
                exporter_process("--interval", "1") as (proc, url):
            started = time.monotonic()
            next_sample = 0.0
            while (elapsed := time.monotonic() - started) < seconds:
                tick = time.monotonic()
                did: list[str] = []
                for _ in range(random.randint(0, 3)):  # listeners come and go
                    if len(socks) < 40:
                        s = socket.socket()
                        s.bind(("127.0.0.1", 0))
                        s.listen(8)
                        socks.append(s)
                for _ in range(random.randint(0, 3)):
                    if socks:
                        socks.pop(random.randrange(len(socks))).close()
                if random.random() < 0.2 and len(restartable) < 5:  # a server starts
                    with socket.socket() as probe:
                        probe.bind(("127.0.0.1", 0))
                        port = probe.getsockname()[1]
                    restartable[port] = start_restartable(port)
                    did.append("a server started")
                if random.random() < 0.3 and restartable:  # one restarts on its port
                    port = random.choice(sorted(restartable))
                    stop(restartable[port])
                    restartable[port] = start_restartable(port)
                    did.append("a server restarted")
                if random.random() < 0.1 and restartable:  # one stops for good
                    stop(restartable.pop(random.choice(sorted(restartable))))
                    did.append("a server stopped")
                made = [(t, n) for t, n in made if tick - t < 61.0]
                wanted = min(TIME_WAIT - sum(n for _, n in made), RAMP)
                if wanted > 0:
                    maker.make(wanted)
                    made.append((tick, wanted))
                    did.append(f"{wanted:,} server TIME_WAIT made")
                if random.random() < 0.3:
                    burst = random.randint(20, 200)
                    client_burst(burst)
                    did.append(f"{burst} client TIME_WAIT to a new destination")
                try:
                    scrape(url, OPENMETRICS, True)
                    scrapes += 1
                except OSError:
                    failed += 1
                rss, hwm = rss_mb(proc.pid)
                if hwm > peak[1]:  # rose during this second (its poll, or a scrape)
                    peak = (elapsed, hwm, machine_processes(), machine_time_wait(), did)
                if elapsed >= next_sample:
                    samples.append((elapsed, rss, hwm))
                    time_wait.append(machine_time_wait())
                    processes.append(machine_processes())
                    next_sample += 5.0
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
            samples.append((time.monotonic() - started, *rss_mb(proc.pid)))
            body = scrape(url).decode()
    finally:
        for s in socks:
            s.close()
        for p in restartable.values():
            stop(p)
        maker.close()
    counters = {line.split()[0]: line.split()[1] for line in body.splitlines()
                if line.startswith(("portscope_listener_events_total",
                                    "portscope_collect_duration_seconds_count",
                                    "portscope_collect_errors_total"))}
    first = next(s for s in samples if s[0] >= 10.0) if seconds > 20 else samples[0]
    half = min(samples, key=lambda s: abs(s[0] - seconds / 2))
    last = samples[-1]
    lines = [
        f"| soak: {seconds:.0f} s, a poll and a scrape a second | RSS |",
        "|---|---|",
        f"| after {first[0]:.0f} s | {first[1]:.1f} MB |",
        f"| at {half[0]:.0f} s | {half[1]:.1f} MB |",
        f"| at the end ({last[0]:.0f} s) | {last[1]:.1f} MB |",
        f"| peak (VmHWM) | {max(s[2] for s in samples):.1f} MB |",
        f"| growth in the second half | {last[1] - half[1]:+.1f} MB |",
        "",
        f"- {scrapes} scrapes answered, {failed} failed",
        f"- TIME_WAIT on the machine during the soak: {min(time_wait):,} to {max(time_wait):,}",
    ]
    lines += [f"- {name} = {value}" for name, value in sorted(counters.items())]
    at, _, procs, tw, did = peak
    lines += [
        f"- processes on the machine during the soak: {min(processes):,} to {max(processes):,} "
        "(the soak's own are ~307: the exporter reads every process's fd table, so another "
        "job's processes raise its RSS)",
        f"- the peak was reached in the second after {at:.0f} s, with {procs:,} processes and "
        f"{tw:,} TIME_WAIT on the machine; the soak did then: {'; '.join(did) or 'nothing'}",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timings per median")
    parser.add_argument("--soak", type=float, default=600.0, metavar="SECONDS",
                        help="length of the soak (default 600; 0 skips it)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost table")
    args = parser.parse_args()
    out = [f"Machine: {machine()}", ""]
    if not args.no_cost:
        out += [*cost_table(args.runs), ""]
        print("  measured the costs", file=sys.stderr, flush=True)
    if args.soak > 0:
        if not args.no_cost:  # the costs' 20,000 TIME_WAIT expire first: 60 s
            deadline = time.monotonic() + 75
            while machine_time_wait() > 5_000 and time.monotonic() < deadline:
                time.sleep(2)
        out += soak_table(args.soak)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
