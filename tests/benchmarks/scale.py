"""The monitor at load-test scale (issue 21): four loads, one markdown table each.

Run (root: each scenario runs in a private network namespace of its own):

    .venv/bin/python tests/benchmarks/scale.py --tree /tmp/scale-old --json before.json
    .venv/bin/python tests/benchmarks/scale.py --json after.json
    .venv/bin/python tests/benchmarks/scale.py --merge before.json after.json

`--tree PATH` is the portscope measured: `PATH/.venv/bin/python` runs the headless app and
`PATH/.venv/bin/portscope` the real console script (default: this checkout). One run prints
one tree's column; `--merge` prints the before/after tables. `--scenario a,c` runs some of
them; `--quick` (5 presses, 20 s of polls, 10 s of CPU, 3 runs, no pause) is for debugging.

The scenarios, each built on loopback inside `unshare -n` (lo up, nothing else in it, so the
counts are exact and nobody else's sockets are touched) and torn down with the namespace:
  a  20,000 client-side TIME_WAIT towards 20 server ports (loads.ClientTimeWait)
  b  5,000 TCP listeners in one process + 20,000 server-side TIME_WAIT
  c  2,000 processes sharing 20 listeners (loads.prefork_servers) + 20,000 TIME_WAIT
  d  100,000 server-side TIME_WAIT
TIME_WAIT is kept topped up (it lasts 60 s) by loads.TimeWaitKeeper. A process named
`humidfog` holds three listeners on ports 1901-1903 in every scenario: the first rows of the
table (sorted by port), what the `/` filter looks for, and what tells the tmux pane's first
frame with rows.

What is measured, per scenario:
  1. keys in the real PortscopeApp with the real default collector, headless in a child
     process (probe_keys.py's technique: keys go in through the driver, a spy on
     App._display stamps each frame with what the screen showed): Down, PageDown, the `/`
     filter's Enter, Esc, `b` (then Esc), `k` (then `n`; nothing is ever confirmed, and every
     process of the load must be alive afterwards). Key -> first frame with the answer.
  2. polls applied to the screen per 10 s window with no dialog open (minimum over windows);
  3. the collector's collect() as the poller calls it, over the same seconds;
  4. the real `portscope` in tmux (private socket, 160x48): first frame with rows, with an
     empty owner store and with the one the first run left; CPU share and peak RSS;
  5. `list --json` and `check PORT --json` as whole processes against the psutil one-liner,
     and one `list --json` once the owner store is over 35 s old.
Every wait has a deadline: a key that does not answer is reported as "> 15 s", not a crash.
Not a test module (pytest collects test_*.py only); Linux, as root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loads import (
    ClientTimeWait,
    TimeWaitKeeper,
    TimeWaitMaker,
    many_listeners,
    named_listeners,
    prefork_servers,
)
from polling import monitor_collector

CHECKOUT = Path(__file__).resolve().parents[2]
SIZE = (160, 48)
MARK = "humidfog"  # none of its letters is a key of the main screen, should one miss the input
MARK_PORTS = (1901, 1902, 1903)  # below every other port here: the table's first rows
OFF_BEAT = 0.37  # s before a press: presses land before, during and after the 1 s polls
FIRST_POLLS_TIMEOUT = 90.0
REST_TIMEOUT = 60.0  # s to get back to the main screen, unfiltered
WINDOW = 10.0  # s: polls shown are counted per window
PANE_TIMEOUT = 30.0  # s: the tmux pane's first frame
RAMP = 10.0  # s to build a load's TIME_WAIT in
STALL = 60.0  # s without a heartbeat from the app's child: its UI thread is blocked
PSUTIL_LINER = "import psutil; psutil.net_connections('inet')"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    time_wait: int
    listeners: int = 0  # one process holding that many (b)
    processes: int = 0  # a pre-fork server of that many sharing 20 listeners (c)
    clients: bool = False  # client-side TIME_WAIT towards 20 server ports (a)
    list_goal: float | None = None  # `list --json`: at most this x the one-liner
    collect_goal: float | None = None  # ms: no poll over this


SCENARIOS = {
    s.name: s for s in (
        Scenario("a", "20,000 client TIME_WAIT towards 20 server ports", 20_000, clients=True),
        Scenario("b", "5,000 listeners + 20,000 TIME_WAIT", 20_000, listeners=5_000,
                 list_goal=1.0),
        Scenario("c", "2,000 processes sharing 20 listeners + 20,000 TIME_WAIT", 20_000,
                 processes=2_000, list_goal=0.5, collect_goal=100.0),
        Scenario("d", "100,000 server-side TIME_WAIT", 100_000),
    )
}


# -- measures, goals, numbers ----------------------------------------------------------------


@dataclass
class Measure:
    id: str  # stable, for --merge
    label: str
    text: str
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measured


def ms_text(ms: float | None) -> str:
    if ms is None or math.isinf(ms):
        return "-"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    if any(math.isinf(v) for v in values):  # interpolating with inf gives nan
        ranked = sorted(values)
        return ranked[min(len(ranked) - 1, math.ceil(0.95 * len(ranked)) - 1)]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def latency_measure(
    mid: str, label: str, result: dict[str, Any] | None, goal_ms: float, timeout: float
) -> Measure:
    """median / p95 / max of a key's presses; a press that timed out counts as infinite."""
    goal = f"p95 < {goal_ms:g} ms"
    if not result or not result.get("ms"):
        why = (result or {}).get("note")
        text = f"not measured ({why})" if why else "not measured"
        return Measure(mid, label, text, goal, False if why else None)
    values = [math.inf if v is None else v for v in result["ms"]]
    over = f"> {timeout:g} s"
    cells = [ms_text(v) if not math.isinf(v) else over
             for v in (statistics.median(values), p95(values), max(values))]
    text = f"{cells[0]} / {cells[1]} / {cells[2]} ({len(values)})"
    if result.get("note"):
        text += f"; {result['note']}"
    return Measure(mid, label, text, goal, p95(values) < goal_ms)


# -- child: the real app, headless (runs under the measured tree's python) -------------------


class Frame(NamedTuple):
    t: float  # perf_counter when handed to the terminal
    screen: str  # "main", "other", or a dialog's state (dialog_state)
    cursor: int = -1  # main screen only
    rows: int = -1
    filter: str = ""


class Stuck(Exception):
    """The app did not come back to its main screen: the remaining keys are not measured."""


@dataclass
class Stamps:
    frames: list[Frame] = field(default_factory=list)
    applied: list[float] = field(default_factory=list)  # a poll applied to the screen
    collects: list[tuple[float, float]] = field(default_factory=list)  # (start, ms), poller's


def _text_of(content: object) -> str | None:
    """The plain text of a Static's content (None for a Group etc.)."""
    from rich.text import Text
    from textual.content import Content

    if isinstance(content, Text | Content):
        return content.plain
    return content if isinstance(content, str) else None


