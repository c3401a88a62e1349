"""The port table: rows keyed by socket, diffed in place, the cursor pinned to its row.

`DataTable.clear()` sends the cursor to the top and `sort()` keeps the cursor's index
rather than its row, so a refresh here adds new rows, updates only the cells that changed,
removes gone rows, and puts the cursor back on the row key it was on.

Many changes at once land as one bulk operation instead: `remove_row` rebuilds the whole
row index (removing 4,000 rows one by one took 5.5 s), so past BULK added and removed
rows (and always for a filter applied or cleared) the table is cleared and refilled in
sort order, the cursor put back on its row and the view scrolled so that row stays on the
same line. A refilled row that DataTable already measured (the same TableRow object: see
rows.Prepared) is not measured again: column widths only ever grow (`_update`), so they
still allow for it.

DataTable caches rendered cells, rows and lines in LRU caches (10,000 cells, 1,000 rows
and lines) keyed on its update counter, which every add, update, remove and sort bumps.
A live table bumps it each poll, so nearly everything in them is dead, yet it stays until
evicted: ~10 MB per table, filling over the first minutes of a session. `show_rows` drops
them whenever the counter moved, so they hold one screen's worth of live renders.

Keyed on that counter, a poll that changed one TIME_WAIT count re-rendered every visible
cell (~250 at 160x48, 25-45 ms of the UI thread under load, during which a key waits).
`_render_cell` keeps each cell's last render beside the value it was made from and reuses
it while the value (the same object: unchanged rows keep their cells) and everything else
the render depends on are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from .rows import RowTexts, SortMode, TableRow, shown_texts, sort_key

# (column key, label); the narrow set drops what a person can read in the details pane.
WIDE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("port", "PORT"),
    ("proto", "PROTO"),
    ("address", "ADDRESS"),
    ("pids", "PID"),
    ("process", "PROCESS"),
    ("user", "USER"),
    ("time_wait", "TIME_WAIT"),
    ("trend", "TREND"),
    ("other", "OTHER"),
)
# The live connections by state ("8 estab, 1 close-wait") take the most cells and are in
# the details pane's first line too: only a terminal of WIDE_WIDTH shows them here, so a
# 120-column one needs no horizontal scrollbar.
MEDIUM_COLUMNS: tuple[tuple[str, str], ...] = tuple(c for c in WIDE_COLUMNS if c[0] != "other")
# Narrower still, TIME_WAIT is a bare count ("tw": when it clears is in the details), and
# below COMPACT_WIDTH (a 60-column pane) the PID goes too and the count is headed TW: a typical
# machine's rows fit with no horizontal scrollbar. Port, proto and address stay in every
# set: rows are told apart by them.
NARROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("port", "PORT"),
    ("proto", "PROTO"),
    ("address", "ADDRESS"),
    ("pids", "PID"),
    ("process", "PROCESS"),
    ("tw", "TIME_WAIT"),
)
COMPACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("port", "PORT"),
    ("proto", "PROTO"),
    ("address", "ADDRESS"),
    ("process", "PROCESS"),
    ("tw", "TW"),
)
WIDE_WIDTH = 130  # from this many cells every column is shown
NARROW_WIDTH = 110  # below this many cells the narrow columns are used
COMPACT_WIDTH = 80  # below this many, the compact ones

# The sort a click on a column's header picks (the trend is TIME_WAIT's history).
COLUMN_SORT: dict[str, SortMode] = {
    "port": "port",
    "proto": "proto",
    "address": "address",
    "pids": "PID",
    "process": "process",
    "user": "user",
    "time_wait": "TIME_WAIT",
    "tw": "TIME_WAIT",
    "trend": "TIME_WAIT",
    "other": "connections",
}
_SORTED_COLUMNS = ("port", "proto", "address", "pids", "process", "user", "time_wait", "tw",
                   "other")  # the column that shows the sort's arrow, first match


def columns_for(width: int) -> tuple[tuple[str, str], ...]:
    if width < COMPACT_WIDTH:
        return COMPACT_COLUMNS
    if width < NARROW_WIDTH:
        return NARROW_COLUMNS
    return MEDIUM_COLUMNS if width < WIDE_WIDTH else WIDE_COLUMNS


KEPT_RENDERS = 20_000  # cells; past this the kept renders are dropped and start again
BULK = 64  # rows added and removed by one refresh past which the table is refilled at once
MEASURED_MAX = 20_000  # measured rows remembered; past this, only the rows shown are kept
_RENDER_CACHES = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache")


class PortTable(DataTable[Any]):
    """A DataTable that knows its rows as TableRows and refreshes them by key."""

    def __init__(
        self, *, id: str | None = None, trend: Callable[[TableRow], str] | None = None
    ) -> None:
        # (row key, column key) -> (the cell's value, what else the render depends on,
        # the render): see the module's docstring. Before DataTable's __init__, whose
        # watchers call _clear_caches.
        self._kept: dict[tuple[Any, Any], tuple[Any, tuple[Any, ...], list[list[Segment]]]] = {}
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        # The TIME_WAIT sparkline of a row (core/history); blank without a history.
        self._trend = trend or (lambda row: "")
        self._rows: dict[str, TableRow] = {}
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._sort: SortMode = "port"
        self._reverse = False
        self._columns: tuple[tuple[str, str], ...] = ()
        # (port, proto, address) cells -> row key: rows are unique on these, and
        # DataTable.sort hands its key function cells, never the row key.
        self._identity: dict[tuple[Any, str, str], str] = {}
        self._renders_for = -1  # DataTable's update counter when its caches were last live
        # Row key -> the TableRow whose cells DataTable measured (for the current columns).
        self._measured: dict[str, TableRow] = {}

    def render_cache_sizes(self) -> tuple[int, ...]:
        """Entries in DataTable's (cell, row, row renderables, line) caches; for tests."""
        return tuple(len(getattr(self, name)) for name in _RENDER_CACHES)

    @property
    def kept_renders(self) -> int:
        """Cells whose last render `_render_cell` keeps; for tests."""
        return len(self._kept)

    @property
    def rows_shown(self) -> dict[str, TableRow]:
        return self._rows

    @property
    def narrow(self) -> bool:
        """Fewer columns than the wide set (narrow or compact)."""
        return self._columns != WIDE_COLUMNS

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self._columns)

    def selected_key(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return row_key.value

    def selected(self) -> TableRow | None:
        key = self.selected_key()
        return None if key is None else self._rows.get(key)

    def set_columns(self, width: int) -> None:
        """The column set for a screen `width` cells wide; rebuilding is fine here, it
        happens on a resize only."""
        wanted = columns_for(width)
        if wanted == self._columns:
            return
        keep = self.selected_key()
        rows = list(self._rows.values())
        self.clear(columns=True)
        self._kept.clear()
        self._rows.clear()
        self._cells.clear()
        self._identity.clear()
        self._measured.clear()  # new columns: every width is measured afresh
        self._columns = wanted
        for key, label in wanted:
            self.add_column(self._label(key, label), key=key)
        self.show_rows(rows, keep_key=keep)

    def set_sort(self, mode: SortMode, reverse: bool = False) -> None:
        """Sort by `mode` (largest first for counts), reversed or not; the cursor stays on
        its row and the sorted column's header is underlined."""
        keep = self.selected_key()
        self._sort, self._reverse = mode, reverse
        self._label_columns()
        self._resort(keep)
        self._drop_dead_renders()

    def _label(self, key: str, label: str) -> Text:
        """The header of `key`'s column, underlined when the table is sorted by it (a style,
        not an arrow: an arrow would widen the column, and at 120 cells every one counts).
        The header says which way (status_bar)."""
        sorted_by = next(
            (k for k in _SORTED_COLUMNS if COLUMN_SORT[k] == self._sort and k in self.column_keys),
            None,
        )
        return Text(label, style="bold underline" if key == sorted_by else "")

    def _label_columns(self) -> None:
        for key, label in self._columns:
            column = self.columns.get(ColumnKey(key))
            if column is not None:
                column.label = self._label(key, label)
        self.refresh()

    def show_rows(
        self,
        rows: Sequence[TableRow],
        keep_key: str | None = None,
        *,
        texts: Mapping[str, RowTexts] | None = None,
        bulk: bool = False,
    ) -> None:
        """Make the table show exactly `rows`: add, update changed cells, remove, re-sort;
        refilled at once when `bulk` or when many rows come and go. `texts`: the rows'
        escaped texts, made off the UI thread (rows.Prepared)."""
        keep = keep_key or self.selected_key()
        wanted = {row.key: row for row in rows}
        gone = [k for k in self._rows if k not in wanted]
        added = len(wanted) - (len(self._rows) - len(gone))
        if bulk or len(gone) + added > BULK:
            self._refill(wanted, keep, texts)
            self._drop_dead_renders()
            return
        for key in gone:
            self._remove(key)
        order_may_change = False
        for key, row in wanted.items():
            cells = self._cells_for(row, texts)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                self._identity[_identity(cells)] = key
                self._skip_measured(key, row)
                order_may_change = True
            elif old != cells:
                for (column, _), before, after in zip(self._columns, old, cells, strict=True):
                    if before != after:
                        self._update(key, column, after)
                order_may_change = order_may_change or sort_key(self._sort)(
                    self._rows[key]
                ) != sort_key(self._sort)(row)
            self._rows[key] = row
            self._cells[key] = cells
        if order_may_change:
            self._resort(keep)
        elif keep is not None and keep in self._rows:
            self._move_to(keep)
        self._drop_dead_renders()
        self._forget_measured()

    def forget_cells(self) -> None:
        """The next show_rows (with bulk=True) makes every cell anew: those shown were made
        from other texts than the rows' own (a sketch's, rows.sketch_rows)."""
        self._rows, self._cells = {}, {}

    def _refill(
        self, wanted: dict[str, TableRow], keep: str | None, texts: Mapping[str, RowTexts] | None
    ) -> None:
        """Clear and add `wanted` in sort order: one pass, never one removal per row. The
        cursor goes back to its row (else to its index) on the line of the view it was on."""
        index, top, left = self.cursor_row, int(self.scroll_y), self.scroll_x
        cells = {key: self._cells_for(row, texts) for key, row in wanted.items()}
        order = sorted(wanted.values(), key=sort_key(self._sort), reverse=self._reverse)
        self.clear()
        self._rows, self._cells, self._identity = {}, {}, {}
        for row in order:
            key, row_cells = row.key, cells[row.key]
            self.add_row(*row_cells, key=key)
            self._rows[key] = row
            self._cells[key] = row_cells
            self._identity[_identity(row_cells)] = key
            self._skip_measured(key, row)
        self._forget_measured()
        if not order:
            return
        if keep is not None and keep in self._rows:
            line = index - top  # the cursor's line in the view, kept
            index = self.get_row_index(keep)
            top = max(0, index - line)
        index = min(max(index, 0), len(order) - 1)
        if index:
            self.move_cursor(row=index, scroll=False)
        # After the refresh that sizes the refilled table (DataTable works out its height
        # when idle), as DataTable's own move_cursor does.
        self.call_after_refresh(self.scroll_to, x=left, y=top, animate=False)

    def _update(self, key: str, column: str, value: Any) -> None:
        """Update a cell, widening its column if the value needs it, never narrowing it:
        DataTable's update_width measures every cell of the column again for each value
        narrower than the column (each changed count of 5,000 rows: 5,000 measures each).
        Widths that only grow are also what lets a refill skip rows already measured."""
        known = self.columns.get(ColumnKey(column))
        wider = known is None or _width(value) > known.content_width
        self.update_cell(key, column, value, update_width=wider)

    def _skip_measured(self, key: str, row: TableRow) -> None:
        """Do not measure a row DataTable already measured, unchanged (see the module's
        docstring); read with getattr, like the render caches."""
        if self._measured.get(key) is row:
            new_rows = getattr(self, "_new_rows", None)
            if new_rows is not None:
                new_rows.discard(RowKey(key))

    def _forget_measured(self) -> None:
        if len(self._measured) > MEASURED_MAX:
            self._measured = {k: r for k, r in self._measured.items() if k in self._rows}

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures the rows added since it was last idle: remember which."""
        new_rows = list(new_rows)
        super()._update_dimensions(new_rows)
        for row_key in new_rows:
            key = row_key.value
            row = self._rows.get(key) if key is not None else None
            if row is not None and key is not None:
                self._measured[key] = row

    def _drop_dead_renders(self) -> None:
        """Empty DataTable's render caches if its update counter moved: their keys hold the
        counter, so no entry made before can be hit again (a cursor move does not bump it,
        so the renders it reuses survive a poll that changed nothing).

        These are DataTable internals: read with getattr so a Textual that renames them
        costs memory, not a crash (tests/tui/test_table_memory.py notices the rename)."""
        count = getattr(self, "_update_count", None)
        if count is None or count == self._renders_for:
            return
        self._renders_for = count
        for name in _RENDER_CACHES:
            cache = getattr(self, name, None)
            if cache is not None:
                cache.clear()

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        render = super()._render_cell
        if row_index < 0 or column_index < 0:  # the header
            return render(row_index, column_index, base_style, width, cursor, hover)
        try:
            row_key = self._row_locations.get_key(row_index)
            column_key = self._column_locations.get_key(column_index)
            if row_key is None or column_key is None:
                raise KeyError(row_index, column_index)
            value = self._data[row_key][column_key]
            depends = (
                row_index, column_index, width, base_style, cursor, hover,
                self._show_hover_cursor,
                self._pseudo_class_state,
            )
        except (AttributeError, KeyError):  # DataTable's internals moved: render as it does
            return render(row_index, column_index, base_style, width, cursor, hover)
        kept = self._kept.get((row_key, column_key))
        if kept is not None and kept[0] is value and kept[1] == depends:
            return kept[2]
        lines = render(row_index, column_index, base_style, width, cursor, hover)
        if len(self._kept) >= KEPT_RENDERS:
            self._kept.clear()
        self._kept[(row_key, column_key)] = (value, depends, lines)
        return lines

    def _clear_caches(self) -> None:
        # DataTable calls this when a render may change with nothing else we key on
        # (zebra stripes, fixed rows, padding, cursor shown or not).
        super()._clear_caches()
        self._kept.clear()

    def notify_style_update(self) -> None:  # CSS or the theme changed
        super().notify_style_update()
        self._kept.clear()

    def _remove(self, key: str) -> None:
        cells = self._cells.pop(key)
        self._identity.pop(_identity(cells), None)
        del self._rows[key]
        self.remove_row(key)
        for column, _ in self._columns:
            self._kept.pop((key, column), None)

    def _resort(self, keep: str | None) -> None:
        order = sort_key(self._sort)
        rows, identity = self._rows, self._identity
        self.sort(
            "port", "proto", "address",
            key=lambda c: order(rows[identity[_identity(c)]]), reverse=self._reverse,
        )
        if keep is not None and keep in self._rows:
            self._move_to(keep)

    def _move_to(self, key: str) -> None:
        index = self.get_row_index(key)
        if index != self.cursor_row:
            self.move_cursor(row=index)

    def _cells_for(
        self, row: TableRow, texts: Mapping[str, RowTexts] | None = None
    ) -> tuple[Any, ...]:
        old = self._cells.get(row.key)
        last = self._rows.get(row.key)
        if old is not None and (last is row or last == row):
            # The same row as last poll (a listener whose holders did not change: 200 of a
            # pre-fork server's, each with 300 processes): its texts are a function of the
            # row, so only the trend can have moved. ~25 ms a poll under load, on the UI
            # thread, where a key pressed meanwhile waits for it.
            same = list(old)
            for index, (column, _) in enumerate(self._columns):
                if column == "trend":
                    same[index] = self._trend_cell(row)
            return tuple(same)
        made = texts.get(row.key) if texts is not None else None
        shown = (made or shown_texts(row))._asdict()
        cells: list[Any] = []
        for column, _ in self._columns:
            if column == "port":
                cells.append(row.port)  # an int, so the cell compares and sorts as a number
            elif column == "tw":
                cells.append(Text(f"{row.time_wait:,}" if row.time_wait else ""))
            elif column == "trend":
                cells.append(self._trend_cell(row))
            elif column == "address" and row.socket is None:
                cells.append(Text(shown[column], style="dim"))
            else:
                # Text, escaped: a name like "[kthreadd]" or "x[/]y" is not markup, and a
                # control character in it must not reach the terminal. DataTable measures
                # the escaped text's cells itself, so wide names keep their columns aligned.
                cells.append(Text(shown[column]))
        return tuple(cells)

    def _trend_cell(self, row: TableRow) -> Text:
        return Text(self._trend(row), style="cyan")


def _width(value: Any) -> int:
    """Cells a value takes on its one line (cells are one-line Text, or the port's int)."""
    return value.cell_len if isinstance(value, Text) else len(str(value))


def _identity(cells: tuple[Any, ...]) -> tuple[Any, str, str]:
    return (cells[0], str(cells[1]), str(cells[2]))
