"""Ports held for a service manager or by the OS itself: the fix is a command or a
setting, not a signal (a killed unit is restarted; a killed OS process comes back).
Process managers that run below PID 1 (pm2, supervisord, runit, s6) are in managers.py.
Every command that names a unit is built by commands.py, or not printed at all.

Tested with recorded /proc trees and command outputs (tests/recorded/), since systemd as
PID 1, macOS and Windows cannot run here.
"""

from __future__ import annotations

import os

from ..model import Proto
from ..untrusted import shown
from . import commands as cmd
from . import signatures as sig
from .evidence import Fact
from .model import Role, StopPlan
from .procs import ProcessView, ProcInfo

AIRPLAY_PORTS = frozenset({5000, 7000})


def systemd_unit(cgroup: str | None) -> tuple[str, bool] | None:
    """(unit, is a user unit) for a process in a systemd service's cgroup; None for scopes
    (a terminal's, a login session's), for names a shell would interpret, and for no
    systemd.

    The cgroup path is the kernel's, but a process may move itself anywhere in a subtree
    delegated to its user (`user@UID.service`, or a service with Delegate=yes), and create
    directories there named like units. So the unit is the first component below the slices
    that systemd itself made (under the root, or under the user's manager): a directory
    made inside a delegated unit is a child of that unit, never the unit.
    """
    if not cgroup:
        return None
    parts = [p for p in cgroup.split("/") if p]
    manager = next((i for i, p in enumerate(parts) if _user_manager(p) is not None), None)
    rest = parts if manager is None else parts[manager + 1 :]
    unit = next((p for p in rest if not p.endswith(".slice")), None)
    if unit is None or not unit.endswith(".service") or _user_manager(unit) is not None:
        return None  # a scope (terminal, session, podman run), init.scope, the manager
    return unit, manager is not None


def _user_manager(part: str) -> int | None:
    """The UID of a user's own manager unit ("user@1000.service")."""
    uid = part.removeprefix("user@").removesuffix(".service")
    if part.startswith("user@") and part.endswith(".service") and uid.isdigit():
        return int(uid)
    return None


def _user_unit_owner(cgroup: str | None) -> int | None:
    for part in (cgroup or "").split("/"):
        uid = _user_manager(part)
        if uid is not None:
            return uid
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
        units = [cmd.safe_name(u) for u in (unit, *services) if u]
        command = (
            _sudo(cmd.command("systemctl", "stop", *units)) if unit
            else cmd.command("systemctl", "list-sockets")
        )
        return StopPlan(
            "service", (), command,
            "systemd holds this socket itself (socket activation) and starts the service on "
            "the next connection: stop the .socket unit, not a process" + _unsafe(command),
            unit=unit, evidence=(Fact(1, "holder", "PID 1 holds the listening socket"),),
        )
    for p in infos.values():
        found = systemd_unit(p.cgroup)
        if found is None:
            continue
        unit, user = found
        owner = _user_unit_owner(p.cgroup) if user else None
        if user and p.uid is not None and owner != p.uid:
            continue  # another user's manager tree: not this process's unit
        for q in infos.values():
            roles.setdefault(q.pid, Role(q.pid, "service", sig.server_name(q), True, q.ppid,
                                         q.started, unit))
        command = _user_command(unit, owner) if user else _sudo(
            cmd.command("systemctl", "stop", cmd.safe_name(unit))
        )
        # The kernel's cgroup path, read by structure (systemd_unit), and the holder's uid
        # that owns the user manager it names.
        evidence = [Fact(p.pid, "cgroup", p.cgroup or "")]
        if p.uid is not None:
            evidence.append(Fact(p.pid, "uid", str(p.uid)))
        return StopPlan(
            "service", (), command,
            f"{shown(sig.server_name(p))} runs as the systemd unit {shown(unit)}, which would "
            "restart it: stop the unit" + _unsafe(command),
            unit=unit, evidence=tuple(evidence),
        )
    return None


def _sudo(command: str | None) -> str | None:
    return None if command is None else f"sudo {command}"


def _user_command(unit: str, owner: int | None) -> str | None:
    """`systemctl --user stop UNIT` for one's own units; another user's (portscope run as
    root) through that user's manager: `systemctl --user -M alice@ stop UNIT`."""
    stop = cmd.command("stop", cmd.safe_name(unit))
    if stop is None:
        return None
    if owner is None or owner == os.geteuid():
        return f"systemctl --user {stop}"
    try:
        import pwd

        who = cmd.safe_name(pwd.getpwuid(owner).pw_name) or str(owner)
    except KeyError:
        who = str(owner)
    return f"systemctl --user -M {who}@ {stop}"


def _unsafe(command: str | None) -> str:
    return "" if command else (
        " (the unit's name holds characters a shell would interpret, so no command is "
        "printed)"
    )


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
