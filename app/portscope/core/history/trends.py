"""Per-port trends: TIME_WAIT and live connections over the last minutes, in bounded memory.

A count that changes every second is hard to read; its last ten minutes are not. Every
poll adds one sample per tracked port (polls closer together than `step` are merged into
one sample holding their maximum, so a 0.1 s refresh does not shorten the window). Samples
live in fixed-size rings of 32-bit integers (`array('I')`), not in lists of int objects:
measured with tracemalloc, 1,000 ports over 10 minutes at 1 Hz take about 5 MB
(tests/benchmarks/history.py).

Tracked ports are the ones the table shows a row for: ports with a TCP listener and server
ports with TIME_WAIT or live connections but no listener. A client's ephemeral ports are
left out (a load test makes thousands; the table sums them into one line). A port absent
from a snapshot has no TIME_WAIT and no connections, so it gets zeros: a `(no listener)`
row whose TIME_WAIT drains keeps its history, and a port gone for longer than the window
(its series all zeros by then) is forgotten.

A port that has only ever had zeros (most listeners: 5,000 of them on a busy host) has no
series at all, only the sample it was first seen at: its history is that many zeros,
written out the first time it has something else. Four rings for each cost ~30 ms on the
UI thread at 5,000 listeners' first poll, and ~6 ms every poll after.

Not thread-safe: feed and read it from one thread (the TUI's message handler).
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from ..model import Snapshot
from ..record import record

WINDOW = 600.0  # seconds of history: "the last minutes" of a load test or a restart
MAX_SAMPLES = 600  # per series: one a second over the window
CELLS = 60  # peaks kept per series for table sparklines (10 s each over 10 minutes)
RATE_SPAN = 10.0  # seconds the TIME_WAIT growth rate is measured over
# Linux keeps a socket in TIME_WAIT for exactly 60 s (TCP_TIMEWAIT_LEN, not tunable), so the
# TIME_WAIT count is the number of closes of the last minute. Other systems differ (macOS
# 2*MSL = 30 s by default, Windows TcpTimedWaitDelay), so no rate is claimed there.
TIME_WAIT_SECONDS: float | None = 60.0 if sys.platform.startswith("linux") else None

BARS = "▁▂▃▄▅▆▇█"
Which = Literal["time_wait", "live"]


class Ring:
    """The last `capacity` values of a series, oldest first, in a fixed-size typed array."""

    __slots__ = ("_capacity", "_data", "_next")

    def __init__(self, typecode: str, capacity: int) -> None:
        self._data: array[Any] = array(typecode)
        self._capacity = capacity
        self._next = 0  # where the next value goes once the ring is full

    def append(self, value: float) -> None:
        if len(self._data) < self._capacity:
            self._data.append(value)
        else:
            self._data[self._next] = value
            self._next = (self._next + 1) % self._capacity

    def raise_last(self, value: float) -> None:
        """Merge a value into the newest sample (a second poll within the same step)."""
        i = (self._next - 1) % len(self._data)
        if value > self._data[i]:
            self._data[i] = value

    def zeros(self, count: int) -> None:
        """Hold `count` zeros (at most its capacity), as if appended to an empty ring (the
        order of equal values does not matter)."""
        size = min(count, self._capacity) * self._data.itemsize
        self._data = array(self._data.typecode, bytes(size))
        self._next = 0

    def ordered(self) -> array[Any]:
        """A copy, oldest first (C-level slicing: cheap even for the full window)."""
        return self._data[self._next :] + self._data[: self._next]

    def __len__(self) -> int:
        return len(self._data)


@record
class PortTrend:
    """One port's history as plain values: what the details pane draws and prints."""

    port: int
    time_wait: tuple[int, ...]  # one sample per step, oldest first; the last is the latest
    live: tuple[int, ...]  # live (non-TIME_WAIT) connections, same samples
    times: tuple[float, ...]  # epoch seconds of each sample, same length
    step: float  # seconds a sample stands for
    peak_time_wait: int
    peak_live: int
    # TIME_WAIT growth per second over the last RATE_SPAN seconds: positive while it climbs,
    # negative while it drains; None with fewer than two samples.
    growth: float | None
    # Connections this port closed first, per second, averaged over the last minute (the
    # TIME_WAIT count / 60 s on Linux); None where TIME_WAIT's length is not known.
    close_rate: float | None

    @property
    def span(self) -> float:
        """Seconds from the first sample to the last."""
        return self.times[-1] - self.times[0] if self.times else 0.0


