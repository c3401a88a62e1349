"""A container publishes the port: stop the container, never its proxy.

Killing `docker-proxy` leaves the container running and unreachable (domain.md 7), so the
plan is `docker stop NAME`, carried out through the Engine API. The container is found from
the proxy's own arguments (host port, container IP) or, for a process inside a container,
from its cgroup (`.../docker-<64 hex>.scope`, `/docker/<64 hex>`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..model import Container, Proto
from ..untrusted import shown
from . import docker_api
from . import signatures as sig
from .docker_api import DockerUnavailable
from .model import Role, StopPlan
from .procs import ProcInfo
from .services import systemd_unit

# (host port, proto, container IP or None, container id prefix or None) -> the container,
# None when no running container matches; raises DockerUnavailable without API access.
ContainerLookup = Callable[[int, Proto, str | None, str | None], Container | None]

_CGROUP_ID = re.compile(r"(?:docker-|/docker/|/libpod-|libpod-)([0-9a-f]{64})")


def docker_lookup(
    port: int, proto: Proto, container_ip: str | None, container_id: str | None
) -> Container | None:
    if container_id:
        return docker_api.by_id(container_id)
    return docker_api.publishing(port, proto, container_ip)


def container_id(cgroup: str | None) -> str | None:
    if not cgroup:
        return None
    found = _CGROUP_ID.search(cgroup)
    return found.group(1) if found else None


def container_plan(
    infos: dict[int, ProcInfo],
    port: int,
    proto: Proto,
    roles: dict[int, Role],
    lookup: ContainerLookup,
) -> StopPlan | None:
    proxies = [p for p in infos.values() if sig.docker_proxy(p)]
    inside = {p.pid: container_id(p.cgroup) for p in infos.values()}
    inside = {pid: cid for pid, cid in inside.items() if cid}
    podman = [p for p in infos.values() if sig.podman_proxy(p)]
    if not proxies and not inside and not podman:
        return None
    if podman and not proxies and not inside:
        if any(systemd_unit(p.cgroup) for p in podman):
            return None  # a Quadlet: the unit owns the container, stop the unit
        for p in podman:
            roles[p.pid] = Role(p.pid, "proxy", sig.server_name(p), True, p.ppid, p.started,
                                "Podman's port forwarder")
        return StopPlan(
            "service", (), f"podman ps --filter publish={port}",
            f"a Podman container publishes port {port} through {shown(podman[0].name)}: "
            "stop the container with podman (killing the forwarder leaves it running)",
        )
    container_ip = None
    for p in proxies:
        args = sig.proxy_args(p)
        container_ip = container_ip or args.get("container-ip")
    cid = next(iter(inside.values()), None)
    try:
        container = lookup(port, proto, container_ip, cid)
        error = None
    except DockerUnavailable as exc:
        container, error = None, str(exc)
    for p in proxies:
        roles[p.pid] = Role(p.pid, "proxy", "docker-proxy", True, p.ppid, p.started,
                            f"docker-proxy for {container.name}" if container else "docker-proxy")
    for pid in inside:
        p = infos[pid]
        roles[pid] = Role(pid, "server", sig.server_name(p), True, p.ppid, p.started,
                          f"in container {container.name}" if container else "in a container")
    if container is None:
        how_to_find = f"docker ps --filter publish={port}"
        reason = f" (the Docker API did not answer: {shown(error)})" if error else ""
        return StopPlan(
            "docker", (), how_to_find,
            f"a Docker container publishes port {port}{reason}: find it and run "
            "docker stop on it; killing docker-proxy would leave the container running",
        )
    what = f"{shown(container.name)} ({shown(container.image)})"
    return StopPlan(
        "docker", (), f"docker stop {shown(container.name)}",
        f"Docker container {what} publishes port {port}: stop the container; killing "
        "docker-proxy would leave it running and unreachable",
        container=container,
    )
