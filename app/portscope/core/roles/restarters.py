"""Restarters and controllers above (or around) a holder that are signalled, found by
managers.py's chain walk on kernel facts:

- watchers (entr, watchexec, nodemon, watchfiles) start the server again on the next file
  change: signal the watcher, then the server;
- Procfile managers (honcho, foreman, overmind) stop every sibling when one process exits:
  the plan stops the manager, knowingly, and says which siblings go with it;
- a parent that runs the very binary and argv of its worker holders but holds no socket
  itself (granian's main process, haproxy -W's master) is their master: signal it;
- php -S's workers keep listening when the master alone stops: signal all of them; uwsgi
  takes SIGTERM as "reload": SIGINT stops it.

A manager that is only claimed (its binary or user not backed by the kernel, or no kernel
facts at all) changes the words of the plan, never its targets.
"""

from __future__ import annotations

from ..record import record, replace
from ..untrusted import fit, shown_argv
from . import signatures as sig
from .evidence import Fact, Kernel
from .managers import (
    PROCFILE_NOTE,
    RESTART_DELAY,
    SERVICE,
    WATCHER,
    WATCHER_NOTE,
    KernelFacts,
    Manager,
    binary_agrees,
    chain_manager,
    facts_of,
    manager_facts,
    master_above,
    may_control,
    option,
    recognise,
)
from .model import Role, StopPlan
from .procs import ProcessView, ProcInfo

_SIBLINGS_SHOWN = 4


@record
class Control:
    """What a controller above one holder adds to a signal plan."""

    pids: tuple[int, ...]  # targets, in order
    why: str
    evidence: tuple[Fact, ...] = ()
    watch: float | None = None
    signal: str | None = None  # the signal that stops it when SIGTERM does not ("INT")


def controller(
    top: ProcInfo, infos: dict[int, ProcInfo], roles: dict[int, Role], view: ProcessView
) -> Control | None:
    """Who to signal for the topmost holder `top` when something above (or around) it
    controls it; None: nothing recognised (the caller's own rules apply)."""
    special = _server_rules(top, infos, roles)
    if special is not None:
        return special
    facts = facts_of(view)
    if facts is None:
        return _claimed(top, view)
    k_top = facts.kernel(top.pid)
    master = master_above(top, infos, view, facts)
    start = master or top.pid
    m = chain_manager(start, view, facts)
    found = _managed(m, top, start, k_top, view, facts, roles) if m is not None else None
    if master is None:
        return found
    ruled = _master(master, infos, roles, view, facts)
    if found is None:
        return ruled
    # A manager above the master: its plan, resting on the master's facts too.
    watches = [w for w in (found.watch, ruled.watch) if w is not None]
    return replace(found, evidence=(*ruled.evidence, *found.evidence),
                   watch=max(watches) if watches else None)


def _managed(
    m: Manager, top: ProcInfo, start: int, k_top: Kernel | None, view: ProcessView,
    facts: KernelFacts, roles: dict[int, Role],
) -> Control:
    """What the manager `m` found above `start` means for the plan."""
    agrees = m.kernel is not None and binary_agrees(m.kind, m.kernel)
    if m.kind in SERVICE:  # not confirmed by service_plan: stop the holders, say so
        return Control(
            (start,),
            f"{m.kind} (PID {m.pid}) looks like it runs this server, but portscope could not "
            "confirm it (its binary, user or own status); stopping only the server, which "
            f"{m.kind} may start again",
            watch=RESTART_DELAY.get(m.kind, 1.0) + 1.0,
        )
    if m.kernel is None or m.kernel.exe is None:
        return Control(
            (start,),
            f"PID {m.pid} looks like {m.kind}, but portscope may not read its binary (run it "
            f"as root to confirm): stopping only the server, which {m.kind} may start again",
        )
    if not agrees or not may_control(m.kernel, k_top, same_user=True):
        return Control(
            (start,),
            f"PID {m.pid} claims to be {m.kind}, but the kernel does not back it (its binary or "
            "user): stopping only the server",
        )
    if m.kind in WATCHER:
        roles[m.pid] = Role(m.pid, "reloader", m.kind, False, m.info.ppid, m.info.started,
                            WATCHER_NOTE)
        return Control(
            (m.pid, start),
            f"{m.kind} (PID {m.pid}) runs the server and starts it again on the next file "
            "change: stop the watcher, then the server",
            tuple(manager_facts(m, top.pid)),
            watch=RESTART_DELAY[m.kind] + 1.0,
        )
    return _procfile(m, top, view, facts, roles)


