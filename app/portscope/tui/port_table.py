"""The port table: a Line API widget that draws only the rows on screen.

Textual's DataTable keeps a widget-side record per row and rebuilds its row index on each
removal (4,000 removals: 5.5 s); even refilled in one pass, 5,000 `add_row`s cost 0.3-0.8 s
of the UI thread, so clearing a filter or the first frame at 5,000 listeners froze the
keys. Here a poll's rows become one ordered list of keys: the work per poll is a dict per
row and one sort, and drawing costs only the ~50 rows a screen shows (`render_line`).

- **Cells** are made once per row object (rows.Prepared hands the same object for a row
  that did not change) and kept with their widths, also while a filter hides the row.
- **Column widths** are the widest cell of the rows shown, recomputed from those kept
  widths: a column narrows again when its widest row leaves.
- **The cursor** stays on its row key across polls, and that row on its line of the view;
  if the row goes, the cursor stays on its index.
- **Lines** are kept per row key with what they were drawn from, so a poll that changed one
  count redraws one line.

`ops` counts the table's own work (tests/tui/test_table_bulk.py checks that a filter is one
pass and a poll draws only the lines it changed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .rows import UNKNOWN, RowTexts, SortMode, TableRow, shown_texts, sort_key

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

PADDING = 1  # cells either side of every cell, as DataTable draws them
KEPT_SLACK = 64  # rows kept past the poll's own (rows gone) before they are dropped
_TEXT_COLUMNS = frozenset(RowTexts._fields)


def columns_for(width: int) -> tuple[tuple[str, str], ...]:
    if width < COMPACT_WIDTH:
        return COMPACT_COLUMNS
    if width < NARROW_WIDTH:
        return NARROW_COLUMNS
    return MEDIUM_COLUMNS if width < WIDE_WIDTH else WIDE_COLUMNS


class _Made:
    """A row's cells for the current columns (the trend is drawn, not kept: it moves every
    poll), their widths, and the row they were made from."""

    __slots__ = ("cells", "row", "widths")

    def __init__(self, row: TableRow, cells: tuple[str, ...], widths: tuple[int, ...]) -> None:
        self.row, self.cells, self.widths = row, cells, widths


class PortTable(ScrollView, can_focus=True):
    """The rows of a poll, in sort order, one line each under a fixed header."""

    class RowHighlighted(Message):
        """The cursor moved to another row (`row_key`: None when the table is empty)."""

        def __init__(self, table: PortTable, row_key: str | None) -> None:
            super().__init__()
            self.table = table
            self.row_key = row_key

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, table: PortTable, column_key: str) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First row", show=False),
        Binding("end,ctrl+end", "last", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "port-table--header",
        "port-table--cursor",
        "port-table--even-row",
        "port-table--odd-row",
    }
    # DataTable's look, so the table reads as Textual's own.
    DEFAULT_CSS = """
    PortTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .port-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .port-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .port-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .port-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .port-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .port-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .port-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        trend: Callable[[TableRow], str] | None = None,
        trend_width: int = 0,
    ) -> None:
        super().__init__(id=id)
        # The TIME_WAIT sparkline of a row (core/history), at most `trend_width` cells;
        # blank without a history.
        self._trend = trend or (lambda row: "")
        self._trend_width = trend_width
        self._columns: tuple[tuple[str, str], ...] = ()
        self._sort: SortMode = "port"
        self._reverse = False
        self._rows: dict[str, TableRow] = {}  # shown, by key
        self._order: list[str] = []  # shown keys, in sort order
        self._index: dict[str, int] = {}  # key -> its index in _order
        self._made: dict[str, _Made] = {}  # cells kept, shown rows and those a filter hides
        self._texts: Mapping[str, RowTexts] | None = None  # the last poll's (set_columns)
        self._widths: list[int] = []  # each column's cells, padding not included
        self._cursor = 0
        self._lines: dict[str, tuple[tuple[Any, ...], Strip]] = {}  # key -> (drawn from, line)
        self.ops: Counter[str] = Counter()  # "order", "made", "lines": see the docstring

    # -- what the rest of the TUI reads ----------------------------------------------------

    @property
    def rows_shown(self) -> dict[str, TableRow]:
        return self._rows

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def ordered_keys(self) -> list[str]:
        return self._order

    @property
    def kept(self) -> tuple[int, int]:
        """(rows whose cells are kept, lines kept drawn); for tests."""
        return len(self._made), len(self._lines)

    @property
    def narrow(self) -> bool:
        """Fewer columns than the wide set (narrow or compact)."""
        return self._columns != WIDE_COLUMNS

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self._columns)

    def column_labels(self) -> list[tuple[str, str, bool]]:
        """(key, label, sorted by it) per column, as the header shows them."""
        sorted_by = self._sorted_column()
        return [(key, label, key == sorted_by) for key, label in self._columns]

    def column_width(self, column: str) -> int:
        """Cells of `column`'s content (its padding not included)."""
        return self._widths[self.column_keys.index(column)]

    def selected_key(self) -> str | None:
        return self._order[self._cursor] if self._order else None

    def selected(self) -> TableRow | None:
        key = self.selected_key()
        return None if key is None else self._rows.get(key)

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def get_row(self, key: str) -> tuple[str, ...]:
        """The row's cells as shown, in column order (the trend drawn now)."""
        made = self._made[key]
        return tuple(
            self._trend(made.row) if column == "trend" else cell
            for (column, _), cell in zip(self._columns, made.cells, strict=True)
        )

    def get_row_at(self, index: int) -> tuple[str, ...]:
        return self.get_row(self._order[index])

    def get_cell(self, key: str, column: str) -> str:
        return self.get_row(key)[self.column_keys.index(column)]

    # -- columns and sort ------------------------------------------------------------------

    def set_columns(self, width: int) -> None:
        """The column set for a screen `width` cells wide (cells are made again)."""
        wanted = columns_for(width)
        if wanted == self._columns:
            return
        self._columns = wanted
        self._made, self._widths = {}, []
        # The same rows, from the same texts (a sketch's "…" stays "…").
        self.show_rows(list(self._rows.values()), keep_key=self.selected_key(), texts=self._texts)

    def set_sort(self, mode: SortMode, reverse: bool = False) -> None:
        """Sort by `mode` (largest first for counts), reversed or not; the cursor stays on
        its row and the sorted column's header is underlined."""
        self._sort, self._reverse = mode, reverse
        self.show_rows(
            list(self._rows.values()), keep_key=self.selected_key(), texts=self._texts, bulk=True
        )

    def _sorted_column(self) -> str | None:
        return next(
            (k for k in _SORTED_COLUMNS if COLUMN_SORT[k] == self._sort and k in self.column_keys),
            None,
        )

    # -- a poll's rows -----------------------------------------------------------------------

    def show_rows(
        self,
        rows: Sequence[TableRow],
        keep_key: str | None = None,
        *,
        texts: Mapping[str, RowTexts] | None = None,
        every: Sequence[TableRow] | None = None,
        bulk: bool = False,
    ) -> None:
        """Show exactly `rows`, in sort order, the cursor kept on `keep_key` (else on the
        row it is on) and that row on its line of the view. `texts`: the rows' escaped
        texts, made off the UI thread (rows.Prepared). `every`: the poll's rows, those the
        filter hides too, whose cells are kept (default `rows`). `bulk` (a filter applied or
        cleared, a new sort) orders the rows afresh even if no row came, went or changed."""
        keep = keep_key or self.selected_key()
        self._texts = texts
        line = self._cursor - int(self.scroll_y)  # the cursor's line in the view
        old_rows, old_index = self._rows, self._cursor
        wanted = {row.key: row for row in rows}
        made = self._made
        if len(made) > len(every if every is not None else rows) + KEPT_SLACK:
            keys = wanted.keys() if every is None else {row.key for row in every}
            made = self._made = {k: m for k, m in made.items() if k in keys}
        reorder = bulk or wanted.keys() != old_rows.keys()
        order_of = sort_key(self._sort)
        remade = False
        for key, row in wanted.items():
            kept = made.get(key)
            if kept is not None and kept.row is row:
                continue
            made[key] = self._make(row, texts)
            remade = True
            before = old_rows.get(key)
            reorder = reorder or before is None or order_of(before) != order_of(row)
        self._rows = wanted
        if reorder:
            self.ops["order"] += 1
            self._order = [
                r.key for r in sorted(wanted.values(), key=order_of, reverse=self._reverse)
            ]
            self._index = {key: i for i, key in enumerate(self._order)}
        if remade or reorder or not self._widths:
            self._measure()
        index = self._index.get(keep, old_index) if keep is not None else old_index
        self._cursor = min(max(index, 0), max(len(self._order) - 1, 0))
        self._sync_size()
        self.scroll_to(y=max(0, self._cursor - line), animate=False, immediate=True)
        if len(self._lines) > 4 * max(self.size.height, 16):
            self._lines = {}
        self.refresh()
        if self.selected_key() != (keep if keep in old_rows else None):
            self.post_message(self.RowHighlighted(self, self.selected_key()))

    def forget_cells(self) -> None:
        """The next show_rows makes every cell anew: those shown were made from other
        texts than the rows' own (a sketch's, rows.sketch_rows)."""
        self._made = {}

    def _make(self, row: TableRow, texts: Mapping[str, RowTexts] | None) -> _Made:
        self.ops["made"] += 1
        shown = (texts.get(row.key) if texts is not None else None) or shown_texts(row)
        cells: list[str] = []
        for column, _ in self._columns:
            if column == "port":
                cells.append(str(row.port))
            elif column == "tw":
                known = shown.time_wait != UNKNOWN  # a sketch's (rows.sketch_rows)
                cells.append(f"{row.time_wait:,}" if row.time_wait and known else
                             "" if known else UNKNOWN)
            elif column == "trend":
                cells.append("")  # drawn from the history when the line is
            elif column in _TEXT_COLUMNS:
                # Escaped (rows.shown_texts): a control character in a name never reaches
                # the terminal, and cell_len counts what the terminal will draw.
                cells.append(getattr(shown, column))
            else:
                cells.append("")
        return _Made(row, tuple(cells), tuple(map(cell_len, cells)))

    def _measure(self) -> None:
        """Each column as wide as its widest shown cell (or its label)."""
        made, columns = self._made, self._columns
        widths = [
            max(cell_len(label), self._trend_width) if column == "trend" else cell_len(label)
            for column, label in columns
        ]
        if self._rows:
            each = [made[key].widths for key in self._rows]
            for i, (column, _) in enumerate(columns):
                if column != "trend":
                    widths[i] = max(widths[i], max(map(itemgetter(i), each)))
        if widths != self._widths:
            self._widths = widths
            self._lines = {}

    def _sync_size(self) -> None:
        width = sum(w + 2 * PADDING for w in self._widths)
        size = Size(width, len(self._order) + 1)  # the header's line and the rows
        if size != self.virtual_size:
            self.virtual_size = size

    # -- the cursor ---------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        """Put the cursor on `row` (clamped); `scroll` brings it into view."""
        if not self._order:
            return
        index = min(max(row, 0), len(self._order) - 1)
        if index == self._cursor:
            return
        self._cursor = index
        if scroll:
            self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.RowHighlighted(self, self.selected_key()))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)  # rows under the header

    def _scroll_to_cursor(self) -> None:
        top, page = int(self.scroll_y), self._page()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + page:
            self.scroll_to(y=self._cursor - page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_down(self) -> None:
        """A page on: the view and the cursor move together (the cursor keeps its line)."""
        page = self._page()
        self.scroll_to(y=int(self.scroll_y) + page, animate=False, immediate=True)
        self.move_cursor(row=self._cursor + page)

    def action_page_up(self) -> None:
        page = self._page()
        self.scroll_to(y=max(0, int(self.scroll_y) - page), animate=False, immediate=True)
        self.move_cursor(row=self._cursor - page)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + int(self.scroll_x)
            for (column, _), width in zip(self._columns, self._widths, strict=True):
                x -= width + 2 * PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column))
                    return
            return
        self.move_cursor(row=int(self.scroll_y) + event.y - 1, scroll=False)

    # -- drawing ------------------------------------------------------------------------------

    def notify_style_update(self) -> None:  # CSS, the theme or focus changed
        super().notify_style_update()
        self._lines = {}

    def on_focus(self) -> None:  # the cursor's colours depend on it
        self._lines = {}
        self.refresh()

    def on_blur(self) -> None:
        self._lines = {}
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        left = int(self.scroll_x)
        if y == 0:
            return self._header().crop_extend(left, left + width, self.rich_style)
        index = int(self.scroll_y) + y - 1
        if not 0 <= index < len(self._order):
            return Strip.blank(width, self.rich_style)
        key = self._order[index]
        made = self._made[key]
        trend = self._trend(made.row) if "trend" in self.column_keys else ""
        drawn_from = (made, trend, index % 2, index == self._cursor, left, width)
        kept = self._lines.get(key)
        if kept is not None and kept[0] == drawn_from:
            return kept[1]
        self.ops["lines"] += 1
        line = self._line(made, trend, index).crop_extend(left, left + width, self._row_style(
            index))
        self._lines[key] = (drawn_from, line)
        return line

    def _row_style(self, index: int) -> Style:
        stripe = "port-table--odd-row" if index % 2 else "port-table--even-row"
        style = self.rich_style + self.get_component_rich_style(stripe)
        if index == self._cursor:
            style += self.get_component_rich_style("port-table--cursor")
        return style

    def _line(self, made: _Made, trend: str, index: int) -> Strip:
        style = self._row_style(index)
        cursor = index == self._cursor
        # The cursor's colours win over a cell's own (DataTable's "css" priority).
        over = Style(color=style.color, bgcolor=style.bgcolor) if cursor else Style()
        segments: list[Segment] = []
        pad = " " * PADDING
        for i, ((column, _), cell) in enumerate(zip(self._columns, made.cells, strict=True)):
            own: Style | None = None
            if column == "trend":
                cell, own = trend, Style(color="cyan")
            elif column == "address" and made.row.socket is None:
                own = Style(dim=True)
            text = pad + set_cell_size(cell, self._widths[i]) + pad
            segments.append(Segment(text, style + own + over if own is not None else style))
        return Strip(segments)

    def _header(self) -> Strip:
        style = self.rich_style + self.get_component_rich_style("port-table--header")
        underlined = style + Style(underline=True)
        sorted_by = self._sorted_column()
        pad = " " * PADDING
        segments: list[Segment] = []
        for (key, label), width in zip(self._columns, self._widths, strict=True):
            segments += [
                Segment(pad, style),
                Segment(label, underlined if key == sorted_by else style),
                Segment(" " * (width - cell_len(label)) + pad, style),
            ]
        return Strip(segments)
