"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..core import inputs
from ..core.untrusted import shown
from .argparser import BAD_INPUT, strict

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any

# Argument types: the strict parsers of core/inputs, refusing with one line (exit 2).
port_arg = strict(inputs.parse_port)
host_arg = strict(inputs.parse_host)
signal_arg = strict(inputs.parse_signal)
TIMEOUT_MAX = 86400.0  # a day: longer is a typo, not a plan


def duration_arg(low: float, high: float, name: str) -> Callable[[str], float]:
    def parse_duration(text: str) -> float:
        return inputs.parse_duration(text, low=low, high=high, name=name)

    return strict(parse_duration)


def print_json(data: Any, pretty: bool | None = None, shared: bool = False) -> None:
    """The JSON contract keeps raw strings: json escapes every control character itself.

    Written whole, by json_layout (the C encoder; indent=2 would run the pure-Python one,
    3.7 s for `list --json` under load): laid out for a person when `pretty` (None: when
    stdout is a terminal), compact for a program. `shared`: the same process records recur
    many times (json_layout.compact)."""
    from . import json_layout

    out = sys.stdout
    pretty = out.isatty() if pretty is None else pretty
    json_layout.write(data, out, pretty=pretty, shared=shared)


def add_json_arguments(p: Any, what: str = "print the JSON contract") -> None:
    """--json and --pretty, alike on every command that prints JSON."""
    p.add_argument("--json", action="store_true", help=what)
    p.add_argument(
        "--pretty", action="store_true",
        help="with --json: indent it, as on a terminal (piped or redirected it is compact)",
    )


def fail(message: str, code: int = BAD_INPUT) -> int:
    """One line on stderr and an exit code: what every user-facing error looks like."""
    print(f"portscope: {shown(message)}", file=sys.stderr)
    return code


def add_bind_arguments(p: argparse.ArgumentParser) -> None:
    """--udp and --reuseaddr: which bind `check` and `wait` ask about."""
    p.add_argument("--udp", action="store_true", help="the UDP port, not the TCP one")
    p.add_argument(
        "--reuseaddr", action="store_true",
        help="the bind of a server that sets SO_REUSEADDR (gunicorn, uvicorn, node and most "
        "frameworks do), which TIME_WAIT left by a server that set it too does not block",
    )
