"""The main screen: header, filter, port table, details pane, footer.

Snapshots arrive from the app. While another screen (a dialog) is on top, the newest one
is kept aside and applied when this screen is active again, so the row a dialog is about
cannot move or vanish under it. Pause holds the table the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from ..core.collect import Collector, snapshot_for
from ..core.history.recorder import History
from ..core.kill.targets import plan_kill
from ..core.model import Snapshot
from ..core.record import replace
from ..core.roles.model import Cast
from ..core.roles.port import hidden_owner
from ._textual_hacks import mount_screen
from .copying import Copy, command_copy, pids_copy
from .details import DetailsPane
from .filter_bar import FilterBar
from .footer import FittingFooter
from .keys import ACTION_HELP, FOOTER_RANKS, MAIN_BINDINGS
from .port_table import COLUMN_SORT, PortTable
from .relatives import Relatives, RelativesLookup
from .rows import (
    PROTO_VIEWS,
    SORT_CYCLE,
    Prepared,
    RowFilter,
    RowSelection,
    SortMode,
    TableRow,
    build_rows,
    clients_of,
    listening_count,
)
from .status_bar import TINY_HEIGHT, Status, StatusBar
from .stops import StopLookup, from_holders

# The dialogs `b` and `k` open are imported when first needed (~7 % of the monitor's
# import, before its first poll is on screen; app.py loads them right after it).
if TYPE_CHECKING:
    from .bind_panel import BindPanel
    from .kill_modal import KillOutcome

T = TypeVar("T")
# A dialog waits this long for its answer before it opens without it (then it shows
# "Probing…" / "Looking at the processes…" until the answer comes). At 0.1 s a row held by
# 2,000 processes (answers in 90-120 ms) often missed it, and building the dialog then
# slowed the answer: `b` took 125 ms at the median but 320 ms at p95.
HEAD_START_WAIT = 0.2
BIND_PANEL = "portscope-bind-panel"  # the installed screen's name
# No poll starts this long after `b` or `k`: the answer is shown in 50-130 ms, and a poll
# (40-80 ms of the two cores under load, then the table redrawn) would only delay it.
HOLD_POLLS = 0.3

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
    BINDINGS: ClassVar[list[BindingType]] = list(MAIN_BINDINGS)  # keys.py
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
        self._bind_panel: BindPanel | None = None  # mounted ahead by prepare_bind_panel
        self._opening: object | None = None  # a dialog waits for its answer (_open_when_ready)
        self._status = Status()
        self._tz = tz
        self._lookup = relatives
        self._stops = stops
        self._history = history or History()
        self._cast: Cast | None = None  # roles and stop plan of the selected row
        self._shown: Snapshot | None = None  # what the table shows
        self._pending: Snapshot | None = None  # newer, held while paused or under a dialog
        # Their rows, made ready in the poller's thread (rows.Prepared), when they came so.
        self._ready: Prepared | None = None
        self._pending_ready: Prepared | None = None
        self._selection = RowSelection()  # what the filter let through, per row
        self._all_sockets = False  # `a`: the details list every socket of the row's port
        self._refresh_wanted = False  # `r` while paused: show the next poll all the same
        self._relatives: dict[int, Relatives] = {}
        self._relatives_for: tuple[str, tuple[tuple[int, float | None], ...]] | None = None
        # Kept by reference: a poll can land while the app shuts down and its widgets are
        # already gone, and that must be a no-op, not a NoMatches traceback.
        trends = self._history.trends
        self._table = PortTable(
            id="ports",
            trend=lambda row: trends.sparkline(row.port, TREND_CELLS) if row.proto == "tcp" else "",
            trend_width=TREND_CELLS,
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
        yield FittingFooter(FOOTER_RANKS)

    @property
    def table(self) -> PortTable:
        return self._table

    @property
    def _live(self) -> bool:
        """Widgets on screen: False before mount and once the app is shutting down."""
        return self._table.is_attached and self._table.is_mounted

    def on_mount(self) -> None:
        self.table.set_columns(self.size.width)
        self.table.focus()
        self._show_status()
        self._show_details()

    def on_resize(self, event: events.Resize) -> None:
        self.table.set_columns(event.size.width)
        self._show_status()  # the header is one line on a short terminal

    # -- data -------------------------------------------------------------------------

    def receive(self, snapshot: Snapshot, ready: Prepared | None = None) -> None:
        """A new poll: show it now, or hold it while paused or under a dialog. `ready`: its
        rows, made ready off the UI thread."""
        if self._status.error is not None:
            self._status = replace(self._status, error=None)
        if self.opening:  # a dialog is on its way: drawing anything now would delay it
            self._pending, self._pending_ready = snapshot, ready
            return
        fresh_look = self._refresh_wanted and self.is_active and self._live
        if self._status.paused and fresh_look:  # `r` while paused: this poll, then hold
            self._refresh_wanted = False
            self._apply(snapshot, ready)
            return
        if self._status.paused or not self.is_active or not self._live:
            self._pending, self._pending_ready = snapshot, ready
            self._show_status()
            return
        self._apply(snapshot, ready)

    def poll_failed(self, error: str) -> None:
        self._status = replace(self._status, error=error)
        self._show_status()

    def on_screen_resume(self) -> None:
        if self._pending is not None and not self._status.paused and self._live:
            self._apply(self._pending, self._pending_ready)

    def _apply(self, snapshot: Snapshot, ready: Prepared | None = None) -> None:
        self._pending = self._pending_ready = None
        after_sketch = self._ready is not None and self._ready.sketch
        self._shown = snapshot
        self._ready = ready if ready is not None and ready.snapshot is snapshot else None
        self._status = replace(self._status, skipped=ready.skipped if ready is not None else 0)
        if after_sketch:  # the sketch's cells ("…" for holders) are not this poll's
            self.table.forget_cells()
        self._render_rows(bulk=after_sketch)

    def _render_rows(self, bulk: bool = False) -> None:
        """The shown poll's rows through the filter into the table: the final diff, on the
        UI thread (the rows and their texts were made in the poller's thread when `_ready`);
        `bulk` refills the table in one pass (a filter applied or cleared)."""
        snap, ready = self._shown, self._ready
        rows = ready.rows if ready is not None else build_rows(snap) if snap is not None else []
        visible = self._selection.visible(rows, self._status.row_filter, self._status.proto)
        self.table.show_rows(
            visible, texts=ready.texts if ready else None, every=rows, bulk=bulk
        )
        self._status = replace(
            self._status, snapshot=snap, rows_total=len(rows), rows_shown=len(visible),
            listening=ready.listening if ready is not None else listening_count(rows),
        )
        self._show_status()
        self._show_details()

    def _show_status(self) -> None:
        if self._live:
            self._status_bar.show(self._status)

    # -- selection and details --------------------------------------------------------

    def selected_row(self) -> TableRow | None:
        return self._table.selected() if self._live else None

    @on(PortTable.RowHighlighted)
    def _row_highlighted(self, event: PortTable.RowHighlighted) -> None:
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
            chart = trends.sparkline(trend.port, self._chart_cells()) if trend is not None else ""
            clients = clients_of(row, shown) if row is not None else ()
            every = shown if self._all_sockets else None
            self._details.show(
                row, now, self._relatives, is_root, self._cast, trend, chart, clients, every
            )

    def _chart_cells(self) -> int:
        """The trend's cells: CHART_CELLS, or what the pane has beside "  trend  " (a chart
        that wrapped would read as two)."""
        room = self._details.scrollable_content_region.width - len("  trend  ")
        return max(TREND_CELLS, min(CHART_CELLS, room)) if room > 0 else CHART_CELLS

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
        self._render_rows(bulk=True)
        self.refresh_bindings()

    def action_cycle_sort(self) -> None:
        """The next of SORT_CYCLE (from a sort a header click chose: the first)."""
        now = self._status.sort
        step = SORT_CYCLE.index(now) + 1 if now in SORT_CYCLE else 0
        self._sort_by(SORT_CYCLE[step % len(SORT_CYCLE)], reverse=False)

    def action_reverse_sort(self) -> None:
        self._sort_by(self._status.sort, reverse=not self._status.reverse)

    @on(PortTable.HeaderSelected)
    def _header_clicked(self, event: PortTable.HeaderSelected) -> None:
        """A click on a header sorts by its column; a second click reverses the order."""
        mode = COLUMN_SORT.get(event.column_key)
        if mode is None:
            return
        same = mode == self._status.sort
        self._sort_by(mode, reverse=same and not self._status.reverse)

    def _sort_by(self, mode: SortMode, reverse: bool) -> None:
        self._status = replace(self._status, sort=mode, reverse=reverse)
        self.table.set_sort(mode, reverse)
        self._show_status()

    def action_cycle_proto(self) -> None:
        now = PROTO_VIEWS.index(self._status.proto)
        self._status = replace(self._status, proto=PROTO_VIEWS[(now + 1) % len(PROTO_VIEWS)])
        self._render_rows(bulk=True)

    def action_all_sockets(self) -> None:
        self._all_sockets = not self._all_sockets
        self._show_details()

    def action_copy_pids(self) -> None:
        self._copy(pids_copy(self.selected_row()))

    def action_copy_command(self) -> None:
        self._copy(command_copy(self.selected_row()))

    def _copy(self, copy: Copy) -> None:
        """To the clipboard through the terminal (OSC 52), and a note of what was copied."""
        if not copy.text:
            self.notify(copy.message, severity="warning", markup=False)
            return
        self.app.copy_to_clipboard(copy.text)
        self.notify(copy.message, title="Copied to the clipboard", markup=False)

    def action_pause(self) -> None:
        self._set_paused(True)

    def action_resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self._status = replace(self._status, paused=paused)
        self.post_message(PauseChanged(paused))
        if not paused and self._pending is not None:
            self._apply(self._pending, self._pending_ready)
        self._show_status()
        self.refresh_bindings()  # the footer's `p` says Pause or Resume

    def action_refresh(self) -> None:
        """Poll now; while paused, show that one poll and stay paused."""
        self._refresh_wanted = self._status.paused
        self.post_message(PollRequested(even_paused=True))

    def action_bind_test(self) -> None:
        """Probe the selected row's port (or an empty form when no row is selected)."""
        from .bind_panel import BindPanel, real_diagnose

        row = self.selected_row()
        if row is None:
            self.app.push_screen(BindPanel(None))
            return
        if self._opening is not None:
            return
        wildcard = "::" if row.family == "ipv6" else "0.0.0.0"
        diagnose = partial(real_diagnose, collector=self._warm_collector())
        early, first = self._head_start(diagnose, row.port, wildcard, row.proto)

        def open_panel() -> None:
            # Opened with its answer when it is in (the panel's first frame shows it); then
            # Ctrl+R probes afresh. Else the panel's first probe waits for this one.
            verdict = _answer(early)
            how = first if verdict is None else diagnose
            panel = self._bind_panel
            if panel is not None and panel.ready and panel not in self.app.screen_stack:
                panel.reopen(row.port, row.proto, wildcard, diagnose=how, verdict=verdict)
            else:
                panel = BindPanel(row.port, row.proto, wildcard, diagnose=how, verdict=verdict)
            self.app.push_screen(panel)

        self._open_when_ready(early, open_panel)

    def prepare_bind_panel(self) -> None:
        """Mount the bind panel now, closed, so that `b` only reopens it (bind_panel.py)."""
        from .bind_panel import BindPanel

        if self._bind_panel is None:
            self._bind_panel = BindPanel(None, standby=True)
            mount_screen(self.app, BIND_PANEL, self._bind_panel)

    def _open_when_ready(self, early: Future[Any], open_dialog: Callable[[], object]) -> None:
        """Open a dialog once its answer is in, or after HEAD_START_WAIT if it is slower.

        Building a dialog keeps the UI thread busy 30-100 ms under load, and the answer's
        thread, sharing the GIL with it, would take that much longer: answer first, then
        the dialog, shows the answer sooner (measured by tests/benchmarks/probe_keys.py).
        Keys that would open another dialog meanwhile are ignored."""
        token = self._opening = object()  # this key's, so an earlier key's timer is stale
        hold = getattr(self.app, "hold_polls", None)
        if hold is not None:
            hold(HOLD_POLLS)

        def open_once() -> None:
            if self._opening is not token:
                return
            self._opening = None
            if self.app.screen is self:  # not if another screen came first (help, quit)
                open_dialog()  # a poll held meanwhile is shown when this screen resumes

        self.set_timer(HEAD_START_WAIT, open_once)
        # post_message is safe from any thread; the callback runs in the answer's thread,
        # or here at once if the answer is already in.
        early.add_done_callback(lambda _: self.post_message(DialogReady(open_once)))

    def on_dialog_ready(self, message: DialogReady) -> None:
        message.open()

    def _head_start(
        self, fn: Callable[..., T], *args: object, **kwargs: object
    ) -> tuple[Future[T], Callable[..., T]]:
        """`fn`, started for these arguments now, on the key, rather than once its dialog
        has mounted; and the function the dialog calls: its first call gets this run's
        answer if it asks with the same arguments, every other call runs `fn` anew."""
        early: Future[T] = Future()

        def run() -> None:
            try:
                early.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # the dialog's call raises it, as fn would have
                early.set_exception(exc)

        # A thread of its own, not a Textual worker: a worker cancelled before it starts
        # (the app closing) would leave the dialog's call waiting on `early` for ever.
        threading.Thread(target=run, name="portscope-head-start", daemon=True).start()
        unused = [early]  # list.pop is atomic: the first caller alone takes it

        def call(*call_args: object, **call_kwargs: object) -> T:
            try:
                first = unused.pop()
            except IndexError:
                first = None
            if first is not None and (call_args, call_kwargs) == (args, kwargs):
                return first.result()
            return fn(*call_args, **call_kwargs)

        return early, call

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
        """Confirm, then stop what holds the selected row's port (SIGTERM first)."""
        self._kill("TERM")

    def action_force_kill(self) -> None:
        """The same dialog and checks, with SIGKILL as the signal."""
        self._kill("KILL")

    def _kill(self, signal_name: str) -> None:
        """Confirm, then signal what holds the selected row's port.

        The targets are captured now as (PID, start time) from the row on screen, which
        cannot move while the dialog is open; the killer re-checks them before signalling.
        """
        row = self.selected_row()
        if row is None:
            self.notify("Select a row first.", severity="warning", markup=False)
            return
        if self._opening is not None:
            return
        targets = tuple(h.identity for h in row.holders)
        shown = self._shown
        hidden = shown is not None and hidden_owner(shown, row.port, row.proto)
        # The arguments KillModal plans with, so its first plan is the one started here.
        early, planner = self._head_start(
            plan_kill, targets, row.port, row.proto,
            all_holders=False, owner_hidden=hidden, snapshot=shown,
        )

        from ..core.kill.after import settle_after
        from .kill_modal import KillModal

        def open_dialog() -> None:
            plan = _answer(early)  # the dialog opens on its confirmation when it is in
            self.app.push_screen(
                KillModal(
                    targets, row.port, row.proto, snapshot=shown, signal_name=signal_name,
                    planner=planner if plan is None else plan_kill, plan=plan,
                    check=partial(settle_after, collect=self._after_collect(row.port)),
                    owner_hidden=hidden,
                ),
                callback=self._killed,
            )

        self._open_when_ready(early, open_dialog)

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

    def app_keys(self) -> list[tuple[str, str, str]]:
        """(key, name, what it does) of every shown binding that applies now (Pause or
        Resume), so help cannot drift from BINDINGS."""
        keys: list[tuple[str, str, str]] = []
        for binding in [*self.BINDINGS, *self.app.BINDINGS]:
            if not isinstance(binding, Binding) or not binding.show:
                continue
            if self.check_action(binding.action, ()) is False:
                continue
            key = binding.key_display or self.app.get_key_display(binding)
            keys.append((key, binding.description, ACTION_HELP.get(binding.action, "")))
        return keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return not self._status.paused
        if action == "resume":
            return self._status.paused
        if action == "clear_filter":
            return bool(self._status.row_filter)
        if action == "filter":  # in the input, "/" is a character like any other
            return self.focused is not self._filter.input
        return True

    @property
    def opening(self) -> bool:
        """True between `b` or `k` and its dialog opening."""
        return self._opening is not None

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


def _answer(early: Future[T]) -> T | None:
    """The head start's result if it has one by now (an exception is the dialog's to
    show, through its own first call)."""
    if early.done() and early.exception() is None:
        return early.result()
    return None


class DialogReady(Message):
    """A dialog's answer is in (posted from its thread): open the dialog."""

    def __init__(self, open_dialog: Callable[[], None]) -> None:
        super().__init__()
        self.open = open_dialog


class PollRequested(Message):
    """Something changed the machine (a kill), or `r`: show the new state without waiting a
    tick; `even_paused`: poll although paused."""

    def __init__(self, even_paused: bool = False) -> None:
        super().__init__()
        self.even_paused = even_paused


class PauseChanged(Message):
    def __init__(self, paused: bool) -> None:
        super().__init__()
        self.paused = paused
