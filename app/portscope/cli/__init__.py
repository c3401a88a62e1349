"""argparse front: `portscope` alone starts the TUI; subcommands script the same core."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from .. import __version__
from . import check_cmd, kill_cmd, list_cmd, wait_cmd
from .argparser import Parser
from .common import duration_arg, fail

# Each module adds its subparser and sets `func`; adding a command is one line here.
COMMANDS = (list_cmd, check_cmd, wait_cmd, kill_cmd)


def build_parser() -> Parser:
    parser = Parser(
        prog="portscope",
        description="Who holds a port, why bind() fails, and when the port frees itself. "
        "Run without a command for the live monitor.",
    )
    parser.add_argument("--version", action="version", version=f"portscope {__version__}")
    parser.add_argument(
        "--interval",
        type=duration_arg(0.1, 3600, "--interval"),
        default=1.0,
        metavar="S",
        help="TUI refresh period in seconds, 0.1 to 3600 (default 1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # Parsers too
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse(argv)
    if args.command is None:
        refusal = no_monitor_here(sys.stdin.isatty(), sys.stdout.isatty(), os.environ)
        if refusal:
            return fail(refusal)
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


def no_monitor_here(stdin_tty: bool, stdout_tty: bool, env: Mapping[str, str]) -> str:
    """Why the live monitor cannot run here ("" if it can): Textual needs a terminal to read
    keys from and draw on, and escape sequences it understands. Started from cron, a pipe or
    an editor's dumb shell it would hang or fill the log with escape codes instead."""
    if not (stdin_tty and stdout_tty):
        return (
            "the live monitor needs a terminal on stdin and stdout; "
            "use 'portscope list' (or 'portscope list --json') for a table"
        )
    if os.name != "nt":  # Windows consoles leave TERM unset and Textual draws on them fine
        term = env.get("TERM", "")
        if not term:
            return "TERM is not set, so the live monitor cannot draw; use 'portscope list'"
        if term == "dumb":
            return "TERM=dumb cannot draw the live monitor; use 'portscope list'"
    return ""


if __name__ == "__main__":
    sys.exit(main())
