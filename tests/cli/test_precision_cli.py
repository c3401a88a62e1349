"""Issue 11 at the command line, against real sockets and servers on loopback: `check` and
`wait --reuseaddr`, the README's restart recipe with a real SO_REUSEADDR server, `check`
with no --host naming what a `localhost`/`::` server meets, and what `kill` says when it has
nothing to stop."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portscope.core.collect.proc_collector import ProcNetCollector
from support import (
    UDP_LISTENER,
    make_server_time_wait,
    pid_alive,
    quiet_port,
    reap,
    tcp_listener,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
README = Path(__file__).resolve().parents[2] / "README.md"


def portscope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def time_wait_port(*, reuseaddr: bool, count: int = 2) -> int:
    with tcp_listener(reuseaddr=reuseaddr) as sock:
        port: int = sock.getsockname()[1]
        make_server_time_wait(sock, count)
    return port


# -- check --reuseaddr / wait --reuseaddr ----------------------------------------------


def test_check_reuseaddr_exits_zero_when_a_reuseaddr_server_can_start() -> None:
    port = time_wait_port(reuseaddr=True)
    plain = portscope("check", str(port), "--host", "127.0.0.1")
    reuse = portscope("check", str(port), "--host", "127.0.0.1", "--reuseaddr")
    as_json = portscope("check", str(port), "--host", "127.0.0.1", "--reuseaddr", "--json")
    assert plain.returncode == 1 and reuse.returncode == 0, reuse.stderr
    assert reuse.stdout.splitlines()[:2] == [
        f"A server that sets SO_REUSEADDR can bind 127.0.0.1:{port}/tcp now; a plain bind",
        "still fails (TIME_WAIT).",
    ]
    # The verdict itself is unchanged: still TIME_WAIT, and the advice names the wait.
    assert f"Port {port}/tcp is held only by 2 TIME_WAIT sockets" in reuse.stdout
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["verdict"] == "time_wait"
    assert data["can_bind"] == {"plain": False, "reuseaddr": True}
    assert data["server_bind"] == {"option": "SO_REUSEADDR", "program": None, "from": "time_wait"}


def test_check_reuseaddr_still_fails_when_the_old_server_did_not_set_it() -> None:
    port = time_wait_port(reuseaddr=False)
    result = portscope("check", str(port), "--reuseaddr")
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"A server that sets SO_REUSEADDR cannot bind 0.0.0.0:{port}/tcp now either."
    )
    assert "the old server did not set SO_REUSEADDR" in " ".join(result.stdout.split())


def test_wait_reuseaddr_returns_at_once_where_a_plain_wait_would_block() -> None:
    port = time_wait_port(reuseaddr=True)
    reuse = portscope("wait", str(port), "--reuseaddr", "--timeout", "30")
    plain = portscope("wait", str(port), "--timeout", "0.5")
    assert reuse.returncode == 0, reuse.stderr
    assert re.fullmatch(
        rf"port {port}/tcp can be bound with SO_REUSEADDR on 0\.0\.0\.0 \(waited \d+\.\d s\)\n",
        reuse.stdout,
    )
    assert plain.returncode == 1 and "timed out after 0.5 s" in plain.stderr


def test_wait_reuseaddr_says_why_it_still_waits() -> None:
    port = time_wait_port(reuseaddr=False, count=1)
    result = portscope("wait", str(port), "--reuseaddr", "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(
        f"waiting: 1 TIME_WAIT on {port} (the old server did not set SO_REUSEADDR), clears in "
    )


# -- the README's restart recipe ---------------------------------------------------------


def readme_recipe() -> str:
    """The restart line as the README prints it."""
    text = README.read_text()
    [line] = [ln for ln in text.splitlines() if ln.startswith("portscope kill 8080 ")]
    assert line.endswith("&& exec ./server")
    return line


def http_server_argv(port: int) -> list[str]:
    """Python's http.server: a real server that sets SO_REUSEADDR, as most frameworks do."""
    return [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port)]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        reap(proc)


