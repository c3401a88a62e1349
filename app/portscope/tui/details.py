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
from ..core.model import ClientDestination, Holder, Snapshot
from ..core.roles.model import Cast, Role
from ..core.rows import merged_sockets
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
CLIENT_LINES = 3  # destinations of this host's clients shown for a row (127.0.0.1, ::1, ...)
SOCKET_HOLDERS = 6  # holders of a port's live connections named by `a`; the rest counted
STATE_CELLS = 12  # "ESTABLISHED " : the state column of `a`'s list


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
        clients: Sequence[ClientDestination] = (),
        every: Snapshot | None = None,
    ) -> None:
        text = render_details(
            row, now, relatives, self._tz, is_root, cast, trend, chart, clients, every
        )
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
    clients: Sequence[ClientDestination] = (),
    every: Snapshot | None = None,
) -> Text:
    """`clients`: this host's client sockets to the row's port, summed per destination (the
    table shows no client port). `every`: the snapshot to list every socket of the row's
    port from (`a`), first, so it is what a small pane shows."""
    out = Text()
    if row is None:
        out.append("No row selected.", style="dim")
        return out
    out.append(f":{row.port} ", style="bold")
    out.append(f"{row.proto_label} {shown(row.address_label)}")
    facts = _port_facts(row)
    if facts:
        out.append("  " + facts)
    if every is not None:
        _every_socket(out, row, every)
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
    _clients(out, clients)
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
    out.append(f"\n+{len(rest):,} more: ", style="bold")
    out.append(", ".join(f"{count:,} {name}" for name, count in kinds.most_common(4)))
    if len(kinds) > 4:
        out.append(", …")
    out.append("\n  PIDs ", style="dim")
    out.append(", ".join(str(h.pid) for h in rest[:MORE_PIDS]))
    if len(rest) > MORE_PIDS:
        out.append(f", +{len(rest) - MORE_PIDS:,} more", style="dim")


def _clients(out: Text, clients: Sequence[ClientDestination]) -> None:
    """"clients  11,990 TIME_WAIT, 3 ESTABLISHED from this host to 127.0.0.1:5432"."""
    for d in clients[:CLIENT_LINES]:
        counts = [f"{d.time_wait:,} TIME_WAIT"] if d.time_wait else []
        counts += [f"{n:,} {state}" for state, n in d.states.items()]
        to = text.destination(d.address, d.port)
        out.append("\n  clients ", style="dim")
        out.append(shown(f"{', '.join(counts)} from this host to {to}"))
    if len(clients) > CLIENT_LINES:
        more = text.count(len(clients) - CLIENT_LINES, "more destination", "more destinations")
        out.append(f"\n          +{more}", style="dim")


def _every_socket(out: Text, row: TableRow, snapshot: Snapshot) -> None:
    """`a`: the port's sockets, a line per state: its listeners (or bound UDP sockets) by
    address, then its connections by state with the processes that hold them, TIME_WAIT
    (nobody's), and this host's clients' connections to it."""
    out.append(f"\n  every socket on {row.proto} port {row.port}", style="bold")
    out.append("  (a: back)", style="dim")
    state = "LISTEN" if row.proto == "tcp" else "UNCONN"
    bound = [s for s in snapshot.sockets if s.port == row.port and s.proto == row.proto]
    for sock in merged_sockets(bound):
        who = text.process_cell(sock.holders)
        if sock.holders:
            who = f"PID {text.pids_cell(sock.holders)} {who}"
        _state_line(out, state, text.address_label(sock), who)
    stats = snapshot.port_stats(row.port) if row.proto == "tcp" else None
    if stats is not None:
        for name, n in stats.states.items():
            _state_line(out, name, f"{n:,}", "")
        if stats.time_wait:  # closed: no process holds them, the kernel clears them
            last = stats.time_wait_last
            clears = "held by no process" + (
                f", all clear in {text.seconds(last)}" if last is not None else ""
            )
            _state_line(out, "TIME_WAIT", f"{stats.time_wait:,}", clears)
        if stats.live:
            out.append("\n    connections held by ", style="dim")
            named = [f"PID {h.pid} {shown(h.name)}" for h in stats.holders[:SOCKET_HOLDERS]]
            if len(stats.holders) > SOCKET_HOLDERS:
                named.append(f"+{len(stats.holders) - SOCKET_HOLDERS:,} more")
            out.append(", ".join(named) or "processes hidden from this user")
    if not bound and (stats is None or not stats.total):
        out.append("\n    nothing else on this port", style="dim")


def _state_line(out: Text, state: str, what: str, who: str) -> None:
    out.append(f"\n    {state:<{STATE_CELLS}}", style="cyan")
    out.append(shown(what))
    if who:
        out.append(f"  {shown(who)}")


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
