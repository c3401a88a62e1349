"""What holds the port once the kill is over, in the words a person needs: free, TIME_WAIT
for N more seconds, or which process holds it now and why (a survivor, a restart)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import text
from ..diagnose.probe import diagnose
from ..diagnose.verdict import Verdict
from ..model import Holder, Proto, Snapshot
from ..untrusted import shown
from .plan import After, KillResult

Diagnose = Callable[..., Verdict]
# Long enough to see a supervisor bring the server back (systemd restarts after 100 ms),
# short enough that a kill still feels instant.
SETTLE = 0.5


def settle_after(
    result: KillResult,
    *,
    collect: Callable[[], Snapshot] | None = None,
    check: Diagnose = diagnose,
    settle: float = SETTLE,
    step: float = 0.1,
) -> After:
    """Check the port until someone holds it again or `settle` seconds passed."""
    if collect is None:
        from ..collect import default_collector

        collect = default_collector().collect
    plan = result.plan
    deadline = time.monotonic() + settle
    while True:
        verdict = check(plan.port, proto=plan.proto, snapshot=collect())
        if verdict.holders or time.monotonic() >= deadline:
            break
        time.sleep(step)
    return After(
        summary=describe(verdict, result),
        free=verdict.free,
        holders=tuple(h.pid for h in verdict.holders),
        verdict=verdict,
    )


def describe(verdict: Verdict, result: KillResult) -> str:
    proto: Proto = result.plan.proto
    where = f"{proto} port {result.plan.port}"
    if verdict.free:
        return f"{where} is free"
    tw = verdict.time_wait
    if verdict.kind == "time_wait" and tw is not None:
        wait = f"TIME_WAIT for {text.seconds(tw.expires_in)} more"
        noun = "connection" if tw.count == 1 else "connections"
        why = f"{tw.count:,} closed {noun} of the killed server"
        then = (
            "a server that sets SO_REUSEADDR can bind it now"
            if tw.reuseaddr_fixes
            else "until then bind() fails"
        )
        return f"{where} is held by {wait} ({why}); {then}"
    if verdict.holders:
        who = "; ".join(_role(h, result) for h in verdict.holders)
        return f"{where} is held by {who}"
    if verdict.kind == "owner_hidden":
        return f"{where} is held by a process portscope cannot see; run it with sudo"
    return verdict.sentence or f"{where}: {verdict.kind}"


def _role(h: Holder, result: KillResult) -> str:
    plan = result.plan
    label = f"PID {h.pid} ({shown(h.name)})"
    targets = {t.pid: t for t in plan.targets}
    if h.pid in targets:
        return f"{label}, still running"
    if h.pid in plan.followers:
        return f"{label}, a worker that survived its master"
    if h.ppid in targets:
        return f"{label}, a new child of PID {h.ppid}, which is still running"
    same = [t for t in plan.targets if t.cmdline and t.cmdline == h.cmdline]
    if same:
        return f"{label}, started again after the kill: a supervisor restarted the server"
    return f"{label}, another process"
