"""The TUI under the 20,000 TIME_WAIT load: CPU share and peak RSS of the real `portscope`
in tmux at 1 Hz, and key-press latency of PortscopeApp driven headless while polls run.

Run by collect.py; `python tui_load.py keys N` is the key-latency child it starts (a child,
so the load-keeping thread of the parent does not compete with the app for the GIL).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loads import TimeWaitMaker, count_time_wait
from polling import proc_collector

VENV_BIN = Path(sys.executable).parent
LOAD = 20_000


class LoadKeeper(threading.Thread):
    """Keeps about LOAD TIME_WAIT sockets alive during a measurement, refilling twice a
    second whatever expired (each lasts 60 s; a burst built in 1 s expires in 1 s)."""

    def __init__(self, maker: TimeWaitMaker) -> None:
        super().__init__(daemon=True)
        self._maker = maker
        self._halt = threading.Event()
        self.samples: list[int] = []

    def run(self) -> None:
        while not self._halt.wait(0.5):
            now = count_time_wait()
            self.samples.append(now)
            if now < LOAD:
                self._maker.make(LOAD - now)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _portscope_pid(pane_pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for proc in [psutil.Process(pane_pid), *psutil.Process(pane_pid).children(True)]:
            if any(part.endswith("portscope") for part in proc.cmdline()[:2]):
                return proc.pid
        time.sleep(0.1)
    raise RuntimeError("portscope did not start in tmux")


def sample_tmux(seconds: float) -> tuple[float, float, float]:
    """(CPU % of one core, peak RSS MB, first-sample RSS MB) of `portscope` in tmux."""
    session = f"portscope-bench-{os.getpid()}"
    cmd = f"exec {VENV_BIN / 'portscope'}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", cmd], check=True
    )
    try:
        pane = subprocess.run(
            ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        proc = psutil.Process(_portscope_pid(int(pane)))
        time.sleep(3)  # start-up (imports, first paint) is not the steady state
        cpu0 = sum(proc.cpu_times()[:2])
        started = time.monotonic()
        first_rss = peak = proc.memory_info().rss
        while time.monotonic() - started < seconds:
            time.sleep(1)
            peak = max(peak, proc.memory_info().rss)
        share = (sum(proc.cpu_times()[:2]) - cpu0) / (time.monotonic() - started) * 100
        return share, peak / 2**20, first_rss / 2**20
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


async def _key_latencies(presses: int) -> list[float]:
    """Key event in -> first frame painted after the cursor moved, in ms.

    Pilot.press waits for the whole process to go idle (poll thread included), which is
    not what a person sees, so the key goes in through the driver as a terminal's would,
    and a spy on App._display (where each composed frame is handed to the terminal) stamps
    the first frame after the cursor moved.
    """
    from textual import events

    from portscope.tui.app import PortscopeApp

    # A few rows of our own to move the cursor over, whatever else the machine has open.
    rows = [socket.create_server(("127.0.0.1", 0)) for _ in range(5)]
    app = PortscopeApp(proc_collector(), interval=1.0)
    frames: list[float] = []
    display = app._display

    def spy(screen: object, renderable: object) -> None:
        display(screen, renderable)  # type: ignore[arg-type]
        if renderable is not None:
            frames.append(time.perf_counter())

    app._display = spy  # type: ignore[method-assign]
    latencies: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.main.table
        deadline = time.monotonic() + 15
        while table.row_count < 3 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        if table.row_count < 3:
            raise RuntimeError("no rows to move the cursor over")
        driver = app._driver
        assert driver is not None
        for i in range(presses):
            # Off the poll's beat (0.37 s steps), so presses land before, during and after.
            await asyncio.sleep(0.37)
            key, before = ("down" if i % 2 == 0 else "up"), table.cursor_row
            started = time.perf_counter()
            driver.send_message(events.Key(key, None))
            while table.cursor_row == before:
                await asyncio.sleep(0.0005)
            moved = time.perf_counter()
            while not frames or frames[-1] < moved:
                await asyncio.sleep(0.0005)
            painted = next(t for t in frames if t >= moved)
            latencies.append((painted - started) * 1000)
    for sock in rows:
        sock.close()
    return latencies


def key_latency(presses: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, __file__, "keys", str(presses)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return [float(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def report_tui(maker: TimeWaitMaker, seconds: float, presses: int = 40) -> list[str]:
    keeper = LoadKeeper(maker)
    keeper.start()
    try:
        if shutil.which("tmux"):
            share, peak, first = sample_tmux(seconds)
            cpu = (
                f"TUI (`portscope` in tmux, 160x48, 1 Hz) over {seconds:.0f} s under the load: "
                f"{share:.1f}% of one core, peak RSS {peak:.1f} MB ({first:.1f} MB at start)"
            )
        else:
            cpu = "TUI CPU/RSS: not measured (no tmux)"
        lat = key_latency(presses)
    finally:
        keeper.stop()
    qs = statistics.quantiles(lat, n=20)
    return [
        f"TIME_WAIT on the machine during the TUI runs (sampled every 0.5 s): min "
        f"{min(keeper.samples):,}, median {statistics.median(keeper.samples):,.0f}, max "
        f"{max(keeper.samples):,}",
        cpu,
        f"key press -> cursor moved and repainted, {len(lat)} presses while polls ran "
        f"(headless PortscopeApp + real collector): median {statistics.median(lat):.1f} ms, "
        f"p95 {qs[18]:.1f} ms, max {max(lat):.1f} ms",
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["keys"]:
    print(json.dumps(asyncio.run(_key_latencies(int(sys.argv[2])))))
