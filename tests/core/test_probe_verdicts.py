"""Every verdict of the probe from a real scenario on loopback (domain.md section 2)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

import pytest

from portscope.core.diagnose.bind_attempt import try_bind
from portscope.core.diagnose.probe import diagnose
from support import (
    PREFORK_SERVER,
    free_in_both,
    make_server_time_wait,
    neighbouring_listeners,
    retried,
    tcp_listener,
    udp_socket,
    wait_for,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[Popen[str], str]]


def closed_port() -> int:
    """A port the kernel just handed out and that nothing holds now."""
    with tcp_listener() as sock:
        port: int = sock.getsockname()[1]
    return port


def test_free_port_is_free() -> None:
    port = closed_port()
    verdict = diagnose(port)
    assert verdict.kind == "free" and verdict.free
    assert [a.ok for a in verdict.attempts] == [True, True]
    assert [a.option for a in verdict.attempts] == ["plain", "SO_REUSEADDR"]
    assert verdict.suggested_port is None and verdict.advice == ()


def test_wildcard_listener_names_this_process() -> None:
    with tcp_listener("0.0.0.0") as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port)
    assert verdict.kind == "listening" and not verdict.free
    assert os.getpid() in [h.pid for h in verdict.holders]
    assert [a.error for a in verdict.attempts] == ["EADDRINUSE", "EADDRINUSE"]
    assert verdict.attempts[0].windows_code == (10048, "WSAEADDRINUSE")
    assert f"pid {os.getpid()}" in verdict.sentence


def test_loopback_listener_blocks_wildcard_bind() -> None:
    with tcp_listener("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        assert diagnose(port, "0.0.0.0").kind == "listening"
        assert diagnose(port, "127.0.0.1").kind == "listening"
        # 127.0.0.2 does not overlap 127.0.0.1: a server could bind there.
        assert diagnose(port, "127.0.0.2").kind == "free"


def test_dual_stack_listener_blocks_ipv4_wildcard() -> None:
    with tcp_listener("::", v6only=False) as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port, "0.0.0.0")
    assert verdict.kind == "listening"
    assert os.getpid() in [h.pid for h in verdict.holders]
    assert "[::]:" in verdict.explanation[0]


def test_v6only_listener_leaves_ipv4_free() -> None:
    # A port the kernel chose clear of IPv4 TIME_WAIT (an IPv6 listener's port is chosen
    # clear of IPv6 sockets only, and an earlier test's IPv4 TIME_WAIT would answer first).

    def v6only_on_a_v4_chosen_port() -> socket.socket:
        with tcp_listener("0.0.0.0") as probe:
            port = probe.getsockname()[1]
        return tcp_listener("::", port, v6only=True)

    with retried(v6only_on_a_v4_chosen_port) as v6:
        port = v6.getsockname()[1]
        assert diagnose(port, "0.0.0.0").kind == "free"
        assert diagnose(port, "::").kind == "listening"


def test_dual_stack_probe_of_ipv6_wildcard_sees_ipv4_listener() -> None:
    """We probe `::` dual-stack (IPV6_V6ONLY=0), as a server that binds `::` usually is."""
    with tcp_listener("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        assert diagnose(port, "::").kind == "listening"
        assert diagnose(port, "::1").kind == "free"


def test_reuseport_listener_still_blocks_the_probe() -> None:
    """The probe never sets SO_REUSEPORT: if it did, it could bind beside this listener."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    with sock:
        verdict = diagnose(sock.getsockname()[1], "127.0.0.1")
    assert verdict.kind == "listening"
    assert not any(a.ok for a in verdict.attempts)


def test_time_wait_from_listener_without_reuseaddr() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 3)
    verdict = diagnose(port)
    assert verdict.kind == "time_wait"
    assert verdict.holders == ()
    assert verdict.time_wait is not None
    assert verdict.time_wait.count == 3
    assert verdict.time_wait.reuseaddr_fixes is False
    assert verdict.time_wait.expires_in is not None and 50 < verdict.time_wait.expires_in <= 61
    assert [a.ok for a in verdict.attempts] == [False, False]
    assert "did not set SO_REUSEADDR" in " ".join(verdict.explanation)
    assert any("portscope wait" in line for line in verdict.advice)


def test_time_wait_from_listener_with_reuseaddr() -> None:
    with tcp_listener(reuseaddr=True) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 2)
    verdict = diagnose(port)
    assert verdict.kind == "time_wait"
    assert verdict.time_wait is not None and verdict.time_wait.count == 2
    assert verdict.time_wait.reuseaddr_fixes is True
    assert [a.ok for a in verdict.attempts] == [False, True]
    assert any("SO_REUSEADDR, 1" in line for line in verdict.advice)  # the Python snippet
    assert any("setsockopt(fd, SOL_SOCKET" in line for line in verdict.advice)  # the C one


def test_udp_and_tcp_are_separate_port_spaces() -> None:
    port = free_in_both("0.0.0.0")
    with udp_socket("0.0.0.0", port):
        udp = diagnose(port, proto="udp")
        tcp = diagnose(port, proto="tcp")
    assert udp.kind == "udp_bound"
    assert os.getpid() in [h.pid for h in udp.holders]
    assert tcp.kind == "free"
    port = free_in_both("0.0.0.0")
    with tcp_listener("0.0.0.0", port):
        assert diagnose(port, proto="udp").kind == "free"
        assert diagnose(port, proto="tcp").kind == "listening"


INHERITED_CONNECTION = """
import socket, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
srv.close()  # the listener is gone; the accepted connection stays
print("accepted", flush=True)
time.sleep(60)
"""


