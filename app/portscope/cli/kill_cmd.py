"""`portscope kill PORT...`: stop whoever holds the ports, safely, and prove them free after.

Several ports (`kill 3000 8080`, a range, a comma list): every port's plan is made first,
one confirmation lists them all, then each plan is carried out in turn. `--pid PID` stops
one process named by its PID, with the same confirmation, PID-reuse guard, refusals and
audit log, and checks every port it held afterwards. `--dry-run` prints the plan and what
would be sent, and sends nothing.

Exit codes: 0 every target exited and, once the watch after it ended, no process listens on
or holds a socket on any of the ports (TIME_WAIT alone does not count: it is reported); 1
any target still running or refused, a port taken again, or the person said no; with
--dry-run, 0 if kill would act on every holder (or nothing needs stopping), 1 if it would
refuse one or the plan is a command to run; 2 bad input, including no terminal to confirm
on without --yes.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..core.collect import default_collector
from ..core.inputs import parse_pid
from ..core.kill import dry_run, wording
from ..core.kill.after import settle_after
from ..core.kill.by_pid import NoSuchTarget, plan_pid
from ..core.kill.container import with_timeout
from ..core.kill.plan import SIGNALS, After, KillPlan, KillResult
from ..core.kill.session import DEFAULT_TIMEOUT, run_kill
from ..core.kill.targets import holders_on, plan_kill
from ..core.model import Proto, Snapshot
from ..core.record import replace
from ..core.serialize import kill_json
from ..core.untrusted import fit, shown
from .argparser import strict
from .check_cmd import add_ports_argument, ports_of
from .common import (
    TIMEOUT_MAX,
    add_json_arguments,
    duration_arg,
    fail,
    host_arg,
    print_json,
    signal_arg,
)
from .terminal import columns

LABEL = 9  # width of the field labels in the confirmation ("children ")
NOTE_ROWS = 4  # terminal lines a plan's reason or a refusal may take
Outcome = tuple[KillResult, After]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kill",
        help="stop the process holding a port (confirms, SIGTERM, waits, reports the port)",
    )
    add_ports_argument(p, nargs="*")
    p.add_argument(
        "--pid", type=strict(parse_pid), default=None, metavar="PID",
        help="stop this process instead of a port's holders (the same confirmation, "
        "refusals and proof: every port it held is checked afterwards)",
    )
    p.add_argument(
        "--host", type=host_arg, default=None, metavar="ADDR",
        help="only what blocks a bind on this address (as for check): of two containers on "
        "127.0.0.1 and ::1, the one on ADDR",
    )
    p.add_argument("--udp", action="store_true", help="the UDP port, not the TCP one")
    p.add_argument(
        "--signal", type=signal_arg, default="TERM", metavar="SIG",
        help="signal to send first: TERM (default), INT or KILL; SIGTERM, term or 15 work too",
    )
    p.add_argument(
        # None when not given: a container then gets its own StopTimeout, not ours.
        "--timeout", type=duration_arg(0, TIMEOUT_MAX, "--timeout"), default=None,
        metavar="S",
        help=f"seconds to wait for the targets to exit, 0 to {TIMEOUT_MAX:g} "
        f"(default {DEFAULT_TIMEOUT:g}; for a container, its own stop timeout)",
    )
    p.add_argument("--force", action="store_true", help="SIGKILL targets still alive after S")
    p.add_argument(
        "--all-holders", action="store_true",
        help="signal every process holding the socket, not only the topmost (the master)",
    )
    p.add_argument(
        "--allow-system", action="store_true",
        help="also signal what portscope refuses by default: PID 1, the shell and terminal "
        "portscope runs in, sshd, init-managed system daemons, and a root process holding "
        "another user's socket (never portscope itself or a kernel thread)",
    )
    p.add_argument(
        "--dry-run", action="store_true",
        help="print the plan and the signals it would send (or the container it would "
        "stop) and send nothing; exit 0 if kill would act on every holder, 1 if it would "
        "refuse one or the plan is a command for you to run (a service)",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_json_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        ports = ports_of(args.ports)
    except ValueError as exc:
        return fail(str(exc))
    if args.pid is not None and ports:
        return fail("give ports or --pid PID, not both")
    if args.pid is None and not ports:
        return fail("no port given: portscope kill PORT [PORT...], or --pid PID")
    if args.pid is not None and (args.host or args.udp or args.all_holders):
        return fail("--pid names the process itself: --host, --udp and --all-holders choose "
                    "among a port's holders and do not go with it")
    if not args.yes and not args.dry_run and not sys.stdin.isatty():
        return fail("no terminal to confirm on: pass --yes to kill without asking")
    snapshot = default_collector().collect()
    try:
        plans = make_plans(
            snapshot, ports=ports, pid=args.pid, proto="udp" if args.udp else "tcp",
            host=args.host, all_holders=args.all_holders, allow_system=args.allow_system,
            timeout=args.timeout,
        )
    except NoSuchTarget as exc:
        return fail(str(exc), 1)
    several = len(plans) > 1
    if args.dry_run:
        return show_dry_run(plans, snapshot, args, several)
    acting = [p for p in plans if wording.needs_confirmation(p)]
    if args.pid is not None:
        acting = acting[:1]  # one process, listed once, whatever it holds
    if acting and not args.yes and not confirm(acting, args.signal):
        print("cancelled: nothing was signalled", file=sys.stderr)
        return 1
    outcomes = carry_out(
        plans, args.signal, args.timeout, args.force, by_pid=args.pid is not None,
        on_graceful=_say,
    )
    try:
        if args.json:
            data = [{**kill_json(r, a, args.signal), "dry_run": False} for r, a in outcomes]
            print_json(data if several else data[0], args.pretty or None)
        elif args.pid is not None:
            print(render_pid(outcomes, args.force))
        else:
            print(render_all(outcomes, args.force))
        sys.stdout.flush()
    except OSError:  # the reader left (EPIPE): what was done is done, and the code says it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # The exit code is the proof: every target gone and no process on any port afterwards.
    return 0 if all(r.ok and a.released for r, a in outcomes) else 1


def make_plans(
    snapshot: Snapshot,
    *,
    ports: Sequence[int] = (),
    pid: int | None = None,
    proto: Proto = "tcp",
    host: tuple[str, ...] | None = None,
    all_holders: bool = False,
    allow_system: bool = False,
    timeout: float | None = None,
) -> list[KillPlan]:
    """The plan of each port (or each port PID holds), as `kill` confirms and carries them
    out; `timeout` is what a container plan's printed command says. Raises NoSuchTarget."""
    if pid is not None:
        plans = plan_pid(pid, snapshot, allow_system=allow_system)
    else:
        plans = []
        for port in ports:
            holders, hidden = holders_on(snapshot, port, proto, host)
            plans.append(plan_kill(
                [h.identity for h in holders], port, proto, all_holders=all_holders,
                allow_system=allow_system, owner_hidden=hidden, snapshot=snapshot, hosts=host,
            ))
    return [with_timeout(plan, timeout) for plan in plans]  # "docker stop -t S NAME"


