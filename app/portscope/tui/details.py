"""The details pane: everything known about the selected row, its first holders in full.

Names, users, command lines, directories and relatives' labels are chosen by whoever
started the process: each is escaped and appended as plain Text (never markup), and long
lines wrap inside the pane, so the full command line can always be read here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..core import text
from ..core.history.trends import PortTrend
from ..core.history.wording import trend_summary
from ..core.model import Holder
from ..core.roles.model import Cast, Role
from ..core.untrusted import shown
from .clock import start_time
from .relatives import Relatives
from .rows import TableRow

# Holders described in full (as many as the main screen looks relatives up for); the rest
# are counted and listed by PID. Each one in full is ~5 wrapped lines, and the pane is
# re-wrapped on the UI thread whenever it changes: a pre-fork server's 300 workers in full
# kept the UI busy ~0.5 s a poll, and a key pressed meanwhile waited for it.
FULL_HOLDERS = 32
MORE_PIDS = 48  # PIDs listed for the holders beyond FULL_HOLDERS


class DetailsPane(VerticalScroll):
    """Scrollable, so a server with 32 workers can show them all in full."""

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id, can_focus=False)
        self._tz = tz
        self._body = Static(Text(), id="details-body")
        self._text = Text()

    def compose(self) -> ComposeResult:
        yield self._body

    def show(
        self,
        row: TableRow | None,
        now: datetime | None,
        relatives: Mapping[int, Relatives],
        is_root: bool = False,
        cast: Cast | None = None,
        trend: PortTrend | None = None,
        chart: str = "",
    ) -> None:
        text = render_details(row, now, relatives, self._tz, is_root, cast, trend, chart)
        if text != self._text:  # each poll and cursor move asks; re-wrap only a change
            self._text = text
            self._body.update(text)


def render_details(
    row: TableRow | None,
    now: datetime | None,
    relatives: Mapping[int, Relatives],
    tz: tzinfo | None,
    is_root: bool = False,
    cast: Cast | None = None,
    trend: PortTrend | None = None,
    chart: str = "",
) -> Text:
    out = Text()
    if row is None:
        out.append("No row selected.", style="dim")
        return out
    out.append(f":{row.port} ", style="bold")
    out.append(f"{row.proto_label} {shown(row.address_label)}")
    facts = _port_facts(row)
    if facts:
        out.append("  " + facts)
    if not row.holders:
        out.append("\n")
        if row.socket is None:
            out.append(
                "No process holds a socket on this port. TIME_WAIT sockets belong to no one: "
                "they clear by themselves, and a new server may fail to bind until they do.",
                style="dim",
            )
        elif is_root:
            out.append("No visible owner: another network namespace or the kernel holds it.")
        else:
            out.append("Owner hidden from this user: run with sudo to see it.", style="yellow")
    if trend is not None and (trend.peak_time_wait or trend.peak_live):
        out.append("\n  trend  ", style="dim")
        out.append(chart.rstrip() or "-", style="cyan")
        out.append("\n         ")
        out.append(trend_summary(trend), style="dim")
    if cast is not None and row.holders:
        _plan(out, cast)
    roles = {r.pid: r for r in cast.roles} if cast is not None else {}
    for holder in row.holders[:FULL_HOLDERS]:
        out.append("\n")
        _holder(out, holder, now, relatives.get(holder.pid), tz, roles.get(holder.pid))
    _more(out, row.holders[FULL_HOLDERS:], roles)
    return out


def _more(out: Text, rest: Sequence[Holder], roles: Mapping[int, Role]) -> None:
    """"+268 more: 268 python worker" and their PIDs, for the holders not shown in full."""
    if not rest:
        return
    kinds = Counter(f"{shown(h.name)}{_kind(roles.get(h.pid))}" for h in rest)
    out.append(f"\n+{len(rest)} more: ", style="bold")
    out.append(", ".join(f"{count} {name}" for name, count in kinds.most_common(4)))
    if len(kinds) > 4:
        out.append(", …")
    out.append("\n  PIDs ", style="dim")
    out.append(", ".join(str(h.pid) for h in rest[:MORE_PIDS]))
    if len(rest) > MORE_PIDS:
        out.append(f", +{len(rest) - MORE_PIDS} more", style="dim")


def _kind(role: Role | None) -> str:
    return f" {role.kind}" if role is not None and role.kind != "server" else ""


def _plan(out: Text, cast: Cast) -> None:
    """Who controls the server (a loop, a reloader, a container) and what stops it."""
    for role in cast.roles:
        if not role.holds and role.kind in ("supervisor", "reloader"):
            out.append("\n  run by ", style="dim")
            out.append(f"PID {role.pid} {shown(role.name)} ({shown(role.note or role.kind)})")
    plan = cast.plan
    if plan.command:
        out.append("\n  stop   ", style="dim")
        out.append(shown(plan.command), style="bold")
        out.append(f"  ({plan.how})", style="dim")
    if plan.why:
        out.append("\n  why    ", style="dim")
        out.append(shown(plan.why))


def _port_facts(row: TableRow) -> str:
    parts = []
    time_wait = text.time_wait_cell(row.stats)
    if time_wait:
        parts.append(f"TIME_WAIT {time_wait}")
    live = text.live_cell(row.stats)
    if live:
        parts.append(live)
    return " · ".join(parts)


def _holder(
    out: Text,
    h: Holder,
    now: datetime | None,
    rel: Relatives | None,
    tz: tzinfo | None,
    role: Role | None = None,
) -> None:
    out.append(f"PID {h.pid} ", style="bold")
    out.append(shown(h.name), style="bold cyan")
    out.append(_kind(role), style="magenta")
    out.append(f"  user {shown(h.user) or '?'}")
    if h.started is not None and now is not None:
        out.append(f"  started {start_time(h.started, now, tz)}")
    out.append("\n  cmd  ", style="dim")
    out.append(shown(h.command))
    out.append("\n  cwd  ", style="dim")
    out.append(shown(h.cwd) or "?")
    out.append("\n  parent ", style="dim")
    if rel is not None and rel.parent:
        out.append(shown(rel.parent))
    else:
        out.append(str(h.ppid) if h.ppid is not None else "?")
    out.append("  children ", style="dim")
    if rel is None:
        out.append("…", style="dim")
    elif rel.gone:
        out.append("(process has exited)", style="yellow")
    elif rel.children:
        more = f", +{rel.more_children} more" if rel.more_children else ""
        out.append(", ".join(shown(child) for child in rel.children) + more)
    else:
        out.append("none")
