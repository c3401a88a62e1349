"""`kill --pid PID`: the plan for one process named by its PID rather than found through a
port, with the same safety as a port's plan.

Exactly that process is the target (a worker named by PID is not traded for its master:
the person said which process); it is refused for the same rules (portscope's session,
PID 1, kernel threads, sshd, system daemons, a root process on another user's socket),
its start time is captured now so a reused PID is never signalled, every signal goes to
the audit log, and the proof afterwards is about the ports it held: each one is checked
once the process is gone.
"""

from __future__ import annotations

import psutil

from ..model import Proto, Snapshot
from ..record import replace
from ..roles import commands, evidence
from ..roles.model import StopPlan
from ..untrusted import shown
from .plan import KillPlan, Refusal, Target
from .refusals import (
    fixed_refusal,
    permission_denied,
    process_refusal,
    protected_pids,
    step_up_refusal,
    system_refusal,
)
from .targets import describe_target


class NoSuchTarget(LookupError):
    """The PID names no process, or one that holds no port; the message says which."""


def held_ports(snapshot: Snapshot, pid: int) -> list[tuple[int, Proto]]:
    """(port, proto) of every listening or bound socket `pid` holds, and of every server
    port it holds a live connection on (an accepted connection blocks a plain bind too)."""
    found: dict[tuple[int, Proto], None] = {}
    for s in snapshot.sockets:
        if any(h.pid == pid for h in s.holders):
            found[(s.port, s.proto)] = None
    for p in snapshot.ports:
        if not p.client_side and any(h.pid == pid for h in p.holders):
            found[(p.port, "tcp")] = None
    return sorted(found)


def plan_pid(pid: int, snapshot: Snapshot, *, allow_system: bool = False) -> list[KillPlan]:
    """One plan per port the process holds (the same target in each; `kill` signals it
    once and checks every port after). Raises NoSuchTarget."""
    try:
        proc = psutil.Process(pid)
        started = proc.create_time()  # the identity every later step verifies
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise NoSuchTarget(f"no process with PID {pid}") from None
    except psutil.AccessDenied:
        raise NoSuchTarget(permission_denied(pid, None)) from None
    held = held_ports(snapshot, pid)
    if not held:
        raise NoSuchTarget(
            f"PID {pid} ({shown(name)}) holds no port: `portscope kill --pid` stops a "
            "process that holds one and proves the port free afterwards; for any other "
            f"process use kill {pid}"
        )
    port, proto = held[0]
    k = evidence.kernel(pid)
    facts = (k.exe_fact(), k.euid_fact()) if k is not None else ()
    stop = StopPlan(
        "signal", (pid,), commands.command("kill", str(pid)),
        f"PID {pid} was named with --pid: only it is signalled", evidence=facts,
    )
    creators = [s.uid for s in snapshot.sockets if any(h.pid == pid for h in s.holders)]
    refused: tuple[Refusal, ...] = ()
    targets: tuple[Target, ...] = ()
    gone: tuple[int, ...] = ()
    try:
        ppid = proc.ppid()
        reason = (
            fixed_refusal(pid, protected_pids(), allow_system=allow_system)
            or process_refusal(pid, ppid, started, proc.create_time())
            or system_refusal(pid, allow_system=allow_system, kernel=k)
            or step_up_refusal(pid, creators, allow_system=allow_system, kernel=k)
        )
        target = None if reason else describe_target(proc, started, ppid, snapshot)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise NoSuchTarget(f"no process with PID {pid} (it has just exited)") from None
    except psutil.AccessDenied:
        reason, target = permission_denied(pid, None), None
    if reason:
        refused = (Refusal(pid, reason),)
    elif target is not None:
        targets = (target,)
    else:
        gone = (pid,)  # exited while it was described: nothing left to signal
    plan = KillPlan(port, proto, targets, refused, gone, stop=stop)
    return [plan, *(replace(plan, port=p, proto=pr) for p, pr in held[1:])]
