"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

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


def print_json(data: Any) -> None:
    """The JSON contract keeps raw strings: json escapes every control character itself.

    Written whole in one write, laid out by json_layout (the C encoder; indent=2 would run
    the pure-Python one, 3.7 s for `list --json` under load)."""
    from . import json_layout

    json_layout.write(data, sys.stdout)


def fail(message: str, code: int = BAD_INPUT) -> int:
    """One line on stderr and an exit code: what every user-facing error looks like."""
    print(f"portscope: {shown(message)}", file=sys.stderr)
    return code
