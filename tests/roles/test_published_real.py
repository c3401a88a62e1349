"""A port published by a Docker container is named after the container in `list` and the
table, from the Engine API, asked once per docker-proxy process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from portscope.core.collect import default_collector
from portscope.core.model import Container, Proto
from portscope.core.roles.published import PublishedContainers
from real_servers import DOCKER_IMAGE, Running

StartServer = Callable[..., Running]


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=60
    )


def test_list_names_the_container_behind_docker_proxy(real_server: StartServer) -> None:
    srv = real_server("docker")
    data = json.loads(portscope("list", "--port", str(srv.port), "--json").stdout)
    [sock] = [s for s in data["sockets"] if s["address"] == "127.0.0.1"]
    assert sock["container"]["name"] == srv.container
    assert sock["container"]["image"] == DOCKER_IMAGE
    assert [p["name"] for p in sock["processes"]] == ["docker-proxy"]
    table = portscope("list", "--port", str(srv.port)).stdout
    assert f"docker {srv.container} ({DOCKER_IMAGE})" in table


def test_the_api_is_asked_once_per_proxy(real_server: StartServer) -> None:
    srv = real_server("docker")
    asked: list[int] = []
    answer = Container("0" * 64, "web", "nginx:1.27")

    def lookup(port: int, proto: Proto, ip: str | None, cid: str | None) -> Container | None:
        asked.append(port)
        return answer if port == srv.port else None

    published = PublishedContainers(lookup)
    collector = default_collector()
    for _ in range(3):
        snap = published.annotate(collector.collect())
        [sock] = [s for s in snap.listeners_on(srv.port) if s.address == "127.0.0.1"]
        assert sock.container == answer
    assert asked.count(srv.port) == 1