def test_established_connection_without_listener(spawn: Spawn) -> None:
    proc, line = spawn(INHERITED_CONNECTION)
    port = int(line)
    with socket.create_connection(("127.0.0.1", port)) as client:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "accepted"
        verdict = diagnose(port)
        assert client.fileno() >= 0
    assert verdict.kind == "connections"
    assert [h.pid for h in verdict.holders] == [proc.pid]
    # The listener had no SO_REUSEADDR, so that attempt fails too (domain.md row 5).
    assert [a.ok for a in verdict.attempts] == [False, False]
    assert f"pid {proc.pid}" in verdict.sentence


def test_unknown_address_is_not_available() -> None:
    verdict = diagnose(closed_port(), "192.0.2.1")  # TEST-NET-1: never on this host
    assert verdict.kind == "address_not_available"
    assert verdict.attempts[0].error == "EADDRNOTAVAIL"
    assert verdict.attempts[0].windows_code == (10049, "WSAEADDRNOTAVAIL")
    assert verdict.suggested_port is None


def test_suggested_port_is_really_free() -> None:
    with tcp_listener("0.0.0.0") as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port)
        assert verdict.suggested_port is not None and verdict.suggested_port > port
        assert try_bind(verdict.suggested_port, "0.0.0.0", "tcp", "plain").ok
        assert diagnose(verdict.suggested_port, suggest=False).kind == "free"


def test_suggestion_skips_busy_neighbours() -> None:
    first, neighbour = neighbouring_listeners("0.0.0.0")
    port = first.getsockname()[1]
    with first, neighbour:
        verdict = diagnose(port)
    assert verdict.suggested_port is not None and verdict.suggested_port >= port + 2


PREFORK = PREFORK_SERVER.format(workers=2, port=0)


def test_prefork_server_names_master_and_workers(spawn: Spawn) -> None:
    proc, line = spawn(PREFORK)
    port, *workers = (int(x) for x in line.split())
    verdict = diagnose(port, cwd="/")
    assert verdict.kind == "listening"
    assert sorted(h.pid for h in verdict.holders) == sorted([proc.pid, *workers])
    assert verdict.inherited == ()  # workers run the server's own code
    assert any(f"kill {proc.pid}" in line and "worker" in line for line in verdict.advice)
    assert verdict.sentence.endswith("are listening on it.")  # three of them, not "is"


SAME_PROGRAM = """
import os, socket, time
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen()
    print(s.getsockname()[1], flush=True)
except OSError:
    print("busy", flush=True)
time.sleep(60)
"""


def test_earlier_copy_by_working_directory(spawn: Spawn, tmp_path: Path) -> None:
    _, line = spawn(SAME_PROGRAM, env={**os.environ, "PORT": "0"}, cwd=str(tmp_path))
    port = int(line)
    assert diagnose(port, cwd=str(tmp_path)).already_running is True
    elsewhere = diagnose(port, cwd="/")
    assert elsewhere.already_running is False
    assert "earlier copy" not in " ".join(elsewhere.explanation)


def test_earlier_copy_by_same_command_line(spawn: Spawn) -> None:
    _, line = spawn(SAME_PROGRAM, env={**os.environ, "PORT": "0"})
    port = int(line)
    _, second = spawn(SAME_PROGRAM, env={**os.environ, "PORT": str(port)})
    assert second == "busy"  # the second copy met EADDRINUSE, as the user's restart did
    verdict = diagnose(port, cwd="/")
    assert verdict.already_running is True
    assert "earlier copy of your own program" in " ".join(verdict.explanation)


# A server that hands its listening socket to a child running another program, as a server
# that spawns a helper without close_fds does.
LEAKY_SERVER = """
import socket, subprocess, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         pass_fds=[s.fileno()])
print(s.getsockname()[1], child.pid, flush=True)
time.sleep(60)
"""


def test_child_running_another_program_inherited_the_listener(spawn: Spawn) -> None:
    proc, line = spawn(LEAKY_SERVER)
    port, child = (int(x) for x in line.split())
    verdict = diagnose(port, cwd="/")
    assert verdict.kind == "listening"
    assert sorted(h.pid for h in verdict.holders) == sorted([proc.pid, child])
    assert verdict.inherited == (child,)


def test_orphan_keeps_the_port_after_the_server_died(spawn: Spawn) -> None:
    proc, line = spawn(LEAKY_SERVER)
    port, child = (int(x) for x in line.split())
    proc.kill()  # only the server: its child lives on, reparented, holding the socket
    proc.wait()
    verdict = diagnose(port, cwd="/")
    assert verdict.kind == "listening"
    assert [h.pid for h in verdict.holders] == [child]
    assert verdict.inherited == (child,)
    assert "stopping the server did not free the port" in " ".join(verdict.explanation)
    assert any(f"kill {child}" in line for line in verdict.advice)


def test_daemon_listener_is_not_called_inherited(spawn: Spawn) -> None:
    # A session leader (as daemons are) that owns its socket is the server itself.
    proc, line = spawn(SAME_PROGRAM, env={**os.environ, "PORT": "0"})
    verdict = diagnose(int(line), cwd="/")
    assert [h.pid for h in verdict.holders] == [proc.pid]
    assert verdict.inherited == ()


def test_reprobe_follows_the_kernel() -> None:
    # A re-probe reads the kernel again: a new listener replaces TIME_WAIT as the cause.
    with tcp_listener(reuseaddr=True) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 1)
    assert diagnose(port).kind == "time_wait"
    with tcp_listener("127.0.0.1", port, reuseaddr=True):
        assert diagnose(port).kind == "listening"
    wait_for(lambda: diagnose(port, suggest=False).kind == "time_wait")
