"""The header lines: poll time or pause, counts, hidden owners, client TIME_WAIT, what the
poll could not see, errors.

Only poll times are shown (from the Snapshot), never the wall clock: a header that ticks
by itself would make every screenshot different. Text that came from outside (the filter
as typed, an error message, a collector's note) is escaped and appended as plain Text.
On a very short terminal the header is one line, so the table keeps room for rows.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from rich.text import Text
from textual.widgets import Static

from ..core import text
from ..core.model import Snapshot
from ..core.record import field, record
from ..core.untrusted import shown
from .clock import clock_time
from .port_table import NARROW_WIDTH
from .rows import ProtoView, RowFilter, SortMode, descending

TINY_HEIGHT = 18  # terminals with fewer lines get a one-line header (and a smaller details pane)
_BAR = " │ "


@record
class Status:
    """Everything the header shows; the screen builds one and hands it over whole."""

    snapshot: Snapshot | None = None
    paused: bool = False
    sort: SortMode = "port"
    reverse: bool = False  # the sort reversed (`S`, or a second click on its header)
    proto: ProtoView = "both"  # `t`: TCP and UDP, or one of them
    row_filter: RowFilter = field(default_factory=RowFilter)
    rows_total: int = 0
    rows_shown: int = 0
    listening: int = 0  # rows with a listener (SO_REUSEPORT siblings are one row)
    error: str | None = None
    skipped: int = 0  # poll ticks the shown poll's overrun skipped (poller.py)


class StatusBar(Static):
    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._tz = tz
        self._status = Status()

    def show(self, status: Status) -> None:
        self._status = status
        compact = 0 < self.screen.size.height < TINY_HEIGHT
        narrow = self.size.width < NARROW_WIDTH
        width = self.content_region.width
        self.update(render_status(status, self._tz, narrow=narrow, compact=compact, width=width))

    def on_resize(self) -> None:
        self.show(self._status)


def render_status(
    st: Status, tz: tzinfo | None, narrow: bool = False, compact: bool = False,
    width: int = 0,
) -> Text:
    """`width`: the cells a line has; the first line's parts go on lines of their own
    rather than break inside one (0: one line, wrapped wherever the widget wraps it)."""
    if compact:
        return _one_line(st, tz)
    out = Text(no_wrap=False, overflow="fold")
    snap = st.snapshot
    first = Text()
    first.append("portscope ", style="bold")
    parts = [first]
    if snap is None:
        first.append("waiting for the first poll…")
    else:
        when = clock_time(snap.taken_at, tz)
        if st.paused:
            first.append(" PAUSED ", style="bold reverse yellow")
            first.append(f" showing the poll of {when} (p resumes)")
        else:
            first.append(f"polled {when}")
            if st.skipped:  # the poll overran its interval: the next tick(s) were skipped
                first.append(f" (slow: {_skipped(st.skipped)})", style="yellow")
        parts += [Text(_counts(st)), Text(_sort(st)), Text(_PROTO_VIEWS[st.proto])]
        path = _path(snap)
        if path:
            parts.append(Text(path, style="cyan"))
    _join(out, parts, width)
    if st.row_filter:
        out.append("\n")
        out.append("filter ", style="bold")
        out.append(_quoted_filter(st.row_filter))
        shown_of = f"{st.rows_shown:,} of {text.count(st.rows_total, 'row')}"
        out.append(f": {shown_of} (Esc clears)")
    if snap is not None:
        client = text.client_pressure(snap.client_time_wait, short=narrow)
        if client:
            out.append("\n")
            out.append(_broken(shown(client), width), style="cyan")
        warnings = text.client_warnings(snap.client_time_wait, short=narrow)
        if warnings:  # the busiest destination first: connect() is about to fail there
            out.append("\n")
            out.append(_broken(shown(warnings[0]), width), style="bold yellow")
        hidden = text.hidden_summary(snap.hidden_owners, snap.is_root)
        if hidden:
            out.append("\n")
            out.append(hidden, style="yellow")
        for note in snap.notes:
            out.append("\n")
            out.append(shown(note), style="yellow")
    if st.error:
        out.append("\n")
        out.append("last poll failed: ", style="bold red")
        out.append(shown(st.error), style="red")
        if snap is not None:
            out.append(f" (showing the poll of {clock_time(snap.taken_at, tz)})")
    return out


def _one_line(st: Status, tz: tzinfo | None) -> Text:
    """The header on a short terminal: what matters most first, cut with "…" at the edge."""
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    snap = st.snapshot
    if st.error:
        out.append("poll failed: ", style="bold red")
        out.append(shown(st.error), style="red")
        out.append(_BAR, style="dim")
    if snap is None:
        out.append("waiting for the first poll…")
    else:
        if st.paused:
            out.append("PAUSED", style="bold reverse yellow")
            out.append(" ")
        out.append(clock_time(snap.taken_at, tz))
        if st.skipped and not st.paused:
            out.append(f" {_skipped(st.skipped)}", style="yellow")
        out.append(_BAR, style="dim")
        out.append(_counts(st))
        if st.proto != "both":
            out.append(_BAR, style="dim")
            out.append(_PROTO_VIEWS[st.proto])
        path = _path(snap)
        if path:
            out.append(_BAR, style="dim")
            out.append(path, style="cyan")
    if st.row_filter:
        out.append(_BAR, style="dim")
        out.append("filter ", style="bold")
        out.append(_quoted_filter(st.row_filter))
        out.append(f" {st.rows_shown:,}/{st.rows_total:,}")
    if snap is not None:
        for note in snap.notes:
            out.append(_BAR, style="dim")
            out.append(shown(note), style="yellow")
    return out


_PROTO_VIEWS = {"both": "TCP and UDP", "tcp": "TCP only", "udp": "UDP only"}


def _path(snap: Snapshot) -> str:
    """Which path answered, when it is the portable one (psutil: macOS, Windows, or Linux
    with --portable): what it cannot know shows as "?" in the table, and this says why."""
    return f"via {snap.source}" if snap.source.startswith("psutil") else ""


def _join(out: Text, parts: list[Text], width: int) -> None:
    """`parts` on one line, " │ " between them, a part that would not fit on a new line."""
    used = 0
    for index, part in enumerate(parts):
        if index:
            if width and used + len(_BAR) + part.cell_len > width:
                out.append("\n")
                used = 0
            else:
                out.append(_BAR, style="dim")
                used += len(_BAR)
        out.append_text(part)
        used += part.cell_len


def _broken(line: str, width: int) -> str:
    """`line` broken after its clauses (", " and "; ") where it is wider than `width`, so
    "all clear in 60 s" moves down whole rather than leave "s" alone on the next line."""
    if not width or len(line) <= width:
        return line
    out, current = [], ""
    for clause in re.split(r"(?<=[,;]) ", line):
        if current and len(current) + 1 + len(clause) > width:
            out.append(current)
            current = clause
        else:
            current = f"{current} {clause}" if current else clause
    out.append(current)
    return "\n".join(out)


def _sort(st: Status) -> str:
    """"sort port ▲" (smallest first), "sort TIME_WAIT ▼" (largest first)."""
    return f"sort {st.sort} {'▼' if descending(st.sort, st.reverse) else '▲'}"


def _skipped(polls: int) -> str:
    return f"skipped {text.count(polls, 'poll')}"


def _quoted_filter(row_filter: RowFilter) -> str:
    return f"'{shown(row_filter.text)}'"


def _counts(st: Status) -> str:
    blocked = st.rows_total - st.listening
    text_ = f"{st.listening:,} listening"
    if blocked > 0:
        text_ += f", {blocked:,} with no listener"
    return text_