def _say(text: str) -> None:
    print(f"portscope: {text}", file=sys.stderr, flush=True)


def carry_out(
    plans: Sequence[KillPlan],
    signame: str = "TERM",
    timeout: float | None = None,
    force: bool = False,
    *,
    by_pid: bool = False,
    on_graceful: Callable[[str], object] | None = None,
) -> list[Outcome]:
    """Every plan in turn, then each port proved on its own: the watch for restarts runs
    once the last signal is out. A process holding two of the ports is signalled for the
    first and found gone for the second ("had already exited"). `by_pid`: the plans are one
    process's ports (plan_pid), signalled once and each port proved."""
    signum = SIGNALS[signame]
    if by_pid:
        first = run_kill(plans[0], signum, timeout, force=force, on_graceful=on_graceful)
        results = [first, *(replace(first, plan=plan) for plan in plans[1:])]
    else:
        results = []
        stopped: set[tuple[int, float]] = set()  # (PID, start time) gone after its signal
        for plan in plans:
            again = [t for t in plan.targets if (t.pid, t.started) in stopped]
            if again:  # held another of the ports too: stopped there, not signalled twice
                plan = replace(
                    plan, targets=tuple(t for t in plan.targets if t not in again),
                    gone=(*plan.gone, *(t.pid for t in again)),
                )
            result = run_kill(plan, signum, timeout, force=force, on_graceful=on_graceful)
            stopped |= {(t.pid, t.started) for t in plan.targets if t.pid in result.exited}
            results.append(result)
    shared: list[Snapshot] = []  # ports where nothing was done: one snapshot for them all

    def first_shared() -> Callable[[], Snapshot]:
        calls = 0

        def collect() -> Snapshot:
            nonlocal calls
            calls += 1
            if calls > 1:  # still held: look again, as for any port
                return default_collector().collect()
            if not shared:
                shared.append(default_collector().collect())
            return shared[0]

        return collect

    return [
        (result, settle_after(result, collect=None if acted(result) else first_shared()))
        for result in results
    ]


def acted(result: KillResult) -> bool:
    return bool(result.signals or result.container_stopped or result.plan.targets)


