"""`portscope kill PORT`: stop whoever holds the port, safely, and prove it is free after.

Exit codes: 0 every target exited, 1 any target still running or refused (or the person said
no), 2 bad input, including no terminal to confirm on without --yes.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..core.collect import default_collector
from ..core.kill import wording
from ..core.kill.after import settle_after
from ..core.kill.plan import SIGNALS, After, KillPlan, KillResult
from ..core.kill.session import DEFAULT_TIMEOUT, run_kill
from ..core.kill.targets import holders_on, plan_kill
from ..core.model import Proto
from ..core.serialize import kill_json
from ..core.untrusted import fit, shown
from .common import TIMEOUT_MAX, duration_arg, fail, port_arg, print_json, signal_arg
from .terminal import columns

LABEL = 9  # width of the field labels in the confirmation ("children ")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kill",
        help="stop the process holding a port (confirms, SIGTERM, waits, reports the port)",
    )
    p.add_argument("port", type=port_arg, metavar="PORT")
    p.add_argument("--udp", action="store_true", help="the UDP port, not the TCP one")
    p.add_argument(
        "--signal", type=signal_arg, default="TERM", metavar="SIG",
        help="signal to send first: TERM (default), INT or KILL; SIGTERM, term or 15 work too",
    )
    p.add_argument(
        "--timeout", type=duration_arg(0, TIMEOUT_MAX, "--timeout"), default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the targets to exit, 0 to {TIMEOUT_MAX:g} "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("--force", action="store_true", help="SIGKILL targets still alive after S")
    p.add_argument(
        "--all-holders", action="store_true",
        help="signal every process holding the socket, not only the topmost (the master)",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true", help="print the JSON contract")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.yes and not sys.stdin.isatty():
        return fail("no terminal to confirm on: pass --yes to kill without asking")
    proto: Proto = "udp" if args.udp else "tcp"
    snapshot = default_collector().collect()
    holders, hidden = holders_on(snapshot, args.port, proto)
    plan = plan_kill(
        [h.identity for h in holders], args.port, proto,
        all_holders=args.all_holders, owner_hidden=hidden, snapshot=snapshot,
    )
    if wording.needs_confirmation(plan) and not args.yes and not _confirm(plan, args.signal):
        print("cancelled: nothing was signalled", file=sys.stderr)
        return 1
    result = run_kill(
        plan, SIGNALS[args.signal], args.timeout, force=args.force,
        on_graceful=lambda text: print(f"portscope: {text}", file=sys.stderr, flush=True),
    )
    after = settle_after(result)
    if args.json:
        print_json(kill_json(result, after, args.signal))
    else:
        print(render(result, after, args.force))
    return 0 if result.ok else 1


def _confirm(plan: KillPlan, signame: str) -> bool:
    """Show every target the way the TUI modal does, then ask on the terminal.

    Each field is escaped and kept to one line: a command line of a few kilobytes (or one
    that forges a "PID 1" line) must not push the PID, user and the question off the screen.
    The full command line is in `portscope list --json`.
    """
    now = time.time()
    out = sys.stderr
    room = max(20, columns(out) - LABEL - 3)
    for target in plan.targets:
        for label, value in wording.target_fields(target, now):
            print(f"  {label:<{LABEL}} {fit(shown(value), room)}", file=out)
        print(file=out)
    for _, line in wording.plan_notes(plan):  # what the `k` dialog says, word for word
        print(shown(line), file=out)
    print(f"{shown(wording.question(plan, signame))} [y/N] ", end="", file=out, flush=True)
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")


def render(result: KillResult, after: After, force: bool) -> str:
    plan = result.plan
    quiet = not plan.targets and not result.refused and not plan.gone
    if quiet and plan.how == "none":
        lines = [shown(line) for line in wording.nothing_to_stop(plan, after)]
    else:
        lines = [shown(line) for line in wording.outcome_lines(result)]
    if result.escalated:
        lines.append("escalated to SIGKILL after the timeout")
    elif result.still_running and not force and "KILL" not in result.signals.values():
        lines.append("pass --force to send SIGKILL to processes still running after --timeout")
    lines.append(shown(after.summary))
    return "\n".join(lines)
