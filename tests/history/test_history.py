"""The monitor's History (events logged, trends kept) and the trend in words."""

from __future__ import annotations

import pytest

from history.built import holder, snap, sock
from portscope.core.history import trends
from portscope.core.history.recorder import History
from portscope.core.history.trends import PortTrend
from portscope.core.history.wording import trend_summary
from portscope.core.model import PortStats


def test_history_logs_changes_not_the_present_and_keeps_trends() -> None:
    history = History()
    first = snap(0, sock(8080, holder(10)), ports=(PortStats(8080, time_wait=4),))
    assert history.update(first) == ()  # what was there at the start is not news
    assert len(history.events) == 0 and 8080 in history.trends
    [gone] = history.update(snap(1))
    assert gone.kind == "unlisten" and history.events.select(port=8080) == (gone,)
    assert history.trends.trend(8080).time_wait == (4, 0)  # type: ignore[union-attr]


def trend(tw: tuple[int, ...], live: tuple[int, ...], growth: float | None,
          close_rate: float | None) -> PortTrend:
    times = tuple(float(t) for t in range(len(tw)))
    return PortTrend(8080, tw, live, times, 1.0, max(tw), max(live), growth, close_rate)


def test_trend_summary_words() -> None:
    climbing = trend((0, 600, 1204), (30, 35, 35), 602.0, 1204 / 60)
    assert trend_summary(climbing) == (
        "TIME_WAIT 1,204 (peak 1,204 in the last 3 s), climbing 602/s; "
        "20 closes/s over the last minute; live 35 (peak 35)"
    )
    long = tuple(range(600, 0, -1))
    draining = trend(long, (0,) * 600, -1.0, 1 / 60)
    assert trend_summary(draining) == (
        "TIME_WAIT 1 (peak 600 in the last 10 min), draining 1/s; "
        "<0.1 closes/s over the last minute; live 0 (peak 0)"
    )
    quiet = trend((0,), (2,), None, None)
    assert trend_summary(quiet) == "TIME_WAIT 0 (peak 0 in the last 1 s); live 2 (peak 2)"


def test_close_rate_needs_a_known_time_wait_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trends, "TIME_WAIT_SECONDS", None)
    history = History()
    history.update(snap(0, sock(8080, holder(10)), ports=(PortStats(8080, time_wait=60),)))
    t = history.trends.trend(8080)
    assert t is not None and t.close_rate is None
    assert "closes/s" not in trend_summary(t)
