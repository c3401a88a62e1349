"""`portscope list`: the snapshot as a table or as the JSON contract."""

from __future__ import annotations

import argparse

from ..core import text
from ..core.collect import default_collector, snapshot_for
from ..core.model import Snapshot
from ..core.rows import TableRow, build_rows, row_texts
from ..core.untrusted import cells, pad, shown
from .common import port_arg, print_json

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

HEADER = ("PORT", "PROTO", "ADDRESS", "PID", "PROCESS", "USER", "TIME_WAIT", "OTHER")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="listening sockets, their processes, TIME_WAIT per port")
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.add_argument("--port", type=port_arg, metavar="P", help="only this port")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # With --port, only that port is built: its TIME_WAIT alone is read from the kernel,
    # its holders alone described.
    snap = snapshot_for(default_collector(), args.port)
    if any(h.name == "docker-proxy" for s in snap.sockets for h in s.holders[:1]):
        from ..core.roles.published import PublishedContainers  # only for Docker's ports

        snap = PublishedContainers().annotate(snap)
    if args.json:
        from ..core.serialize import snapshot_json  # the table needs no JSON (nor roles)

        print_json(snapshot_json(snap, args.port))
    else:
        print(render(snap, args.port))
    return 0


def render(snap: Snapshot, port: int | None = None) -> str:
    """The same rows as the TUI, every cell escaped, columns padded by terminal cells (a
    CJK process name takes two cells a character; ljust would shift the columns after it)."""
    shown_rows = build_rows(snap, port)
    rows: list[tuple[str, ...]] = [HEADER]
    rows.extend(tuple(shown(c) for c in row_texts(r)) for r in shown_rows)
    widths = [max(cells(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    # With --port the hidden-owner count is of the rows shown, not of the whole machine.
    hidden = snap.hidden_owners if port is None else hidden_in(shown_rows)
    client = snap.client_time_wait
    for extra in (
        *((text.client_pressure(client), *text.client_warnings(client)) if port is None else ()),
        text.hidden_summary(hidden, snap.is_root),
    ):
        if extra:
            lines.append(shown(extra))
    return "\n".join(lines)


def hidden_in(rows: list[TableRow]) -> int:
    """Listening sockets among `rows` whose owner cannot be seen."""
    return sum(1 for r in rows if r.socket is not None and r.socket.owner_hidden)
