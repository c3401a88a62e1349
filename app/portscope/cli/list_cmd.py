"""`portscope list`: the snapshot as a table, tab-separated lines, CSV, or the JSON contract.

`--format plain` is for cut and awk: one line a row, cells separated by tabs, no header, every
PID of a row (the table shortens them). `--all --port P` adds a row per TCP state of P's
other sockets (established, close-wait, TIME_WAIT ...): who holds a port's connections, not
only its listener.
"""

from __future__ import annotations

import argparse
import sys

from ..core import text
from ..core.collect import default_collector, snapshot_for
from ..core.inputs import parse_host, parse_pid, parse_ports
from ..core.model import Holder, PortStats, Snapshot
from ..core.rows import TableRow, build_rows, merged_sockets, row_texts
from ..core.untrusted import cells, pad, shown
from .argparser import strict
from .common import add_json_arguments, fail, print_json
from .list_filters import Filters, narrowed

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

HEADER = ("PORT", "PROTO", "ADDRESS", "PID", "PROCESS", "USER", "TIME_WAIT", "OTHER")
# --all: a row per listener and per state of the port's other sockets.
ALL_HEADER = ("PORT", "PROTO", "STATE", "SOCKETS", "ADDRESS", "PID", "PROCESS", "USER")
FORMATS = ("table", "plain", "csv", "json")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="listening sockets, their processes, TIME_WAIT per port")
    add_json_arguments(p, "print the JSON contract (the same as --format json)")
    p.add_argument(
        "--format", choices=FORMATS, default=None,
        help="table (default), plain (tab-separated, no header: for cut and awk), csv "
        "(with a header), json",
    )
    p.add_argument(
        "--port", type=strict(parse_ports), action="append", metavar="P",
        help="only these ports: 8080, a range 8000-8010, a list 3000,8080; repeatable",
    )
    p.add_argument(
        "--all", action="store_true",
        help="with --port: every socket on those ports (established, close-wait, TIME_WAIT "
        "...), not only listeners",
    )
    p.add_argument(
        "--name", action="append", metavar="NAME",
        help="only processes whose name contains NAME (any case; a container's name too)",
    )
    p.add_argument("--pid", type=strict(parse_pid), action="append", metavar="PID",
                   help="only sockets this process holds")
    p.add_argument("--user", action="append", metavar="USER",
                   help="only sockets of this user (a name or a uid)")
    p.add_argument("--proto", choices=("tcp", "udp"), help="only TCP or only UDP")
    p.add_argument(
        "--address", type=strict(parse_host), action="append", metavar="ADDR",
        help="only sockets bound to this address (0.0.0.0, ::, 127.0.0.1, localhost ...)",
    )
    p.add_argument("--wide", action="store_true",
                   help="every PID and the full command lines (a COMMAND column)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = args.format or ("json" if args.json else "table")
    if args.json and fmt != "json":
        return fail(f"--json and --format {fmt} ask for two formats: give one")
    filters = Filters(args)
    ports = filters.ports
    if args.all and ports is None:
        return fail("--all shows every socket on the ports given with --port: add --port P")
    # One port: only that port is built (its TIME_WAIT alone read from the kernel, its
    # holders alone described). Several: the whole snapshot, narrowed.
    one = next(iter(ports)) if ports is not None and len(ports) == 1 else None
    snap = snapshot_for(default_collector(), one)
    if any(h.name == "docker-proxy" for s in snap.sockets for h in s.holders[:1]):
        from ..core.roles.published import PublishedContainers  # only for Docker's ports

        snap = PublishedContainers().annotate(snap)
    if filters.active:
        snap = narrowed(snap, filters)
    if fmt == "json":
        # Many holders a socket (a pre-fork server's workers on each listener): the same
        # process records recur, and are worth encoding once each.
        shared = sum(len(s.holders) for s in snap.sockets) > 4 * len(snap.sockets)
        print_json(contract(snap, filters, args.all), args.pretty or None, shared)
        return 0
    every_pid = args.wide or fmt != "table"  # a script gets them all, a person on --wide
    trows = None if args.all else table_rows(snap, filters)
    header: tuple[str, ...]
    if trows is None:
        header, rows = ALL_HEADER, all_rows(snap, sorted(ports or ()), every_pid, args.wide)
    else:
        header = HEADER
        rows = [cells_of(r, every_pid, args.wide) for r in trows]
    if args.wide:
        header = (*header, "COMMAND")
    if fmt == "plain":
        if rows:  # nothing found: no output at all (a `while read` loop runs no time)
            print("\n".join("\t".join(row) for row in rows))
    elif fmt == "csv":
        import csv  # only here: the table and JSON do not need it

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    else:
        print(table(header, rows, footer(snap, filters, trows)))
    return 0


def table_rows(snap: Snapshot, filters: Filters) -> list[TableRow]:
    """The rows of `list`: with one port, that port's (client-side or not); with several,
    every server port among them, and a client's port only when named."""
    ports = filters.ports
    if ports is not None and len(ports) == 1:
        return build_rows(snap, next(iter(ports)))
    rows = build_rows(snap)
    if ports is not None:
        rows += [r for p in snap.ports if p.client_side for r in build_rows(snap, p.port)]
    return rows


def cells_of(row: TableRow, every_pid: bool, command: bool) -> tuple[str, ...]:
    """A row's cells, escaped; every PID (not "1,2,+3"), and a COMMAND cell, if asked."""
    texts = tuple(shown(c) for c in row_texts(row))
    if every_pid:
        texts = (*texts[:3], _pids(row.holders), *texts[4:])
    return (*texts, _commands(row.holders)) if command else texts


def all_rows(
    snap: Snapshot, ports: list[int], every_pid: bool, command: bool
) -> list[tuple[str, ...]]:
    """--all: per port, a row per listener (LISTEN, or UNCONN for a bound UDP socket), then
    one per state of its other TCP sockets. A state row names every process holding a live
    socket on the port (the kernel's tables say which socket is whose, not per state);
    TIME_WAIT belongs to no process."""
    merged = merged_sockets(snap.sockets)
    counts: dict[str, int] = {}
    for s in snap.sockets:
        counts[s.key] = counts.get(s.key, 0) + 1
    stats = {p.port: p for p in snap.ports}
    rows: list[tuple[str, ...]] = []
    for port in ports:
        for s in (s for s in merged if s.port == port):
            rows.append(_all_row(
                port, f"{s.proto}6" if s.family == "ipv6" else s.proto,
                "LISTEN" if s.proto == "tcp" else "UNCONN", counts[s.key],
                text.address_label(s), s.holders, every_pid, command, s.uid,
            ))
        st = stats.get(port)
        for state, count in _states(st):
            held = st.holders if st is not None and state != "TIME_WAIT" else ()
            rows.append(_all_row(port, "tcp", state, count, "*", held, every_pid, command))
    return rows


def _states(st: PortStats | None) -> list[tuple[str, int]]:
    if st is None:
        return []
    found = sorted(st.states.items(), key=lambda item: (-item[1], item[0]))
    return [*found, ("TIME_WAIT", st.time_wait)] if st.time_wait else found


def _all_row(
    port: int, proto: str, state: str, count: int, address: str,
    holders: tuple[Holder, ...], every_pid: bool, command: bool, uid: int | None = None,
) -> tuple[str, ...]:
    none = not holders and state in ("TIME_WAIT", *_NO_PROCESS)
    row = (
        str(port), proto, state, str(count), shown(address),
        _pids(holders) if every_pid else text.pids_cell(holders),
        "-" if none else shown(text.process_cell(holders)),
        "-" if none else shown(text.user_cell(holders, uid)),
    )
    return (*row, _commands(holders)) if command else row


_NO_PROCESS = ("FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK")  # closed by its process


def _pids(holders: tuple[Holder, ...]) -> str:
    return ",".join(str(h.pid) for h in holders) or "-"


def _commands(holders: tuple[Holder, ...]) -> str:
    """Each holder's full command line once (a pre-fork server's workers share the
    master's): escaped, joined by " ; "."""
    return " ; ".join(dict.fromkeys(h.command for h in holders)) or "-"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], extra: list[str]) -> str:
    """Columns padded by terminal cells (a CJK process name takes two cells a character;
    ljust would shift the columns after it); the last column is not padded."""
    every = [header, *rows]
    widths = [max(cells(r[i]) for r in every) for i in range(len(header))]
    lines = ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in every]
    return "\n".join([*lines, *(shown(line) for line in extra if line)])


