"""`e`: what happened while you watched: listeners that appeared, stopped, changed holders
or came back under a new PID, newest last, filtered like the table. Every cell is escaped
core text (the same words `portscope watch` prints), shown as Text, never markup."""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from ..core.history.events import ListenerEvent
from ..core.history.log import EventLog
from ..core.history.wording import event_texts
from ..core.text import count
from ..core.untrusted import shown
from .clock import clock_time
from .rows import RowFilter

REFRESH = 0.5  # seconds between looks at the log: new events appear without a key press
_STYLE = {"listen": "green", "unlisten": "yellow", "holders": "cyan", "restart": "bold magenta"}


class EventLogScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    EventLogScreen { align: center middle; }
    #events-box {
        width: 96%; height: 90%; border: round $primary; background: $surface;
        border-title-style: bold; padding: 0 1;
    }
    #events-note { height: auto; color: $text-muted; }
    #events-table { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,e", "dismiss", "Close", id="events.close"),
    ]

    def __init__(self, log: EventLog, row_filter: RowFilter, tz: tzinfo | None) -> None:
        super().__init__()
        self._log = log
        self._filter = row_filter
        self._tz = tz
        self._mark = -1  # log.added when last shown

    def compose(self) -> ComposeResult:
        box = Vertical(id="events-box")
        box.border_title = "Listener events"
        with box:
            yield Static(Text(), id="events-note")
            table: DataTable[Text] = DataTable(id="events-table", cursor_type="row")
            yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#events-table", DataTable)
        for label in ("TIME", "EVENT", "WHERE", "WHAT"):
            table.add_column(label, key=label.lower())
        self.refresh_events()
        self.set_interval(REFRESH, self.refresh_events)
        table.focus()

    def matches(self, event: ListenerEvent) -> bool:
        """The table's filter, applied to events: ports, PIDs, pieces of process names, and
        the holders' users."""
        f = self._filter
        if not f:
            return True
        users = [h.user or "" for h in event.holders]
        return all(
            t.matches(event.port, event.names, users, event.pids) for t in f.terms
        )

    def refresh_events(self) -> None:
        if self._log.added == self._mark:
            return
        new = self._log.since(self._mark) if self._mark >= 0 else tuple(self._log)
        self._mark = self._log.added
        table = self.query_one("#events-table", DataTable)
        at_end = table.cursor_row >= table.row_count - 1
        for event in new:
            if not self.matches(event):
                continue
            cells = event_texts(event)
            table.add_row(
                Text(clock_time(event.at, self._tz)),
                Text(cells.kind, style=_STYLE.get(cells.kind, "")),
                Text(cells.where),
                Text(cells.what),
            )
        if at_end and table.row_count:
            table.move_cursor(row=table.row_count - 1)  # follow new events, like tail -f
        self._note(table.row_count)

    def _note(self, shown_rows: int) -> None:
        parts = [count(shown_rows, "event")]
        if self._filter:
            parts.append(f"filter {shown(self._filter.text)!r}")
        if self._log.dropped:
            parts.append(f"{self._log.dropped:,} older ones dropped (the log keeps the last "
                         f"{self._log.capacity:,})")
        parts.append("since the monitor started; e, q or Esc closes")
        self.query_one("#events-note", Static).update(Text(" · ".join(parts)))
