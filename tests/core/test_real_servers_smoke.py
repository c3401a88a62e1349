"""The real-server fixtures are what they claim: the PIDs they name hold the listener (as
portscope's collector sees it too), root_pid is above every holder, and stopping root_pid
(or the container) does what servers.md says. Tests of the fixtures, not of the role model."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import pytest

from portscope.core.collect import default_collector
from real_servers import (
    SCENARIOS,
    Running,
    argv,
    connection_inodes,
    docker_api,
    holders,
    is_ancestor_or_self,
    is_docker_proxy_for,
    listener_holders,
    listening_inodes,
    ppid,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

Start = Callable[..., Running]

# scenario -> (processes holding the listener, does root_pid hold it too)
SHAPES: dict[str, tuple[int, bool]] = {
    "gunicorn": (3, True),  # master + 2 workers
    "uvicorn-workers": (3, True),  # master + 2 spawned workers
    "uvicorn-reload": (2, True),  # reloader + server child
    "flask-debug": (2, True),  # reloader + child that got the fd
    "django-runserver": (1, False),  # only the child; the autoreloader parent holds nothing
    "shell-loop": (1, False),  # the server; bash holds nothing
    "background-orphan": (1, True),
    "socat-fork": (1, True),  # the listener; the per-connection child holds its connection
    "node-cluster-none": (3, True),  # primary + 2 workers
    "node-cluster-rr": (1, True),  # only the primary
    "nginx": (3, True),  # master + 2 workers, on 127.0.0.1 and [::1]
    "docker": (1, False),  # docker-proxy, a child of dockerd
}


def wait_until(predicate: Callable[[], object], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def collector_pids(port: int) -> set[int]:
    sockets = default_collector().collect().listeners_on(port)
    return {pid for sock in sockets for pid in sock.pids}


def test_every_scenario_has_a_shape() -> None:
    assert set(SHAPES) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_listener_held_by_the_pids_the_fixture_names(real_server: Start, name: str) -> None:
    running = real_server(name)
    count, root_holds = SHAPES[name]
    assert len(running.pids_holding) == count
    assert collector_pids(running.port) == set(running.pids_holding)
    assert (running.root_pid in running.pids_holding) is root_holds
    if running.how == "docker":
        assert all(is_docker_proxy_for(pid, running.port) for pid in running.pids_holding)
        assert running.container
    else:
        assert running.proc is not None
        assert all(is_ancestor_or_self(running.root_pid, pid) for pid in running.pids_holding)
        assert running.pids_holding <= running.group_pids


def test_prefork_workers_are_children_of_the_master(real_server: Start) -> None:
    for name in ("gunicorn", "uvicorn-workers", "node-cluster-none", "nginx"):
        running = real_server(name)
        workers = running.pids_holding - {running.root_pid}
        assert {ppid(pid) for pid in workers} == {running.root_pid}, name


def test_gunicorn_workers_share_the_master_argv(real_server: Start) -> None:
    running = real_server("gunicorn")
    assert {tuple(argv(pid)) for pid in running.pids_holding} == {tuple(argv(running.root_pid))}


def test_nginx_holds_both_families_with_the_same_processes(real_server: Start) -> None:
    running = real_server("nginx")
    sockets = default_collector().collect().listeners_on(running.port)
    assert sorted(s.family for s in sockets) == ["ipv4", "ipv6"]
    assert all(set(s.pids) == set(running.pids_holding) for s in sockets)


def test_django_parent_has_the_child_argv_but_no_socket(real_server: Start) -> None:
    running = real_server("django-runserver")
    [child] = running.pids_holding
    assert ppid(child) == running.root_pid
    assert argv(child) == argv(running.root_pid)


def test_socat_child_holds_only_its_connection(real_server: Start) -> None:
    running = real_server("socat-fork")
    conn_holders = holders(connection_inodes(running.port))
    assert conn_holders, "the client's connection has a server-side holder"
    assert not conn_holders & running.pids_holding
    assert all(ppid(pid) == running.root_pid for pid in conn_holders)


def test_node_round_robin_workers_hold_nothing(real_server: Start) -> None:
    running = real_server("node-cluster-rr")
    workers = {pid for pid in running.group_pids if ppid(pid) == running.root_pid}
    assert len(workers) == 2
    assert not workers & running.pids_holding


def test_background_server_outlived_its_script(real_server: Start) -> None:
    running = real_server("background-orphan")
    assert running.proc is not None and running.proc.poll() is not None  # the script exited
    assert ppid(running.root_pid) not in running.group_pids


# What stops each scenario: SIGTERM to root_pid frees the port (no listener left).
@pytest.mark.parametrize(
    "name",
    [
        "gunicorn",
        "uvicorn-workers",
        "uvicorn-reload",
        "flask-debug",
        "django-runserver",
        "background-orphan",
        "node-cluster-none",
        "node-cluster-rr",
        "nginx",
    ],
)
def test_sigterm_to_root_frees_the_port(real_server: Start, name: str) -> None:
    running = real_server(name)
    os.kill(running.root_pid, signal.SIGTERM)
    assert wait_until(lambda: not listening_inodes(running.port))


def test_sigterm_to_socat_leaves_its_connection_child(real_server: Start) -> None:
    running = real_server("socat-fork")
    child = holders(connection_inodes(running.port))
    os.kill(running.root_pid, signal.SIGTERM)
    assert wait_until(lambda: not listening_inodes(running.port))
    assert holders(connection_inodes(running.port)) == child


def test_sigterm_to_the_loop_leaves_its_server_holding(real_server: Start) -> None:
    running = real_server("shell-loop")
    assert running.proc is not None
    os.kill(running.root_pid, signal.SIGTERM)
    running.proc.wait(timeout=10)  # bash is gone ...
    assert listener_holders(running.port) == running.pids_holding  # ... its server is not


def test_docker_stop_through_the_api_frees_the_port(real_server: Start) -> None:
    running = real_server("docker")
    status, body = docker_api("POST", f"/containers/{running.container}/stop?t=5")
    assert status == 204, body
    assert wait_until(lambda: not listening_inodes(running.port))