def dialog_state(screen: Any) -> str:
    """"b:answer" or "b:wait" for the bind panel, "k:answer", "k:wait" or "k:other" for the
    kill dialog, else "other". probe_keys._state's reading, restated: this runs under the
    measured tree's python, and probe_keys imports collect.py, which imports today's app."""
    from textual.widgets import Static

    from portscope.tui.bind_panel import BindPanel
    from portscope.tui.kill_modal import KillModal

    if isinstance(screen, BindPanel):
        # #bind-verdict stays empty until the probe's answer, set with `verdict`.
        words = _text_of(screen.query_one("#bind-verdict", Static).content)
        return "b:answer" if screen.verdict is not None and words else "b:wait"
    if isinstance(screen, KillModal):
        words = _text_of(screen.query_one("#kill-body", Static).content) or ""
        if screen.stage == "planning" or words.startswith("Looking at the processes"):
            return "k:wait"
        return "k:answer" if screen.stage == "confirm" and screen.plan is not None else "k:other"
    return "other"


def frame_of(t: float, screen: Any, main: Any) -> Frame:
    if screen is not main:
        return Frame(t, dialog_state(screen))
    table = main.table
    return Frame(t, "main", table.cursor_row, table.row_count, main.row_filter.text)


def instrumented_app(stamps: Stamps) -> Any:
    """What run_tui builds (the monitor's source, docker containers named), with its polls,
    their application to the screen and its frames stamped."""
    from portscope.core.roles.published import WithContainers
    from portscope.tui.app import PortscopeApp

    source = WithContainers(monitor_collector())
    collect = source.collect

    def timed_collect(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return collect(*args, **kwargs)
        finally:  # the poller's polls only, not `b`'s and `k`'s questions about one port
            if threading.current_thread().name == "portscope-poller":
                stamps.collects.append((started, (time.perf_counter() - started) * 1000))

    source.collect = timed_collect  # type: ignore[method-assign]
    app = PortscopeApp(source, interval=1.0)
    main = app.main
    apply = main._apply

    def counted(*args: Any, **kwargs: Any) -> None:
        apply(*args, **kwargs)
        stamps.applied.append(time.perf_counter())

    main._apply = counted  # type: ignore[method-assign]
    display = app._display

    def spy(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None:
            try:
                frame = frame_of(time.perf_counter(), screen, main)
            except Exception:  # a dialog half built: this frame shows no answer
                frame = Frame(time.perf_counter(), "other")
            stamps.frames.append(frame)

    app._display = spy  # type: ignore[method-assign]
    return app


class Probe:
    """Keys into the app through its driver, and the frames that answer them."""

    def __init__(self, app: Any, stamps: Stamps, timeout: float) -> None:
        self.app, self.stamps, self.timeout = app, stamps, timeout
        self.doing = "first polls"  # what is being measured (the heartbeat says it)
        self.main = app.main
        self.table = app.main.table

    async def until(
        self, check: Callable[[], bool], timeout: float, every: float = 0.0005
    ) -> bool:
        """Whether `check` held within `timeout` s, asked every `every` s (a check that
        walks the table is asked seldom: it shares the event loop with the app)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(every)
        return True

    def send(self, key: str, character: str | None) -> float:
        from textual import events

        driver = self.app._driver
        assert driver is not None
        started = time.perf_counter()
        driver.send_message(events.Key(key, character))
        return started

    async def timed(
        self, key: str, character: str | None, answer: Callable[[Frame], bool]
    ) -> tuple[float | None, Frame | None]:
        """Key in -> the first frame for which `answer` holds, in ms (None: not within the
        timeout)."""
        frames = self.stamps.frames
        seen = len(frames)
        started = self.send(key, character)
        deadline = time.monotonic() + self.timeout
        while True:
            while seen < len(frames):
                frame = frames[seen]
                seen += 1
                if answer(frame):
                    took = (frame.t - started) * 1000
                    return (took if took <= self.timeout * 1000 else None), frame
            if time.monotonic() > deadline:
                return None, None
            await asyncio.sleep(0.0005)

    def _filter_open(self) -> bool:
        return bool(self.main.query_one("#filter").display)

    def _at_rest(self) -> bool:
        return (self.app.screen is self.main and not self._filter_open()
                and not self.main.row_filter.text)

    async def rest(self) -> None:
        """Back on the main screen, no filter applied nor open, as before any press (a
        late answer to a key that timed out is undone here)."""
        deadline = time.monotonic() + REST_TIMEOUT
        tries = 0
        while not self._at_rest():
            if time.monotonic() > deadline:
                raise Stuck(f"not back on the main screen within {REST_TIMEOUT:g} s: "
                            f"{self._describe(self.app.screen)}")
            # The kill dialog is answered `n`; one that offers nothing to confirm only
            # closes, on Esc. Neither key ever confirms (y and Enter do).
            modal = type(self.app.screen).__name__ == "KillModal"
            if modal and tries % 2 == 0:
                self.send("n", "n")
            else:
                self.send("escape", "\x1b")
            tries += 1
            await self.until(self._at_rest, 10.0)  # a busy app: one key, not a burst

    @staticmethod
    def _describe(screen: Any) -> str:
        """What a screen that stays up shows, for the report."""
        from textual.widgets import Static

        words = [type(screen).__name__, str(getattr(screen, "stage", ""))]
        for static in screen.query(Static):
            text = _text_of(static.content)
            if text and text.strip():
                words.append(text.strip())
        return " | ".join(w for w in words if w)[:400]

    async def home(self) -> None:
        """The cursor on the first row (a marker row: no row can come above it)."""
        frames = self.stamps.frames
        seen = len(frames)
        self.table.move_cursor(row=0)
        painted = await self.until(
            lambda: any(f.cursor == 0 for f in frames[seen:]), REST_TIMEOUT
        )
        if not painted:
            raise Stuck("the cursor did not go back to the first row")

    async def select(self, port: int) -> str | None:
        """The cursor on the TCP listener of `port`, its details looked up (as for a person
        who looked at the row before pressing); a note when it could not be."""
        def row_key() -> str | None:
            for key, row in self.table.rows_shown.items():
                if row.port == port and row.proto == "tcp" and row.socket is not None:
                    return str(key)
            return None

        if not await self.until(lambda: row_key() is not None, self.timeout, every=0.05):
            return f"no row for port {port}"
        wanted = row_key()
        selected = self.main.selected_row()
        if selected is None or selected.key != wanted:
            self.table.move_cursor(row=self.table.get_row_index(wanted))
            on_it = await self.until(
                lambda: getattr(self.main.selected_row(), "key", None) == wanted, self.timeout
            )
            if not on_it:
                return f"the cursor did not stay on port {port}'s row"
        await self.until(lambda: not self.main.looking_up, REST_TIMEOUT)
        return None


@dataclass
class KeyRun:
    """One key's presses, filled as they happen: what a stuck app leaves is kept."""

    report: Callable[[], None]  # emits every key's presses so far
    ms: list[float | None] = field(default_factory=list)  # None: no answer in time
    notes: list[str] = field(default_factory=list)
    answer: str = ""  # what the first answer said

    def add(self, took: float | None) -> None:
        self.ms.append(took)
        self.report()

    def stop(self, why: str) -> None:
        self.notes.append(why)
        self.report()

    def as_dict(self) -> dict[str, Any]:
        return {"ms": self.ms, "note": "; ".join(self.notes), "answer": self.answer}


def moved_from(row: int) -> Callable[[Frame], bool]:
    return lambda f: f.screen == "main" and f.cursor not in (row, -1)


async def cursor_key(probe: Probe, key: str, presses: int, run: KeyRun) -> None:
    """Down among the marker rows (from the first row, PageDown): the frame where the cursor
    is on another row. Nothing can be added above the first rows, so only the key moves it."""
    for _ in range(presses):
        await probe.rest()
        if key == "pagedown" or probe.table.cursor_row >= len(MARK_PORTS) - 1:
            await probe.home()
        await asyncio.sleep(OFF_BEAT)
        took, _ = await probe.timed(key, None, moved_from(probe.table.cursor_row))
        run.add(took)
        if took is None:
            return run.stop("no answer: stopped")


async def filter_keys(probe: Probe, presses: int, applied: KeyRun, cleared: KeyRun) -> None:
    """`/`, MARK typed, then Enter: the frame showing the filtered rows; then Esc: the frame
    with the whole table back."""
    field_ = probe.main.query_one("#filter-input")
    for _ in range(presses):
        await probe.rest()
        await asyncio.sleep(OFF_BEAT)
        probe.send("slash", "/")
        if not await probe.until(lambda: probe.app.focused is field_, probe.timeout):
            return applied.stop("the filter input never took the focus")
        for char in MARK:
            probe.send(char, char)
        if not await probe.until(lambda: field_.value == MARK, probe.timeout):
            return applied.stop("the typed filter never showed")
        await asyncio.sleep(OFF_BEAT)
        probe.doing = "filter"
        took, frame = await probe.timed(
            "enter", "\r", lambda f: f.screen == "main" and f.filter == MARK
        )
        applied.add(took)
        if took is None or frame is None:
            cleared.stop("stopped: the filter did not answer")
            return applied.stop("no answer: stopped")
        applied.answer = applied.answer or f"{frame.rows} rows shown"
        await asyncio.sleep(OFF_BEAT)
        probe.doing = "esc"
        took, frame = await probe.timed(
            "escape", "\x1b",
            lambda f: f.screen == "main" and not f.filter and f.rows > len(MARK_PORTS),
        )
        cleared.add(took)
        if took is None or frame is None:
            return cleared.stop("no answer: stopped")
        cleared.answer = cleared.answer or f"{frame.rows:,} rows shown"


def _answer_text(screen: Any, key: str) -> str:
    if key == "b":
        verdict = screen.verdict
        return f"{verdict.kind}: {verdict.sentence}"[:160]
    plan = screen.plan
    how = plan.stop.how if getattr(plan, "stop", None) is not None else "signal"
    return (f"stop plan {how}, {len(plan.targets)} target(s), "
            f"{len(getattr(plan, 'followers', ()))} followers, "
            f"{len(getattr(plan, 'refused', ()))} refused")


async def dialog_key(probe: Probe, key: str, presses: int, port: int, run: KeyRun) -> None:
    """`b` or `k` on `port`'s listener: the frame showing the verdict, or the confirmation
    and its stop plan; closed with Esc, or answered `n` (never `y`)."""
    from textual.widgets import Static

    answered = f"{key}:answer"
    for _ in range(presses):
        await probe.rest()
        problem = await probe.select(port)
        if problem:
            return run.stop(problem)
        await asyncio.sleep(OFF_BEAT)
        took, frame = await probe.timed(
            key, key, lambda f: f.screen in (answered, "k:other")
        )
        if frame is not None and frame.screen == "k:other":
            body = _text_of(probe.app.screen.query_one("#kill-body", Static).content) or ""
            run.stop(f"k did not reach its confirmation: {body[:160]!r}")
            return await probe.rest()
        run.add(took)
        if took is None:
            run.stop("no answer: stopped")
            return await probe.rest()
        run.answer = run.answer or _answer_text(probe.app.screen, key)
        await probe.rest()  # Esc closes the bind panel; `n` answers the kill dialog


async def polls_shown(probe: Probe, seconds: float) -> dict[str, Any]:
    """Polls applied per WINDOW s, and the poller's collect() times, while nothing is open."""
    await probe.rest()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    ended = time.perf_counter()
    stamps = probe.stamps
    windows = [
        sum(1 for t in stamps.applied if started + i * WINDOW <= t < started + (i + 1) * WINDOW)
        for i in range(int((ended - started) // WINDOW))
    ]
    collects = [ms for t, ms in stamps.collects if started <= t <= ended]
    return {"windows": windows, "collects": collects, "seconds": ended - started}


class Emitter:
    """Results as JSON lines in a file, each written as soon as it is known: the parent
    keeps what came before a crash or its timeout (Textual captures stdout meanwhile)."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "a")  # noqa: SIM115 (closed by close())

    def __call__(self, **result: Any) -> None:
        self._fh.write(json.dumps(result) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


async def heartbeat(emit: Emitter, probe: Probe) -> None:
    """A line a second while the event loop runs: silence tells the parent that the app's
    UI thread is blocked (and what was being measured)."""
    while True:
        emit(beat=time.monotonic(), doing=probe.doing)
        await asyncio.sleep(1.0)


async def measure_keys(probe: Probe, opts: dict[str, Any], runs: dict[str, KeyRun]) -> None:
    presses = opts["presses"]
    for key in ("down", "pagedown"):
        probe.doing = key
        await cursor_key(probe, key, presses, runs[key])
    probe.doing = "filter"
    await filter_keys(probe, presses, runs["filter"], runs["esc"])
    for key in ("b", "k"):
        probe.doing = key
        port = opts["kill_port"] if key == "k" else opts["port"]
        await dialog_key(probe, key, presses, port, runs[key])


async def run_child(opts: dict[str, Any], emit: Emitter) -> None:
    stamps = Stamps()
    app = instrumented_app(stamps)
    launched = time.perf_counter()
    def emit_keys() -> None:
        emit(**{key: run.as_dict() for key, run in runs.items() if run.ms or run.notes})

    runs = {key: KeyRun(emit_keys) for key, _, _ in KEYS}

    async with app.run_test(size=SIZE):
        probe = Probe(app, stamps, opts["key_timeout"])
        beat = asyncio.create_task(heartbeat(emit, probe))
        if not await probe.until(lambda: len(stamps.applied) >= 3, FIRST_POLLS_TIMEOUT):
            emit(error=f"fewer than 3 polls shown within {FIRST_POLLS_TIMEOUT:g} s")
            return
        emit(first_poll_s=stamps.applied[0] - launched,
             cold_collect_ms=stamps.collects[0][1] if stamps.collects else None)
        try:
            probe.doing = "polls"
            emit(polls=await polls_shown(probe, opts["poll_seconds"]))
            await measure_keys(probe, opts, runs)
        except Stuck as exc:
            if probe.doing in runs:
                runs[probe.doing].stop(str(exc))
            emit(stuck=f"stuck during {probe.doing}: {exc}")
        probe.doing = "done"
        emit_keys()
        emit(polls_made=len(stamps.collects), polls_applied=len(stamps.applied))
        beat.cancel()


def child_main(out: str, raw: str) -> int:
    # SIGUSR1 (from the parent, before it kills an overrunning child): every thread's stack
    # on stderr, so a report says where the app was stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    emit = Emitter(out)
    try:
        asyncio.run(run_child(json.loads(raw), emit))
    except Exception as exc:
        emit(error=f"{type(exc).__name__}: {exc}"[:500])
        return 1
    finally:
        emit.close()
    return 0


# -- parent: the load ------------------------------------------------------------------------


@dataclass
class Load:
    port: int  # the scenario's listener: `b` and `check` ask about it
    kill_port: int  # and `k`: the same, unless this benchmark's own process holds it
    keeper: TimeWaitKeeper
    processes: list[psutil.Process]  # the load's own: all must survive the run
    notes: list[str]


def _new_children(before: set[int]) -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if p.pid not in before]


def _raise_tw_buckets(wanted: int) -> str:
    """net.ipv4.tcp_max_tw_buckets of this namespace, raised if it would cap the load."""
    path = Path("/proc/sys/net/ipv4/tcp_max_tw_buckets")
    now = int(path.read_text())
    if now >= wanted * 1.2:
        return f"tcp_max_tw_buckets {now:,} in the namespace (enough; not changed)"
    path.write_text(str(wanted * 2))
    return f"tcp_max_tw_buckets raised from {now:,} to {wanted * 2:,} inside the namespace"


@contextlib.contextmanager
def scenario_load(scenario: Scenario, scale: float) -> Iterator[Load]:
    """The scenario's load, TIME_WAIT filled and kept topped up; torn down on exit."""
    def scaled(n: int) -> int:
        return max(1, round(n * scale))

    notes: list[str] = []
    me = {p.pid for p in psutil.Process().children()}
    with contextlib.ExitStack() as stack:
        if scenario.clients:
            clients = ClientTimeWait(20)
            stack.callback(clients.close)
            make, port = clients.make, clients.ports[len(clients.ports) // 2]
            notes.append(f"one process with 20 servers on 127.0.0.1 (ports {clients.ports[0]}"
                         f", ...), its clients connecting from ephemeral ports and closing first")
        else:
            maker = TimeWaitMaker()
            stack.callback(maker.close)
            make, port = maker.make, maker.port
            notes.append(f"server-side TIME_WAIT on port {maker.port} (a listener of this "
                         "benchmark's process)")
        if scenario.listeners:
            _, ports = stack.enter_context(many_listeners(scaled(scenario.listeners)))
            port = ports[len(ports) // 2]
            notes.append(f"one process holding {len(ports):,} TCP listeners")
        if scenario.processes:
            ports = stack.enter_context(prefork_servers(scaled(scenario.processes), fds=40,
                                                        listeners=20))
            port = ports[len(ports) // 2]
        if scenario.time_wait > 50_000:
            notes.append(_raise_tw_buckets(scaled(scenario.time_wait)))
        processes = [q for p in _new_children(me) for q in (p, *p.children(recursive=True))]
        if scenario.processes:
            notes.append(f"a pre-fork server: {len(processes):,} processes sharing 20 TCP "
                         "listeners, ~40 fds each")
        keeper = TimeWaitKeeper(make, scaled(scenario.time_wait))
        keeper.ramp(RAMP)
        notes.append(f"{keeper.target:,} TIME_WAIT built in {RAMP:g} s in 10 even steps (so "
                     "they expire evenly too), then topped up twice a second (each lasts 60 s)")
        keeper.start()
        stack.callback(keeper.stop)
        kill_port = port if processes else MARK_PORTS[0]
        if kill_port != port:  # the app's parent: "Nothing here can be signalled"
            notes.append(f"`k` asks about port {kill_port} (the `{MARK}` process): port "
                         f"{port}'s listener is this benchmark's own process, the app's "
                         "parent, which the kill dialog offers nothing to signal on")
        yield Load(port, kill_port, keeper, processes, notes)


def census() -> str:
    """Listeners and TIME_WAIT in this namespace, TIME_WAIT split by side: server-side when
    its local port is a listener's, else client-side."""
    listening: set[str] = set()
    waiting: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                parts = line.split(None, 4)
                port = parts[1].rsplit(":", 1)[1]
                if parts[3] == "0A":
                    listening.add(port)
                elif parts[3] == "06":
                    waiting.append(port)
    server = sum(1 for port in waiting if port in listening)
    return (f"{len(listening):,} TCP listening ports; {len(waiting):,} TIME_WAIT "
            f"({server:,} server-side, {len(waiting) - server:,} client-side)")


# -- parent: the phases ----------------------------------------------------------------------


@dataclass
class Tree:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / ".venv" / "bin" / "python"

    @property
    def portscope(self) -> Path:
        return self.path / ".venv" / "bin" / "portscope"

    def label(self) -> str:
        def git(*args: str) -> str:
            done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                                  text=True, check=False)
            return done.stdout.strip() if done.returncode == 0 else ""

        head = git("log", "-1", "--format=%h %cs")
        if not head:
            return str(self.path)
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return f"{head}{' + uncommitted changes' if dirty else ''} ({self.path})"


def private_home(scratch: Path) -> Path:
    """A fresh XDG_RUNTIME_DIR: the owner store lives there, empty at first."""
    home = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    home.chmod(0o700)
    return home


def stop_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def watch_child(proc: subprocess.Popen[Any], out: Path, budget: float, stall: float) -> str:
    """Wait for the app's child; why it had to be stopped, or "" if it ended by itself.
    It writes a line a second while its event loop runs (heartbeat): `stall` s of silence
    means the app's UI thread is blocked, and no key can be measured any more."""
    started = last = time.monotonic()
    size = 0
    while proc.poll() is None:
        now = time.monotonic()
        grown = out.stat().st_size if out.exists() else 0
        if grown != size:
            size, last = grown, now
        if now - started > budget:
            return f"the app's child ran over its {budget:.0f} s"
        if now - last > (stall if size else FIRST_POLLS_TIMEOUT + stall):
            return f"the app's UI thread gave no sign of life for {now - last:.0f} s"
        time.sleep(0.5)
    return ""


def _blocked_at(stacks: str) -> str:
    """The app's main thread in a faulthandler dump, innermost first, down to its second
    frame in portscope's own code: `file.py:line function` each."""
    frames: list[str] = []
    own = 0
    for line in stacks.split("Current thread", 1)[-1].splitlines()[1:]:
        parts = line.strip().split('"')  # File "path", line N in function
        if len(parts) < 3 or not parts[0].startswith("File"):
            break
        where = parts[2].replace(", line ", ":").replace(" in ", " ").strip()
        frames.append(f"{Path(parts[1]).name}{where}")
        own += "/portscope/" in parts[1]
        if own == 2 or len(frames) == 14:
            break
    return " <- ".join(frames)


def tui_phase(tree: Tree, load: Load, opts: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """The headless app in a child process under the tree's python; what it emitted."""
    out, err = scratch / "child.jsonl", scratch / "child.err"
    child = {"port": load.port, "kill_port": load.kill_port, "presses": opts.presses,
             "poll_seconds": opts.poll_seconds, "key_timeout": opts.key_timeout}
    budget = (FIRST_POLLS_TIMEOUT + opts.poll_seconds + 60
              + 6 * (opts.presses * 3 + opts.key_timeout + 2 * REST_TIMEOUT))
    stall = max(STALL, 4 * opts.key_timeout)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(private_home(scratch)))
    with open(err, "w") as errors:
        proc = subprocess.Popen(
            [str(tree.python), __file__, "child", str(out), json.dumps(child)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, env=env,
            start_new_session=True,
        )
        try:
            stopped = watch_child(proc, out, budget, stall)
            if stopped:
                proc.send_signal(signal.SIGUSR1)  # its stacks into `errors` (child_main)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=3)
        finally:
            stop_group(proc)
    result: dict[str, Any] = {}
    for line in out.read_text().splitlines() if out.exists() else ():
        with contextlib.suppress(ValueError):
            result.update(json.loads(line))
    if stopped:
        result["error"] = f"{stopped}; stopped while measuring {result.get('doing', 'start-up')}"
        result["blocked_at"] = _blocked_at(err.read_text())
        doing = result.get("doing")
        if doing in result:  # the press in flight never got its answer
            result[doing]["ms"].append(None)
            result[doing]["note"] = "; ".join(filter(None, (result[doing]["note"], stopped)))
        elif doing in {key for key, _, _ in KEYS}:
            result[doing] = {"ms": [None], "note": stopped, "answer": ""}
    elif proc.returncode != 0:
        result["error"] = f"the app's child exited {proc.returncode}"
        result["stderr"] = err.read_text()[-2000:]
        print(f"the app's child, stderr:\n{err.read_text()[-8000:]}", file=sys.stderr)
    return result


class Tmux:
    """A tmux server of our own (its socket in `scratch`, removed with it), 160x48, running
    one command."""

    def __init__(self, scratch: Path) -> None:
        self._base = ["tmux", "-S", str(scratch / "tmux.sock"), "-f", "/dev/null"]
        self._env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}

    def _tmux(self, *args: str) -> str:
        return subprocess.run([*self._base, *args], capture_output=True, text=True, check=True,
                              env=self._env, timeout=10).stdout

    def start(self, command: str, home: Path) -> None:
        self._tmux("new-session", "-d", "-s", "bench", "-x", str(SIZE[0]), "-y", str(SIZE[1]),
                   "-e", f"XDG_RUNTIME_DIR={home}", command)

    def capture(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "bench")

    def app(self) -> psutil.Process:
        pane = int(self._tmux("display", "-p", "-t", "bench", "#{pane_pid}").strip())
        return psutil.Process(pane)  # `exec portscope`: the pane's process is the app

    def kill(self) -> None:
        subprocess.run([*self._base, "kill-server"], capture_output=True, env=self._env,
                       check=False, timeout=10)


@contextlib.contextmanager
def portscope_in_tmux(
    tree: Tree, home: Path, scratch: Path,
    quiet: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> Iterator[tuple[Tmux, float, float]]:
    """The real `portscope` in a tmux pane; yields (tmux, ms to the first frame with the
    MARK rows, ms to the first naming their process; inf when none came within
    PANE_TIMEOUT). The first frame may show the listeners before their processes (the
    monitor's sketch). `quiet`: held until those frames came (the load's TIME_WAIT refills
    held off, as while a one-shot command is timed). Killed on exit, and waited for."""
    tmux = Tmux(scratch)
    app: psutil.Process | None = None
    try:
        with quiet():
            started = time.perf_counter()
            tmux.start(f"exec {shlex.quote(str(tree.portscope))}", home)
            app = tmux.app()
            rows = named = math.inf
            while time.perf_counter() - started < PANE_TIMEOUT:
                pane = tmux.capture()
                now = (time.perf_counter() - started) * 1000
                if math.isinf(rows) and any(
                    line.split()[:2] == [str(MARK_PORTS[0]), "tcp"]
                    for line in pane.splitlines()
                ):
                    rows = now
                if MARK in pane:
                    named, rows = now, min(rows, now)
                    break
                time.sleep(0.02)
        yield tmux, rows, named
    finally:
        tmux.kill()
        if app is not None:
            _, alive = psutil.wait_procs([app], timeout=10)
            for proc in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()


def _header(pane: str) -> str:
    line = next((x for x in pane.splitlines() if x.strip()), "")
    return "".join(c for c in line.strip() if c.isprintable())[:150]


def tmux_phase(tree: Tree, load: Load, seconds: float, scratch: Path) -> dict[str, Any]:
    """First frame with an empty owner store, CPU and peak RSS over `seconds`, then the
    first frame again with the store the first run left (TIME_WAIT refills held off while
    a first frame is awaited)."""
    home = private_home(scratch)
    result: dict[str, Any] = {}
    quiet = load.keeper.paused
    with portscope_in_tmux(tree, home, scratch, quiet) as (tmux, first, named):
        result["first_ms"], result["named_ms"] = first, named
        proc = tmux.app()
        time.sleep(3)  # start-up is not the steady state
        cpu0, began = sum(proc.cpu_times()[:2]), time.monotonic()
        peak = proc.memory_info().rss
        while time.monotonic() - began < seconds:
            time.sleep(0.5)
            peak = max(peak, proc.memory_info().rss)
        result["cpu"] = (sum(proc.cpu_times()[:2]) - cpu0) / (time.monotonic() - began) * 100
        result["rss_mb"] = peak / 2**20
        result["header"] = _header(tmux.capture())
    with portscope_in_tmux(tree, home, scratch, quiet) as (_, again, named):
        result["warm_ms"], result["warm_named_ms"] = again, named
    return result


def timed_run(argv: list[str], env: dict[str, str], timeout: float = 120) -> float:
    """ms of one whole run, output to /dev/null; check exits 1 for a port in use."""
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env, timeout=timeout, check=False)
    took = (time.perf_counter() - started) * 1000
    if done.returncode not in (0, 1) or b"Traceback" in done.stderr:
        raise RuntimeError(f"{shlex.join(argv[-3:])} failed ({done.returncode}): "
                           f"{done.stderr[-300:]!r}")
    return took


def oneshot_phase(
    tree: Tree, load: Load, runs: int, pause: float, scratch: Path
) -> dict[str, Any]:
    """Median of `runs` warm runs of each command, interleaved so they meet the same load
    (TIME_WAIT refills held off while one runs); then `list --json` once the owner store is
    `pause` s old."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(private_home(scratch)))
    tools = {
        "liner": [str(tree.python), "-c", PSUTIL_LINER],
        "list": [str(tree.portscope), "list", "--json"],
        "check": [str(tree.portscope), "check", str(load.port), "--json"],
    }
    first: dict[str, float] = {}
    times: dict[str, list[float]] = {name: [] for name in tools}
    for name, argv in tools.items():  # the first run fills the owner store
        with load.keeper.paused():
            first[name] = timed_run(argv, env)
    for _ in range(runs):
        for name, argv in tools.items():
            with load.keeper.paused():
                times[name].append(timed_run(argv, env))
    result: dict[str, Any] = {"first": first,
                              "median": {k: statistics.median(v) for k, v in times.items()}}
    if pause > 0:
        time.sleep(pause)  # nothing has read or written the store since the last run
        with load.keeper.paused():
            result["paused_list"] = timed_run(tools["list"], env)
    return result


# -- the table of one scenario ---------------------------------------------------------------


KEYS = (
    ("down", "Down: key -> cursor moved", 100.0),
    ("pagedown", "PageDown: key -> cursor moved", 100.0),
    ("filter", "`/` filter: Enter -> the filtered rows shown", 100.0),
    ("esc", "Esc: key -> the whole table back", 100.0),
    ("b", "`b`: key -> the bind panel's verdict", 150.0),
    ("k", "`k`: key -> kill dialog's confirmation + stop plan", 150.0),
)


def tui_measures(tui: dict[str, Any], scenario: Scenario, opts: argparse.Namespace) -> list[
        Measure]:
    why = "skipped" if tui.get("error") == "skipped" else "not reached: see the notes" if (
        tui.get("error") or tui.get("stuck")) else ""
    out = [
        latency_measure(f"key.{key}", f"{label} (median / p95 / max, presses)",
                        tui.get(key) or ({"note": why} if why else None), goal, opts.key_timeout)
        for key, label, goal in KEYS
    ]
    polls = tui.get("polls")
    label = f"polls shown per {WINDOW:g} s, no dialog open (min; every window)"
    if polls and polls["windows"]:
        windows = polls["windows"]
        out.append(Measure("polls", label, f"{min(windows)} ({', '.join(map(str, windows))})",
                           ">= 9", min(windows) >= 9))
    else:
        out.append(Measure("polls", label, f"not measured ({why or 'no window'})", ">= 9",
                           False if why else None))
    label = "collector poll time, collect() in the app (p95 / max, polls)"
    goal = f"max <= {scenario.collect_goal:g} ms" if scenario.collect_goal else ""
    collects = (polls or {}).get("collects") or []
    if collects:
        met = max(collects) <= scenario.collect_goal if scenario.collect_goal else None
        out.append(Measure("collect", label, f"{ms_text(p95(collects))} / "
                           f"{ms_text(max(collects))} ({len(collects)})", goal, met))
    else:
        out.append(Measure("collect", label, "not measured", goal, False if goal else None))
    return out


def not_measured(part: dict[str, Any]) -> str:
    error = part.get("error")
    return f"not measured ({'skipped' if error == 'skipped' else 'see the notes'})" if error \
        else "not measured"


def tmux_measures(tmux: dict[str, Any]) -> list[Measure]:
    why = not_measured(tmux)

    def first(mid: str, label: str, ms: float | None) -> Measure:
        if ms is None:
            return Measure(mid, label, why, "< 1 s", None)
        text = f"> {PANE_TIMEOUT:g} s" if math.isinf(ms) else ms_text(ms)
        return Measure(mid, label, text, "< 1 s", ms < 1000)

    cpu, rss = tmux.get("cpu"), tmux.get("rss_mb")
    return [
        first("first.empty", "first frame with rows in tmux, empty owner store",
              tmux.get("first_ms")),
        first("first.warm", "first frame with rows in tmux, the store the first run left",
              tmux.get("warm_ms")),
        first("named.empty", "first frame naming the rows' processes, empty owner store",
              tmux.get("named_ms")),
        first("named.warm", "first frame naming the rows' processes, the store left",
              tmux.get("warm_named_ms")),
        Measure("cpu", "`portscope` in tmux: CPU, % of one core",
                why if cpu is None else f"{cpu:.1f} %", "< 15 %",
                None if cpu is None else cpu < 15),
        Measure("rss", "`portscope` in tmux: peak RSS", why if rss is None else f"{rss:.0f} MB",
                "< 150 MB", None if rss is None else rss < 150),
    ]


def oneshot_measures(shots: dict[str, Any], scenario: Scenario, pause: float) -> list[Measure]:
    medians = shots.get("median") or {}
    base = medians.get("liner")
    why = not_measured(shots)

    def vs(mid: str, label: str, ms: float | None, limit: float | None) -> Measure:
        goal = f"<= {limit:g}x" if limit is not None else ""
        if ms is None or not base:
            return Measure(mid, label, why, goal, None)
        ratio = ms / base
        return Measure(mid, label, f"{ms_text(ms)} ({ratio:.2f}x)", goal,
                       ratio <= limit if limit is not None else None)

    paused = shots.get("paused_list")
    return [
        Measure("liner", "psutil one-liner (reference), median", ms_text(base) if base else why),
        vs("list", "`portscope list --json`, median (x one-liner)", medians.get("list"),
           scenario.list_goal),
        vs("list.paused", f"`list --json` once the owner store is {pause:g} s old" if pause
           else "`list --json` once the owner store is old (skipped: --pause 0)",
           paused, scenario.list_goal),
        vs("check", "`portscope check PORT --json`, median (x one-liner)",
           medians.get("check"), 0.5),
    ]


# -- one scenario, in its namespace ----------------------------------------------------------


def machine_line() -> str:
    from collect import machine

    return machine()


def guarded(wanted: bool, what: str, phase: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A phase that fails is reported in the table, and the next phases still run."""
    if not wanted:
        return {"error": "skipped"}
    print(f"  {what} ...", file=sys.stderr, flush=True)
    try:
        return phase()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def run_scenario(scenario: Scenario, tree: Tree, opts: argparse.Namespace,
                 stack: contextlib.ExitStack) -> dict[str, Any]:
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portscope-scale-")))
    phases = set(opts.phases.split(","))
    stack.enter_context(named_listeners(MARK, MARK_PORTS))
    print(f"scenario ({scenario.name}): {scenario.title}", file=sys.stderr, flush=True)
    load = stack.enter_context(scenario_load(scenario, opts.load_scale))
    present = census()
    tui = guarded("keys" in phases, "the app, headless",
                  lambda: tui_phase(tree, load, opts, scratch))
    from probe_keys import _alive

    survivors = _alive(load.processes)
    tmux = guarded("tmux" in phases, "portscope in tmux",
                   lambda: tmux_phase(tree, load, opts.tui_seconds, scratch))
    shots = guarded("oneshot" in phases, "one-shots",
                    lambda: oneshot_phase(tree, load, opts.runs, opts.pause, scratch))
    samples = load.keeper.samples or [0]
    notes = [
        f"present at the start: {present}; at the end: {census()}",
        f"TIME_WAIT sampled every 0.5 s: min {min(samples):,}, median "
        f"{statistics.median(samples):,.0f}, max {max(samples):,}",
        *load.notes,
        f"`{MARK}` (ports {', '.join(map(str, MARK_PORTS))}): the rows the filter finds; "
        f"{len(psutil.pids())} processes on the machine",
        f"`b` and `check` ask about port {load.port}"
        + ("" if load.kill_port != load.port else ", and so does `k`"),
        "the load has no process of its own" if not load.processes else
        f"all {survivors:,} of the load's processes alive after the keys"
        if survivors == len(load.processes) else
        f"ONLY {survivors:,} of {len(load.processes):,} load processes alive after the keys",
    ]
    if tui.get("stuck"):
        notes.append(f"app: {tui['stuck']}")
    if tui.get("blocked_at"):
        notes.append(f"app: its UI thread was in {tui['blocked_at']}")
    notes += [f"{label.split(':')[0]} answered: {tui[key]['answer']}"
              for key, label, _ in KEYS if (tui.get(key) or {}).get("answer")]
    for name, part in (("app", tui), ("tmux", tmux), ("one-shots", shots)):
        if "error" in part and part["error"] != "skipped":
            notes.append(f"{name}: {part['error']}")
            if part.get("stderr"):
                notes.append(f"{name} stderr: {part['stderr'][-600:]!r}")
    if "first_poll_s" in tui:
        cold: float | None = tui.get("cold_collect_ms")
        counts = (f"; {tui['polls_made']} polls made, {tui['polls_applied']} applied to the "
                  "screen in all") if "polls_made" in tui else ""
        notes.append(f"app: first poll shown {tui['first_poll_s']:.1f} s after start (cold "
                     f"collect {ms_text(cold)}){counts}")
    if tmux.get("header"):
        notes.append(
            f"tmux: first frame = from `tmux new-session` to the first capture-pane (every "
            f"20 ms) showing the `{MARK}` rows (TIME_WAIT refills held off until then); CPU "
            f"and peak RSS over {opts.tui_seconds:g} s from 3 s after it; the header then: "
            f"{tmux['header']!r}")
    if "first" in shots:
        firsts = ", ".join(f"{k} {ms_text(v)}" for k, v in dict(shots["first"]).items())
        notes.append(f"one-shots' first runs (the store empty before): {firsts}; "
                     f"then medians of {opts.runs} runs")
    measures = [*tui_measures(tui, scenario, opts), *tmux_measures(tmux),
                *oneshot_measures(shots, scenario, opts.pause)]
    return {
        "scenario": scenario.name, "tree": tree.label(),
        "title": scenario.title if opts.load_scale == 1 else
        f"{scenario.title} (loads scaled by {opts.load_scale:g}: for debugging only)",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_line(), "notes": notes,
        "measures": [asdict(m) for m in measures],
        "settings": {k: getattr(opts, k) for k in ("presses", "poll_seconds", "tui_seconds",
                                                    "runs", "pause", "key_timeout",
                                                    "load_scale")},
    }


def in_namespace(opts: argparse.Namespace) -> int:
    """One scenario, run by `unshare -n`: lo up, the load, the phases, the fragment."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    signal.signal(signal.SIGTERM, _interrupt)
    stack = contextlib.ExitStack()
    try:
        fragment = run_scenario(SCENARIOS[opts.scenario], Tree(Path(opts.tree)), opts, stack)
    finally:  # tear down whatever a second Ctrl-C says
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
    Path(opts.fragment).write_text(json.dumps(fragment))
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as on Ctrl-C, tearing everything down."""


def _interrupt(signum: int, frame: object) -> None:
    raise Terminated


# -- tables ----------------------------------------------------------------------------------


def _met(measure: dict[str, Any] | None) -> str:
    if measure is None or measure["met"] is None:
        return ""
    return "yes" if measure["met"] else "**no**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One scenario's markdown table: a column per run (before, after), goals judged on the
    last."""
    head = ["measure", *(name for name, _ in columns), "goal", "met?"]
    lines = [f"### ({columns[-1][1]['scenario']}) {columns[-1][1]['title']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order: list[str] = []
    by_run = [{m["id"]: m for m in fragment["measures"]} for _, fragment in columns]
    for found in reversed(by_run):  # in the newest run's order
        order += [mid for mid in found if mid not in order]
    for mid in order:
        cells = [by_run[i].get(mid) for i in range(len(columns))]
        shown = next(m for m in reversed(cells) if m is not None)
        texts = [_cell(m["text"]) if m else _twin(mid, by_run[i]) for i, m in enumerate(cells)]
        lines.append(f"| {shown['label']} | {' | '.join(texts)} | {_cell(shown['goal'])} "
                     f"| {_met(cells[-1])} |")
    lines.append("")
    for name, fragment in columns:
        lines.append(f"- {name}: {fragment['tree']}, {fragment['date']}; {fragment['machine']}")
        lines += [f"  - {_cell(note)}" for note in fragment["notes"]]
    return [*lines, ""]


def _twin(mid: str, found: dict[str, Any]) -> str:
    """A run from before the monitor's sketch drew its rows and their processes in one
    frame: its "naming the processes" cell is its "with rows" one."""
    twin = {"named.empty": "first.empty", "named.warm": "first.warm"}.get(mid)
    if twin is None or twin not in found:
        return ""
    return f"{_cell(found[twin]['text'])} (the same frame)"


def _fragments(path: str) -> dict[str, dict[str, Any]]:
    """A --json file's scenarios by name; ValueError if it is not one."""
    try:
        run = json.loads(Path(path).read_text())
        fragments = {f["scenario"]: f for f in run["scenarios"]}
        for fragment in fragments.values():
            for key in ("title", "tree", "date", "machine", "notes", "measures"):
                if key not in fragment:
                    raise KeyError(key)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a scale.py --json file (no {exc})") from None
    return fragments


def merge(before_path: str, after_path: str) -> int:
    try:
        before, after = _fragments(before_path), _fragments(after_path)
    except ValueError as exc:
        print(f"scale.py: cannot merge {before_path} and {after_path}: {exc}", file=sys.stderr)
        return 2
    print("Keys: median / p95 / max over the presses (their number in brackets); goals are "
          "judged on the after column.\n")
    for name in sorted(before.keys() | after.keys()):
        columns = [(label, runs[name]) for label, runs in (("before", before), ("after", after))
                   if name in runs]
        print("\n".join(table(columns)))
    return 0


# -- outer: one namespace per scenario -------------------------------------------------------


def run_in_namespace(name: str, tree: Tree, opts: argparse.Namespace) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="portscope-scale-out-") as tmp:
        fragment = Path(tmp) / "fragment.json"
        argv = ["unshare", "-n", "--", sys.executable, __file__, "--in-netns",
                "--fragment", str(fragment), "--scenario", name, "--tree", str(tree.path),
                "--phases", opts.phases, "--presses", str(opts.presses),
                "--poll-seconds", str(opts.poll_seconds), "--tui-seconds", str(opts.tui_seconds),
                "--runs", str(opts.runs), "--pause", str(opts.pause),
                "--key-timeout", str(opts.key_timeout), "--load-scale", str(opts.load_scale)]
        inner = subprocess.Popen(argv)
        try:
            inner.wait()
        except KeyboardInterrupt as exc:  # a terminal's Ctrl-C reached it too
            if isinstance(exc, Terminated):  # only we were asked to stop: pass it on
                with contextlib.suppress(ProcessLookupError):
                    inner.send_signal(signal.SIGTERM)
            try:  # let it tear its load down
                inner.wait(timeout=120)
            except subprocess.TimeoutExpired:
                inner.kill()
                inner.wait()
            raise
        if inner.returncode != 0 or not fragment.exists():
            print(f"scale.py: scenario ({name}) failed ({inner.returncode})", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(fragment.read_text())
        return result


def compile_tree(tree: Tree) -> None:
    """Bytecode for the tree's modules, as `pip install .` leaves it (PYTHONDONTWRITEBYTECODE
    would otherwise have every one-shot compile what it imports; see oneshot.py)."""
    subprocess.run([str(tree.python), "-m", "compileall", "-q", str(tree.path / "app")],
                   check=True, stdout=subprocess.DEVNULL)


def outer(opts: argparse.Namespace) -> int:
    tree = Tree(Path(opts.tree).resolve())
    for needed in (tree.python, tree.portscope):
        if not needed.exists():
            print(f"scale.py: {needed} is missing (make the tree's venv first)",
                  file=sys.stderr)
            return 2
    compile_tree(tree)
    signal.signal(signal.SIGTERM, _interrupt)
    run: dict[str, Any] = {"tree": tree.label(), "scenarios": []}
    started = time.monotonic()
    for name in opts.scenario:
        fragment = run_in_namespace(name, tree, opts)
        if fragment is None:
            continue
        run["scenarios"].append(fragment)
        print("\n".join(table([(tree.label().split(" (")[0], fragment)])), flush=True)
        if opts.json:
            Path(opts.json).write_text(json.dumps(run, indent=1))
    print(f"\n{len(run['scenarios'])} scenario(s) in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    return 0 if len(run["scenarios"]) == len(opts.scenario) else 1


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tree", default=str(CHECKOUT), help="the portscope checkout measured")
    parser.add_argument("--scenario", default="a,b,c,d", help="which of a,b,c,d (default all)")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    parser.add_argument("--merge", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="print the before/after tables of two --json files")
    parser.add_argument("--quick", action="store_true", help="small numbers, for debugging")
    parser.add_argument("--presses", type=int, help="presses of each key (20)")
    parser.add_argument("--poll-seconds", type=float, help="seconds of polls counted (40)")
    parser.add_argument("--tui-seconds", type=float, help="seconds of CPU and RSS (30)")
    parser.add_argument("--runs", type=int, help="warm runs of each one-shot (5)")
    parser.add_argument("--pause", type=float,
                        help="seconds before the last `list --json` (36; 0 skips it)")
    parser.add_argument("--key-timeout", type=float, default=15.0, help="seconds a key may take")
    parser.add_argument("--load-scale", type=float, default=1.0,
                        help="multiply every load by this (debugging only)")
    parser.add_argument("--phases", default="keys,tmux,oneshot", help="which phases to run")
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fragment", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    quick = {"presses": 5, "poll_seconds": 20.0, "tui_seconds": 10.0, "runs": 3, "pause": 0.0}
    full = {"presses": 20, "poll_seconds": 40.0, "tui_seconds": 30.0, "runs": 5, "pause": 36.0}
    for name, value in (quick if opts.quick else full).items():
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    if not opts.in_netns:
        opts.scenario = [s.strip() for s in opts.scenario.split(",") if s.strip()]
        unknown = [s for s in opts.scenario if s not in SCENARIOS]
        if unknown or not opts.scenario:
            parser.error(f"--scenario takes a,b,c,d (got {','.join(unknown) or 'nothing'})")
    bad = {"--presses": opts.presses < 1, "--poll-seconds": opts.poll_seconds < WINDOW,
           "--tui-seconds": opts.tui_seconds <= 0, "--runs": opts.runs < 1,
           "--pause": opts.pause < 0, "--key-timeout": opts.key_timeout <= 0,
           "--load-scale": not 0 < opts.load_scale <= 1}
    wrong = [name for name, is_bad in bad.items() if is_bad]
    if wrong:
        parser.error(f"out of range: {', '.join(wrong)} (see --help; --poll-seconds: at least "
                     f"{WINDOW:g}, --load-scale: above 0, at most 1)")
    unknown_phases = set(opts.phases.split(",")) - {"keys", "tmux", "oneshot"}
    if unknown_phases:
        parser.error(f"--phases takes keys,tmux,oneshot (got {','.join(sorted(unknown_phases))})")
    return opts


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"]:
        return child_main(argv[1], argv[2])
    opts = parse(argv)
    if opts.merge:
        return merge(*opts.merge)
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        print("scale.py: needs Linux and root (each scenario runs in `unshare -n`)",
              file=sys.stderr)
        return 2
    try:
        return in_namespace(opts) if opts.in_netns else outer(opts)
    except KeyboardInterrupt:
        print("scale.py: interrupted; everything it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
