"""What changed while you watched, in the monitor, on the real collector: the TREND of a
port whose TIME_WAIT really climbed, and the event log (`e`) of a listener that came and
went, filtered like the table."""

from __future__ import annotations

import os
from collections.abc import Callable

from textual.widgets import DataTable, Static

from portscope.core.collect import default_collector
from portscope.core.history.recorder import History
from portscope.tui.app import PortscopeApp
from portscope.tui.event_log import EventLogScreen
from portscope.tui.port_table import PortTable
from support import make_server_time_wait, tcp_listener
from tui.tui_fakes import static_text, until

BARS = "▁▂▃▄▅▆▇█"


def polls(app: PortscopeApp, count: int) -> Callable[[], bool]:
    """A predicate: `count` more snapshots have arrived since it was made."""
    seen: list[object] = []

    def arrived() -> bool:
        snap = app.latest_snapshot
        if snap is not None and (not seen or seen[-1] is not snap):
            seen.append(snap)
        return len(seen) > count

    return arrived


async def test_trend_of_a_port_whose_time_wait_climbed() -> None:
    # A 4 s window instead of 10 min, so the table's ten cells (0.4 s each) see the climb.
    history = History(interval=0.2, window=4.0)
    app = PortscopeApp(default_collector(), interval=0.2, history=history)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        listener = tcp_listener()
        port = listener.getsockname()[1]
        key = f"tcp:ipv4:[127.0.0.1]:{port}"
        table = app.main.query_one(PortTable)
        try:
            await until(pilot, lambda: key in table.rows_shown, timeout=10)
            for _ in range(3):  # TIME_WAIT climbs in three steps, a few polls apart
                make_server_time_wait(listener, 4)
                await until(pilot, polls(app, 3), timeout=10)
            await until(pilot, lambda: table.rows_shown[key].time_wait >= 12, timeout=10)
            await until(pilot, polls(app, 1), timeout=10)
            cell = table.get_cell(key, "trend")
            bars = [BARS.index(c) for c in cell if c in BARS]
            assert len(bars) >= 2 and bars[-1] == max(bars) and bars[-1] > bars[0], cell
            trend = app.history.trends.trend(port)
            assert trend is not None and trend.peak_time_wait == trend.time_wait[-1] >= 12
            # The details pane of the row draws the longer chart and says it climbed.
            while app.selected_row() is None or app.selected_row().key != key:  # type: ignore[union-attr]
                await pilot.press("down")
            await until(pilot, lambda: "trend" in static_text(
                app.main.query_one("#details-body", Static)), timeout=10)
            details = static_text(app.main.query_one("#details-body", Static))
            now = table.rows_shown[key].time_wait
            assert f"TIME_WAIT {now:,} (peak {now:,} in the last" in details, details
        finally:
            listener.close()


async def test_event_log_shows_a_listener_that_came_and_went() -> None:
    app = PortscopeApp(default_collector(), interval=0.2)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        other = tcp_listener()  # another port: the filter must leave it out
        listener = tcp_listener()
        port = listener.getsockname()[1]
        await until(pilot, lambda: any(
            e.port == port and e.kind == "listen" for e in app.history.events), timeout=10)
        listener.close()
        await until(pilot, lambda: any(
            e.port == port and e.kind == "unlisten" for e in app.history.events), timeout=10)
        other.close()
        await pilot.press("slash")
        await pilot.press(*str(port), "enter")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventLogScreen))
        table = app.screen.query_one("#events-table", DataTable)
        await until(pilot, lambda: table.row_count >= 2)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        kinds = [r[1] for r in rows]
        assert kinds == ["listen", "unlisten"], rows
        assert all(f":{port}" in r[2] for r in rows)
        assert f"PID {os.getpid()}" in rows[1][3] and "stopped listening after" in rows[1][3]
        await pilot.press("q")
        await until(pilot, lambda: not isinstance(app.screen, EventLogScreen))
