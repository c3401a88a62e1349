"""`portscope run --port P -- COMMAND...`: start a dev server on a port that is free, and
become it.

P is free when `free` would hand it out (its ephemeral-range rule aside: P was asked for).
If it is not: `--next` takes the next port `free` finds above P, `--wait` waits as `wait`
does, `--stop` stops what holds it through the stop plan `kill` carries out (confirmed on
the terminal unless `--yes`). Then portscope execs COMMAND with PORT=P in its environment
and every `{port}` in its arguments replaced: COMMAND takes over the process, so its exit
code and the signals it gets are its own, with no portscope in between.

The port is tested, not reserved: another process can still take it before COMMAND binds.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from ..core.collect import default_collector
from ..core.diagnose.bind_attempt import Bind
from ..core.diagnose.free_ports import Judge, Skip, find_free
from ..core.diagnose.probe import diagnose
from ..core.inputs import quoted
from ..core.model import Proto
from .common import TIMEOUT_MAX, duration_arg, fail, host_arg, port_arg
from .wait_cmd import wait_free

DESCRIPTION = """\
Start COMMAND on a port: if busy, the next one, wait, or stop it.

COMMAND gets PORT=P in its environment and every {port} in its arguments replaced.
portscope then becomes COMMAND (exec): the exit code and the signals are COMMAND's own.
A port found free can still be taken by another process before COMMAND binds it:
portscope tests the port, it cannot reserve it.
"""
TIME_WAIT_MAX = 75.0  # seconds: Linux's TIME_WAIT lasts 60 s; after a stop, wait that out


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="start COMMAND on a port: if busy, the next one, wait, or stop it",
        description=DESCRIPTION,
        usage="portscope run --port P [--next | --wait | --stop] [OPTIONS] -- COMMAND [ARG...]",
    )
    p.add_argument("--port", type=port_arg, required=True, metavar="P", help="the port wanted")
    busy = p.add_mutually_exclusive_group()
    busy.add_argument("--next", action="store_true", help="if P is busy, the next free port")
    busy.add_argument("--wait", action="store_true", help="if P is busy, wait until it frees")
    busy.add_argument(
        "--stop", action="store_true",
        help="if P is busy, stop what holds it (as `kill` does), then start COMMAND",
    )
    p.add_argument("--yes", "-y", action="store_true", help="with --stop: do not ask")
    p.add_argument(
        "--timeout", type=duration_arg(0, TIMEOUT_MAX, "--timeout"), metavar="S",
        help="with --wait: give up after S seconds (exit 1); default: never",
    )
    p.add_argument(
        "--host", type=host_arg, default=None, metavar="ADDR",
        help="address COMMAND binds (default 0.0.0.0; localhost for 127.0.0.1 and ::1)",
    )
    p.add_argument("--udp", action="store_true", help="a UDP port, not a TCP one")
    p.add_argument(
        "--reuseaddr", action="store_true",
        help="COMMAND sets SO_REUSEADDR (most servers do): TIME_WAIT it can bind over is free",
    )
    p.add_argument(  # not dest "command": that is the name of the subcommand chosen
        "argv", nargs=argparse.REMAINDER, metavar="-- COMMAND...",
        help="the command to run, after --",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        return fail("no COMMAND given: portscope run --port P -- COMMAND [ARG...]")
    if args.yes and not args.stop:
        return fail("--yes goes with --stop (it answers the question before stopping)")
    if args.timeout is not None and not args.wait:
        return fail("--timeout goes with --wait")
    hosts: tuple[str, ...] = args.host or ("0.0.0.0",)
    proto: Proto = "udp" if args.udp else "tcp"
    bind: Bind = "reuseaddr" if args.reuseaddr else "plain"
    port: int = args.port
    try:
        judge = Judge(hosts, proto, bind)
        reason = judge.skip(port)
    except ValueError as exc:
        return fail(str(exc))
    if reason is None:
        return exec_command(command, port)
    why = busy_sentence(port, hosts, proto, reason)
    if args.next:
        found = find_free(1, port + 1, 65535, judge=judge) if port < 65535 else None
        if found is None or not found.ports:
            return fail(f"{why}; no free port above it", 1)
        say(f"{why}; starting on port {found.ports[0]}")
        return exec_command(command, found.ports[0])
    if args.wait:
        code = wait_free(
            port, _waited(hosts, reason), proto, args.timeout, sys.stderr, bind, sys.stderr
        )
        return code or start_if_free(command, port, hosts, proto, bind)
    if args.stop:
        if reason not in ("in_use", "other_family"):
            return fail(f"{why}: there is nothing to stop", 1)
        code = stop_holders(port, proto, args.host, args.yes)
        if code:
            return code
        if Judge(hosts, proto, bind).skip(port) in ("time_wait", "in_use"):
            say(f"waiting for port {port} to clear (at most {TIME_WAIT_MAX:g} s)")
            code = wait_free(port, hosts, proto, TIME_WAIT_MAX, sys.stderr, bind, sys.stderr)
            if code:
                return code
        return start_if_free(command, port, hosts, proto, bind)
    return fail(f"{why} (pass --next, --wait or --stop)", 1)


def say(line: str) -> None:
    print(f"portscope: {line}", file=sys.stderr, flush=True)


def busy_sentence(port: int, hosts: tuple[str, ...], proto: Proto, reason: Skip) -> str:
    """Why P cannot be handed to COMMAND, in check's words where check has them."""
    if reason == "other_family":
        family = "IPv6" if all(":" not in h for h in hosts) else "IPv4"
        return (
            f"port {port}/{proto} is free on {' and '.join(hosts)}, but a server holds it on "
            f"{family}: localhost:{port} would reach that one"
        )
    sentence = diagnose(port, hosts[0], proto, suggest=False).sentence
    return sentence[:1].lower() + sentence[1:].rstrip(".")


