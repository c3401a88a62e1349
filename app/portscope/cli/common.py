"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..core.diagnose.probe import parse_port


def port_number(text: str) -> int:
    """A TCP/UDP port, 1-65535; anything else is one clear argparse error (exit 2)."""
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def fail(message: str, code: int = 2) -> int:
    """One line on stderr and an exit code: what every user-facing error looks like."""
    print(f"portscope: {message}", file=sys.stderr)
    return code
