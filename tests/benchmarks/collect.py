"""Benchmark of the Linux collector against psutil and `ss`, on loads built on loopback.

Run:  .venv/bin/python tests/benchmarks/collect.py [--runs 5] [--no-tui] [--soak 600]

Prints one markdown table (medians of --runs polls per tool and load; "portable path" is
portscope's psutil collector as macOS and Windows run it, taken on Linux with
PORTSCOPE_PORTABLE's mode, warm as in the monitor), then the TUI's CPU
share, peak RSS and key-press latency under the 20,000 TIME_WAIT load. Every load is built
on loopback (127.0.0.0/8), bounded, and torn down: the processes it starts are killed by
process group, its sockets closed; TIME_WAIT sockets expire by themselves within 60 s.
Not a test module: pytest collects test_*.py only. Linux, as root or not.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loads import TimeWaitMaker, count_time_wait, prefork_servers
from polling import proc_collector

from portscope.core import platform_path
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.collect.psutil_collector import PsutilCollector

TOOLS = (
    "portscope collector", "portable path", "psutil.net_connections", "`ss -tan`",
    "`ss -tanp`",
)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, psutil {psutil.__version__}"
    )


def _ss(*args: str) -> Callable[[], object]:
    return lambda: subprocess.run(["ss", *args], stdout=subprocess.DEVNULL, check=True)


def measure(runs: int) -> tuple[dict[str, float], ProcNetCollector, float]:
    """Median ms per tool, tools interleaved run by run so they see the same load."""
    collector = proc_collector()
    cold_started = time.perf_counter()
    collector.collect()  # the first poll fills the owner cache; a monitor polls warm
    cold = (time.perf_counter() - cold_started) * 1000
    portable = PsutilCollector()
    _portably(portable.collect)  # warm too: its process cache filled
    calls: dict[str, Callable[[], object]] = {
        TOOLS[0]: collector.collect,
        TOOLS[1]: lambda: _portably(portable.collect),
        TOOLS[2]: lambda: psutil.net_connections(kind="inet"),
        TOOLS[3]: _ss("-tan"),
        TOOLS[4]: _ss("-tanp"),
    }
    times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for _ in range(runs):
        for tool, call in calls.items():
            started = time.perf_counter()
            call()
            times[tool].append((time.perf_counter() - started) * 1000)
    return {tool: statistics.median(ts) for tool, ts in times.items()}, collector, cold


def _portably(call: Callable[[], object]) -> object:
    """`call` on the path macOS and Windows take (PORTSCOPE_PORTABLE=1): the psutil
    collector and psutil's process facts, no /proc of its own."""
    platform_path.choose(platform_path.PORTABLE)
    try:
        return call()
    finally:
        platform_path.choose(None)


def fmt(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def wait_for_time_wait_below(limit: int, timeout: float = 75.0) -> int:
    """TIME_WAIT lasts 60 s: let one load drain before the next is built."""
    deadline = time.monotonic() + timeout
    while (now := count_time_wait()) > limit and time.monotonic() < deadline:
        time.sleep(2)
    return now


def run(runs: int, tui_seconds: float | None, notes: list[str]) -> None:
    rows: list[tuple[str, dict[str, float]]] = []
    tui_lines: list[str] = []

    def record(name: str) -> None:
        before = count_time_wait()
        medians, collector, cold = measure(runs)
        after = count_time_wait()
        rows.append((name, medians))
        notes.append(
            f"{name}: {before:,} -> {after:,} TIME_WAIT on the machine during the runs; "
            f"first (cold) poll {fmt(cold)}; full fd walks after it: {collector.full_walks - 1}"
        )
        print(f"  measured {name}", file=sys.stderr, flush=True)

    baseline = wait_for_time_wait_below(1000)  # leftovers of an earlier run, if any
    record("quiet")
    maker = TimeWaitMaker()
    try:
        maker.make(20_000)
        if tui_seconds is not None:
            # First, on the fresh load: it lasts the 60 s, and the load keeper's refill
            # when it expires leaves a fresh 20,000 for the table rows below.
            from tui_load import report_tui

            tui_lines = report_tui(maker, tui_seconds)
            print("  measured the TUI", file=sys.stderr, flush=True)
        record("20,000 TIME_WAIT")
        with prefork_servers(300, fds=250, listeners=8):
            record("20,000 TIME_WAIT + 300 processes sharing listeners")
    finally:
        maker.close()
    drained = wait_for_time_wait_below(baseline + 1000)
    big = TimeWaitMaker()
    try:
        taken = big.make(100_000)
        notes.append(f"100,000 TIME_WAIT built in {taken:.1f} s (on top of {drained:,} left)")
        record("100,000 TIME_WAIT")
    finally:
        big.close()

    print(f"\nMachine: {machine()}\n")
    print("| load | " + " | ".join(TOOLS) + " |")
    print("|---" * (len(TOOLS) + 1) + "|")
    for name, medians in rows:
        print(f"| {name} | " + " | ".join(fmt(medians[t]) for t in TOOLS) + " |")
    print()
    for note in notes:
        print(f"- {note}")
    if tui_lines:
        print("\nTUI under the 20,000 TIME_WAIT load:\n")
        for line in tui_lines:
            print(f"- {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="polls per tool and load")
    parser.add_argument("--no-tui", action="store_true", help="skip the TUI measurement")
    parser.add_argument("--tui-seconds", type=float, default=60.0)
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="run the churn soak for this long instead of the benchmark")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("this benchmark reads Linux's socket tables", file=sys.stderr)
        return 2
    if args.soak:
        from soak import soak

        return soak(args.soak)
    notes = [
        f"medians of {args.runs} polls per tool; tools interleaved; the collector polls warm "
        "(owner cache filled by a first poll, as in the TUI)",
        "net.ipv4.tcp_max_tw_buckets left at "
        + Path("/proc/sys/net/ipv4/tcp_max_tw_buckets").read_text().strip()
        + " (enough for 100,000; not changed)",
    ]
    run(args.runs, None if args.no_tui else args.tui_seconds, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
