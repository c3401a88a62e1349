"""argparse front: `portscope` alone starts the TUI; subcommands script the same core."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import check_cmd, kill_cmd, list_cmd, wait_cmd
from .common import positive_float

# Each module adds its subparser and sets `func`; adding a command is one line here.
COMMANDS = (list_cmd, check_cmd, wait_cmd, kill_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portscope",
        description="Who holds a port, why bind() fails, and when the port frees itself. "
        "Run without a command for the live monitor.",
    )
    parser.add_argument("--version", action="version", version=f"portscope {__version__}")
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="S",
        help="TUI refresh period in seconds (default 1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        from ..tui.app import run_tui  # imported late: the CLI must not pay for Textual

        return run_tui(interval=args.interval)
    try:
        result = int(args.func(args))
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `portscope list | head`: the reader left; that is not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return result


if __name__ == "__main__":
    sys.exit(main())
