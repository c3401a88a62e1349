"""Per-port trends and the sparkline, on hand-built Snapshots (frozen clock)."""

from __future__ import annotations

import tracemalloc

import pytest

from history.built import holder, snap, sock
from portscope.core.history import trends
from portscope.core.history.trends import TrendBook, growth, sparkline
from portscope.core.model import PortStats
from portscope.core.record import replace


def stats(port: int, tw: int = 0, estab: int = 0, client: bool = False) -> PortStats:
    states = {"ESTABLISHED": estab} if estab else {}
    return PortStats(port, time_wait=tw, states=states, client_side=client)


def test_sparkline_scales_to_its_peak_and_keeps_its_width() -> None:
    assert sparkline([0, 1, 2, 4, 8], 5) == "▁▂▃▅█"
    assert sparkline([3, 3, 3], 3) == "███"
    assert sparkline([0, 0, 0], 4) == "    "  # never left zero: nothing to draw
    assert sparkline([], 4) == "    "
    assert sparkline([5], 0) == ""
    # Young series fill from the right; older cells are blank.
    assert sparkline([1, 2], 5) == "   ▅█"
    # A given peak (a shared scale) instead of the series' own.
    assert sparkline([1, 2], 2, peak=8) == "▂▃"


def test_sparkline_keeps_a_one_sample_spike_when_compressing() -> None:
    values = [0] * 600
    values[300] = 50
    line = sparkline(values, 10)
    assert len(line) == 10 and line.count("█") == 1 and set(line) == {"▁", "█"}
    # `span`: the width always stands for the full window, so a young series is narrow.
    assert sparkline([4] * 60, 10, span=600) == " " * 9 + "█"


def test_growth_is_change_per_second_over_the_span() -> None:
    times = [float(t) for t in range(20)]
    climbing = [t * 5 for t in range(20)]
    assert growth(climbing, times, span=10) == pytest.approx(5.0)
    draining = list(reversed(climbing))
    assert growth(draining, times, span=10) == pytest.approx(-5.0)
    assert growth([1], [0.0]) is None


def test_book_tracks_table_ports_only_and_keeps_vanished_ones() -> None:
    book = TrendBook(interval=1.0, window=10.0, max_samples=10)
    assert (book.step, book.capacity) == (1.0, 10)
    listener = sock(8080, holder(10))
    book.update(snap(0, listener, ports=(stats(8080, 3, 1), stats(40000, 1, client=True))))
    assert 8080 in book and 40000 not in book  # a client's ephemeral port: not a row
    book.update(snap(1, listener, ports=(stats(8080, 9, 2), stats(7000, 4))))
    book.update(snap(2, ports=(stats(7000, 2),)))  # 8080 gone: zeros, history kept
    t = book.trend(8080)
    assert t is not None
    assert t.time_wait == (3, 9, 0) and t.live == (1, 2, 0)
    assert (t.peak_time_wait, t.peak_live) == (9, 2)
    seven = book.trend(7000)
    assert seven is not None and seven.time_wait == (4, 2)  # first seen at the 2nd sample
    assert seven.times == (book.trend(8080).times[1:])  # type: ignore[union-attr]
    # Gone for longer than the window: forgotten.
    for second in range(3, 14):
        book.update(snap(second, ports=(stats(7000, 1),)))
    assert 8080 not in book and 7000 in book
    assert len(book.trend(7000).time_wait) == 10  # type: ignore[union-attr]


def test_polls_within_one_step_merge_into_their_peak() -> None:
    book = TrendBook(interval=0.1, window=600.0, max_samples=600)
    assert book.step == 1.0 and book.capacity == 600
    listener = sock(8080, holder(10))
    for i, tw in enumerate([5, 40, 7, 3]):
        book.update(snap(i * 0.25, listener, ports=(stats(8080, tw),)))
    book.update(snap(1.0, listener, ports=(stats(8080, 2),)))
    t = book.trend(8080)
    assert t is not None and t.time_wait == (40, 2)


