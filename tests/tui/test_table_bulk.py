"""Issue 21: a table that scales. DataTable.remove_row rebuilds the whole row index, so
removing rows one by one is quadratic (4,000 rows: 5.5 s). A filter applied or cleared on
5,000 rows, and a poll where many rows come and go, must be one bulk operation: the table
cleared once and refilled, no remove_row at all, the cursor kept on its row and that row
kept on its line of the view. Counted here, not timed (tests/benchmarks times it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta, timezone

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.widgets import _data_table as data_table_module

from portscope.core.model import Snapshot
from portscope.tui.app import PortscopeApp
from portscope.tui.port_table import BULK, PortTable
from portscope.tui.stops import from_holders
from tui.tui_fakes import T0, FakeSource, fake_relatives, holder, snap, sock, until

ROWS = 5_000
NAMES = 50  # svc0 .. svc49, 100 rows each
PICKED = 10_000 + 40 * NAMES + 7  # a svc7 row, 2,007th: far down the table


def machine(rows: int = ROWS, at: int = 0) -> Snapshot:
    return snap(
        [sock(10_000 + i, holder(100 + i % NAMES, f"svc{i % NAMES}")) for i in range(rows)],
        at=T0 + timedelta(seconds=at),
    )


@pytest.fixture
def ops(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Calls of the port table's row operations (and of DataTable's width measuring)."""
    counts: Counter[str] = Counter()
    for name in ("add_row", "remove_row", "clear", "sort"):
        real = getattr(DataTable, name)

        def spy(self: DataTable[object], *args: object, _n: str = name, _f: object = real,
                **kwargs: object) -> object:
            if isinstance(self, PortTable):
                counts[_n] += 1
            return _f(self, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(DataTable, name, spy)
    real_measure = data_table_module.measure

    def measure(*args: object, **kwargs: object) -> int:
        counts["measure"] += 1
        return real_measure(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(data_table_module, "measure", measure)
    yield counts


def app_for(source: FakeSource) -> PortscopeApp:
    return PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.pause()  # the refill's scroll runs after the refresh that sizes the table


async def test_filter_apply_and_clear_are_bulk_operations(ops: Counter[str]) -> None:
    app = app_for(FakeSource([machine()]))
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == ROWS, timeout=60)
        await settle(pilot)
        table.move_cursor(row=table.get_row_index(sock(PICKED).key))
        await settle(pilot)
        key = app.selected_row().key  # type: ignore[union-attr]
        line = table.cursor_row - round(table.scroll_y)  # the row's line in the view
        assert table.cursor_row == 2_007 and line > 0
        assert ops["measure"] >= ROWS  # DataTable measured every row's cells once

        ops.clear()
        await pilot.press("slash", *"svc7", "enter")
        await until(pilot, lambda: table.row_count == ROWS // NAMES, timeout=30)
        await settle(pilot)
        assert ops["remove_row"] == 0 and ops["sort"] == 0
        assert ops["clear"] == 1 and ops["add_row"] == ROWS // NAMES
        assert ops["measure"] == 0  # every row kept was measured when first shown
        assert app.selected_row().key == key  # type: ignore[union-attr]

        ops.clear()
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == ROWS, timeout=30)
        await settle(pilot)
        assert ops["remove_row"] == 0 and ops["sort"] == 0
        assert ops["clear"] == 1 and ops["add_row"] == ROWS
        assert ops["measure"] == 0
        assert app.selected_row().key == key  # type: ignore[union-attr]
        assert table.cursor_row == 2_007
        assert table.cursor_row - round(table.scroll_y) == line  # the same line of the view


async def test_a_poll_where_many_rows_go_is_one_refill(ops: Counter[str]) -> None:
    """A large server stopping (or a wave of TIME_WAIT rows expiring): past BULK rows gone,
    one clear and a refill of what is left, never a remove_row per row."""
    source = FakeSource([machine(1_000)])
    app = app_for(source)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == 1_000, timeout=60)
        ops.clear()
        left = machine(1_000 - 3 * BULK, at=1)
        source.set(left)
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is left and table.row_count == len(
            left.sockets), timeout=30)
        assert ops["remove_row"] == 0
        assert ops["clear"] == 1 and ops["add_row"] == len(left.sockets)
        assert set(table.rows_shown) == {s.key for s in left.sockets}

        ops.clear()  # a few rows gone: removed in place, nothing refilled
        fewer = machine(len(left.sockets) - 3, at=2)
        source.set(fewer)
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is fewer and table.row_count == len(
            fewer.sockets), timeout=30)
        assert ops["remove_row"] == 3 and ops["clear"] == 0 and ops["add_row"] == 0


async def test_narrower_counts_do_not_measure_the_whole_column_again(ops: Counter[str]) -> None:
    """DataTable's update_width measures every cell of a column again for each new value
    narrower than the column: 100 counts falling on 1,000 rows were 100,000 measures a poll.
    Columns only grow here, so falling counts measure nothing, and the new counts show."""
    from portscope.core.model import PortStats

    sockets = [sock(20_000 + i, holder(7, "busy")) for i in range(1_000)]

    def polled(counts: dict[int, int], at: int) -> Snapshot:
        stats = [PortStats(20_000 + i, time_wait=n) for i, n in counts.items()]
        return snap(sockets, stats, at=T0 + timedelta(seconds=at))

    first = polled({i: 10_000 + i for i in range(100)}, 0)
    source = FakeSource([first])
    app = app_for(source)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == 1_000, timeout=60)
        await settle(pilot)
        width = table.columns[next(k for k in table.columns if k.value == "time_wait")]
        before = width.content_width
        ops.clear()
        fallen = polled({i: 7 for i in range(100)}, 1)
        source.set(fallen)
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is fallen, timeout=30)
        await settle(pilot)
        assert ops["measure"] == 0 and ops["clear"] == 0 and ops["remove_row"] == 0
        assert width.content_width == before
        row = table.get_row(sockets[3].key)
        assert str(row[[k.value for k in table.columns].index("time_wait")]).startswith("7")


async def test_a_sort_on_5000_rows_is_one_sort_and_keeps_the_cursor_on_its_row(
    ops: Counter[str],
) -> None:
    """`S` and a click on a header reorder the rows in place (DataTable.sort): no clear, no
    row added or removed, nothing measured again, the cursor still on its socket."""
    app = app_for(FakeSource([machine()]))
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == ROWS, timeout=60)
        await settle(pilot)
        table.move_cursor(row=table.get_row_index(sock(PICKED).key))
        await settle(pilot)
        key = app.selected_row().key  # type: ignore[union-attr]

        ops.clear()
        await pilot.press("S")  # highest port first
        await settle(pilot)
        assert ops == Counter(sort=1)
        assert app.selected_row().key == key  # type: ignore[union-attr]
        assert table.cursor_row == ROWS - 1 - 2_007

        ops.clear()
        await pilot.press("s")  # by process name: svc0, svc1, svc10, ...
        await settle(pilot)
        assert ops == Counter(sort=1)
        assert app.selected_row().key == key  # type: ignore[union-attr]
        first = table.rows_shown[str(table.coordinate_to_cell_key((0, 0)).row_key.value)]
        assert first.holders[0].name == "svc0"
        region = table.scrollable_content_region
        assert table.scroll_y <= table.cursor_row < table.scroll_y + region.height  # in view
