"""The Docker Engine API over its unix socket, with the standard library only.

Who publishes a port (`GET /containers/json`) and stopping a container
(`POST /containers/{id}/stop`): what `docker ps` and `docker stop` do, without shelling out.
The socket is `DOCKER_HOST` when that is `unix://...`, else /var/run/docker.sock. Every
call has a short timeout: a hung daemon must not hang `check`.
"""

from __future__ import annotations

import json
import os

from ..model import Container

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    import http.client
    from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT = 2.0


class DockerUnavailable(Exception):
    """No daemon, no permission on its socket, or a remote DOCKER_HOST we do not speak."""


def socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise DockerUnavailable(f"DOCKER_HOST={host} is not a unix socket")
    return DEFAULT_SOCKET


def _connection(path: str, timeout: float) -> http.client.HTTPConnection:
    """HTTP over the unix socket. http.client is imported here, not at the top: every
    `list` and `check` imports this module (30-50 ms for http.client and the email
    parser), few of them talk to Docker."""
    import http.client
    import socket  # here too: `list` imports this module and never connects

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    return _UnixConnection("localhost", timeout=timeout)


def request(method: str, path: str, timeout: float = TIMEOUT) -> tuple[int, Any]:
    """(status, decoded JSON body or None); DockerUnavailable if the daemon cannot be asked."""
    conn = _connection(socket_path(), timeout)
    try:
        conn.request(method, path, headers={"Host": "docker"})
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise DockerUnavailable(str(exc) or type(exc).__name__) from None
    finally:
        conn.close()
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    return response.status, data


def containers() -> list[dict[str, Any]]:
    status, data = request("GET", "/containers/json")
    if status != 200 or not isinstance(data, list):
        raise DockerUnavailable(f"GET /containers/json answered {status}")
    return [c for c in data if isinstance(c, dict)]


def from_summary(item: dict[str, Any]) -> Container:
    names = item.get("Names") or []
    labels = item.get("Labels") or {}
    name = str(names[0]).lstrip("/") if names else str(item.get("Id", ""))[:12]
    return Container(
        id=str(item.get("Id", "")),
        name=name,
        image=str(item.get("Image", "")),
        compose_project=labels.get("com.docker.compose.project"),
        compose_service=labels.get("com.docker.compose.service"),
    )


def publishing(port: int, proto: str = "tcp", container_ip: str | None = None) -> Container | None:
    """The running container that publishes host `port` (or has `container_ip`)."""
    for item in containers():
        for p in item.get("Ports") or []:
            if p.get("PublicPort") == port and p.get("Type", "tcp") == proto:
                return from_summary(item)
        if container_ip:
            networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
            if any(n.get("IPAddress") == container_ip for n in networks.values()):
                return from_summary(item)
    return None


def by_id(prefix: str) -> Container | None:
    for item in containers():
        if str(item.get("Id", "")).startswith(prefix):
            return from_summary(item)
    return None


def stop(container_id: str, timeout: int = 10) -> int:
    """POST /containers/{id}/stop: 204 stopped, 304 already stopped, 404 gone."""
    status, _ = request("POST", f"/containers/{container_id}/stop?t={timeout}", timeout + 5.0)
    return status