def _procfile(
    m: Manager, top: ProcInfo, view: ProcessView, facts: KernelFacts, roles: dict[int, Role]
) -> Control:
    """honcho/foreman fork a child per Procfile line: the manager is the topmost process of
    the same binary and argv; its other children are the siblings that stop with it."""
    line = m.below[-1] if m.below else top.pid  # the child that runs this Procfile line
    pid, info = m.pid, m.info
    k: Kernel | None = m.kernel
    while info.ppid and k is not None:
        up, k_up = view.get(info.ppid), facts.kernel(info.ppid)
        if up is None or k_up is None or up.argv != info.argv or k_up.exe != k.exe \
                or k_up.euid != k.euid:
            break
        line, pid, info, k = pid, up.pid, up, k_up
    manager = Manager(m.kind, pid, info, k, m.below)
    siblings = [c for c in view.children(pid) if c != line]
    roles[pid] = Role(pid, "supervisor", m.kind, False, info.ppid, info.started,
                      PROCFILE_NOTE)
    names = [fit(shown_argv(_leaf(c, view)), 40) for c in siblings[:_SIBLINGS_SHOWN]]
    more = len(siblings) - len(names)
    listed = "; ".join(names) + (f"; +{more} more" if more > 0 else "")
    n = len(siblings)
    others = (
        f"it stops its {n} other process{'es' if n != 1 else ''} too ({listed})" if n
        else "it runs nothing else"
    )
    return Control(
        (pid,),
        f"{m.kind} (PID {pid}) runs this server as one process of a Procfile and stops all "
        f"of them when any one exits, so stopping the server stops the rest anyway: stop "
        f"{m.kind} itself; {others}",
        tuple(manager_facts(manager, top.pid)),
    )


def _leaf(pid: int, view: ProcessView) -> tuple[str, ...]:
    """The command a Procfile child runs: down through its single children (honcho's fork,
    `sh -c`) to the program."""
    argv: tuple[str, ...] = ()
    for _ in range(4):
        p = view.get(pid)
        if p is None:
            break
        argv = p.argv or (p.name,)
        kids = view.children(pid)
        if len(kids) != 1:
            break
        pid = kids[0]
    return argv


def _master(
    master: int, infos: dict[int, ProcInfo], roles: dict[int, Role], view: ProcessView,
    facts: KernelFacts,
) -> Control:
    """The master (managers.master_above) of the holders that are its children."""
    p = view.get(master)
    assert p is not None
    k = facts.kernel(master)
    workers = sorted(c.pid for c in infos.values() if c.ppid == master)
    name = sig.server_name(p)
    roles[master] = Role(master, "master", name, False, p.ppid, p.started,
                         f"{len(workers)} worker{'s' if len(workers) != 1 else ''}")
    for w in workers:
        info = infos[w]
        roles[w] = Role(w, "worker", name, True, info.ppid, info.started)
    evidence = [k.exe_fact(), k.euid_fact()] if k else []
    evidence.append(Fact(master, "ancestor", f"of PID {', '.join(map(str, workers))}"))
    watch = None
    if "--respawn-failed-workers" in p.argv:  # granian's default interval is 3.5 s
        interval = option(list(p.argv), "--respawn-interval", "--respawn-interval")
        try:
            watch = float(interval or 3.5) + 1.0
        except ValueError:
            watch = 4.5
    return Control(
        (master,),
        f"PID {master} is the master of its workers: it holds no socket itself, runs the "
        "same program, and would respawn a worker stopped alone; they stop with it",
        tuple(evidence),
        watch=watch,
    )


def _server_rules(
    top: ProcInfo, infos: dict[int, ProcInfo], roles: dict[int, Role]
) -> Control | None:
    """Masters that holding-the-socket alone does not stop the right way."""
    role = roles.get(top.pid)
    if role is None or role.kind != "master":
        return None
    workers = tuple(sorted(c.pid for c in infos.values() if c.ppid == top.pid))
    program = sig.base(top.exe or (top.argv[0] if top.argv else top.name))
    if program.startswith("php") and "-S" in top.argv:
        return Control(
            (top.pid, *workers),
            f"php -S (PID {top.pid}) and its {len(workers)} workers all hold the socket, and "
            "the workers keep listening when the master alone stops: stop all of them",
        )
    if program.startswith("uwsgi"):
        return Control(
            (top.pid,),
            f"uwsgi's master (PID {top.pid}) takes SIGTERM as \"reload\" (unless "
            "--die-on-term): SIGINT stops it and its workers",
            signal="INT",
        )
    return None


def _claimed(top: ProcInfo, view: ProcessView) -> Control | None:
    """No kernel facts (a recording without them, another platform): a manager named only
    by its argv changes the words, never the targets."""
    parent = view.get(top.ppid) if top.ppid else None
    kind = recognise(parent) if parent is not None else None
    if parent is None or kind is None:
        return None
    return Control(
        (top.pid,),
        f"PID {parent.pid} looks like {kind}, which may start the server again, but "
        "portscope cannot confirm it here: stopping only the server",
    )


def with_controls(plan: StopPlan, controls: list[Control], kill: str) -> StopPlan:
    """`plan` with the controllers' evidence, watch and signal (`kill -INT ...`)."""
    if not controls:
        return plan
    evidence = tuple(dict.fromkeys(f for c in controls for f in c.evidence))  # workers: once
    watches = [c.watch for c in controls if c.watch is not None]
    signal = next((c.signal for c in controls if c.signal), None)
    command = plan.command
    if signal and command and command.startswith(kill + " "):
        command = f"{kill} -{signal} {command[len(kill) + 1 :]}"
    changes: dict[str, object] = {
        "evidence": (*plan.evidence, *evidence),
        "watch": max(watches) if watches else plan.watch,
        "command": command,
    }
    if signal:
        changes["signal"] = signal
    return replace(plan, **changes)
