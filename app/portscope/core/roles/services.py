"""Ports held for a service manager or by the OS itself: the fix is a command or a
setting, not a signal (a killed unit is restarted; a killed OS process comes back).

Tested with recorded /proc trees and command outputs (tests/recorded/), since systemd as
PID 1, macOS and Windows cannot run here.
"""

from __future__ import annotations

from ..model import Proto
from ..untrusted import shown
from . import signatures as sig
from .model import Role, StopPlan
from .procs import ProcessView, ProcInfo

AIRPLAY_PORTS = frozenset({5000, 7000})


def systemd_unit(cgroup: str | None) -> tuple[str, bool] | None:
    """(unit, is a user unit) for a process in a systemd service's cgroup; None for scopes
    (a terminal's, a login session's) and for no systemd."""
    if not cgroup:
        return None
    parts = [p for p in cgroup.split("/") if p]
    # The innermost service: a Quadlet's processes sit in "redis.service/runtime".
    for unit in reversed(parts):
        if unit.startswith("user@"):
            return None  # the user's own manager: what runs below it is a scope or app
        if unit.endswith(".service"):
            return unit, any(p.startswith("user@") for p in parts)
        if unit.endswith(".scope"):
            return None  # a terminal, a login session, a podman run: not a service
    return None


def unit_plan(
    infos: dict[int, ProcInfo], port: int, proto: Proto, view: ProcessView,
    roles: dict[int, Role],
) -> StopPlan | None:
    if 1 in infos and infos[1].name in ("systemd", "init"):
        sockets = socket_units(view, port)
        services = _service_units(infos)
        # Without `systemctl list-sockets`, the activated service names its socket unit:
        # ssh.service is started by ssh.socket unless the unit says otherwise.
        inferred = [s.removesuffix(".service") + ".socket" for s in services]
        unit = sockets[0] if sockets else (inferred[0] if inferred else None)
        roles[1] = Role(1, "service", "systemd", True, 0, infos[1].started,
                        f"socket activation ({unit})" if unit else "socket activation")
        units = [u for u in (unit, *services) if u]
        command = f"sudo systemctl stop {' '.join(units)}" if unit else "systemctl list-sockets"
        return StopPlan(
            "service", (), command,
            "systemd holds this socket itself (socket activation) and starts the service on "
            "the next connection: stop the .socket unit, not a process",
            unit=unit,
        )
    for p in infos.values():
        found = systemd_unit(p.cgroup)
        if found is None:
            continue
        unit, user = found
        for q in infos.values():
            roles.setdefault(q.pid, Role(q.pid, "service", sig.server_name(q), True, q.ppid,
                                         q.started, unit))
        command = f"systemctl --user stop {unit}" if user else f"sudo systemctl stop {unit}"
        return StopPlan(
            "service", (), command,
            f"{shown(sig.server_name(p))} runs as the systemd unit {shown(unit)}, which would "
            "restart it: stop the unit",
            unit=unit,
        )
    return None


def _service_units(infos: dict[int, ProcInfo]) -> list[str]:
    units = []
    for p in infos.values():
        found = systemd_unit(p.cgroup)
        if found is not None and found[0] not in units:
            units.append(found[0])
    return units


def socket_units(view: ProcessView, port: int) -> list[str]:
    """The .socket units listening on `port`, from `systemctl list-sockets`."""
    lister = getattr(view, "list_sockets", None)
    if lister is None:
        return []
    found = []
    for listen, unit in lister():
        if listen.rsplit(":", 1)[-1] == str(port) and unit not in found:
            found.append(unit)
    return found


def supervisor_plan(
    infos: dict[int, ProcInfo], port: int, proto: Proto, view: ProcessView,
    roles: dict[int, Role],
) -> StopPlan | None:
    """A process manager above the server restarts it: stop it through the manager."""
    for p in infos.values():
        if p.ppid in infos:
            continue
        parent = view.get(p.ppid) if p.ppid else None
        daemon = sig.supervisor_daemon(parent) if parent is not None else None
        if parent is None or daemon is None:
            continue
        roles[parent.pid] = Role(parent.pid, "supervisor", daemon, False, parent.ppid,
                                 parent.started, daemon)
        command = _manager_command(daemon, p, parent, view)
        return StopPlan(
            "service", (), command,
            f"{daemon} (PID {parent.pid}) restarts {shown(sig.server_name(p))} when it exits: "
            f"stop it through {daemon}",
        )
    return None