def footer(snap: Snapshot, filters: Filters, rows: list[TableRow] | None) -> list[str]:
    """The machine's client pressure (only for the whole list) and the hidden owners (of
    the rows shown, when narrowed)."""
    whole = not filters.active
    client = snap.client_time_wait
    if whole:
        hidden = snap.hidden_owners
    elif rows is None:
        hidden = sum(1 for s in snap.sockets if s.owner_hidden)
    else:
        hidden = sum(1 for r in rows if r.socket is not None and r.socket.owner_hidden)
    pressure = [text.client_pressure(client), *text.client_warnings(client)] if whole else []
    return [*pressure, text.hidden_summary(hidden, snap.is_root)]


def render(snap: Snapshot, port: int | None = None) -> str:
    """The table `portscope list [--port P]` prints (the rows the TUI shows)."""
    args = argparse.Namespace(
        port=None if port is None else [(port,)], name=None, pid=None, proto=None,
        address=None, user=None,
    )
    filters = Filters(args)
    trows = table_rows(snap, filters)
    cells = [cells_of(r, False, False) for r in trows]
    return table(HEADER, cells, footer(snap, filters, trows))


def contract(snap: Snapshot, filters: Filters, every: bool) -> dict[str, Any]:
    """The JSON contract of the (narrowed) snapshot. Asked by port, "ports" has those ports
    client-side or not; with --all, each port object also names the processes holding its
    live sockets ("processes")."""
    from ..core.serialize import holder_json, port_json, snapshot_json  # not for the table

    ports = filters.ports
    one = next(iter(ports)) if ports is not None and len(ports) == 1 else None
    data = snapshot_json(snap, one)
    if ports is not None and one is None:
        data["ports"] = [port_json(p) for p in snap.ports]
    if filters.active:
        data["clients"] = []
    if every:
        stats = {p.port: p for p in snap.ports}
        for item in data["ports"]:
            item["processes"] = [holder_json(h) for h in stats[item["port"]].holders]
    return data
