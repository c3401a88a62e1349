"""A long session must not pile up memory: rows and PIDs come and go on every poll, and
what the table keeps (rows' cells, lines drawn) stays the size of one poll and one screen,
however many polls went by. And a poll redraws only the lines that changed."""

from __future__ import annotations

from datetime import timedelta, timezone

from textual.pilot import Pilot

from portscope.core.model import PortStats, Snapshot
from portscope.tui.app import PortscopeApp
from portscope.tui.port_table import KEPT_SLACK, PortTable
from portscope.tui.stops import from_holders
from tui.tui_fakes import T0, FakeSource, fake_relatives, holder, snap, sock, until

ROWS = 12  # per poll; the 120x36 screen shows all of them


def churned(poll: int) -> Snapshot:
    """Poll `poll`: half of the sockets are new (new ports, new PIDs), one row's TIME_WAIT
    count moves, as under a restart storm."""
    sockets = [
        sock(20_000 + poll * 10 + i, holder(10_000 + poll * 10 + i, f"worker{i}"))
        for i in range(ROWS // 2)
    ] + [sock(9_000 + i, holder(500 + i, "steady")) for i in range(ROWS // 2)]
    return snap(sockets, [PortStats(9_000, time_wait=poll)], at=T0 + timedelta(seconds=poll))


async def show(app: PortscopeApp, pilot: Pilot[None], source: FakeSource, new: Snapshot) -> None:
    source.set(new)
    app.poll_now()
    await until(pilot, lambda: app.latest_snapshot is new)
    await pilot.pause()  # let the new rows render, filling the caches


async def test_many_polls_with_changing_rows_keep_the_table_bounded() -> None:
    source = FakeSource([churned(0)])
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        table = app.main.table
        most_rows = most_lines = 0
        for poll in range(1, 61):
            new = churned(poll)
            await show(app, pilot, source, new)
            rows, lines = table.kept
            most_rows, most_lines = max(most_rows, rows), max(most_lines, lines)

        shown = {s.key for s in new.sockets}
        assert set(table.rows_shown) == shown  # no stale rows, none missing
        assert table.ordered_keys and set(table.ordered_keys) == shown
        assert table.row_count == ROWS
        # 60 polls brought 360 new keys: the cells of gone rows are dropped, the lines drawn
        # are those of one screen or two.
        assert ROWS <= most_rows <= 2 * ROWS + KEPT_SLACK < 360
        assert 0 < most_lines <= 4 * 36


async def test_a_poll_that_moves_one_count_redraws_only_that_row() -> None:
    """DataTable keyed its renders on a counter every update bumps, so one new TIME_WAIT
    count redrew every visible cell (~250 at 160x48, 25-45 ms of the UI thread under load,
    a key pressed meanwhile waiting); the table redraws the changed row's line alone, and
    shows the new count."""
    sockets = [sock(9_000 + i, holder(500 + i, "steady")) for i in range(ROWS)]
    first = snap(sockets, [PortStats(9_003, time_wait=4)])
    source = FakeSource([first])
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is first)
        await pilot.pause()
        table = app.main.table
        index = table.get_row_index(sockets[3].key)
        assert "4" in _row_text(table, index)
        before = table.ops["lines"]
        second = snap(sockets, [PortStats(9_003, time_wait=7)], at=T0 + timedelta(seconds=1))
        await show(app, pilot, source, second)
        assert table.ops["lines"] - before == 1
        assert "7" in _row_text(table, index) and "4" not in _row_text(table, index)


def _row_text(table: PortTable, index: int) -> str:
    """The row as drawn now (below the one-line header, the table scrolled to its top)."""
    return table.render_line(index + 1).text


async def test_an_unchanged_row_keeps_its_cells_and_a_changed_one_is_redrawn() -> None:
    """A poll that leaves a row as it was reuses its cells (no texts rebuilt on the UI
    thread); a row whose holders changed shows the change."""
    steady = sock(9_100, holder(600, "steady"))
    first = snap([steady, sock(9_101, holder(601, "before"))])
    source = FakeSource([first])
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is first)
        table = app.main.table
        steady_key, moved_key = (s.key for s in first.sockets)
        made = table.ops["made"]
        kept = table.get_row(steady_key)
        second = snap([steady, sock(9_101, holder(602, "after"))], at=T0 + timedelta(seconds=1))
        await show(app, pilot, source, second)
        assert table.ops["made"] - made == 1  # the moved row's cells only
        now = table.get_row(steady_key)
        trend = table.column_keys.index("trend")  # drawn from the history each time
        assert all(a is b for i, (a, b) in enumerate(zip(kept, now, strict=True)) if i != trend)
        assert "after" in table.get_row(moved_key)
        assert "after" in _row_text(table, table.get_row_index(moved_key))
