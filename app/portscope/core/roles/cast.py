"""Give every process around a port's socket its role, and derive the one stop plan.

Order of questions, most specific first: is the port the OS's or a service manager's (then
a kill is the wrong tool), is a container publishing it (stop the container, not its
proxy), and otherwise which process is the topmost controller: the master of its workers,
the reloader or shell loop that would restart the server, or the server itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..model import Holder, Proto
from ..record import replace
from . import evidence, restarters, service_managers
from . import signatures as sig
from .containers import Bound, ContainerLookup, ContainerStep, docker_lookup
from .evidence import Fact
from .model import Cast, Role, RoleKind, StopPlan
from .procs import LiveProcesses, ProcessView, ProcInfo
from .services import platform_plan, unit_plan


def cast_roles(
    holders: Iterable[Holder],
    port: int,
    proto: Proto,
    view: ProcessView,
    *,
    is_root: bool = False,
    connections: bool = False,
    containers: ContainerLookup = docker_lookup,
    served: Iterable[Holder] = (),
    bound: Bound | None = None,
) -> Cast:
    """`holders`: every process holding the port's listening socket(s) or, with
    `connections`, its live connections (no listener left). `served`: other processes
    holding connections accepted on the port. `bound`: the (address, port) of the listeners
    each holder holds (a docker-proxy counts only for the socket it really holds)."""
    infos = {h.pid: _info(h, view) for h in holders}
    if not infos:
        return Cast((), _hidden(port, proto, is_root))
    roles: dict[int, Role] = {}
    # A process manager before the systemd unit it may run in: pm2 in pm2-root.service is
    # stopped app by app, not by stopping every app with the unit.
    docker = ContainerStep(containers, bound, view)
    plans = (platform_plan, docker, service_managers.service_plan, unit_plan)
    for plan_for in plans:
        found = plan_for(infos, port, proto, view, roles)
        if found is not None:
            _fill_holders(infos, roles, view, port)
            return Cast(_ordered(roles), docker.explained(found))
        if docker.unconfirmed:  # only the holders: no unit or manager on a claim's word
            break
    infos = docker.left(infos)  # never Docker's own confirmed proxies (containers.py)
    _fill_holders(infos, roles, view, port)
    if connections:
        plan = _connection_plan(infos, roles, port, proto, view)
    else:
        plan = _signal_plan(infos, roles, port, proto, view)
        plan = _with_connection_children(plan, infos, roles, served, view, port, proto)
    # After the plan: it names controllers too.
    return Cast(_ordered(roles), docker.explained(plan))


def holder_kinds(holders: Iterable[Holder]) -> dict[int, RoleKind]:
    """Master, worker, inherited or server from the holders alone (no process reads): what
    `list` and the table can afford for every socket on every poll."""
    view = _HoldersOnly()
    infos = {h.pid: _info(h, view) for h in holders}
    roles: dict[int, Role] = {}
    _fill_holders(infos, roles, view, 0)
    return {pid: role.kind for pid, role in roles.items()}


def holders_only() -> ProcessView:
    """A view that knows only what the snapshot says about its holders (frozen data)."""
    return _HoldersOnly()


class _HoldersOnly:
    platform = "recorded"

    def get(self, pid: int) -> ProcInfo | None:
        return None

    def children(self, pid: int) -> tuple[int, ...]:
        return ()

    def environ(self, pid: int, key: str) -> str | None:
        return None



def _info(h: Holder, view: ProcessView) -> ProcInfo:
    found = view.get(h.pid)
    if found is not None:
        return found
    return ProcInfo(h.pid, h.ppid, h.name, h.cmdline, h.started, cwd=h.cwd, user=h.user)


def _fill_holders(
    infos: dict[int, ProcInfo], roles: dict[int, Role], view: ProcessView, port: int
) -> None:
    """Master, worker, inherited or server for every holder not named yet."""
    children: dict[int, list[ProcInfo]] = {}
    for c in infos.values():  # one pass: a master with 300 workers is asked on every poll
        if c.ppid is not None:
            children.setdefault(c.ppid, []).append(c)
    named: dict[int, str] = {}  # a parent's server_name, once for its 2,000 workers
    for pid, p in infos.items():
        if pid in roles:
            continue
        parent = infos.get(p.ppid) if p.ppid is not None else None
        kids = children.get(pid, [])
        if parent is not None:
            if _same_server(parent, p):  # "uvicorn", not "python3 -c from multiprocessing"
                name = named.get(parent.pid)
                if name is None:
                    name = named[parent.pid] = sig.server_name(parent)
                roles[pid] = Role(pid, "worker", name, True, p.ppid, p.started)
            else:
                roles[pid] = _role(p, "inherited", True)
        elif kids and any(_same_server(p, k) for k in kids):
            kind: RoleKind = "reloader" if sig.reloader(p, kids[0], view) else "master"
            roles[pid] = _role(p, kind, True, _note(p, kind, kids, view))
        elif _orphan_inheritor(p, view, port):
            roles[pid] = _role(p, "inherited", True)
        elif sig.tunnel(p):  # ssh -L, kubectl port-forward: it listens for the far end
            roles[pid] = _role(p, "proxy", True, sig.tunnel(p) or "")
        else:
            roles[pid] = _role(p, "server", True)


def _same_server(parent: ProcInfo, child: ProcInfo) -> bool:
    """A child that runs the server's own code: a fork (same argv), or a worker spawned by
    multiprocessing or retitled ("nginx: worker process")."""
    return child.argv == parent.argv or sig.is_worker_argv(child) or (
        bool(parent.exe) and parent.exe == child.exe and child.name == parent.name
        and not child.argv
    )


def _orphan_inheritor(p: ProcInfo, view: ProcessView, port: int) -> bool:
    """A holder whose server is gone: it was reparented to init (its parent died), its
    process group's leader exited, and its command line is not a server's (a worker's, or
    one that does not even name the port). A process whose parent still runs (a test
    runner under a CI shell, say) opened what it holds, whatever its group."""
    if sig.is_worker_argv(p):
        return True
    if p.ppid != 1:
        return False
    getpgid = getattr(os, "getpgid", None)
    if getpgid is None or not isinstance(view, LiveProcesses):  # recorded trees: no groups
        return False
    try:
        pgid = int(getpgid(p.pid))
    except OSError:
        return False
    if pgid == p.pid or view.get(pgid) is not None:
        return False
    return str(port) not in " ".join(p.argv)


def _role(p: ProcInfo, kind: RoleKind, holds: bool, note: str = "") -> Role:
    return Role(p.pid, kind, sig.server_name(p), holds, p.ppid, p.started, note)


def _note(p: ProcInfo, kind: RoleKind, kids: list[ProcInfo], view: ProcessView) -> str:
    if kind == "reloader":
        return "reloader"
    return f"{len(kids)} worker{'s' if len(kids) != 1 else ''}"


def _signal_plan(
    infos: dict[int, ProcInfo],
    roles: dict[int, Role],
    port: int,
    proto: Proto,
    view: ProcessView,
) -> StopPlan:
    """The topmost controller of every server: whom `kill` signals, in order."""
    targets: list[int] = []
    whys: list[str] = []
    facts: list[Fact] = []  # why a parent that holds nothing may be signalled
    controls: list[restarters.Control] = []
    tops = [p for p in infos.values() if p.ppid not in infos]
    for top in sorted(tops, key=lambda p: p.pid):
        kids = [c for c in infos.values() if c.ppid == top.pid]
        child_reloaded = kids and sig.reloader(top, kids[0], view) == "exit_code_3"
        if child_reloaded:
            # Werkzeug: the reloader opened the socket and passed it to its child; SIGTERM
            # to the child makes the reloader exit too (it restarts only on exit code 3).
            child = kids[0]
            roles[top.pid] = _role(top, "reloader", True, "restarts its child only on exit 3")
            roles[child.pid] = _role(child, "server", True)
            targets.append(child.pid)
            whys.append(
                f"{sig.server_name(top)} runs its server in a child; stopping the child "
                "stops the reloader too"
            )
            continue
        # A watcher, a Procfile manager or a master holding no socket, found by kernel
        # facts anywhere up the parent chain (managers.py, restarters.py).
        control = restarters.controller(top, infos, roles, view)
        if control is not None:
            controls.append(control)
            targets += [p for p in control.pids if p not in targets]
            whys += [control.why] if control.why not in whys else []
            continue
        parent = view.get(top.ppid) if top.ppid else None
        kind = sig.reloader(parent, top, view) if parent is not None else None
        if parent is not None and kind == "any_exit":
            roles[parent.pid] = _role(parent, "reloader", False, "restarts the server")
            targets.append(parent.pid)
            facts += _parent_facts(parent.pid, top.pid, view)
            whys.append(
                f"{sig.server_name(parent)} (PID {parent.pid}) reloads the server: stopping "
                "only the server would leave it to start a new one"
            )
        elif parent is not None and kind == "exit_code_3":
            roles[parent.pid] = _role(
                parent, "reloader", False, "restarts its child only on exit 3"
            )
            targets.append(top.pid)
            whys.append(
                f"the server runs under {sig.server_name(parent)}'s reloader (PID "
                f"{parent.pid}), which exits when its server is stopped"
            )
        elif parent is not None and sig.shell_loop(
            parent, top, live=isinstance(view, LiveProcesses)
        ):
            roles[parent.pid] = _role(parent, "supervisor", False, "shell loop")
            targets += [parent.pid, top.pid]
            facts += _parent_facts(parent.pid, top.pid, view)
            whys.append(
                f"a shell loop (PID {parent.pid}) restarts the server whenever it exits: "
                "stop the loop first, then the server"
            )
        else:
            targets.append(top.pid)
            role = roles.get(top.pid)
            if role is not None and role.kind == "master":
                whys.append(
                    f"PID {top.pid} is the master of {role.note}: they stop with it, and it "
                    "would respawn any worker stopped alone"
                )
            elif role is not None and role.kind == "proxy":
                whys.append(
                    f"PID {top.pid} is {role.note} that forwards this port elsewhere: "
                    "stopping it closes the tunnel"
                )
            elif role is not None and role.kind == "reloader":
                whys.append(
                    f"PID {top.pid} is {sig.server_name(top)}'s reloader and holds the socket "
                    "too: stopping its server child alone would not free the port"
                )
            else:
                whys.append(f"PID {top.pid} holds the socket and nothing restarts it")
    # A child that inherited the socket keeps it after its server stops: stop it as well.
    for pid, role in sorted(roles.items()):
        if role.kind == "inherited" and role.holds and pid not in targets:
            targets.append(pid)
            whys.append(f"PID {pid} inherited the socket and would keep the port busy")
    followers = tuple(sorted(p for p in infos if p not in targets))
    plan = StopPlan(
        how="signal",
        pids=tuple(targets),
        command=kill_command(targets, view),
        why="; ".join(whys),
        followers=followers,
        evidence=tuple(facts),
    )
    return restarters.with_controls(plan, controls, "kill")


def _parent_facts(parent: int, child: int, view: ProcessView) -> list[Fact]:
    """The kernel facts a non-holder target rests on: it is the holder's parent in the
    kernel's chain, and the binary and user it runs as (a recorded tree has none)."""
    if not isinstance(view, LiveProcesses):
        return []
    k = evidence.kernel(parent)
    if k is None or k.pid != parent or evidence.ppid(child) != parent:
        return []
    return [Fact(child, "ancestor", str(parent)), k.exe_fact(), k.euid_fact()]