def test_slow_polls_widen_the_step_not_the_memory() -> None:
    book = TrendBook(interval=5.0, window=600.0, max_samples=600)
    assert (book.step, book.capacity) == (5.0, 120)


def test_close_rate_is_time_wait_over_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trends, "TIME_WAIT_SECONDS", 60.0)
    book = TrendBook()
    listener = sock(8080, holder(10))
    book.update(snap(0, listener, ports=(stats(8080, 0),)))
    book.update(snap(1, listener, ports=(stats(8080, 600),)))
    t = book.trend(8080)
    assert t is not None and t.close_rate == 10.0 and t.growth == 600.0
    monkeypatch.setattr(trends, "TIME_WAIT_SECONDS", None)
    assert book.trend(8080).close_rate is None  # type: ignore[union-attr]


def test_book_sparkline_for_a_table_cell() -> None:
    book = TrendBook(interval=1.0, window=20.0, max_samples=20)
    listener = sock(8080, holder(10))
    for second, tw in enumerate([0, 2, 4, 8]):
        book.update(snap(second, listener, ports=(stats(8080, tw, 1),)))
    assert book.sparkline(8080, 4) == "   █"  # 4 samples of a 20-sample window: one cell
    assert book.sparkline(8080, 20) == " " * 16 + "▁▃▅█"
    assert book.sparkline(8080, 20, "live") == " " * 16 + "████"
    assert book.sparkline(9999, 6) == " " * 6


def test_a_thousand_ports_for_ten_minutes_fit_in_20_mb() -> None:
    # Small counts: Python caches small ints, so tracemalloc traces the book, not them.
    ports = tuple(stats(10000 + i, 3 + i % 50, 1 + i % 7) for i in range(1000))
    sockets = tuple(sock(10000 + i, holder(10)) for i in range(1000))
    first = snap(0, *sockets, ports=ports)
    other = replace(first, ports=tuple(replace(p, time_wait=p.time_wait + 7) for p in ports))
    tracemalloc.start()
    try:
        book = TrendBook()
        for second in range(book.capacity + 5):  # full rings, and wrapped around
            base = first if second % 2 else other
            book.update(replace(base, taken_at=snap(second).taken_at))
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(book) == 1000
    assert len(book.trend(10000).time_wait) == 600  # type: ignore[union-attr]
    assert used < 20 * 1024 * 1024, f"{used / 1e6:.1f} MB"


def test_table_cells_cover_the_same_seconds_on_every_row() -> None:
    book = TrendBook()  # 600 one-second samples, table cells of 10 samples
    assert (book.cell_samples, book.cell_count) == (10, 60)
    a, b = sock(8080, holder(10)), sock(9090, holder(11))
    for second in range(25):
        tw = 7 if second == 12 else 1
        if second < 11:  # 9090 is first seen at second 11, in the middle of a cell
            book.update(snap(second, a, ports=(stats(8080, tw),)))
        else:
            book.update(snap(second, a, b, ports=(stats(8080, tw), stats(9090, tw))))
    line_a, line_b = book.sparkline(8080, 60), book.sparkline(9090, 60)
    assert line_a.endswith("▂█▂") and line_b.endswith("█▂")
    assert line_a.index("█") == line_b.index("█")  # the spike is in the same column
    assert line_b.strip(" ") == "█▂"


def test_a_clock_stepped_back_starts_a_new_sample() -> None:
    book = TrendBook()
    listener = sock(8080, holder(10))
    book.update(snap(100, listener, ports=(stats(8080, 1),)))
    book.update(snap(50, listener, ports=(stats(8080, 2),)))  # NTP stepped the clock back
    book.update(snap(51, listener, ports=(stats(8080, 3),)))
    assert book.trend(8080).time_wait == (1, 2, 3)  # type: ignore[union-attr]