def _manager_command(daemon: str, p: ProcInfo, parent: ProcInfo, view: ProcessView) -> str:
    if daemon == "supervisord":
        name = view.environ(p.pid, "SUPERVISOR_PROCESS_NAME") or "NAME"
        return f"supervisorctl stop {shown(name)}"
    if daemon == "pm2":
        name = view.environ(p.pid, "name") or view.environ(p.pid, "pm_id") or "NAME"
        return f"pm2 stop {shown(name)}"
    if daemon == "runit":
        where = parent.argv[1] if len(parent.argv) > 1 else "SERVICE"
        return f"sv down {shown(where)}"
    where = parent.argv[1] if len(parent.argv) > 1 else "SERVICE_DIR"
    return f"s6-svc -d {shown(where)}"


def platform_plan(
    infos: dict[int, ProcInfo], port: int, proto: Proto, view: ProcessView,
    roles: dict[int, Role],
) -> StopPlan | None:
    """macOS and Windows processes that hold ports for the OS."""
    for p in infos.values():
        name = p.name.lower()
        if view.platform == "darwin" and name == "controlcenter" and port in AIRPLAY_PORTS:
            roles[p.pid] = Role(p.pid, "system", "ControlCenter", True, p.ppid, p.started,
                                "AirPlay Receiver")
            return StopPlan(
                "setting", (),
                "System Settings > General > AirDrop & Handoff > AirPlay Receiver: off",
                f"macOS's AirPlay Receiver (ControlCenter) listens on {port}: turn it off in "
                "System Settings; killing ControlCenter does not help, it starts again at once",
            )
        if view.platform == "darwin" and p.pid == 1:
            roles[p.pid] = Role(1, "service", "launchd", True, 0, p.started,
                                "on-demand service (socket activation)")
            if port == 22:
                return StopPlan(
                    "setting", (), "System Settings > General > Sharing > Remote Login: off",
                    "launchd holds port 22 for Remote Login (sshd starts on demand): turn it "
                    "off in System Settings; PID 1 is never signalled",
                )
            return StopPlan(
                "service", (), "sudo launchctl list",
                f"launchd holds port {port} for an on-demand service and starts it on the "
                "next connection: find the service and unload it with launchctl bootout; "
                "PID 1 is never signalled",
            )
        if view.platform == "win32" and p.pid == 4:
            roles[p.pid] = Role(4, "system", "System", True, 0, p.started, "http.sys")
            return StopPlan(
                "service", (), "netsh http show servicestate view=requestq",
                f"Windows' kernel HTTP server (http.sys, PID 4 System) holds port {port} for "
                "a service (IIS, WinRM, a .NET HttpListener): netsh names it; stop that "
                "service",
            )
        if view.platform == "win32" and name in ("wslrelay.exe", "wslhost.exe"):
            roles[p.pid] = Role(p.pid, "proxy", p.name, True, p.ppid, p.started, "WSL relay")
            return StopPlan(
                "none", (), f"wsl ss -tlnp 'sport = :{port}'",
                f"WSL forwards port {port} from a program inside the Linux VM: find and stop "
                "it there (portscope or ss inside WSL)",
            )
        if view.platform == "win32" and name.startswith(("com.docker.backend", "vpnkit")):
            roles[p.pid] = Role(p.pid, "proxy", p.name, True, p.ppid, p.started,
                                "Docker Desktop")
            return StopPlan(
                "docker", (), f"docker ps --filter publish={port}",
                f"Docker Desktop publishes port {port} for a container in its VM: stop the "
                "container; killing the backend stops Docker Desktop",
            )
        services = getattr(view, "services", None)
        if view.platform == "win32" and name == "svchost.exe" and services is not None:
            names = services(p.pid)
            roles[p.pid] = Role(p.pid, "service", p.name, True, p.ppid, p.started,
                                ", ".join(names))
            listed = " or ".join(shown(n) for n in names) or "NAME"
            return StopPlan(
                "service", (), f"net stop {listed}",
                f"svchost.exe (PID {p.pid}) hosts the Windows service(s) "
                f"{shown(', '.join(names)) or '?'}: stop the service",
                unit=names[0] if len(names) == 1 else None,
            )
    return None
