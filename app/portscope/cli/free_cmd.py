"""`portscope free`: ports a server can bind now, one a line (or as JSON), for scripts such
as `PORT=$(portscope free)`.

A port found free can be taken by another process before your server binds it: the answer
is true when given, not a reservation.
"""

from __future__ import annotations

import argparse
import random
import sys

from ..core.diagnose.free_ports import LOWEST, FreePorts, find_free
from ..core.inputs import parse_count, parse_port_range
from ..core.serialize import free_json
from .argparser import strict
from .common import add_json_arguments, fail, host_arg, print_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

REASONS = {
    "in_use": "in use", "time_wait": "in TIME_WAIT", "ephemeral": "in the ephemeral range",
    "excluded": "in an excluded range", "other_family": "dev ports taken on the other family",
    "denied": "denied (privileged)",
}


def count_arg(text: str) -> int:
    return parse_count(text, name="-n")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "free", help="print ports a server can bind now (skips TIME_WAIT, ephemeral)"
    )
    p.add_argument(
        "-n", type=strict(count_arg), default=1, metavar="N", help="how many ports (default 1)"
    )
    p.add_argument(
        "--range", type=strict(parse_port_range), default=(LOWEST, 65535), metavar="A-B",
        help=f"where to look (default {LOWEST}-65535); the ephemeral range is always left out",
    )
    p.add_argument(
        "--host", type=host_arg, default=None, metavar="ADDR",
        help="address a server will bind (default 0.0.0.0; localhost for 127.0.0.1 and ::1)",
    )
    p.add_argument("--udp", action="store_true", help="UDP ports, not TCP ones")
    p.add_argument(
        "--reuseaddr", action="store_true",
        help="for a server that sets SO_REUSEADDR: a port whose TIME_WAIT it can bind over "
        "counts as free",
    )
    p.add_argument("--random", action="store_true", help="random ports, not the lowest ones")
    add_json_arguments(p, "print a JSON object (ports, and why others were skipped)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    first, last = args.range
    try:
        found = find_free(
            args.n, first, last, args.host or ("0.0.0.0",), "udp" if args.udp else "tcp",
            "reuseaddr" if args.reuseaddr else "plain",
            rng=random.Random() if args.random else None,
        )
    except ValueError as exc:
        return fail(str(exc))
    if args.json:
        print_json(free_json(found), args.pretty or None)
    elif found.ports:
        print("\n".join(map(str, found.ports)))
    if not found.complete:
        print(f"portscope: {shortfall(found)}", file=sys.stderr)
        return 1
    return 0


def shortfall(found: FreePorts) -> str:
    """"found 1 of 3 free TCP ports in 8000-8010 (7 in use, 2 in TIME_WAIT)"."""
    where = f"{found.first}-{found.last}" if found.first != found.last else str(found.first)
    why = ", ".join(f"{n:,} {REASONS[r]}" for r, n in found.skipped.items() if n)
    return (
        f"found {len(found.ports)} of {found.wanted} free {found.proto.upper()} "
        f"port{'s' if found.wanted > 1 else ''} in {where}" + (f" ({why})" if why else "")
    )
