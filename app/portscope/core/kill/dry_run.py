"""`kill --dry-run` (and the MCP kill's first call): what a kill would do, in words and as
the kill JSON contract, with nothing sent.

A dry run answers as the real kill would start: 0 (`would_act`) when every holder would be
acted on, or nothing needs stopping; 1 when a holder would be refused or the plan is a
command for a person to run (a service, a setting), exactly the plans after which `kill`
cannot exit 0.
"""

from __future__ import annotations

from ..diagnose.probe import diagnose
from ..model import Snapshot
from ..untrusted import shown
from .plan import SIGNALS, After, KillPlan, KillResult
from .session import DEFAULT_TIMEOUT


def would_signal(plan: KillPlan, signame: str) -> str:
    """The signal the targets would get first: the plan's own in place of the default TERM
    (uwsgi stops on SIGINT), as KillSession.send chooses it."""
    named = plan.stop.signal if plan.stop is not None else None
    return named if signame == "TERM" and named is not None and named in SIGNALS else signame


def would_act(plan: KillPlan) -> bool:
    """Would `kill` act on every holder: nothing refused, and a plan it carries out."""
    if plan.refused:
        return False
    if plan.how == "docker":
        return plan.stop is not None and plan.stop.container is not None
    return plan.how in ("signal", "none")


def would_do(plan: KillPlan, signame: str, timeout: float | None, force: bool) -> list[str]:
    """What the kill would send or stop, one line each (escaped)."""
    stop = plan.stop
    if plan.how == "docker" and stop is not None and stop.container is not None:
        c = stop.container
        wait = "its own stop timeout" if timeout is None else f"{timeout:g} s"
        return [
            f"would stop Docker container {shown(c.name)} ({shown(c.image)}) through the "
            f"Docker API, waiting {wait} before Docker kills it"
        ]
    if plan.how in ("service", "setting"):
        return ["would signal nothing: this port is stopped by a command for you to run"]
    if not plan.targets:
        return []
    sig = would_signal(plan, signame)
    pids = ", ".join(f"PID {t.pid} ({shown(t.name)})" for t in plan.targets)
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    then = "; SIGKILL to any still running then (--force)" if force and sig != "KILL" else ""
    who = "it" if len(plan.targets) == 1 else "them"
    return [f"would send SIG{sig} to {pids}, then wait up to {limit:g} s for {who} to "
            f"exit{then}"]


def dry_result(plan: KillPlan, signame: str) -> KillResult:
    """A KillResult of nothing done, for the JSON contract: "targets" carry the signal each
    would get, "exited" and "still_running" are empty, "refused" is the plan's."""
    sig = would_signal(plan, signame)
    return KillResult(plan, {t.pid: sig for t in plan.targets}, (), (), plan.refused)


def now(plan: KillPlan, snapshot: Snapshot) -> After:
    """The port as it is (nothing was sent): the check verdict on the addresses asked."""
    hosts = plan.hosts or ("0.0.0.0",)
    verdicts = [
        diagnose(plan.port, address, plan.proto, snapshot=snapshot, suggest=False)
        for address in hosts
    ]
    held = [v for v in verdicts if v.holders] or [v for v in verdicts if not v.free]
    verdict = (held or verdicts)[0]
    return After(
        summary=f"dry run, nothing was sent: {verdict.sentence}",
        free=verdict.free,
        holders=tuple(h.pid for h in verdict.holders),
        verdict=verdict,
    )
