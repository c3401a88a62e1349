"""Process views recorded from machines the suite cannot be: systemd as PID 1, podman,
macOS, Windows (tests/recorded/, where each format comes from is in its README). Each
answers the role model's questions (portscope.core.roles.procs.ProcessView) from the
recording, and lists the holders of a port as the collector would have found them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from portscope.core.model import Container, Holder
from portscope.core.roles.cgroups import cgroup_path
from portscope.core.roles.procs import ProcInfo

RECORDED = Path(__file__).resolve().parent / "recorded"


@dataclass
class RecordedView:
    platform: str
    procs: dict[int, ProcInfo]
    listeners: dict[int, set[int]] = field(default_factory=dict)  # port -> holder PIDs
    socket_listing: str = ""  # `systemctl list-sockets` as recorded
    service_names: dict[int, tuple[str, ...]] = field(default_factory=dict)  # tasklist /svc
    environments: dict[int, dict[str, str]] = field(default_factory=dict)

    def get(self, pid: int) -> ProcInfo | None:
        return self.procs.get(pid)

    def children(self, pid: int) -> tuple[int, ...]:
        return tuple(sorted(p for p, info in self.procs.items() if info.ppid == pid))

    def environ(self, pid: int, key: str) -> str | None:
        return self.environments.get(pid, {}).get(key)


    def list_sockets(self) -> list[tuple[str, str]]:
        rows = []
        for line in self.socket_listing.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(" "):
                rows.append((parts[0], parts[1]))
        return rows

    def services(self, pid: int) -> tuple[str, ...]:
        return self.service_names.get(pid, ())

    def holders(self, port: int) -> tuple[Holder, ...]:
        found = []
        for pid in sorted(self.listeners.get(port, ())):
            p = self.procs[pid]
            found.append(Holder(pid, p.name, p.user, p.argv, p.started, p.cwd, p.ppid))
        return tuple(found)


def systemd(scenario: str) -> tuple[RecordedView, dict[str, object]]:
    data = json.loads((RECORDED / "linux-systemd.json").read_text())["scenarios"][scenario]
    view = RecordedView("linux", {}, socket_listing=data.get("systemctl_list_sockets", ""))
    for p in data["processes"]:
        argv = tuple(a for a in p["cmdline_raw"].split("\0") if a)
        cgroup = cgroup_path(p["cgroup"].splitlines())
        view.procs[p["pid"]] = ProcInfo(
            p["pid"], p["ppid"], p["comm"], argv, 1_700_000_000.0, uid=p["uid"], cgroup=cgroup
        )
        for s in p["sockets"]:
            if s["state"] == "LISTEN" and s["netns"] == "host":
                port = int(s["local"].rsplit(":", 1)[1])
                view.listeners.setdefault(port, set()).add(p["pid"])
    return view, data


def recorded_container(data: dict[str, object]) -> Container:
    info = data["container"]
    assert isinstance(info, dict)
    return Container(id=info["id"], name=info["name"], image=str(info.get("image", "?")))


def macos() -> RecordedView:
    view = RecordedView("darwin", {})
    for line in (RECORDED / "macos-ps.txt").read_text().splitlines()[1:]:
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0].isdigit():
            pid, ppid, user, comm = int(parts[0]), int(parts[1]), parts[2], parts[3]
            name = comm.rsplit("/", 1)[-1]
            view.procs[pid] = ProcInfo(pid, ppid, name, (comm,), 1_700_000_000.0, user=user)
    for line in (RECORDED / "macos-lsof-listen.txt").read_text().splitlines()[1:]:
        found = re.search(r"^\S+\s+(\d+).*TCP \S*:(\d+) \(LISTEN\)", line)
        if found:
            view.listeners.setdefault(int(found.group(2)), set()).add(int(found.group(1)))
    return view


def windows() -> RecordedView:
    view = RecordedView("win32", {})
    for line in (RECORDED / "windows-tasklist-svc.txt").read_text().splitlines():
        found = re.match(r"^(.+?)\s+(\d+) (.+)$", line.rstrip())
        if not found:
            continue
        name, pid, services = found.group(1).strip(), int(found.group(2)), found.group(3)
        view.procs[pid] = ProcInfo(pid, None, name, (), 1_700_000_000.0)
        if services.strip() != "N/A":
            view.service_names[pid] = tuple(s.strip() for s in services.split(","))
    for name in ("windows-netstat-nao-tcp.txt", "windows-netstat-nao-tcpv6.txt"):
        for line in (RECORDED / name).read_text().splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "TCP" and parts[3] == "LISTENING":
                port = int(parts[1].rsplit(":", 1)[1])
                view.listeners.setdefault(port, set()).add(int(parts[4]))
    return view
