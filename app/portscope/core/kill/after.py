"""What holds the port once the kill is over, in the words a person needs: free, TIME_WAIT
for N more seconds, or which process holds it now and why (a survivor, a worker finishing
its requests, a restart and who made it).

A shell loop brings its server back in ~0.3 s and a reloader in about a second, so the port
is watched for at least WATCH seconds while anything that could restart it is alive; with
nothing left that could, a free port ends the watch at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil

from .. import text
from ..diagnose.probe import diagnose
from ..diagnose.verdict import Verdict
from ..model import Holder, Proto, Snapshot
from ..roles import evidence
from ..untrusted import shown
from .plan import After, KillPlan, KillResult

Diagnose = Callable[..., Verdict]
WATCH = 2.0  # seconds: long enough for a shell loop, a reloader or a process manager
# Parents that start servers but never restart them.
_STARTERS = frozenset({"tmux: server", "tmux", "screen", "sshd", "login", "su", "sudo",
                       "systemd", "init", "launchd", "portscope"})


def settle_after(
    result: KillResult,
    *,
    collect: Callable[[], Snapshot] | None = None,
    check: Diagnose = diagnose,
    settle: float = WATCH,
    step: float = 0.1,
) -> After:
    """Check the port until it is taken again, until it is free with no controller left
    alive, or for `settle` seconds."""
    plan = result.plan
    if collect is None:
        from ..collect import default_collector, snapshot_for

        # The port alone: a one-port poll keeps that port's sockets whoever's they are, so
        # a killed server's lone TIME_WAIT is never taken for another program's client.
        collector = default_collector()
        port = plan.port

        def collect() -> Snapshot:
            return snapshot_for(collector, port)

    if plan.stop is not None and plan.stop.watch is not None:
        settle = max(settle, plan.stop.watch)  # a recognised manager's restart delay + 1 s
    controllers = _controllers(result)
    deadline = time.monotonic() + settle
    while True:
        verdict = _verdict(plan, check, collect())
        restarted = [h for h in verdict.holders if _started_after(h, result)]
        if restarted:
            break
        quiet = not verdict.holders and not any(_alive(p) for p in controllers)
        if quiet or time.monotonic() >= deadline:
            break
        time.sleep(step)
    by = _restarted_by(restarted[0]) if restarted else None
    return After(
        summary=describe(verdict, result, by),
        free=verdict.free,
        holders=tuple(h.pid for h in verdict.holders),
        verdict=verdict,
        restarted_by=by,
    )


def _verdict(plan: KillPlan, check: Diagnose, snap: Snapshot) -> Verdict:
    """The port as a server would meet it; after `kill --host`, on the addresses asked
    (the first one still taken), not on 0.0.0.0: a container left on another address by
    design must not make the kill look failed."""
    if not plan.hosts:
        return check(plan.port, proto=plan.proto, snapshot=snap, suggest=False)
    verdicts = [
        check(plan.port, address, proto=plan.proto, snapshot=snap, suggest=False)
        for address in plan.hosts
    ]
    held = [v for v in verdicts if v.holders] or [v for v in verdicts if not v.free]
    return (held or verdicts)[0]


def _controllers(result: KillResult) -> set[int]:
    """Who could bring the server back: the signalled targets and their followers, the
    plan's reloaders and loops, and every living ancestor of a target up to the first
    person's shell, terminal or init: a restarter need not be the direct parent
    (supervisord runs `bash -c` wrappers, nodemon and entr run `sh -c`), and one we do not
    recognise must still keep the watch going."""
    plan = result.plan
    found = {t.pid for t in plan.targets} | set(plan.followers)
    found |= {r.pid for r in plan.roles if r.kind in ("reloader", "supervisor")}
    named = {r.pid for r in plan.roles}
    mine = {os.getpid(), *evidence.ancestors(os.getpid())}
    for target in plan.targets:
        up = target.ppid  # the target itself is gone by now: start from its parent
        for parent in [up, *evidence.ancestors(up)] if up else ():
            if parent <= 1 or parent in mine:
                break
            try:
                proc = psutil.Process(parent)
                name, argv = proc.name(), tuple(proc.cmdline())
            except psutil.Error:
                break
            interactive = bool(argv) and argv[0].startswith("-")  # a login shell
            if (name in _STARTERS or interactive) and parent not in named:
                break
            found.add(parent)
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _started_after(h: Holder, result: KillResult) -> bool:
    """Started once the first signal was on its way: a restart, not a survivor."""
    return (
        result.signalled_at is not None
        and h.started is not None
        and h.started >= result.signalled_at - 0.05
    )


def _restarted_by(h: Holder) -> tuple[int, str] | None:
    if h.ppid is None or h.ppid <= 0:
        return None
    try:
        return h.ppid, psutil.Process(h.ppid).name()
    except psutil.Error:
        return h.ppid, "?"


def describe(verdict: Verdict, result: KillResult, by: tuple[int, str] | None = None) -> str:
    proto: Proto = result.plan.proto
    where = f"{proto} port {result.plan.port}"
    if verdict.free:
        return f"{where} is free"
    tw = verdict.time_wait
    if verdict.kind == "time_wait" and tw is not None:
        then = (
            "a server that sets SO_REUSEADDR can bind it now"
            if tw.reuseaddr_fixes
            else "until then bind() fails"
        )
        if not result.signals and not result.container_stopped:
            # Nothing was stopped: these are not the connections of anything killed here.
            noun = "socket" if tw.count == 1 else "sockets"
            return (
                f"{where} is held only by {tw.count:,} TIME_WAIT {noun}, which belong to no "
                f"process; it frees itself in {text.seconds(tw.expires_in)}; {then}"
            )
        wait = f"TIME_WAIT for {text.seconds(tw.expires_in)} more"
        noun = "connection" if tw.count == 1 else "connections"
        whose = "of the killed server" if result.signals else "of the stopped container"
        why = f"{tw.count:,} closed {noun} {whose}"
        return f"{where} is held by {wait} ({why}); {then}"
    if verdict.holders:
        who = "; ".join(_role(h, result, by) for h in verdict.holders)
        return f"{where} is held by {who}"
    if verdict.kind == "kernel_held":
        return f"{where} is free of processes: {verdict.sentence}"
    if verdict.kind == "owner_hidden":
        if os.geteuid() == 0:
            return (
                f"{where} is held by a socket no process here holds (another network "
                "namespace, or the kernel)"
            )
        return f"{where} is held by a process portscope cannot see; run it with sudo"
    return verdict.sentence or f"{where}: {verdict.kind}"


def _role(h: Holder, result: KillResult, by: tuple[int, str] | None) -> str:
    plan = result.plan
    label = f"PID {h.pid} ({shown(h.name)})"
    targets = {t.pid: t for t in plan.targets}
    again = f"portscope kill {plan.port}" + (" --udp" if plan.proto == "udp" else "")
    if h.pid in targets:
        return f"{label}, still running"
    if h.pid in plan.followers:
        masters = [t for t in plan.targets if _alive(t.pid)]
        if masters:
            return (
                f"{label}, a worker its master (PID {masters[0].pid}) is still stopping: "
                "it finishes the requests in flight first (graceful shutdown)"
            )
        return f"{label}, a worker that survived its master: {again} stops it"
    if _started_after(h, result):
        who = f" (PID {by[0]}, {shown(by[1])})" if by else ""
        return (
            f"{label}, started again after the kill: a supervisor restarted the server{who}; "
            "stop the supervisor first"
        )
    if h.ppid in targets:
        return f"{label}, a child of PID {h.ppid}, which is still running"
    stop = plan.stop
    if stop is not None and plan.how in ("service", "setting"):
        # kill refuses these plans: the command is what stops it, not another kill.
        how = f"run: {stop.command}" if stop.command else "stop it through its manager"
        return f"{label}, which kill does not signal for this plan ({how})"
    return f"{label}, which was already running before the kill ({again} stops it)"