def _with_connection_children(
    plan: StopPlan,
    infos: dict[int, ProcInfo],
    roles: dict[int, Role],
    served: Iterable[Holder],
    view: ProcessView,
    port: int,
    proto: Proto,
) -> StopPlan:
    """A listener's per-connection children (socat fork, inetd) hold connections on the
    port and outlive it: after the listener, stop them too, or bind() still fails."""
    children = []
    for h in served:
        p = _info(h, view)
        parent = infos.get(p.ppid) if p.ppid is not None else None
        if parent is None and not any(q.argv == p.argv for q in infos.values() if p.argv):
            continue  # not the listener's: someone else's connection, not ours to stop
        roles[p.pid] = _role(p, "connection", False, "serves one connection")
        children.append(p.pid)
    if not children:
        return plan
    pids = (*plan.pids, *sorted(children))
    n = len(children)
    return replace(  # keeps the plan's evidence, watch and signal
        plan, pids=pids, command=kill_command(pids, view),
        why=f"{plan.why}; then its {n} connection child{'ren' if n != 1 else ''}, which keep "
        "accepted connections (and so the port) open",
    )


def _connection_plan(
    infos: dict[int, ProcInfo], roles: dict[int, Role], port: int, proto: Proto,
    view: ProcessView,
) -> StopPlan:
    for pid in infos:
        role = roles[pid]
        roles[pid] = Role(pid, "connection", role.name, True, role.ppid, role.started, role.note)
    pids = tuple(sorted(infos))
    return StopPlan(
        how="signal",
        pids=pids,
        command=kill_command(pids, view),
        why="nobody listens any more, but these processes keep connections accepted on the "
        "port open",
    )


def kill_command(pids: Iterable[int], view: ProcessView) -> str:
    """What a person types on this platform: `kill 4180`, `taskkill /PID 4180`."""
    if view.platform == "win32":
        return "taskkill " + " ".join(f"/PID {p}" for p in pids)
    return "kill " + " ".join(str(p) for p in pids)


def _hidden(port: int, proto: Proto, is_root: bool) -> StopPlan:
    udp = " --udp" if proto == "udp" else ""
    if is_root:
        return StopPlan(
            "none", (), None,
            "no visible process holds the socket: another network namespace (a container) "
            "or the kernel",
        )
    return StopPlan(
        "none", (), f"sudo portscope kill{udp} {port}",
        "the socket belongs to another user's process: only root can see and stop it",
    )


def _ordered(roles: dict[int, Role]) -> tuple[Role, ...]:
    return tuple(roles[p] for p in sorted(roles))
