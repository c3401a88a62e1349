"""A container publishes the port: stop the container, never its proxy, but only on facts a
local user cannot forge (domain.md 9, evidence.py).

Killing `docker-proxy` leaves the container running and unreachable (domain.md 7), so the
plan is to stop the container, carried out through the Engine API. Anyone can name a
process docker-proxy, give it `-container-ip` of someone else's container, or move it into
a cgroup named after one, so a holder counts as Docker's only when:

- a proxy: its /proc/PID/exe is a root-owned `docker-proxy`, its parent's is a root-owned
  `dockerd` or `containerd`, both run as the user whose socket Docker answered on (root; a
  rootless Docker's own user), and Docker lists exactly one running container publishing
  the very address and port of the socket the proxy holds (from the snapshot, never from
  the proxy's argv);
- a process inside a container (its cgroup names a 64-hex id: a claim): Docker's answer for
  that id gives a main process (State.Pid) that is the holder or one of its kernel
  ancestors.

When every holder counts, the plan stops the one container they belong to (several: none,
and the plan asks for `--host`). When any does not, there is no container plan: the usual
signal plan stops the holders, says what could not be confirmed, and leaves Docker's own
confirmed proxies alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from ..hints import Protocol
from ..model import Container, Proto
from ..record import replace
from ..untrusted import shown
from . import docker_api
from . import evidence as ev
from . import signatures as sig
from .commands import command, safe_name
from .docker_api import DockerUnavailable, Inspected, Listing, Published
from .evidence import Fact, Kernel
from .model import Role, StopPlan
from .procs import LiveProcesses, ProcessView, ProcInfo
from .services import systemd_unit

# For each holder PID, the (address, port) of the listening sockets it holds on the port.
Bound = Mapping[int, tuple[tuple[str, int], ...]]
KernelOf = Callable[[int], "Kernel | None"]
AncestorsOf = Callable[[int], list[int]]
PROXY_PARENTS = ("dockerd", "containerd")  # what starts a real docker-proxy

_CGROUP_ID = re.compile(r"(?:docker-|/docker/|/libpod-|libpod-)([0-9a-f]{64})")


class ContainerLookup(Protocol):
    """What the container plan asks the runtime; DockerUnavailable when it cannot."""

    def listing(self, deadline: float) -> Listing: ...

    def inspect(self, container_id: str, deadline: float) -> Inspected | None: ...


class DockerLookup:
    """The Docker daemon on its socket (docker_api), asked afresh each time."""

    def listing(self, deadline: float) -> Listing:
        return docker_api.listing(deadline)

    def inspect(self, container_id: str, deadline: float) -> Inspected | None:
        return docker_api.inspect(container_id, deadline)


docker_lookup = DockerLookup()


def container_id(cgroup: str | None) -> str | None:
    if not cgroup:
        return None
    found = _CGROUP_ID.search(cgroup)
    return found.group(1) if found else None


def stop_command(container: Container, timeout: float | None = None) -> str | None:
    """What a person types for what the API does: `docker compose -p P stop S` for a compose
    service, else `docker stop NAME`; `-t` only when the person gave a timeout (else the
    container's own StopTimeout applies, as it does for the API call). None when no name
    passes its check."""
    t = () if timeout is None else ("-t", str(int(-(-timeout // 1))))
    project = safe_name(container.compose_project)
    service = safe_name(container.compose_service)
    if project and service:
        return command("docker", "compose", "-p", project, "stop", *t, service)
    return command("docker", "stop", *t, safe_name(container.name))


class Answers:
    """Docker's answers for one plan, each asked at most once, all under one deadline."""

    def __init__(self, lookup: ContainerLookup) -> None:
        self._lookup = lookup
        self._deadline = time.monotonic() + docker_api.DEADLINE
        self._listing: Listing | DockerUnavailable | None = None
        self._inspected: dict[str, Inspected | DockerUnavailable | None] = {}

    def listing(self) -> Listing:
        if self._listing is None:
            try:
                self._listing = self._lookup.listing(self._deadline)
            except DockerUnavailable as exc:
                self._listing = exc
        if isinstance(self._listing, DockerUnavailable):
            raise self._listing
        return self._listing

    def inspect(self, cid: str) -> Inspected | None:
        if cid not in self._inspected:
            try:
                self._inspected[cid] = self._lookup.inspect(cid, self._deadline)
            except DockerUnavailable as exc:
                self._inspected[cid] = exc
        found = self._inspected[cid]
        if isinstance(found, DockerUnavailable):
            raise found
        return found


Confirmed = tuple["Container | None", tuple[Fact, ...], str]  # (container, facts, why not)


def real_proxy(pid: int, kernel_of: KernelOf) -> tuple[Kernel, Kernel] | str:
    """(the proxy's, its parent's kernel facts) when PID runs the root-owned docker-proxy
    binary under a root-owned dockerd or containerd; else why not."""
    k = kernel_of(pid)
    if k is None or k.exe is None:
        return "its executable cannot be read (only root sees another user's)"
    if k.program != "docker-proxy" or not k.exe_trusted:
        return f"its executable {shown(k.exe)} is not a root-owned docker-proxy"
    parent = kernel_of(k.ppid) if k.ppid else None
    if parent is None or parent.program not in PROXY_PARENTS or not parent.exe_trusted:
        what = shown(parent.exe) if parent is not None and parent.exe else "unreadable"
        return f"its parent (PID {k.ppid}, {what}) is not a root-owned dockerd or containerd"
    return k, parent


def confirm_proxy(
    pid: int, sockets: tuple[tuple[str, int], ...], proto: Proto, kernel_of: KernelOf,
    answers: Answers,
) -> Confirmed:
    """Is PID Docker's own proxy for exactly one container on the sockets it holds?"""
    real = real_proxy(pid, kernel_of)
    if isinstance(real, str):
        return None, (), real
    k, parent = real
    if not sockets:
        return None, (), "portscope saw no listening socket of it on the port"
    try:
        listing = answers.listing()
    except DockerUnavailable as exc:
        return None, (), f"Docker did not answer ({shown(str(exc))})"
    owner = _user_name(listing.owner)
    if k.euid != listing.owner or parent.euid != listing.owner:
        return None, (), (
            f"it runs as {_user_name(k.euid)}, not as {owner}, whose Docker answered"
        )
    found: dict[str, Container] = {}
    facts = [k.exe_fact(), k.euid_fact(), Fact(pid, "ancestor", str(parent.pid)),
             parent.exe_fact(), parent.euid_fact()]
    for address, port in sockets:
        held = Published(docker_api.normal_address(address) or address, port, proto)
        matching = [c.container for c in listing.containers if held in c.published]
        if len(matching) != 1:
            many = f"{len(matching)} containers" if matching else "no running container"
            return None, (), f"Docker lists {many} publishing {held.shown()}"
        found[matching[0].id] = matching[0]
        facts += [Fact(pid, "listens", held.shown()),
                  Fact(None, "docker", f"{matching[0].id} publishes {held.shown()}", owner)]
    if len(found) != 1:
        return None, (), "it holds sockets that Docker lists for different containers"
    return next(iter(found.values())), tuple(facts), ""


def confirm_inside(
    pid: int, cid: str, ancestors_of: AncestorsOf, answers: Answers
) -> Confirmed:
    """Is PID (whose cgroup names container `cid`) really in that container, by Docker's
    own answer about the container's main process?"""
    try:
        found = answers.inspect(cid)
    except DockerUnavailable as exc:
        return None, (), f"Docker did not answer ({shown(str(exc))})"
    if found is None or not found.running or found.pid <= 0:
        return None, (), f"Docker runs no container {cid[:12]}"
    if found.pid != pid and found.pid not in ancestors_of(pid):
        return None, (), (
            f"the container's main process (PID {found.pid}) is neither it nor its ancestor"
        )
    facts = [Fact(None, "docker", f"{cid} has main process PID {found.pid}",
                  _user_name(found.owner))]
    if found.pid != pid:
        facts.append(Fact(pid, "ancestor", str(found.pid)))
    return found.container, tuple(facts), ""


class ContainerStep:
    """The container question of cast_roles: a plan when Docker confirms every holder,
    else None, and `explained` then adds to the fallback plan what could not be confirmed
    and keeps it off Docker's confirmed proxies."""

    def __init__(
        self, lookup: ContainerLookup, bound: Bound | None, view: ProcessView,
        kernel_of: KernelOf | None = None, ancestors_of: AncestorsOf | None = None,
    ) -> None:
        live = isinstance(view, LiveProcesses)  # a recording carries no kernel facts
        self._lookup = lookup
        self._bound = bound or {}
        self._kernel_of = kernel_of or (ev.kernel if live else _no_kernel)
        self._ancestors_of = ancestors_of or (ev.ancestors if live else _no_ancestors)
        self.notes: list[str] = []
        self.spared: tuple[int, ...] = ()  # confirmed proxies the fallback must not signal
        # A holder claimed to be Docker's and was not confirmed: the holders' own signal
        # plan follows, never a unit's (docker.service would stop every container).
        self.unconfirmed = False

    def __call__(
        self, infos: dict[int, ProcInfo], port: int, proto: Proto, view: ProcessView,
        roles: dict[int, Role],
    ) -> StopPlan | None:
        proxies = [p for p in infos.values() if sig.docker_proxy(p) or p.program == "docker-proxy"]
        proxy_pids = {p.pid for p in proxies}
        inside = {pid: cid for pid, p in infos.items() if (cid := container_id(p.cgroup))}
        if not proxies and not inside:
            return _podman_plan(infos, port, roles)
        answers = Answers(self._lookup)
        confirmed: dict[int, tuple[Container, tuple[Fact, ...]]] = {}
        for p in proxies:
            found, facts, why_not = confirm_proxy(
                p.pid, self._bound.get(p.pid, ()), proto, self._kernel_of, answers
            )
            if found is None and _silent(answers) and not isinstance(
                real := real_proxy(p.pid, self._kernel_of), str
            ):
                # Docker's own proxy, by kernel facts, while Docker does not answer: which
                # container it serves is unknown, and signalling it would leave that
                # container running and unreachable. Nothing is stopped; the plan says how
                # to find the container.
                return _unanswered(p.pid, port, real, answers, roles, p)
            if found is None:
                self.unconfirmed = True
                self.notes.append(
                    f"PID {p.pid} calls itself docker-proxy, but {why_not}: no container is "
                    "stopped for it"
                )
            else:
                confirmed[p.pid] = (found, facts)
        for pid, cid in inside.items():
            if pid in confirmed:
                continue
            found, facts, why_not = confirm_inside(pid, cid, self._ancestors_of, answers)
            if found is None:
                self.unconfirmed = True
                self.notes.append(
                    f"PID {pid}'s cgroup names container {cid[:12]}, but {why_not}: no "
                    "container is stopped for it"
                )
            else:
                confirmed[pid] = (found, facts)
        for pid, (found, _) in confirmed.items():
            p = infos[pid]
            if pid not in proxy_pids:
                roles[pid] = Role(pid, "server", sig.server_name(p), True, p.ppid, p.started,
                                  f"in container {found.name}")
            else:
                roles[pid] = Role(pid, "proxy", "docker-proxy", True, p.ppid, p.started,
                                  f"docker-proxy for {found.name}")
        if len(confirmed) < len(infos):
            self._spare(confirmed, proxy_pids, port)
            return None
        return _docker_plan(confirmed, port, self._bound)

    def _spare(
        self, confirmed: dict[int, tuple[Container, tuple[Fact, ...]]], proxies: set[int],
        port: int,
    ) -> None:
        """Some holder does not count: the fallback signals the holders, but never Docker's
        own proxies (that would leave their container running and unreachable)."""
        self.spared = tuple(sorted(pid for pid in confirmed if pid in proxies))
        for pid in self.spared:
            found, _ = confirmed[pid]
            self.notes.append(
                f"PID {pid} is Docker's proxy for container {shown(found.name)}: not "
                f"signalled (portscope kill {port} --host ADDR stops that container)"
            )

    def left(self, infos: dict[int, ProcInfo]) -> dict[int, ProcInfo]:
        """The holders the fallback plan may signal."""
        return {pid: p for pid, p in infos.items() if pid not in self.spared}

    def explained(self, plan: StopPlan) -> StopPlan:
        if not self.notes:
            return plan
        return replace(plan, why="; ".join([plan.why, *self.notes]) if plan.why else
                       "; ".join(self.notes))


def _silent(answers: Answers) -> DockerUnavailable | None:
    try:
        answers.listing()
    except DockerUnavailable as exc:
        return exc
    return None


def _unanswered(
    pid: int, port: int, real: tuple[Kernel, Kernel], answers: Answers,
    roles: dict[int, Role], p: ProcInfo,
) -> StopPlan:
    k, parent = real
    roles[pid] = Role(pid, "proxy", "docker-proxy", True, p.ppid, p.started, "docker-proxy")
    error = _silent(answers)
    return StopPlan(
        "docker", (), command("docker", "ps", "--filter", f"publish={port}"),
        f"Docker's docker-proxy (PID {pid}) publishes port {port} for a container, but the "
        f"Docker API did not answer ({shown(str(error))}): find the container and stop it; "
        "killing docker-proxy would leave the container running and unreachable",
        evidence=(k.exe_fact(), k.euid_fact(), Fact(pid, "ancestor", str(parent.pid)),
                  parent.exe_fact()),
    )


def _docker_plan(
    confirmed: dict[int, tuple[Container, tuple[Fact, ...]]], port: int, bound: Bound
) -> StopPlan:
    facts = tuple(f for _, pid_facts in confirmed.values() for f in pid_facts)
    containers = {c.id: c for c, _ in confirmed.values()}
    if len(containers) > 1:
        where = "; ".join(
            f"{shown(c.name)} on {_addresses(c, confirmed, bound)}" for c in containers.values()
        )
        return StopPlan(
            "docker", (), None,
            f"{len(containers)} Docker containers publish port {port}: {where}; name the "
            f"address with --host to stop one (portscope kill {port} --host ADDR)",
            evidence=facts,
        )
    [container] = containers.values()
    what = f"{shown(container.name)} ({shown(container.image)})"
    return StopPlan(
        "docker", (), stop_command(container),
        f"Docker container {what} publishes port {port}: stop the container; killing "
        "docker-proxy would leave it running and unreachable",
        container=container, evidence=facts,
    )


def _addresses(
    c: Container, confirmed: dict[int, tuple[Container, tuple[Fact, ...]]], bound: Bound
) -> str:
    found = sorted({a for pid, (o, _) in confirmed.items() if o.id == c.id
                    for a, _ in bound.get(pid, ())})
    return " and ".join(found) or "an address portscope did not see"


def _podman_plan(infos: dict[int, ProcInfo], port: int, roles: dict[int, Role]) -> StopPlan | None:
    """Podman's forwarder (by name: the plan only points at podman, it stops nothing)."""
    podman = [p for p in infos.values() if sig.podman_proxy(p)]
    if not podman or any(systemd_unit(p.cgroup) for p in podman):
        return None  # nothing of Podman's, or a Quadlet: the unit owns the container
    for p in podman:
        roles[p.pid] = Role(p.pid, "proxy", sig.server_name(p), True, p.ppid, p.started,
                            "Podman's port forwarder")
    return StopPlan(
        "service", (), f"podman ps --filter publish={port}",
        f"a Podman container publishes port {port} through {shown(podman[0].name)}: "
        "stop the container with podman (killing the forwarder leaves it running)",
    )


def _user_name(uid: int | None) -> str:
    if uid is None:
        return "?"
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _no_kernel(pid: int) -> Kernel | None:
    return None


def _no_ancestors(pid: int) -> list[int]:
    return []
