"""`portscope list`: the snapshot as a table or as the JSON contract."""

from __future__ import annotations

import argparse
from typing import Any

from ..core import text
from ..core.collect import default_collector
from ..core.model import Snapshot
from ..core.rows import build_rows, row_texts
from ..core.serialize import snapshot_json
from ..core.untrusted import cells, pad, shown
from .common import port_arg, print_json

HEADER = ("PORT", "PROTO", "ADDRESS", "PID", "PROCESS", "USER", "TIME_WAIT", "OTHER")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="listening sockets, their processes, TIME_WAIT per port")
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.add_argument("--port", type=port_arg, metavar="P", help="only this port")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snap = default_collector().collect()
    if args.json:
        print_json(snapshot_json(snap, args.port))
    else:
        print(render(snap, args.port))
    return 0


def render(snap: Snapshot, port: int | None = None) -> str:
    """The same rows as the TUI, every cell escaped, columns padded by terminal cells (a
    CJK process name takes two cells a character; ljust would shift the columns after it)."""
    rows: list[tuple[str, ...]] = [HEADER]
    rows.extend(tuple(shown(c) for c in row_texts(r)) for r in build_rows(snap, port))
    widths = [max(cells(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for extra in (
        text.client_summary(snap.client_time_wait) if port is None else "",
        text.hidden_summary(snap.hidden_owners, snap.is_root),
    ):
        if extra:
            lines.append(shown(extra))
    return "\n".join(lines)
