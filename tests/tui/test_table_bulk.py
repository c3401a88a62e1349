"""Issue 21: a table that scales. DataTable keeps a record per row and rebuilds its row
index on each removal (4,000 removals: 5.5 s; 5,000 add_rows: 0.3-0.8 s), so the port
table draws its rows itself (port_table.py): a filter applied or cleared on 5,000 rows, a
poll where many rows go, a new sort, are each one ordering of the keys, no row's cells made
again, and only the lines on screen drawn, the cursor kept on its row and that row on its
line of the view. Counted here (PortTable.ops), not timed (tests/benchmarks times it)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta, timezone

from textual.pilot import Pilot

from portscope.core.model import Snapshot
from portscope.tui.app import PortscopeApp
from portscope.tui.port_table import PortTable
from portscope.tui.stops import from_holders
from tui.tui_fakes import T0, FakeSource, fake_relatives, holder, snap, sock, until

ROWS = 5_000
NAMES = 50  # svc0 .. svc49, 100 rows each
PICKED = 10_000 + 40 * NAMES + 7  # a svc7 row, 2,007th: far down the table
HEIGHT = 36  # the terminal's lines: no more than these are drawn for one change


def machine(rows: int = ROWS, at: int = 0) -> Snapshot:
    return snap(
        [sock(10_000 + i, holder(100 + i % NAMES, f"svc{i % NAMES}")) for i in range(rows)],
        at=T0 + timedelta(seconds=at),
    )


def app_for(source: FakeSource) -> PortscopeApp:
    return PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.pause()  # the change drawn


def since(table: PortTable, before: Counter[str]) -> Counter[str]:
    return table.ops - before


async def test_filter_apply_and_clear_are_bulk_operations() -> None:
    app = app_for(FakeSource([machine()]))
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == ROWS, timeout=60)
        await settle(pilot)
        assert table.ops["made"] == ROWS and table.ops["lines"] < 2 * HEIGHT
        table.move_cursor(row=table.get_row_index(sock(PICKED).key))
        await settle(pilot)
        key = app.selected_row().key  # type: ignore[union-attr]
        line = table.cursor_row - round(table.scroll_y)  # the row's line in the view
        assert table.cursor_row == 2_007 and line > 0

        before = table.ops.copy()
        await pilot.press("slash", *"svc7", "enter")
        await until(pilot, lambda: table.row_count == ROWS // NAMES, timeout=30)
        await settle(pilot)
        done = since(table, before)
        assert done["order"] == 1  # one ordering of the 100 keys left
        assert done["made"] == 0  # every row kept was made when first shown
        assert done["lines"] <= 2 * HEIGHT  # what the screen shows, not 5,000 rows
        assert app.selected_row().key == key  # type: ignore[union-attr]

        before = table.ops.copy()
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == ROWS, timeout=30)
        await settle(pilot)
        done = since(table, before)
        assert done["order"] == 1 and done["made"] == 0  # the hidden rows' cells were kept
        assert done["lines"] <= 2 * HEIGHT
        assert app.selected_row().key == key  # type: ignore[union-attr]
        assert table.cursor_row == 2_007
        assert table.cursor_row - round(table.scroll_y) == line  # the same line of the view


async def test_a_poll_where_many_rows_go_is_one_pass() -> None:
    """A large server stopping (or a wave of TIME_WAIT rows expiring): one ordering of the
    keys left, no row made again; the rows shown are exactly the poll's."""
    source = FakeSource([machine(1_000)])
    app = app_for(source)
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == 1_000, timeout=60)
        await settle(pilot)
        before = table.ops.copy()
        left = machine(800, at=1)
        source.set(left)
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is left and table.row_count == len(
            left.sockets), timeout=30)
        await settle(pilot)
        done = since(table, before)
        assert done["order"] == 1 and done["made"] == 0 and done["lines"] <= 2 * HEIGHT
        assert set(table.rows_shown) == {s.key for s in left.sockets}
        assert table.ordered_keys == [s.key for s in left.sockets]  # in port order