def _waited(hosts: tuple[str, ...], reason: Skip) -> tuple[str, ...]:
    """The addresses to wait for: for a dev port taken on the other family, that family too
    (a dual-stack `::` bind frees only when both do)."""
    return (*hosts, "::") if reason == "other_family" else hosts


def start_if_free(
    command: list[str], port: int, hosts: tuple[str, ...], proto: Proto, bind: Bind
) -> int:
    """Exec COMMAND if P is still free, now that the wait or the stop is over."""
    reason = Judge(hosts, proto, bind).skip(port)
    if reason is not None:
        return fail(f"{busy_sentence(port, hosts, proto, reason)} (taken again)", 1)
    return exec_command(command, port)


def stop_holders(port: int, proto: Proto, host: tuple[str, ...] | None, yes: bool) -> int:
    """What `kill PORT` does (the same plan, confirmation, signals and proof), reported on
    stderr: stdout is COMMAND's. 0 once nothing holds the port."""
    if not yes and not sys.stdin.isatty():
        return fail("no terminal to confirm on: pass --yes to stop without asking")
    from ..core.kill import wording
    from ..core.kill.after import settle_after
    from ..core.kill.plan import SIGNALS
    from ..core.kill.session import run_kill
    from ..core.kill.targets import holders_on, plan_kill
    from ..core.untrusted import shown
    from .kill_cmd import _confirm, render

    snapshot = default_collector().collect()
    holders, hidden = holders_on(snapshot, port, proto, host)
    plan = plan_kill(
        [h.identity for h in holders], port, proto, owner_hidden=hidden, snapshot=snapshot,
        hosts=host,
    )
    if wording.needs_confirmation(plan) and not yes and not _confirm(plan, "TERM"):
        print("cancelled: nothing was signalled", file=sys.stderr)
        return 1
    result = run_kill(
        plan, SIGNALS["TERM"], None, on_graceful=lambda text: say(shown(text)),
    )
    after = settle_after(result)
    print(render(result, after, False), file=sys.stderr, flush=True)
    return 0 if result.ok and after.released else 1


def exec_command(command: list[str], port: int) -> int:
    """Become COMMAND on `port`; returns only if it cannot be run (126/127, as a shell)."""
    argv = [arg.replace("{port}", str(port)) for arg in command]
    env = {**os.environ, "PORT": str(port)}
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE and SIGXFSZ and exec keeps ignored signals ignored: COMMAND
    # must get the defaults a shell would give it (`COMMAND | head` ends it).
    kept = {sig: signal.signal(sig, signal.SIG_DFL) for sig in _IGNORED_BY_PYTHON}
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
        missing = isinstance(exc, FileNotFoundError)
        what = "command not found" if missing else f"cannot run it ({exc.strerror or exc})"
        return fail(f"{quoted(argv[0])}: {what}", 127 if missing else 126)
    return 0  # not reached: exec replaced this process


_IGNORED_BY_PYTHON = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)
