"""The main screen: header, filter, port table, details pane, footer.

Snapshots arrive from the app. While another screen (a dialog) is on top, the newest one
is kept aside and applied when this screen is active again, so the row a dialog is about
cannot move or vanish under it. Pause holds the table the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import tzinfo
from functools import partial
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from ..core.collect import Collector, snapshot_for
from ..core.history.recorder import History
from ..core.kill.after import settle_after
from ..core.model import Snapshot
from ..core.roles.model import Cast
from ..core.roles.port import hidden_owner
from .bind_panel import BindPanel, real_diagnose
from .details import DetailsPane
from .filter_bar import FilterBar
from .kill_modal import KillModal, KillOutcome
from .port_table import NARROW_WIDTH, PortTable
from .relatives import Relatives, RelativesLookup
from .rows import SORT_MODES, RowFilter, SortMode, TableRow, build_rows, listening_count
from .status_bar import TINY_HEIGHT, Status, StatusBar
from .stops import StopLookup, from_holders

CHART_CELLS = 60  # the details pane's trend: the same window as the table's, finer
TREND_CELLS = 8  # the table's TREND column: a whole 120-column row still fits


class RelativesFound(Message):
    """Posted from a worker thread: parents and children of the selected row's holders."""

    def __init__(self, row_key: str, found: dict[int, Relatives], cast: Cast | None) -> None:
        super().__init__()
        self.row_key = row_key
        self.found = found
        self.cast = cast


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: run before the keys typed after it are routed, so "/8080" typed fast
        # (or pasted) all lands in the filter input.
        Binding("slash", "filter", "Filter", key_display="/", priority=True, id="main.filter"),
        Binding("s", "cycle_sort", "Sort", id="main.sort"),
        Binding("p", "toggle_pause", "Pause", id="main.pause"),
        Binding("b", "bind_test", "Bind test", id="main.bind_test"),
        Binding("k", "kill", "Kill", id="main.kill"),
        Binding("e", "events", "Events", id="main.events"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="main.clear_filter"),
        Binding("question_mark", "help", "Help", key_display="?", id="main.help"),
    ]
    # -tiny: one header line and a small details pane, so the table keeps rows to read.
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (TINY_HEIGHT, "-short"), (30, "-tall")]  # noqa: RUF012

    def __init__(
        self,
        tz: tzinfo | None,
        relatives: RelativesLookup,
        stops: StopLookup = from_holders,
        history: History | None = None,
    ) -> None:
        super().__init__(id="main")
        self._status = Status()
        self._tz = tz
        self._lookup = relatives
        self._stops = stops
        self._history = history or History()
        self._cast: Cast | None = None  # roles and stop plan of the selected row
        self._shown: Snapshot | None = None  # what the table shows
        self._pending: Snapshot | None = None  # newer, held while paused or under a dialog
        self._relatives: dict[int, Relatives] = {}
        self._relatives_for: tuple[str, tuple[tuple[int, float | None], ...]] | None = None
        # Kept by reference: a poll can land while the app shuts down and its widgets are
        # already gone, and that must be a no-op, not a NoMatches traceback.
        trends = self._history.trends
        self._table = PortTable(
            id="ports",
            trend=lambda row: trends.sparkline(row.port, TREND_CELLS) if row.proto == "tcp" else "",
        )
        self._status_bar = StatusBar(self._tz, id="status")
        self._details = DetailsPane(self._tz, id="details")
        self._filter = FilterBar(id="filter")

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._status_bar
        self._filter.display = False
        yield self._filter
        yield self._table
        yield self._details
        yield Footer()

    @property
    def table(self) -> PortTable:
        return self._table

    @property
    def _live(self) -> bool:
        """Widgets on screen: False before mount and once the app is shutting down."""
        return self._table.is_attached and self._table.is_mounted

    def on_mount(self) -> None:
        self.table.set_columns(narrow=self.size.width < NARROW_WIDTH)
        self.table.focus()
        self._show_status()
        self._show_details()

    def on_resize(self, event: events.Resize) -> None:
        self.table.set_columns(narrow=event.size.width < NARROW_WIDTH)
        self._show_status()  # the header is one line on a short terminal

    # -- data -------------------------------------------------------------------------

    def receive(self, snapshot: Snapshot) -> None:
        """A new poll: show it now, or hold it while paused or under a dialog."""
        if self._status.error is not None:
            self._status = replace(self._status, error=None)
        if self._status.paused or not self.is_active or not self._live:
            self._pending = snapshot
            self._show_status()
            return
        self._apply(snapshot)

    def poll_failed(self, error: str) -> None:
        self._status = replace(self._status, error=error)
        self._show_status()

    def on_screen_resume(self) -> None:
        if self._pending is not None and not self._status.paused and self._live:
            self._apply(self._pending)

    def _apply(self, snapshot: Snapshot) -> None:
        self._pending = None
        self._shown = snapshot
        self._render_rows()

    def _render_rows(self) -> None:
        snap = self._shown
        rows = build_rows(snap) if snap is not None else []
        row_filter = self._status.row_filter
        visible = [r for r in rows if row_filter.matches(r)]
        self.table.show_rows(visible)
        self._status = replace(
            self._status, snapshot=snap, rows_total=len(rows), rows_shown=len(visible),
            listening=listening_count(rows),
        )
        self._show_status()
        self._show_details()

    def _show_status(self) -> None:
        if self._live:
            self._status_bar.show(self._status)

    # -- selection and details --------------------------------------------------------

    def selected_row(self) -> TableRow | None:
        return self._table.selected() if self._live else None

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_details()

    def _show_details(self) -> None:
        row = self.selected_row()
        self._want_relatives(row)
        shown = self._shown
        now = shown.taken_at if shown is not None else None
        is_root = shown.is_root if shown is not None else False
        if self._live:
            trends = self._history.trends
            trend = trends.trend(row.port) if row is not None and row.proto == "tcp" else None
            chart = trends.sparkline(trend.port, CHART_CELLS) if trend is not None else ""
            self._details.show(row, now, self._relatives, is_root, self._cast, trend, chart)

    def _want_relatives(self, row: TableRow | None) -> None:
        """Look parents and children up once per selected row and set of holders."""
        if row is None or not row.holders:
            return
        wanted = (row.key, tuple(h.identity for h in row.holders))
        if wanted == self._relatives_for:
            return
        self._relatives_for = wanted
        self._relatives = {}
        self._cast = None
        holders = row.holders
        lookup = self._lookup
        stops, snapshot = self._stops, self._shown

        def work() -> None:
            found = {h.pid: lookup(h) for h in holders[:32]}
            cast = stops(snapshot, row) if snapshot is not None else None
            self.post_message(RelativesFound(row.key, found, cast))

        self.run_worker(work, thread=True, group="relatives", exit_on_error=False)

    def on_relatives_found(self, message: RelativesFound) -> None:
        if self._relatives_for is not None and message.row_key == self._relatives_for[0]:
            self._relatives = message.found
            self._cast = message.cast
            self._show_details()

    # -- actions --------------------------------------------------------------------------

    def action_filter(self) -> None:
        self._filter.open(self._status.row_filter.text)

    @on(FilterBar.Applied)
    def _filter_applied(self, event: FilterBar.Applied) -> None:
        self._set_filter(event.row_filter)

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        self._set_filter(RowFilter())

    def action_clear_filter(self) -> None:
        self._set_filter(RowFilter())

    def _set_filter(self, row_filter: RowFilter) -> None:
        self._filter.close()
        self.table.focus()
        self._status = replace(self._status, row_filter=row_filter)
        self._render_rows()
        self.refresh_bindings()

    def action_cycle_sort(self) -> None:
        mode: SortMode = SORT_MODES[(SORT_MODES.index(self._status.sort) + 1) % len(SORT_MODES)]
        self._status = replace(self._status, sort=mode)
        self.table.set_sort(mode)
        self._show_status()

    def action_toggle_pause(self) -> None:
        paused = not self._status.paused
        self._status = replace(self._status, paused=paused)
        self.post_message(PauseChanged(paused))
        if not paused and self._pending is not None:
            self._apply(self._pending)
        self._show_status()

    def action_bind_test(self) -> None:
        """Probe the selected row's port (or an empty form when no row is selected)."""
        row = self.selected_row()
        if row is None:
            self.app.push_screen(BindPanel(None))
            return
        wildcard = "::" if row.family == "ipv6" else "0.0.0.0"
        self.app.push_screen(BindPanel(
            row.port, row.proto, wildcard,
            diagnose=partial(real_diagnose, collector=self._warm_collector()),
        ))

    def _after_collect(self, port: int) -> Callable[[], Snapshot] | None:
        """What the kill's after-check polls: the port alone, from the warm collector."""
        collector = self._warm_collector()
        if collector is None:
            return None
        return lambda: snapshot_for(collector, port)

    def _warm_collector(self) -> Collector | None:
        """The monitor's collector when it can answer about one port (the real one; a
        test's fake cannot), so `b` and `k` reuse its warm state instead of a new walk."""
        source = getattr(self.app, "source", None)
        return source if getattr(type(source), "narrows", False) else None

    def action_kill(self) -> None:
        """Confirm, then stop what holds the selected row's port.

        The targets are captured now as (PID, start time) from the row on screen, which
        cannot move while the dialog is open; the killer re-checks them before signalling.
        """
        row = self.selected_row()
        if row is None:
            self.notify("Select a row first.", severity="warning", markup=False)
            return
        targets = [h.identity for h in row.holders]
        self.app.push_screen(
            KillModal(
                targets, row.port, row.proto, snapshot=self._shown,
                check=partial(settle_after, collect=self._after_collect(row.port)),
                owner_hidden=self._shown is not None
                and hidden_owner(self._shown, row.port, row.proto),
            ),
            callback=self._killed,
        )

    def _killed(self, outcome: KillOutcome | None) -> None:
        if outcome is not None:
            self.post_message(PollRequested())

    def action_events(self) -> None:
        """The listener events so far, filtered like the table."""
        from .event_log import EventLogScreen

        self.app.push_screen(
            EventLogScreen(self._history.events, self._status.row_filter, self._tz)
        )

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        self.app.push_screen(HelpScreen(self.app_keys()))

    def app_keys(self) -> list[tuple[str, str]]:
        """(key, description) of every shown binding, so help cannot drift from BINDINGS."""
        keys: list[tuple[str, str]] = []
        for binding in [*self.BINDINGS, *self.app.BINDINGS]:
            if isinstance(binding, Binding) and binding.show:
                keys.append((binding.key_display or binding.key, binding.description))
        return keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self._status.row_filter)
        if action == "filter":  # in the input, "/" is a character like any other
            return self.focused is not self._filter.input
        return True

    @property
    def looking_up(self) -> bool:
        """True while the selected row's parents and children are being looked up."""
        return self._relatives_for is not None and not self._relatives

    @property
    def paused(self) -> bool:
        return self._status.paused

    @property
    def row_filter(self) -> RowFilter:
        return self._status.row_filter

    @property
    def sort_mode(self) -> SortMode:
        return self._status.sort


class PollRequested(Message):
    """Something changed the machine (a kill): show the new state without waiting a tick."""


class PauseChanged(Message):
    def __init__(self, paused: bool) -> None:
        super().__init__()
        self.paused = paused