async def test_falling_counts_make_only_their_rows_and_the_column_narrows() -> None:
    """DataTable's update_width measured every cell of a column again for each new value
    narrower than the column (100 counts falling on 1,000 rows: 100,000 measures a poll).
    Here only the 100 changed rows are made again, and the column narrows to its widest
    count from the widths kept per row."""
    from portscope.core.model import PortStats

    sockets = [sock(20_000 + i, holder(7, "busy")) for i in range(1_000)]

    def polled(counts: dict[int, int], at: int) -> Snapshot:
        stats = [PortStats(20_000 + i, time_wait=n, time_wait_last=50.0) for i, n in counts.items()]
        return snap(sockets, stats, at=T0 + timedelta(seconds=at))

    first = polled({i: 10_000 + i for i in range(100)}, 0)
    source = FakeSource([first])
    app = app_for(source)
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == 1_000, timeout=60)
        await settle(pilot)
        wide = table.column_width("time_wait")
        before = table.ops.copy()
        fallen = polled({i: 7 for i in range(100)}, 1)
        source.set(fallen)
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is fallen, timeout=30)
        await settle(pilot)
        done = since(table, before)
        assert done["made"] == 100 and done["order"] == 0  # the port sort did not move
        assert table.column_width("time_wait") < wide
        assert table.get_cell(sockets[3].key, "time_wait").startswith("7")


async def test_a_sort_on_5000_rows_is_one_pass_and_keeps_the_cursor_on_its_row() -> None:
    """`S` and a click on a header reorder the keys: no row made again, the cursor still on
    its socket and in view."""
    app = app_for(FakeSource([machine()]))
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == ROWS, timeout=60)
        await settle(pilot)
        table.move_cursor(row=table.get_row_index(sock(PICKED).key))
        await settle(pilot)
        key = app.selected_row().key  # type: ignore[union-attr]

        before = table.ops.copy()
        await pilot.press("S")  # highest port first
        await settle(pilot)
        done = since(table, before)
        assert done["order"] == 1 and done["made"] == 0 and done["lines"] <= 2 * HEIGHT
        assert app.selected_row().key == key  # type: ignore[union-attr]
        assert table.cursor_row == ROWS - 1 - 2_007

        before = table.ops.copy()
        await pilot.press("s")  # by process name: svc0, svc1, svc10, ...
        await settle(pilot)
        done = since(table, before)
        assert done["order"] == 1 and done["made"] == 0
        assert app.selected_row().key == key  # type: ignore[union-attr]
        assert table.rows_shown[table.ordered_keys[0]].holders[0].name == "svc0"
        region = table.scrollable_content_region
        assert table.scroll_y <= table.cursor_row < table.scroll_y + region.height  # in view


async def test_paging_home_end_and_a_click_move_the_cursor_over_5000_rows() -> None:
    """PageDown moves the view and the cursor a page together (the cursor keeps its line),
    End and Home reach the last and the first row, a click selects the row under it; the
    cursor is always in view and the details follow it."""
    app = app_for(FakeSource([machine()]))
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.main.table
        await until(pilot, lambda: table.row_count == ROWS, timeout=60)
        await settle(pilot)
        page = table.scrollable_content_region.height - 1  # rows under the header
        await pilot.press("down", "down")
        await pilot.press("pagedown")
        await settle(pilot)
        assert table.cursor_row == 2 + page and round(table.scroll_y) == page

        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_row == ROWS - 1
        region = table.scrollable_content_region
        assert table.scroll_y <= table.cursor_row < table.scroll_y + region.height
        assert app.selected_row().port == 10_000 + ROWS - 1  # type: ignore[union-attr]

        await pilot.press("pageup")
        await settle(pilot)
        assert table.cursor_row == ROWS - 1 - page

        await pilot.press("home")
        await settle(pilot)
        assert table.cursor_row == 0 and table.scroll_y == 0

        await pilot.click(PortTable, offset=(3, 5))  # the header is line 0: row index 4
        await settle(pilot)
        assert table.cursor_row == 4
        assert app.selected_row().port == 10_004  # type: ignore[union-attr]
