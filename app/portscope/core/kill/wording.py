"""A kill in words, shared by the CLI prompt and the TUI modal so both say the same thing."""

from __future__ import annotations

import os
from typing import Literal

from ..diagnose.advice import other_proto_line
from ..roles.evidence import Fact
from ..untrusted import shown
from .plan import After, KillPlan, KillResult, Target


def uptime(started: float, now: float) -> str:
    """Seconds since start as "3 d 4 h", "2 h 5 min", "7 min 3 s" or "12 s"."""
    left = max(0, int(now - started))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def children(target: Target, limit: int = 6) -> str:
    if not target.children:
        return "none"
    pids = [str(p) for p in target.children[:limit]]
    more = len(target.children) - limit
    listed = ", ".join(pids) + (f", +{more}" if more > 0 else "")
    return f"{len(target.children)} ({listed})"


def target_fields(target: Target, now: float) -> list[tuple[str, str]]:
    """(label, value) rows describing one target, in the order a person checks them."""
    user = shown(target.user) or "?"
    if target.euser and target.euser != target.user:
        user += f" (effective: {shown(target.euser)})"
    exe = [("exe", shown(target.exe))] if target.exe and not _named_by(target) else []
    return [
        ("PID", str(target.pid)),
        ("name", shown(target.name)),
        *exe,
        ("user", user),
        ("command", target.command),
        ("uptime", uptime(target.started, now)),
        ("children", children(target)),
        ("holds", ", ".join(target.ports) or "-"),
    ]


def _named_by(target: Target) -> bool:
    """Does the name already say which binary runs (python3.11 runs as python3)?"""
    base = os.path.basename(target.exe or "")
    name = target.name
    return bool(base) and (base == name or base.startswith(name) or name.startswith(base))


def plan_note(plan: KillPlan) -> str:
    """Why some holders are not on the list: they are workers their master stops."""
    if not plan.followers:
        return ""
    n = len(plan.followers)
    noun = "process shares" if n == 1 else "processes share"
    return (
        f"{n} more {noun} the socket as children of a target (pre-fork workers); "
        "their master stops them"
    )


def plan_why(plan: KillPlan) -> str:
    """Why these targets (or this command): the stop plan's one line."""
    return f"Plan: {plan.stop.why}." if plan.stop is not None and plan.stop.why else ""


NoteKind = Literal["why", "command", "evidence", "gone", "note", "refused"]


def plan_notes(plan: KillPlan) -> list[tuple[NoteKind, str]]:
    """What the confirmation says under the targets, in order, each line tagged so a surface
    can style it: the plan's reason, the command a service or container plan stands for,
    targets already gone, followers, refusals. The CLI prompt and the `k` dialog both print
    exactly these (escape them: they name processes)."""
    lines: list[tuple[NoteKind, str]] = []
    why = plan_why(plan)
    if why:
        lines.append(("why", why))
    if plan.stop is not None and plan.how != "signal" and plan.stop.command:
        lead = "same as" if plan.how == "docker" else "run"
        lines.append(("command", f"{lead}: {plan.stop.command}"))
    if plan.stop is not None:  # the kernel facts it rests on: who really holds the port
        lines += [("evidence", f"checked: {fact_line(f)}") for f in plan.stop.evidence]
    lines += [("gone", f"PID {pid} has already exited") for pid in plan.gone]
    note = plan_note(plan)
    if note:
        lines.append(("note", note))
    lines += [("refused", f"not signalled: {r.reason}") for r in plan.refused]
    return lines


def fact_line(fact: Fact) -> str:
    """"PID 812 exe /usr/bin/docker-proxy (owner root)": one fact, as the prompt shows it."""
    who = f"PID {fact.pid} " if fact.pid is not None else ""
    owner = f" (owner {fact.owner})" if fact.owner else ""
    return f"{who}{fact.fact.replace('_', ' ')} {fact.value}{owner}"


def question(plan: KillPlan, signame: str) -> str:
    """What y confirms, in the words of the plan."""
    if plan.how == "docker" and plan.stop is not None and plan.stop.container is not None:
        c = plan.stop.container
        return f"Stop Docker container {shown(c.name)} ({shown(c.image)})?"
    pids = ", ".join(str(t.pid) for t in plan.targets)
    named = plan.stop.signal if plan.stop is not None else None
    if signame == "TERM" and named:  # the plan's own signal replaces the default
        signame = named
    return f"Send SIG{signame} to PID {pids}?"


def needs_confirmation(plan: KillPlan) -> bool:
    return bool(plan.targets) or (
        plan.how == "docker" and plan.stop is not None and plan.stop.container is not None
    )


def outcome_lines(result: KillResult) -> list[str]:
    """Who exited, who did not, who was refused: one line each."""
    names = {t.pid: shown(t.name) for t in result.plan.targets}
    lines = []
    stop = result.plan.stop
    if result.container_stopped and stop is not None and stop.container is not None:
        lines.append(
            f"stopped Docker container {shown(stop.container.name)} through the Docker API"
        )
    if stop is not None and result.plan.how in ("service", "setting") and stop.command:
        lines.append(f"not signalled: {stop.why}")
        lines.append(f"run: {stop.command}")
    for pid in result.exited:
        label = _label(pid, names)
        if pid in result.already_exited:
            lines.append(f"{label} had already exited")
        elif pid in result.signals:
            lines.append(f"{label} exited after SIG{result.signals[pid]}")
        else:
            lines.append(f"{label} exited with its master")
    for pid in result.still_running:
        label = _label(pid, names)
        sent = result.signals.get(pid)
        lines.append(f"{label} is still running" + (f" after SIG{sent}" if sent else ""))
    for refusal in result.refused:
        lines.append(f"not signalled: {refusal.reason}")
    return lines


def _label(pid: int, names: dict[int, str]) -> str:
    return f"PID {pid} ({names[pid]})" if pid in names else f"PID {pid}"


def nothing_to_stop(plan: KillPlan, after: After) -> list[str]:
    """What a kill with nothing to stop says: that, and where the port number is held in the
    other protocol (`kill 5353` on a port only UDP binds: `--udp` stops it)."""
    where = f"{plan.proto} port {plan.port}"
    lines = [f"nothing holds {where}" if after.free else f"nothing to stop on {where}"]
    v = after.verdict
    if v is not None and v.other_proto:
        lines.append(other_proto_line(plan.port, plan.proto, v.other_proto))
    return lines
