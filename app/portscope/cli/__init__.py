"""argparse front: `portscope` alone starts the TUI; subcommands script the same core."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from .. import __version__
from ..core import platform_path
from .argparser import BadValue, Parser
from .common import duration_arg, fail

# name -> (module, the line `portscope --help` shows). Only the module of the command given
# is imported: the others' imports (psutil, the probe, the role model) would cost a
# `portscope --version` or a `list` tens of milliseconds for nothing. Adding a command is
# one line here; a test checks each line against the help its module gives.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("list_cmd", "listening sockets, their processes, TIME_WAIT per port"),
    "check": ("check_cmd", "test-bind a port and explain why bind() would fail"),
    "wait": ("wait_cmd", "block until the port can be bound (exit 0), or time out"),
    "kill": (
        "kill_cmd",
        "stop the process holding a port (confirms, SIGTERM, waits, reports the port)",
    ),
    "watch": ("watch_cmd", "print listeners appearing, stopping, changing, restarting"),
    "free": ("free_cmd", "print ports a server can bind now (skips TIME_WAIT, ephemeral)"),
    "run": ("run_cmd", "start COMMAND on a port: if busy, the next one, wait, or stop it"),
    "completion": ("completion_cmd", "print the shell completion script (bash, zsh, fish)"),
    "mcp": ("mcp_cmd", "serve list, check, free, wait and kill to coding agents (MCP on stdio)"),
    "export": (
        "export_cmd", "serve Prometheus metrics: listeners, TIME_WAIT, ephemeral-port pressure",
    ),
}


def build_parser(command: str | None = None, *, every: bool = False) -> Parser:
    """The parser with `command`'s arguments (`every`: all commands', for the completion
    script); every other command is a stub that only names itself, so its module stays
    unimported."""
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
    parser.add_argument(
        "--portable",
        action="store_true",
        help="take the portable path macOS and Windows take (psutil: no netlink, no /proc "
        "read directly, no pidfd; socket uid, v6only and TIME_WAIT timers unknown), also "
        "after the command (`portscope list --portable`); as PORTSCOPE_PORTABLE=1",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # Parsers too
    for name, (module, line) in COMMANDS.items():
        if name == command or every:
            importlib.import_module(f"{__package__}.{module}").add_parser(sub)
            # `portscope list --portable` too; documented once, on the program.
            sub.choices[name].add_argument(
                "--portable", action="store_true", default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
            from .help_text import describe

            describe(sub.choices[name], name, line)
        else:
            sub.add_parser(name, help=line, add_help=False)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in `argv`, found with stubs only: `--version`, `--help` and bad
    top-level options are answered here, before any command module is imported."""
    parser = build_parser()
    try:
        args, _ = parser.parse_known_args(argv)
    except BadValue as exc:
        parser.die(str(exc))
    command: str | None = args.command
    return command


# Commands that answer once and exit: the cyclic garbage collector finds nothing in them that
# exit would not free, yet its passes over the owner store's and the snapshot's objects cost
# `list --json` under load ~3 ms. `wait` and `watch` may run for hours: they keep it.
ANSWER_ONCE = frozenset({"list", "check"})


def entry() -> None:
    """`portscope` as installed (the console script): main(), then, once a command has
    answered, straight out. The interpreter's teardown would free every object and module
    one by one (~6 ms after `list --json` under load) only for the process to end."""
    standard_streams()
    argv = sys.argv[1:]
    command = chosen_command(argv)
    if command in ANSWER_ONCE:
        import gc

        gc.disable()
    code = run(argv, command)
    if command is None:  # the monitor: Textual's own shutdown runs as usual
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left (`| head`): as main() answers it
        code = 141
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    standard_streams()
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(argv, chosen_command(argv))


def standard_streams() -> None:
    """Closed standard streams (`>&-`, `<&-`, `2>&-`) read and write /dev/null, so a print
    neither crashes (sys.stdout is None) nor lands elsewhere (print(file=None) writes to
    stdout; a socket opened later would take the free descriptor); and whatever the
    locale, a character the terminal's encoding lacks is written as an escape, never a
    UnicodeEncodeError."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name in ("stdin", "stdout", "stderr"):
        if getattr(sys, name) is None:
            mode = "r" if name == "stdin" else "w"
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", "") != "backslashreplace":
            reconfigure(errors="backslashreplace")


def run(argv: list[str], command: str | None) -> int:
    """Parse `argv` for `command` (chosen_command's answer) and carry it out."""
    args = build_parser(command).parse(argv)
    refusal = take_path(args.portable, os.environ)
    if refusal:
        return fail(refusal)
    if args.command is None:
        refusal = no_monitor_here(sys.stdin.isatty(), sys.stdout.isatty(), os.environ)
        if refusal:
            return fail(refusal)
        # Imported late: the CLI must not pay for Textual (launch.py imports it later still).
        from ..tui.launch import run_monitor

        return run_monitor(interval=args.interval)
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


def take_path(portable: bool, env: Mapping[str, str]) -> str:
    """Settle which path answers before anything is collected: `--portable`, else
    PORTSCOPE_PORTABLE (platform_path.py). The refusal of a bad value ("" if none)."""
    try:
        mode = platform_path.parse(env.get(platform_path.ENV, ""))
    except ValueError as exc:
        return str(exc)
    if portable and mode is None:
        platform_path.choose(platform_path.PORTABLE)
    return ""


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