def show_dry_run(
    plans: Sequence[KillPlan], snapshot: Snapshot, args: argparse.Namespace, several: bool
) -> int:
    """The plan, what would be sent, nothing sent; 0 if kill would act on every plan."""
    acts = all(dry_run.would_act(plan) for plan in plans)
    if args.json:
        data = [
            {
                **kill_json(dry_run.dry_result(plan, args.signal), dry_run.now(plan, snapshot),
                            args.signal),
                "dry_run": True,
                "would_act": dry_run.would_act(plan),
            }
            for plan in plans
        ]
        print_json(data if several else data[0], args.pretty or None)
        return 0 if acts else 1
    width = max(20, columns(sys.stdout))
    lines: list[str] = []
    seen: set[int] = set()
    if args.pid is not None:  # one process: described once ("holds" lists its ports)
        plans, several = plans[:1], False
    idle: list[int] = []
    for plan in plans:
        if not plan.targets and plan.how == "none" and not plan.refused:
            now = dry_run.now(plan, snapshot)
            verdict = now.verdict
            if several and now.free and not (verdict is not None and verdict.other_proto):
                idle.append(plan.port)
                continue
            body = wording.nothing_to_stop(plan, now)
        else:
            body = describe(plan, width, seen)
            body += dry_run.would_do(plan, args.signal, args.timeout, args.force)
        if several:
            lines += [f"port {plan.port}/{plan.proto}:",
                      *(f"  {line}" if line else line for line in body), ""]
        else:
            lines += body
    if idle:
        what = "port {}: it is" if len(idle) == 1 else "ports {}: they are"
        lines += [f"nothing holds {plans[0].proto} {what.format(spans(idle))} free", ""]
    lines.append("dry run: nothing was sent")
    print("\n".join(lines))
    return 0 if acts else 1


def describe(plan: KillPlan, width: int, seen: set[int] | None = None) -> list[str]:
    """Every target the way the TUI modal shows it, then the plan's notes, escaped.

    Each field is kept to one line: a command line of a few kilobytes (or one that forges a
    "PID 1" line) must not push the PID, user and the question off the screen. The full
    command line is in `portscope list --json`. A target already described for another
    port (`seen`) is named, not described again."""
    now = time.time()
    room = max(20, width - LABEL - 3)
    lines: list[str] = []
    for target in plan.targets:
        if seen is not None and target.pid in seen:
            lines += [f"  {'PID':<{LABEL}} {target.pid} (described above)", ""]
            continue
        if seen is not None:
            seen.add(target.pid)
        for label, value in wording.target_fields(target, now):
            lines.append(f"  {label:<{LABEL}} {fit(shown(value), room)}")
        lines.append("")
    for kind, line in wording.plan_notes(plan):  # what the `k` dialog says, word for word
        # Cut to a few lines of the terminal (a 20 KB argv[0] in the plan's why must not
        # scroll the targets away), yet whole enough that a refusal names its rule; a
        # command stays whole, to be copied.
        if kind == "command":
            lines.append(shown(line))
            continue
        rows = NOTE_ROWS if kind in ("why", "refused") else 1
        wrapped = textwrap.wrap(shown(line), width, max_lines=rows, placeholder=" …")
        lines += [fit(row, width) for row in wrapped]
    return lines


def confirm(plans: Sequence[KillPlan], signame: str) -> bool:
    """Show every plan's targets, then ask one question for all of them on the terminal."""
    out = sys.stderr
    width = max(20, columns(out))
    several = len(plans) > 1
    seen: set[int] = set()
    for plan in plans:
        if several:
            print(f"port {plan.port}/{plan.proto}:", file=out)
        for line in describe(plan, width - (2 if several else 0), seen):
            print(f"  {line}" if several and line else line, file=out)
    print(f"{shown(question(plans, signame))} [y/N] ", end="", file=out, flush=True)
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")


def _confirm(plan: KillPlan, signame: str) -> bool:
    """One plan's confirmation (`run --stop` asks it)."""
    return confirm([plan], signame)


def question(plans: Sequence[KillPlan], signame: str) -> str:
    """What y confirms: one plan's question, or each plan's with its port."""
    if len(plans) == 1:
        return wording.question(plans[0], signame)
    parts = [
        f"{wording.question(plan, signame).rstrip('?')} (port {plan.port})" for plan in plans
    ]
    return "; ".join(p if i == 0 else p[:1].lower() + p[1:] for i, p in enumerate(parts)) + "?"


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


def render_all(outcomes: Sequence[Outcome], force: bool) -> str:
    """Each port's outcome under its name; ports nothing held, in one line at the end."""
    if len(outcomes) == 1:
        return render(*outcomes[0], force)
    blocks: list[str] = []
    idle: list[int] = []
    for result, after in outcomes:
        plan = result.plan
        verdict = after.verdict
        nothing = not plan.targets and not result.refused and not plan.gone
        if nothing and plan.how == "none" and after.free and not (
            verdict is not None and verdict.other_proto
        ):
            idle.append(plan.port)
            continue
        body = render(result, after, force).splitlines()
        blocks.append("\n".join([f"port {plan.port}/{plan.proto}:",
                                 *(f"  {line}" for line in body)]))
    if idle:
        proto = outcomes[0][0].plan.proto
        what = "port {}: it is" if len(idle) == 1 else "ports {}: they are"
        blocks.append(f"nothing held {proto} {what.format(spans(idle))} free")
    return "\n\n".join(blocks)


def render_pid(outcomes: Sequence[Outcome], force: bool) -> str:
    """The process's outcome once, then each port it held."""
    result, first = outcomes[0]
    lines = render(result, first, force).splitlines()
    lines += [shown(after.summary) for _, after in outcomes[1:]]
    return "\n".join(lines)


def spans(ports: Sequence[int]) -> str:
    """8001, 8002, 8003, 8007 -> "8001-8003, 8007"."""
    runs: list[list[int]] = []
    for port in sorted(ports):
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)
