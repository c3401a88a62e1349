"""Real containers and real forgeries for the Docker evidence tests.

Containers are made through the Engine API (real_servers.docker_api), named per run (so two
runs never remove each other's) and labelled portscope.test; `Containers.remove_all` removes
exactly the ones it made. Forgeries are what an unprivileged local user can do: a listener
run as nobody whose name and argv are a docker-proxy's, or which sits in a cgroup named
after someone else's container.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from real_servers import (
    DOCKER_IMAGE,
    DOCKER_LABEL,
    READY_TIMEOUT,
    _docker_remove,
    _ensure_test_image,
    docker_api,
    docker_socket,
    missing,
)
from support import NOBODY, reap


@dataclass(frozen=True)
class Run:
    name: str
    id: str
    pid: int  # State.Pid: the container's main process, in our PID namespace
    ip: str  # on Docker's bridge ("" with the host's network)


def portscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True,
        timeout=120, env=env, stdin=subprocess.DEVNULL,
    )


def portscope_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    done = portscope(*args, "--json", env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def inspect(name: str) -> dict[str, Any]:
    status, body = docker_api("GET", f"/containers/{name}/json")
    assert status == 200, body[-300:]
    info: dict[str, Any] = json.loads(body)
    return info


def running(name: str) -> bool:
    return bool(inspect(name)["State"]["Running"])


def answers_http(address: str, port: int) -> bool:
    """An HTTP answer through the published port: the container's server is up."""
    try:
        with socket.create_connection((address, port), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def wait_until(predicate: Any, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


class Containers:
    """Starts containers of the busybox test image; removes every one it started."""

    def __init__(self) -> None:
        try:
            status, _ = docker_api("GET", "/_ping", timeout=5)
        except OSError as exc:
            missing(f"dockerd is not reachable on {docker_socket()}: {exc}")
        if status != 200:
            missing(f"dockerd answered /_ping with HTTP {status}")
        _ensure_test_image()
        self.names: list[str] = []

    def run(
        self, cmd: list[str], *, publish: tuple[tuple[str, int], ...] = (),
        labels: dict[str, str] | None = None, stop_timeout: int | None = None,
        host_network: bool = False,
    ) -> Run:
        """`docker run -d --init [-p ADDR:PORT:8080 ...] IMAGE cmd`, started."""
        name = f"portscope-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        host: dict[str, Any] = {"Init": True}
        if host_network:
            host["NetworkMode"] = "host"
        if publish:
            host["PortBindings"] = {
                "8080/tcp": [{"HostIp": ip, "HostPort": str(port)} for ip, port in publish]
            }
        spec: dict[str, Any] = {
            "Image": DOCKER_IMAGE, "Cmd": cmd, "ExposedPorts": {"8080/tcp": {}},
            "Labels": {DOCKER_LABEL: str(os.getpid()), **(labels or {})}, "HostConfig": host,
        }
        if stop_timeout is not None:
            spec["StopTimeout"] = stop_timeout
        status, answer = docker_api("POST", f"/containers/create?name={name}", spec)
        if status != 201:
            pytest.fail(f"docker create failed: HTTP {status} {answer[-300:]!r}")
        self.names.append(name)
        status, answer = docker_api("POST", f"/containers/{name}/start")
        if status not in (204, 304):
            pytest.fail(f"docker start failed: HTTP {status} {answer[-300:]!r}")
        info = inspect(name)
        networks = info["NetworkSettings"].get("Networks") or {}
        ip = next((n.get("IPAddress") or "" for n in networks.values()), "")
        return Run(name, info["Id"], int(info["State"]["Pid"]), ip)

    def remove_all(self) -> None:
        for name in self.names:
            _docker_remove(name)


@contextlib.contextmanager
def containers() -> Iterator[Containers]:
    made = Containers()
    try:
        yield made
    finally:
        made.remove_all()


HTTPD = ["/bin/busybox", "httpd", "-f", "-p", "8080"]

# Run as nobody: name itself (prctl) as argv asks, listen on -host-ip:-host-port, say ready.
FORGED = r"""
import ctypes, socket, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(args.pop("-name").encode()), 0, 0, 0)
host, port = args["-host-ip"], int(args["-host-port"])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, port))
s.listen()
print("ready", flush=True)
while True:
    time.sleep(1)
"""


@contextlib.contextmanager
def forged_listener(
    address: str, port: int, *, container_ip: str = "172.17.0.2", name: str = "docker-proxy",
    argv0: str = "/usr/sbin/docker-proxy",
) -> Iterator[subprocess.Popen[str]]:
    """A listener of nobody's on address:port whose comm is `name` and whose argv is a
    docker-proxy's for `container_ip` (argv[0] too: the interpreter is run under that name).
    Its /proc/PID/exe is still /usr/bin/python3: what the kernel says, not what it says."""
    args = [argv0, "-c", FORGED, "-name", name, "-proto", "tcp", "-host-ip", address,
            "-host-port", str(port), "-container-ip", container_ip, "-container-port", "8080"]
    proc = subprocess.Popen(
        args, executable="/usr/bin/python3", user=NOBODY, group=NOBODY, extra_groups=[],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        reap(proc)


def cgroup2_root() -> str | None:
    """Where the unified (v2) cgroup hierarchy is mounted, if it is."""
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            if " - cgroup2 " in line:
                return fields[4]
    return None


@contextlib.contextmanager
def forged_cgroup(container_id: str) -> Iterator[str]:
    """A cgroup named `docker-<id>.scope`, as any user can make under systemd's delegation;
    yields its cgroup.procs. Removed once the processes moved into it are gone."""
    root = cgroup2_root()
    if root is None:
        missing("no cgroup v2 hierarchy is mounted")
    top = os.path.join(root, f"portscope-test-{uuid.uuid4().hex[:10]}")
    leaf = os.path.join(top, f"docker-{container_id}.scope")
    try:
        os.makedirs(leaf)
    except OSError as exc:
        missing(f"cannot make a cgroup under {root}: {exc}")
    try:
        yield os.path.join(leaf, "cgroup.procs")
    finally:
        for path in (leaf, top):
            wait_until(lambda p=path: _rmdir(p), f"removing {path}", 10)


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # a process is still leaving it
    return True