class _Series:
    """One quantity of one port: every sample, and the peak of each cell of `cell_samples`
    samples (cells aligned on the book's sample count, so every row's cells cover the same
    seconds and a table sparkline reads ~60 peaks instead of 600 samples)."""

    __slots__ = ("cells", "samples")

    def __init__(self, capacity: int, cell_count: int) -> None:
        self.samples = Ring("I", capacity)
        self.cells = Ring("I", cell_count)

    def add(self, value: int, new_cell: bool) -> None:
        self.samples.append(value)
        if new_cell or not len(self.cells):
            self.cells.append(value)
        else:
            self.cells.raise_last(value)

    def raise_last(self, value: int) -> None:
        self.samples.raise_last(value)
        self.cells.raise_last(value)


class _Port:
    __slots__ = ("last_seen", "live", "time_wait")

    def __init__(self, capacity: int, cell_count: int, seen: float) -> None:
        self.time_wait = _Series(capacity, cell_count)
        self.live = _Series(capacity, cell_count)
        self.last_seen = seen

    def zeros(self, samples: int, cells: int) -> None:
        for series in (self.time_wait, self.live):
            series.samples.zeros(samples)
            series.cells.zeros(cells)


class TrendBook:
    """Bounded per-port series of TIME_WAIT and live connections; `update` once per poll."""

    def __init__(
        self, *, interval: float = 1.0, window: float = WINDOW, max_samples: int = MAX_SAMPLES
    ) -> None:
        self.window = window
        self.step = max(interval, window / max_samples)
        self.capacity = max(2, math.ceil(window / self.step - 1e-9))
        self.cell_samples = max(1, self.capacity // CELLS)
        self.cell_count = math.ceil(self.capacity / self.cell_samples)
        self._times = Ring("d", self.capacity)
        self._ports: dict[int, _Port] = {}
        # Ports that have only had zeros: the index of their first sample, when last seen
        self._zero_since: dict[int, int] = {}
        self._zero_seen: dict[int, float] = {}
        self._sample_at: float | None = None  # when the newest sample started
        self._samples = 0  # samples taken so far: what cells are aligned on

    def update(self, snap: Snapshot) -> None:
        now = snap.taken_at.timestamp()
        counts = tracked_counts(snap)
        # A poll scheduled `step` after the last one may run a hair early: 1 % slack. A
        # clock stepped back starts a new sample rather than merging until it catches up.
        merge = (
            self._sample_at is not None and 0 <= now - self._sample_at < self.step * 0.99
        )
        if merge:
            sample = self._samples - 1
            for port, (tw, live) in counts.items():
                series = self._ports.get(port)
                if series is not None:
                    series.time_wait.raise_last(tw)
                    series.live.raise_last(live)
                    series.last_seen = now
                elif self._zero(port, tw, live, sample, now):
                    continue
                elif port in self._zero_since:  # zeros so far, this sample's too
                    series = self._written_out(port, sample + 1, now)
                    series.time_wait.raise_last(tw)
                    series.live.raise_last(live)
                else:  # first seen in this sample
                    self._ports[port] = series = self._new_port(now)
                    series.time_wait.add(tw, True)
                    series.live.add(live, True)
            return
        self._sample_at = now
        self._times.append(now)
        sample = self._samples
        new_cell = sample % self.cell_samples == 0
        self._samples += 1
        for port, (tw, live) in counts.items():
            if port in self._ports or self._zero(port, tw, live, sample, now):
                continue
            if port in self._zero_since:
                self._written_out(port, sample, now)
            else:
                self._ports[port] = self._new_port(now)
        gone: list[int] = []
        for port, series in self._ports.items():
            tw, live = counts.get(port, (0, 0))
            series.time_wait.add(tw, new_cell)
            series.live.add(live, new_cell)
            if port in counts:
                series.last_seen = now
            elif now - series.last_seen > self.window:
                gone.append(port)
        for port in gone:
            del self._ports[port]
        for port in [p for p, seen in self._zero_seen.items() if now - seen > self.window]:
            del self._zero_seen[port], self._zero_since[port]

    def _zero(self, port: int, tw: int, live: int, sample: int, now: float) -> bool:
        """Note a port that has only had zeros, this sample's included; False otherwise."""
        if tw or live:
            return False
        self._zero_since.setdefault(port, sample)
        self._zero_seen[port] = now
        return True

    def _written_out(self, port: int, upto: int, now: float) -> _Port:
        """A zeros-only port's series, made with a zero for each sample before `upto`, and
        one cell for each cell those samples began (the first always does)."""
        since = self._zero_since.pop(port)
        del self._zero_seen[port]
        series = self._ports[port] = self._new_port(now)
        if upto > since:
            cells = 1 + (upto - 1) // self.cell_samples - since // self.cell_samples
            series.zeros(upto - since, cells)
        return series

    def _new_port(self, now: float) -> _Port:
        return _Port(self.capacity, self.cell_count, now)

    def ports(self) -> tuple[int, ...]:
        return tuple(sorted(self._ports.keys() | self._zero_since.keys()))

    def __contains__(self, port: object) -> bool:
        return port in self._ports or port in self._zero_since

    def __len__(self) -> int:
        return len(self._ports) + len(self._zero_since)

    def __iter__(self) -> Iterator[int]:
        return iter(self.ports())

    def sparkline(self, port: int, width: int, which: Which = "time_wait") -> str:
        """`width` cells for a table: the whole window, each cell the peak of its stretch
        (about window / width seconds, the same stretch on every row), scaled to the series'
        own peak; blank before the port was first seen and where it never left zero."""
        series = self._ports.get(port)
        if series is None:
            return " " * max(0, width)
        chosen = series.time_wait if which == "time_wait" else series.live
        return sparkline(chosen.cells.ordered(), width, span=self.cell_count)

    def trend(self, port: int) -> PortTrend | None:
        """A frozen copy of one port's history (copies ~2 x 600 values: for the selected
        row, not for every row of every refresh)."""
        series = self._ports.get(port)
        since = self._zero_since.get(port)
        if series is not None:
            tw = tuple(series.time_wait.samples.ordered())
            live = tuple(series.live.samples.ordered())
        elif since is not None:
            tw = live = (0,) * min(self._samples - since, self.capacity)
        else:
            return None
        times = tuple(self._times.ordered())[-len(tw) :]
        return PortTrend(
            port=port,
            time_wait=tw,
            live=live,
            times=times,
            step=self.step,
            peak_time_wait=max(tw),
            peak_live=max(live),
            growth=growth(tw, times),
            close_rate=None if TIME_WAIT_SECONDS is None else tw[-1] / TIME_WAIT_SECONDS,
        )


def tracked_counts(snap: Snapshot) -> dict[int, tuple[int, int]]:
    """(TIME_WAIT, live connections) for every port the table shows a TCP row for."""
    counts: dict[int, tuple[int, int]] = {
        s.port: (0, 0) for s in snap.sockets if s.proto == "tcp"
    }
    for stats in snap.ports:
        if stats.port in counts or not stats.client_side:
            counts[stats.port] = (stats.time_wait, stats.live)
    return counts


def growth(values: Sequence[int], times: Sequence[float], span: float = RATE_SPAN) -> float | None:
    """Change per second between the newest sample and the oldest one at most `span`
    seconds before it."""
    if len(values) < 2 or len(times) != len(values):
        return None
    last = len(values) - 1
    first = last - 1
    while first > 0 and times[last] - times[first - 1] <= span:
        first -= 1
    elapsed = times[last] - times[first]
    if elapsed <= 0:
        return None
    return (values[last] - values[first]) / elapsed


def sparkline(
    values: Sequence[float], width: int, *, span: int | None = None, peak: float | None = None
) -> str:
    """Exactly `width` cells of `▁▂▃▄▅▆▇█` for `values` (oldest first).

    `span`: how many samples the full width stands for (default: all of `values`, at least
    one a cell); each cell shows the peak of its samples, so a one-second spike is never
    averaged away. The newest sample is in the rightmost cell; cells older than the data
    are blank. Scaled to `peak` (default: the values' own): ▁ is zero, ▂ to █ are
    proportional to the peak, so any non-zero value stands out from zero. A series that
    never left zero is blank: nothing to draw.
    """
    if width <= 0:
        return ""
    n = len(values)
    per_cell = max(1, math.ceil(max(span or n, width) / width))
    top = max(values, default=0) if peak is None else peak
    if top <= 0 or n == 0:
        return " " * width
    cells: list[str] = []
    end = n
    for _ in range(width):
        if end <= 0:
            cells.append(" ")
            continue
        start = max(0, end - per_cell)
        value = max(values[start:end])
        end = start
        if value <= 0:
            cells.append(BARS[0])
        else:
            cells.append(BARS[min(7, max(1, math.ceil(7 * value / top)))])
    return "".join(reversed(cells))