def test_readme_recipe_restarts_a_reuseaddr_server_without_waiting_for_time_wait(
    started: list[subprocess.Popen[str]],
) -> None:
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
    old = subprocess.Popen(
        http_server_argv(port), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    started.append(old)
    assert old.stdout is not None and old.stdout.readline().startswith("Serving HTTP")
    # An HTTP/1.0 request: the server closes first, so its port keeps a TIME_WAIT socket,
    # which has the listener's SO_REUSEADDR.
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /nonexistent HTTP/1.0\r\n\r\n")
        while client.recv(4096):
            pass
    stats = ProcNetCollector().collect().port_stats(port)
    assert stats is not None and stats.time_wait >= 1
    recipe = readme_recipe().replace("8080", str(port)).replace(
        "./server", shlex.join(http_server_argv(port))
    )
    shell = f'portscope() {{ {shlex.quote(sys.executable)} -m portscope "$@"; }}; {recipe}'
    chain = subprocess.Popen(
        ["sh", "-c", shell], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    started.append(chain)
    assert chain.stdout is not None
    said = []
    for line in chain.stdout:  # until the new server says it serves (or the chain ends)
        said.append(line.rstrip("\n"))
        if line.startswith("Serving HTTP"):
            break
    assert said and said[-1].startswith("Serving HTTP"), (said, chain.stderr)
    assert old.wait(timeout=10) == -15  # the kill stopped the old server with SIGTERM
    assert any(
        ln.startswith(f"port {port}/tcp can be bound with SO_REUSEADDR on 0.0.0.0") for ln in said
    )
    snap = ProcNetCollector().collect()
    [listener] = snap.listeners_on(port)
    assert listener.pids == (chain.pid,)  # `exec` made the shell the new server
    # The proof of no needless wait: the old TIME_WAIT is still there (it lasts 60 s).
    stats = snap.port_stats(port)
    assert stats is not None and stats.time_wait >= 1


# -- check with no --host: the addresses servers commonly bind ------------------------


def test_check_names_an_ipv6_loopback_server_while_ipv4_is_free() -> None:
    with tcp_listener("::1") as sock:
        port = sock.getsockname()[1]
        text = portscope("check", str(port))
        as_json = portscope("check", str(port), "--json")
        localhost = portscope("check", str(port), "--host", "localhost")
        localhost_json = portscope("check", str(port), "--host", "localhost", "--json")
    assert text.returncode == 0, text.stderr  # the verdict is that of 0.0.0.0
    flat = " ".join(text.stdout.split())
    assert flat.startswith(
        f"Port {port}/tcp is free on 0.0.0.0: a server can bind it now. It is taken on [::], "
        "[::1]."
    )
    assert re.search(
        rf"\[::\]:{port} and \[::1\]:{port} are taken: \S+ \(pid {os.getpid()}\b", flat
    )
    assert "node 17+ resolves it to ::1 first" in flat
    data = json.loads(as_json.stdout)
    assert data["verdict"] == "free" and as_json.returncode == 0
    others = {o["address"]: o for o in data["others"]}
    assert set(others) == {"::", "127.0.0.1", "::1"}
    assert others["::1"]["verdict"] == "listening" and others["127.0.0.1"]["verdict"] == "free"
    assert os.getpid() in [h["pid"] for h in others["::1"]["holders"]]
    # --host localhost: both loopbacks, the worse wins; no survey of others then.
    assert localhost.returncode == 1
    assert localhost.stdout.startswith("localhost: in use on ::1, free on 127.0.0.1")
    assert json.loads(localhost_json.stdout)["address"] == "::1"
    assert json.loads(localhost_json.stdout)["others"] == []


def test_check_of_a_v6only_wildcard_does_not_say_it_overlaps_ipv4() -> None:
    with tcp_listener("::", v6only=True) as v6:
        port = v6.getsockname()[1]
        result = portscope("check", str(port))
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    assert "overlaps 0.0.0.0" not in flat
    assert f"listens on [::]:{port} (v6only)" in flat


# -- kill with nothing to stop -----------------------------------------------------------


def test_tcp_kill_of_a_udp_only_port_gives_the_udp_hint(spawn: Spawn) -> None:
    proc, line = spawn(UDP_LISTENER)
    port = line
    result = portscope("kill", port, "--yes")
    as_json = portscope("kill", port, "--yes", "--json")
    check = portscope("check", port, "--host", "127.0.0.1")
    assert result.returncode == 0 and pid_alive(proc.pid)
    lines = result.stdout.splitlines()
    assert lines[0] == f"nothing holds tcp port {port}"
    assert re.match(rf"UDP port {port} is bound by \S+ \(pid {proc.pid}\b", lines[1])
    assert lines[1].endswith(f"portscope kill --udp {port} stops it.")
    assert lines[2] == f"tcp port {port} is free"
    after = json.loads(as_json.stdout)["after"]
    assert [(s["proto"], [p["pid"] for p in s["processes"]]) for s in after["other_proto"]] == [
        ("udp", [proc.pid]),
    ]
    # `check` says the same words.
    assert check.returncode == 0 and " ".join(lines[1].split()) in " ".join(check.stdout.split())


def test_kill_of_a_time_wait_only_port_says_nothing_was_killed() -> None:
    port = time_wait_port(reuseaddr=False, count=2)
    result = portscope("kill", str(port), "--yes")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == f"nothing to stop on tcp port {port}"
    assert re.fullmatch(
        rf"tcp port {port} is held only by 2 TIME_WAIT sockets, which belong to no process; "
        r"it frees itself in \d+ s; until then bind\(\) fails",
        second,
    )
    assert "killed" not in result.stdout


def test_udp_hint_survives_a_hostile_process_name(spawn: Spawn) -> None:
    """The hint quotes the holder's name: it is escaped like every other line."""
    proc, line = spawn(
        """
        import ctypes, socket, time
        ctypes.CDLL(None).prctl(15, b"\\x1b]0;pwned\\x07", 0, 0, 0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", PORT))
        print(s.getsockname()[1], flush=True)
        while True:
            time.sleep(1)
        """.replace("PORT", str(quiet_port()))  # no TCP socket there: `kill` must find none
    )
    result = portscope("kill", line, "--yes")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert f"UDP port {line} is bound by " in result.stdout and f"pid {proc.pid}" in result.stdout

