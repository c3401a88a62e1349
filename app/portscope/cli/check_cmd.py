"""`portscope check PORT`: would a server's bind() succeed here, and if not, why and what now.

Exit codes: 0 the port is free, 1 any other verdict, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import Any

from ..core.diagnose.advice import attempt_line, endpoint, is_snippet
from ..core.diagnose.probe import diagnose, parse_address, parse_port
from ..core.diagnose.verdict import Verdict
from ..core.model import Proto
from ..core.serialize import verdict_json
from .common import fail, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="test-bind a port and explain why bind() would fail")
    add_target_arguments(p)
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.set_defaults(func=run)


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """PORT, --host and --udp: what `check` and `wait` both probe."""
    p.add_argument("port", metavar="PORT")
    p.add_argument("--host", default="0.0.0.0", metavar="ADDR",
                   help="address to bind (default 0.0.0.0; :: and literal addresses work)")
    p.add_argument("--udp", action="store_true", help="the UDP port, not the TCP one")


def parse_target(args: argparse.Namespace) -> tuple[int, str, Proto] | str:
    """(port, address, proto), or the one-line error the person should see."""
    try:
        return parse_port(args.port), parse_address(args.host), "udp" if args.udp else "tcp"
    except ValueError as exc:
        return str(exc)


def run(args: argparse.Namespace) -> int:
    target = parse_target(args)
    if isinstance(target, str):
        return fail(target)
    verdict = diagnose(*target)
    if args.json:
        print_json(verdict_json(verdict))
    else:
        print(render(verdict, shutil.get_terminal_size().columns))
    return 0 if verdict.free else 1


def render(v: Verdict, columns: int = 100) -> str:
    """The verdict as a person reads it: sentence, both attempts, why, what to do."""
    width = max(40, min(columns, 100))
    out = [*textwrap.wrap(v.sentence, width), ""]
    steps = "bind() + listen()" if v.proto == "tcp" else "bind()"
    out.append(f"Test {steps} on {endpoint(v.address, v.port)}/{v.proto}:")
    for a in v.attempts:
        out.append(f"  {a.option:<14}{attempt_line(a)}")
    if v.explanation:
        out += ["", "Why:"]
        for para in v.explanation:
            out += textwrap.wrap(para, width, initial_indent="  - ", subsequent_indent="    ")
    if v.advice:
        out += ["", "What to do:"]
        step = 0
        for line in v.advice:
            if is_snippet(line):
                out.append(f"       {line}")
                continue
            step += 1
            out += textwrap.wrap(
                line, width, initial_indent=f"  {step}. ", subsequent_indent="     "
            )
    return "\n".join(out)
