"""The port table: rows keyed by socket, diffed in place, the cursor pinned to its row.

`DataTable.clear()` sends the cursor to the top and `sort()` keeps the cursor's index
rather than its row, so every refresh here adds new rows, updates only the cells that
changed, removes gone rows, and puts the cursor back on the row key it was on.

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

from collections.abc import Callable, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from ..core.untrusted import shown
from .rows import SortMode, TableRow, row_texts, sort_key

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
NARROW_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    c for c in WIDE_COLUMNS if c[0] not in ("user", "other", "trend")
)
NARROW_WIDTH = 100  # below this many cells the narrow columns are used


KEPT_RENDERS = 20_000  # cells; past this the kept renders are dropped and start again
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
        self._columns: tuple[tuple[str, str], ...] = ()
        # (port, proto, address) cells -> row key: rows are unique on these, and
        # DataTable.sort hands its key function cells, never the row key.
        self._identity: dict[tuple[Any, str, str], str] = {}
        self._renders_for = -1  # DataTable's update counter when its caches were last live

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
        return self._columns == NARROW_COLUMNS

    def selected_key(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return row_key.value

    def selected(self) -> TableRow | None:
        key = self.selected_key()
        return None if key is None else self._rows.get(key)

    def set_columns(self, narrow: bool) -> None:
        """Switch column sets; rebuilding is fine here, it happens on a resize only."""
        wanted = NARROW_COLUMNS if narrow else WIDE_COLUMNS
        if wanted == self._columns:
            return
        keep = self.selected_key()
        rows = list(self._rows.values())
        self.clear(columns=True)
        self._kept.clear()
        self._rows.clear()
        self._cells.clear()
        self._identity.clear()
        self._columns = wanted
        for key, label in wanted:
            self.add_column(label, key=key)
        self.show_rows(rows, keep_key=keep)

    def set_sort(self, mode: SortMode) -> None:
        keep = self.selected_key()
        self._sort = mode
        self._resort(keep)
        self._drop_dead_renders()

    def show_rows(self, rows: Sequence[TableRow], keep_key: str | None = None) -> None:
        """Make the table show exactly `rows`: add, update changed cells, remove, re-sort."""
        keep = keep_key or self.selected_key()
        wanted = {row.key: row for row in rows}
        for key in [k for k in self._rows if k not in wanted]:
            self._remove(key)
        order_may_change = False
        for key, row in wanted.items():
            cells = self._cells_for(row)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                self._identity[_identity(cells)] = key
                order_may_change = True
            elif old != cells:
                for (column, _), before, after in zip(self._columns, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, column, after, update_width=True)
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
        self.sort("port", "proto", "address", key=lambda c: order(rows[identity[_identity(c)]]))
        if keep is not None and keep in self._rows:
            self._move_to(keep)

    def _move_to(self, key: str) -> None:
        index = self.get_row_index(key)
        if index != self.cursor_row:
            self.move_cursor(row=index)

    def _cells_for(self, row: TableRow) -> tuple[Any, ...]:
        old = self._cells.get(row.key)
        if old is not None and self._rows.get(row.key) == row:
            # The same row as last poll (a listener whose holders did not change: 200 of a
            # pre-fork server's, each with 300 processes): its texts are a function of the
            # row, so only the trend can have moved. ~25 ms a poll under load, on the UI
            # thread, where a key pressed meanwhile waits for it.
            same = list(old)
            for index, (column, _) in enumerate(self._columns):
                if column == "trend":
                    same[index] = self._trend_cell(row)
            return tuple(same)
        texts = row_texts(row)._asdict()
        cells: list[Any] = []
        for column, _ in self._columns:
            if column == "port":
                cells.append(row.port)  # an int, so the cell compares and sorts as a number
            elif column == "trend":
                cells.append(self._trend_cell(row))
            elif column == "address" and row.socket is None:
                cells.append(Text(texts[column], style="dim"))
            else:
                # Text, escaped: a name like "[kthreadd]" or "x[/]y" is not markup, and a
                # control character in it must not reach the terminal. DataTable measures
                # the escaped text's cells itself, so wide names keep their columns aligned.
                cells.append(Text(shown(texts[column])))
        return tuple(cells)

    def _trend_cell(self, row: TableRow) -> Text:
        return Text(self._trend(row), style="cyan")


def _identity(cells: tuple[Any, ...]) -> tuple[Any, str, str]:
    return (cells[0], str(cells[1]), str(cells[2]))