class _Model:
    """What a book must answer, kept the plain way: every port's every sample in lists."""

    def __init__(self, book: TrendBook) -> None:
        self.book = book
        self.samples: dict[int, list[tuple[int, int, int]]] = {}  # (index, tw, live)
        self.seen: dict[int, float] = {}
        self.times: list[float] = []
        self.sample_at: float | None = None

    def update(self, now: float, counts: dict[int, tuple[int, int]]) -> None:
        step = self.book.step
        if self.sample_at is not None and 0 <= now - self.sample_at < step * 0.99:
            index = len(self.times) - 1
            for port, (tw, live) in counts.items():
                kept = self.samples.setdefault(port, [])
                if kept and kept[-1][0] == index:
                    _, old_tw, old_live = kept[-1]
                    kept[-1] = (index, max(old_tw, tw), max(old_live, live))
                else:
                    kept.append((index, tw, live))
                self.seen[port] = now
            return
        self.sample_at = now
        self.times.append(now)
        index = len(self.times) - 1
        for port in counts.keys() | self.samples.keys():
            tw, live = counts.get(port, (0, 0))
            self.samples.setdefault(port, []).append((index, tw, live))
            if port in counts:
                self.seen[port] = now
            elif now - self.seen[port] > self.book.window:
                del self.samples[port], self.seen[port]

    def trend(self, port: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
        kept = self.samples[port][-self.book.capacity :]
        times = tuple(self.times[-self.book.capacity :])[-len(kept) :]
        return tuple(s[1] for s in kept), tuple(s[2] for s in kept), times

    def sparkline(self, port: int, width: int) -> str:
        cells: list[int] = []
        for number, (index, tw, _) in enumerate(self.samples[port]):
            if number == 0 or index % self.book.cell_samples == 0:
                cells.append(tw)
            else:
                cells[-1] = max(cells[-1], tw)
        return sparkline(cells[-self.book.cell_count :], width, span=self.book.cell_count)


def test_ports_that_only_had_zeros_answer_as_if_every_sample_were_kept() -> None:
    """A zeros-only port keeps no series (trends.py), only where it began: its trend, its
    sparkline and its cells' alignment once it leaves zero must be what they would have
    been, through merged polls, absences, expiry and the rings' wrap."""
    import random

    rng = random.Random(21)
    book = TrendBook(interval=1.0, window=120.0, max_samples=120)
    assert (book.capacity, book.cell_samples) == (120, 2)
    model = _Model(book)
    leaves_zero = {port: rng.randrange(0, 520) for port in range(9000, 9012)}
    now = 0.0
    for poll in range(400):
        now += rng.choice((0.3, 0.6, 1.0, 1.0, 1.4))
        sockets, ports, counts = [], [], {}
        for port, start in leaves_zero.items():
            if (poll // 37 + port) % 5 == 0:  # absent for a stretch (some past the window)
                continue
            tw = rng.randrange(0, 9) if poll >= start else 0
            if rng.random() < 0.5:
                sockets.append(sock(port, holder(port)))
            ports.append(stats(port, tw))
            counts[port] = (tw, 0)
        polled = snap(now, *sockets, ports=tuple(ports))
        book.update(polled)
        model.update(polled.taken_at.timestamp(), counts)
        assert book.ports() == tuple(sorted(model.samples)) and len(book) == len(model.samples)
        for port in leaves_zero:
            trend = book.trend(port)
            if port not in model.samples:
                assert trend is None and port not in book
                continue
            assert trend is not None
            assert (trend.time_wait, trend.live, trend.times) == model.trend(port)
            assert book.sparkline(port, 30) == model.sparkline(port, 30)
    assert 0 < len(book._zero_since) < len(book)  # both kinds, to the end


def test_five_thousand_listeners_without_connections_keep_no_series() -> None:
    book = TrendBook()
    listeners = [sock(port, holder(1)) for port in range(20_000, 25_000)]
    for second in range(3):
        book.update(snap(second, *listeners))
    assert len(book) == 5000 and book._ports == {}
    trend = book.trend(20_000)
    assert trend is not None and trend.time_wait == (0, 0, 0) and trend.growth == 0.0
