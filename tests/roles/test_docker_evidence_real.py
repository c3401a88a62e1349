"""Issue 17, for real: a container is stopped only on facts a local user cannot forge, and
what an unprivileged user forges (a listener named docker-proxy whose argv points at someone
else's container, a cgroup named after it) gets only that user's process signalled, while
the container keeps running. Issue 18: a malformed, slow or huge Docker answer costs `list`
and `check` no traceback and no hang.

One real container (`target`, on 127.0.0.1) is shared by the module and never stopped here;
the forgeries run as nobody (domain.md 6)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docker_run import (
    HTTPD,
    Containers,
    Run,
    answers_http,
    containers,
    forged_cgroup,
    forged_listener,
    portscope_json,
    running,
    wait_until,
)
from fake_docker import Answer, drip, fake_docker, json_answer
from real_servers import LOOPBACK, free_port, listener_holders
from support import pid_alive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="forges as nobody; needs root")


@pytest.fixture(scope="module")
def docker() -> Iterator[Containers]:
    with containers() as made:
        yield made


@pytest.fixture(scope="module")
def target(docker: Containers) -> tuple[Run, int]:
    """The victim: someone else's container publishing 127.0.0.1:PORT."""
    port = free_port(ipv6=True)
    run = docker.run(HTTPD, publish=((LOOPBACK, port),))
    wait_until(lambda: answers_http(LOOPBACK, port), "the target container")
    return run, port


def test_check_names_the_facts_it_stops_the_container_on(target: tuple[Run, int]) -> None:
    run, port = target
    _, verdict = portscope_json("check", str(port))
    stop = verdict["stop"]
    assert stop["how"] == "docker" and stop["container"]["name"] == run.name
    assert stop["command"] == f"docker stop {run.name}"
    [proxy] = listener_holders(port)
    facts = {(f["pid"], f["fact"]): f for f in stop["evidence"]}
    exe = facts[(proxy, "exe")]
    assert Path(exe["value"]).name == "docker-proxy" and exe["owner"] == "root"
    assert facts[(proxy, "euid")]["value"] == "0"
    assert facts[(proxy, "listens")]["value"] == f"127.0.0.1:{port}/tcp"
    assert facts[(None, "docker")]["value"] == f"{run.id} publishes 127.0.0.1:{port}/tcp"


def test_a_forged_docker_proxy_for_someone_elses_container_is_only_itself(
    target: tuple[Run, int],
) -> None:
    """The issue's forgery: nobody's listener, named docker-proxy, argv
    `-container-ip <target's IP>`. Before, root's `kill --yes` stopped the target."""
    run, _ = target
    port = free_port()
    with forged_listener(LOOPBACK, port, container_ip=run.ip) as forged:
        _, verdict = portscope_json("check", str(port))
        stop = verdict["stop"]
        assert stop["how"] == "signal" and stop["pids"] == [forged.pid]
        assert stop["container"] is None and stop["evidence"] == []
        assert f"PID {forged.pid} calls itself docker-proxy, but its executable" in stop["why"]
        _, listed = portscope_json("list", "--port", str(port))
        assert all("container" not in s for s in listed["sockets"])
        code, outcome = portscope_json("kill", str(port), "--yes")
        assert code == 0 and outcome["container_stopped"] is False
        assert [t["pid"] for t in outcome["targets"]] == [forged.pid]
        wait_until(lambda: forged.poll() is not None, "the forged proxy's exit", 10)
    assert running(run.name)


def test_a_forged_proxy_beside_the_real_one_never_takes_the_real_one_down(
    target: tuple[Run, int],
) -> None:
    """Nobody's docker-proxy on [::1]:PORT beside the target's real one on 127.0.0.1:PORT:
    the address asked decides, and without one only the forgery is signalled; the real
    proxy is spared, so the container stays running and reachable (kill then exits 1: the
    port is still held, by the container it did not stop)."""
    run, port = target
    [real_proxy] = listener_holders(port)
    with forged_listener("::1", port, container_ip=run.ip) as forged:
        _, on_v6 = portscope_json("check", str(port), "--host", "::1")
        assert on_v6["stop"]["how"] == "signal" and on_v6["stop"]["pids"] == [forged.pid]
        _, on_v4 = portscope_json("check", str(port), "--host", "127.0.0.1")
        assert on_v4["stop"]["how"] == "docker"
        assert on_v4["stop"]["container"]["name"] == run.name
        _, anywhere = portscope_json("check", str(port))
        assert anywhere["stop"]["pids"] == [forged.pid]
        assert f"PID {real_proxy} is Docker's proxy for container {run.name}: not signalled" in (
            anywhere["stop"]["why"]
        )
        code, outcome = portscope_json("kill", str(port), "--yes")
        assert [t["pid"] for t in outcome["targets"]] == [forged.pid]
        wait_until(lambda: forged.poll() is not None, "the forged proxy's exit", 10)
        assert code == 1 and outcome["port_free"] is False
    assert pid_alive(real_proxy) and running(run.name) and answers_http(LOOPBACK, port)


