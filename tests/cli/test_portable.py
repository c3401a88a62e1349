"""The portable path end to end (issue 22): what macOS and Windows run (psutil for sockets
and processes, no netlink, no /proc read directly, no pidfd), taken on Linux with
PORTSCOPE_PORTABLE=1 and checked against `ss` and against the fast path, on real sockets
and real servers. Each command here names its path in its own environment, so these tests
check the same thing in either session of the suite."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portscope.core.platform_path import portable
from real_servers import Running, listener_holders
from support import (
    PREFORK_SERVER,
    make_server_time_wait,
    pid_alive,
    ss_lines,
    ss_time_wait,
    tcp_listener,
    udp_socket,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the portable path is checked against ss"
)

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
Key = tuple[str, str, int]  # proto, address, port
PORTABLE = {"PORTSCOPE_PORTABLE": "1"}
FAST = {"PORTSCOPE_PORTABLE": "0"}


def portscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
    )


def listed(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = portscope("list", "--json", *args, env=env)
    assert result.returncode == 0 and not result.stderr, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def ss_listeners(ports: set[int]) -> dict[Key, set[int]]:
    """Listening TCP and bound UDP sockets on `ports`, with their holders, as `ss -p` says."""
    found: dict[Key, set[int]] = {}
    for proto, flag in (("tcp", "-tlnp"), ("udp", "-ulnp")):
        for line in ss_lines(flag):
            local = line.split()[3]
            host, _, port = local.rpartition(":")
            if int(port) in ports:
                key = (proto, host.strip("[]"), int(port))
                found.setdefault(key, set()).update(
                    int(p) for p in re.findall(r"pid=(\d+)", line)
                )
    return found


def json_listeners(data: dict[str, Any], ports: set[int]) -> dict[Key, set[int]]:
    return {
        (s["proto"], s["address"], s["port"]): {p["pid"] for p in s["processes"]}
        for s in data["sockets"] if s["port"] in ports
    }


def load_test_time_wait(listener: socket.socket, count: int) -> None:
    """`count` TIME_WAIT as a load-test client leaves them: the client closes first, so
    each lands on one of its ephemeral ports. (A server closing first would leave them on
    its own port, with the client ports as remote ends: for 60 s those numbers would skew
    how later tests' polls tell clients from servers, sides.py.)"""
    for _ in range(count):
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        client.close()  # the client's FIN first
        accepted.recv(1)  # wait for it to arrive
        accepted.close()  # then the server's FIN moves the client side to TIME_WAIT


def ss_client_time_wait(port: int) -> int:
    """TIME_WAIT sockets whose remote port is `port`, as `ss` counts them."""
    lines = ss_lines("-tan", "state", "time-wait")
    return sum(1 for line in lines if int(line.split()[3].rpartition(":")[2]) == port)


def test_list_json_matches_ss_on_a_loaded_machine(spawn: Spawn) -> None:
    """A pre-fork server (master and 3 workers on one listener), UDP on both families, an
    IPv6 listener, and a load test's 2,000 TIME_WAIT: listeners, every holder and the
    TIME_WAIT count are what `ss` says; what psutil cannot know is null, never guessed."""
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    prefork, *workers = (int(x) for x in line.split())
    with (
        tcp_listener() as busy,
        tcp_listener("::1") as six,
        udp_socket() as u4,
        udp_socket("::1") as u6,
    ):
        crowded, ipv6 = busy.getsockname()[1], six.getsockname()[1]
        load_test_time_wait(busy, 2000)
        make_server_time_wait(busy, 2)  # and the server's own
        ports = {prefork, crowded, ipv6, u4.getsockname()[1], u6.getsockname()[1]}
        wait_for(lambda: ss_client_time_wait(crowded) == 2000 and ss_time_wait(crowded) == 2)
        data = listed(PORTABLE)
        fast = listed(FAST)
        reference = ss_listeners(ports)
    assert data["source"] == "psutil (portable)" and fast["source"] == "proc"
    mine = json_listeners(data, ports)
    assert mine == reference == json_listeners(fast, ports)
    assert mine[("tcp", "127.0.0.1", prefork)] == {proc.pid, *workers}
    assert mine[("tcp", "::1", ipv6)] == {os.getpid()}
    [clients] = [d for d in data["clients"] if d["port"] == crowded]
    assert clients["address"] == "127.0.0.1" and clients["time_wait"] == 2000
    [stats] = [p for p in data["ports"] if p["port"] == crowded]
    assert stats["time_wait"] == 2
    assert stats["time_wait_expires_in"] is None  # psutil gives no timers
    [fast_clients] = [d for d in fast["clients"] if d["port"] == crowded]
    assert fast_clients["time_wait"] == 2000
    for sock in data["sockets"]:
        if sock["port"] in ports:
            assert sock["uid"] is None and sock["v6only"] is None, sock


def test_portable_is_an_option_before_or_after_the_command() -> None:
    with tcp_listener() as listener:
        port = str(listener.getsockname()[1])
        before = listed(FAST, "--port", port)  # the variable says 0: the flag still wins
        flag_first = portscope("--portable", "list", "--json", "--port", port, env=FAST)
        flag_after = portscope("list", "--port", port, "--portable", "--json", env=FAST)
        as_macos = listed({"PORTSCOPE_PORTABLE": "macos-nonroot"}, "--port", port)
    assert before["source"] == "proc"
    for result in (flag_first, flag_after):
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["source"] == "psutil (portable)"
        [sock] = data["sockets"]
        assert [p["pid"] for p in sock["processes"]] == [os.getpid()]
    # macOS without root: the system-wide list is refused, each process is asked instead.
    assert as_macos["source"] == "psutil (portable, as macOS without root)"
    [sock] = as_macos["sockets"]
    assert [p["pid"] for p in sock["processes"]] == [os.getpid()]
    helped = portscope("--help")
    assert "--portable" in helped.stdout and "PORTSCOPE_PORTABLE" in helped.stdout


def test_a_bad_value_of_the_variable_is_one_line_and_exit_2() -> None:
    result = portscope("list", env={"PORTSCOPE_PORTABLE": "sometimes\x1b[2J"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("portscope: PORTSCOPE_PORTABLE must be 1")
    assert len(result.stderr.splitlines()) == 1 and "\x1b" not in result.stderr
    assert "Traceback" not in result.stderr


# -- check: the same verdicts on both paths -------------------------------------------


@contextlib.contextmanager
def scenario(name: str) -> Iterator[tuple[str, ...]]:
    """Sockets in one state the probe must name; yields `check`'s arguments."""
    with contextlib.ExitStack() as stack:
        if name == "free":
            with tcp_listener() as probe:
                port = probe.getsockname()[1]
            yield (str(port), "--host", "127.0.0.1")
        elif name == "listening":
            sock = stack.enter_context(tcp_listener())
            yield (str(sock.getsockname()[1]),)
        elif name == "dual-stack":
            sock = stack.enter_context(tcp_listener("::", v6only=False))
            yield (str(sock.getsockname()[1]), "--host", "0.0.0.0")
        elif name in ("v6only-ipv4", "v6only-ipv6"):
            sock = stack.enter_context(tcp_listener("::", v6only=True))
            host = "0.0.0.0" if name == "v6only-ipv4" else "::"
            yield (str(sock.getsockname()[1]), "--host", host)
        elif name == "udp":
            sock = stack.enter_context(udp_socket())
            yield (str(sock.getsockname()[1]), "--udp", "--host", "127.0.0.1")
        elif name in ("time-wait", "time-wait-reuseaddr"):
            with tcp_listener(reuseaddr=name.endswith("reuseaddr")) as sock:
                port = sock.getsockname()[1]
                make_server_time_wait(sock, 3)
            yield (str(port), "--host", "127.0.0.1")
        elif name == "connections":  # an accepted connection outlives its listener
            listener = tcp_listener()
            port = listener.getsockname()[1]
            client = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            accepted, _ = listener.accept()
            stack.enter_context(accepted)
            listener.close()
            assert client.fileno() >= 0
            yield (str(port), "--host", "127.0.0.1")
        else:
            raise AssertionError(name)


def verdict_of(args: tuple[str, ...], env: dict[str, str]) -> dict[str, Any]:
    result = portscope("check", *args, "--json", env=env)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    stop = data["stop"]
    return {
        "verdict": data["verdict"],
        "can_bind": data["can_bind"],
        "holders": sorted(h["pid"] for h in data["holders"]),
        "stop": (stop["how"], stop["pids"], stop["withheld"]),
        "others": [(o["address"], o["verdict"]) for o in data["others"]],
        "reuseaddr_fixes": (data["time_wait"] or {}).get("reuseaddr_fixes"),
    }


@pytest.mark.parametrize("name", [
    "free", "listening", "dual-stack", "v6only-ipv4", "v6only-ipv6", "udp", "time-wait",
    "time-wait-reuseaddr", "connections",
])
def test_check_gives_the_fast_paths_verdict(name: str) -> None:
    with scenario(name) as args:
        fast = verdict_of(args, FAST)
        port_ = verdict_of(args, PORTABLE)
    assert port_ == fast
    expected = {
        "free": "free", "listening": "listening", "dual-stack": "listening",
        "v6only-ipv4": "free", "v6only-ipv6": "listening", "udp": "udp_bound",
        "time-wait": "time_wait", "time-wait-reuseaddr": "time_wait",
        "connections": "connections",
    }[name]
    assert fast["verdict"] == expected
    if expected in ("listening", "udp_bound", "connections"):
        assert fast["holders"] == [os.getpid()]


# -- kill: a real gunicorn, stopped and proved gone ---------------------------------------


def test_kill_stops_a_real_gunicorn_and_proves_the_port_free(
    real_server: Callable[..., Running],
) -> None:
    srv = real_server("gunicorn", workers=2)
    assert len(srv.pids_holding) == 3
    result = portscope("kill", str(srv.port), "--yes", "--json", env=PORTABLE)
    assert result.returncode == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    assert [t["pid"] for t in data["targets"]] == [srv.root_pid]  # the master, not workers
    assert srv.root_pid in data["exited"] and data["still_running"] == []
    assert data["refused"] == []
    assert data["after"]["verdict"] == "free"
    assert not listener_holders(srv.port)
    assert srv.proc is not None and srv.proc.wait(timeout=10) is not None  # reaped by us
    workers = srv.pids_holding - {srv.root_pid}
    wait_for(lambda: not any(pid_alive(p) for p in workers), timeout=10)
    with socket.socket() as again:  # the proof, at the kernel: a plain bind works
        again.bind(("127.0.0.1", srv.port))


def test_this_session_names_its_own_path() -> None:
    """The second run of the marked modules really is on the portable path (and the first
    is not): their in-process collectors and subprocesses all take it."""
    data = listed({})
    assert data["source"] == ("psutil (portable)" if portable() else "proc")
