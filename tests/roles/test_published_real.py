"""A port published by a Docker container is named after the container in `list` and the
table, from the Engine API, asked once per docker-proxy process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from portscope.core.collect import default_collector, snapshot_for
from portscope.core.model import Container
from portscope.core.roles.docker_api import Inspected, Listed, Listing, Published
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
    answer = Container("0" * 64, "web", "nginx:1.27")

    class Lookup:  # Docker's list, counted: the real proxy's kernel facts are read for real
        asked = 0

        def listing(self, deadline: float) -> Listing:
            self.asked += 1
            return Listing(0, (Listed(answer, (Published("127.0.0.1", srv.port, "tcp"),)),))

        def inspect(self, container_id: str, deadline: float) -> Inspected | None:
            raise AssertionError("a proxy is matched by the socket it holds, not by an id")

    lookup = Lookup()
    published = PublishedContainers(lookup)
    collector = default_collector()
    for _ in range(3):
        # This port only: another run's proxies appearing meanwhile are not ours to count.
        snap = published.annotate(snapshot_for(collector, srv.port))
        [sock] = [s for s in snap.listeners_on(srv.port) if s.address == "127.0.0.1"]
        assert sock.container == answer
    assert lookup.asked == 1