def test_a_cgroup_named_after_a_container_is_only_a_claim(target: tuple[Run, int]) -> None:
    run, _ = target
    port = free_port()
    with forged_cgroup(run.id) as procs, forged_listener(
        LOOPBACK, port, name="httpd", argv0="httpd"
    ) as forged:
        Path(procs).write_text(str(forged.pid))
        assert f"docker-{run.id}.scope" in Path(f"/proc/{forged.pid}/cgroup").read_text()
        _, verdict = portscope_json("check", str(port))
        stop = verdict["stop"]
        assert stop["how"] == "signal" and stop["pids"] == [forged.pid]
        assert (
            f"PID {forged.pid}'s cgroup names container {run.id[:12]}, but the container's "
            f"main process (PID {run.pid}) is neither it nor its ancestor"
        ) in stop["why"]
        code, _ = portscope_json("kill", str(port), "--yes")
        assert code == 0
        wait_until(lambda: forged.poll() is not None, "the forged listener's exit", 10)
    assert running(run.name)


def test_a_process_inside_a_container_counts_by_dockers_own_answer(
    docker: Containers,
) -> None:
    """`--network host`: the container's httpd holds the host's port itself; Docker's main
    process for that container (docker-init) is its parent, so the plan stops the
    container."""
    port = free_port()
    run = docker.run(["/bin/busybox", "httpd", "-f", "-p", f"{LOOPBACK}:{port}"],
                     host_network=True)
    wait_until(lambda: answers_http(LOOPBACK, port), "the host-network container")
    [httpd] = listener_holders(port)
    _, verdict = portscope_json("check", str(port))
    stop = verdict["stop"]
    assert stop["how"] == "docker" and stop["container"]["name"] == run.name
    values = {(f["pid"], f["fact"]): f["value"] for f in stop["evidence"]}
    assert values[(None, "docker")] == f"{run.id} has main process PID {run.pid}"
    assert values[(httpd, "ancestor")] == str(run.pid)
    code, outcome = portscope_json("kill", str(port), "--yes")
    assert code == 0 and outcome["container_stopped"] is True and not running(run.name)


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        (json_answer([{"Id": "a" * 64, "Names": ["/x"], "Image": "x", "Ports": ["notadict"]}]),
         "Ports[0]: expected an object, got a string"),
        (json_answer([{"Id": "a" * 64, "Names": ["/x"], "Image": "x", "Labels": ["a"]}]),
         "Labels: expected an object, got a list"),
        (json_answer(b"[" * 100_000), "the answer nests deeper than 64"),
        (drip(1.5), "no complete answer within 3 s"),
    ],
    ids=["ports-not-objects", "labels-a-list", "deep-nesting", "drip"],
)
def test_a_hostile_docker_answer_costs_list_and_check_nothing(
    target: tuple[Run, int], answer: Answer, note: str
) -> None:
    """DOCKER_HOST at a fake daemon (root's own socket, so it is asked) while the real
    proxy holds the port: `list` shows the socket without a container, `check` plans
    without one and says why, and never plans a signal to Docker's own proxy (its
    container would keep running, unreachable); each answers in time, with no
    traceback."""
    _, port = target
    with fake_docker(answer) as daemon:
        env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.path}"}
        start = time.monotonic()
        code, listed = portscope_json("list", "--port", str(port), env=env)
        assert code == 0 and listed["sockets"]
        assert all("container" not in s for s in listed["sockets"])
        code, verdict = portscope_json("check", str(port), env=env)
        stop = verdict["stop"]
        assert code == 1 and stop["container"] is None
        assert stop["how"] == "docker" and stop["pids"] == []
        assert stop["command"] == f"docker ps --filter publish={port}"
        why = stop["why"]
        assert "the Docker API did not answer (" in why and note in why
        assert "killing docker-proxy would leave the container running" in why
        assert daemon.requests  # it was asked, and its answer refused
    assert time.monotonic() - start < 20  # two commands, each within its 3 s deadline
