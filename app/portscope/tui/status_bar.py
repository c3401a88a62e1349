"""The header lines: poll time or pause, counts, hidden owners, client TIME_WAIT, errors.

Only poll times are shown (from the Snapshot), never the wall clock: a header that ticks
by itself would make every screenshot different.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo

from rich.text import Text
from textual.widgets import Static

from ..core import text
from ..core.model import Snapshot
from .clock import clock_time
from .port_table import NARROW_WIDTH
from .rows import RowFilter, SortMode


@dataclass(frozen=True, slots=True)
class Status:
    """Everything the header shows; the screen builds one and hands it over whole."""

    snapshot: Snapshot | None = None
    paused: bool = False
    sort: SortMode = "port"
    row_filter: RowFilter = field(default_factory=RowFilter)
    rows_total: int = 0
    rows_shown: int = 0
    error: str | None = None


class StatusBar(Static):
    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._tz = tz
        self._status = Status()

    def show(self, status: Status) -> None:
        self._status = status
        self.update(render_status(status, self._tz, narrow=self.size.width < NARROW_WIDTH))

    def on_resize(self) -> None:
        self.show(self._status)


def render_status(st: Status, tz: tzinfo | None, narrow: bool = False) -> Text:
    out = Text(no_wrap=False, overflow="fold")
    snap = st.snapshot
    if snap is None:
        out.append("portscope ", style="bold")
        out.append("waiting for the first poll…")
    else:
        out.append("portscope ", style="bold")
        when = clock_time(snap.taken_at, tz)
        if st.paused:
            out.append(" PAUSED ", style="bold reverse yellow")
            out.append(f" showing the poll of {when} (p resumes)")
        else:
            out.append(f"polled {when}")
        out.append(" │ ", style="dim")
        out.append(_counts(snap, st))
        out.append(" │ ", style="dim")
        out.append(f"sort {st.sort}")
    if st.row_filter:
        out.append("\n")
        out.append("filter ", style="bold")
        out.append(repr(st.row_filter.text))
        out.append(f": {st.rows_shown} of {st.rows_total} rows (Esc clears)")
    if snap is not None:
        client = text.client_summary(snap.client_time_wait, short=narrow)
        if client:
            out.append("\n")
            out.append(client, style="cyan")
        hidden = text.hidden_summary(snap.hidden_owners, snap.is_root)
        if hidden:
            out.append("\n")
            out.append(hidden, style="yellow")
    if st.error:
        out.append("\n")
        out.append("last poll failed: ", style="bold red")
        out.append(st.error, style="red")
        if snap is not None:
            out.append(f" (showing the poll of {clock_time(snap.taken_at, tz)})")
    return out


def _counts(snap: Snapshot, st: Status) -> str:
    listening = len(snap.sockets)
    blocked = st.rows_total - listening
    text_ = f"{listening} listening"
    if blocked > 0:
        text_ += f", {blocked} with no listener"
    return text_
