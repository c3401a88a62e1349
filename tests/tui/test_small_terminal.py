"""A 40x12 terminal: the header is one line and the table keeps at least three rows, with
the filter open, complaining, and a poll error in the header."""

from __future__ import annotations

import re
from datetime import timezone

from textual.widgets import Static

from portscope.tui.app import PortscopeApp
from portscope.tui.status_bar import StatusBar
from portscope.tui.stops import from_holders
from tui.screen_checks import assert_safe_screen
from tui.tui_fakes import FakeSource, demo_relatives, demo_snapshot, until

TABLE_ROW = re.compile(r"^\s*\d+\s+(tcp|udp)")  # the details pane's line starts with ":"


def table_rows_on_screen(app: PortscopeApp) -> int:
    return sum(bool(TABLE_ROW.match(line)) for line in assert_safe_screen(app))


async def test_40x12_keeps_three_rows_and_a_one_line_header() -> None:
    source = FakeSource([demo_snapshot()])
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=demo_relatives, stops=from_holders
    )
    async with app.run_test(size=(40, 12)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        await pilot.pause()
        header = app.main.query_one(StatusBar)
        assert header.size.height == 1
        assert table_rows_on_screen(app) >= 3

        source.error = RuntimeError("collector broke")
        app.poll_now()
        await until(pilot, lambda: "poll failed" in str(header.render()))
        await pilot.press("slash", *"99999", "enter")  # the filter open, with its error
        await pilot.pause()
        assert app.main.query_one("#filter-error", Static).display
        assert header.size.height == 1
        assert table_rows_on_screen(app) >= 3
        assert app.main.query_one("#details").display  # shrunk, not gone

        await pilot.resize_terminal(80, 24)  # room again: the full header comes back
        await until(pilot, lambda: header.size.height > 1)
        assert "last poll failed: RuntimeError: collector broke" in str(header.render())
