"""Issue 11: the bind a SO_REUSEADDR server does, against real sockets on loopback. Which
bind can start now (Verdict.can_bind), what the holder or the port's TIME_WAIT says about the
server's own bind, and the cheap poll `wait --reuseaddr` runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from portscope.core.diagnose.advice import bind_sentence
from portscope.core.diagnose.bind_attempt import bind_option
from portscope.core.diagnose.probe import diagnose, first_blocked
from portscope.core.diagnose.reuse import SETS_REUSEADDR
from portscope.core.diagnose.verdict import ServerBind
from portscope.core.serialize import verdict_json
from support import make_server_time_wait, reap, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]



def start_http_server(port: int) -> subprocess.Popen[str]:
    """Python's own http.server, a real server that sets SO_REUSEADDR (socketserver's
    allow_reuse_address), started the way people start it: `python -m http.server`. Ready
    once it printed "Serving HTTP on ...". In its own process group, for reap()."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith("Serving HTTP"):
        reap(proc)
        raise AssertionError("http.server did not start")
    return proc


@pytest.fixture
def http_server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    with tcp_listener() as sock:
        port: int = sock.getsockname()[1]
    proc = start_http_server(port)
    try:
        yield proc, port
    finally:
        reap(proc)


def time_wait_port(*, reuseaddr: bool, count: int = 2) -> int:
    with tcp_listener(reuseaddr=reuseaddr) as sock:
        port: int = sock.getsockname()[1]
        make_server_time_wait(sock, count)
    return port


def test_time_wait_of_a_reuseaddr_server_lets_a_reuseaddr_server_start() -> None:
    port = time_wait_port(reuseaddr=True)
    verdict = diagnose(port, "127.0.0.1", suggest=False)
    assert verdict.kind == "time_wait"
    assert not verdict.can_bind("plain") and verdict.can_bind("reuseaddr")
    assert verdict.server_bind == ServerBind(True, None, "time_wait")
    assert bind_sentence(verdict, "reuseaddr") == (
        f"A server that sets SO_REUSEADDR can bind 127.0.0.1:{port}/tcp now; a plain bind "
        "still fails (TIME_WAIT)."
    )
    assert bind_sentence(verdict, "plain") == verdict.sentence
    first = verdict.advice[0]
    assert first.startswith("If your server sets SO_REUSEADDR (gunicorn, uvicorn, node")
    assert f"portscope wait {port} --host 127.0.0.1 --reuseaddr returns at once" in first
    data = verdict_json(verdict)
    assert data["can_bind"] == {"plain": False, "reuseaddr": True}
    assert data["server_bind"] == {"option": "SO_REUSEADDR", "program": None, "from": "time_wait"}
    assert first_blocked(port, ("127.0.0.1",), "tcp", "plain") == "127.0.0.1"
    assert first_blocked(port, ("127.0.0.1",), "tcp", "reuseaddr") is None


def test_time_wait_of_a_plain_server_blocks_both_binds() -> None:
    port = time_wait_port(reuseaddr=False)
    verdict = diagnose(port, suggest=False)
    assert verdict.kind == "time_wait"
    assert not verdict.can_bind("plain") and not verdict.can_bind("reuseaddr")
    # The history says the old server did not set it.
    assert verdict.server_bind == ServerBind(False, None, "time_wait")
    assert bind_sentence(verdict, "reuseaddr") == (
        f"A server that sets SO_REUSEADDR cannot bind 0.0.0.0:{port}/tcp now either."
    )
    assert verdict_json(verdict)["server_bind"]["option"] == "plain"
    assert first_blocked(port, ("0.0.0.0",), "tcp", "reuseaddr") == "0.0.0.0"


def test_free_port_can_be_bound_both_ways() -> None:
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
    verdict = diagnose(port, suggest=False)
    assert verdict.can_bind("plain") and verdict.can_bind("reuseaddr")
    assert verdict.server_bind is None
    assert first_blocked(port, ("127.0.0.1", "::1"), "tcp", "reuseaddr") is None


def test_live_listener_blocks_a_reuseaddr_bind_too() -> None:
    with tcp_listener(reuseaddr=True) as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port, "127.0.0.1", suggest=False)
        blocked = first_blocked(port, ("127.0.0.1",), "tcp", "reuseaddr")
    assert not verdict.can_bind("reuseaddr") and blocked == "127.0.0.1"
    # A plain Python socket is no known framework: nothing is claimed about its bind.
    assert verdict.server_bind is None
    assert not any("sets SO_REUSEADDR, so once" in line for line in verdict.advice)


def test_a_known_framework_holding_the_port_is_named_with_its_bind(
    http_server: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = http_server
    verdict = diagnose(port, "127.0.0.1", suggest=False)
    assert verdict.kind == "listening" and proc.pid in [h.pid for h in verdict.holders]
    assert verdict.server_bind == ServerBind(True, "http.server", "holder")
    [line] = [a for a in verdict.advice if "sets SO_REUSEADDR" in a]
    assert line.startswith("http.server sets SO_REUSEADDR, so once it has stopped")
    assert f"portscope wait {port} --host 127.0.0.1 --reuseaddr" in line
    assert verdict_json(verdict)["server_bind"] == {
        "option": "SO_REUSEADDR", "program": "http.server", "from": "holder",
    }


def test_known_frameworks_are_named_as_server_name_calls_them() -> None:
    assert {"gunicorn", "uvicorn", "node", "flask", "manage.py", "nginx"} <= SETS_REUSEADDR
    assert "python" not in SETS_REUSEADDR and "python3" not in SETS_REUSEADDR


def test_windows_waits_for_a_plain_bind_in_both_modes() -> None:
    """TIME_WAIT never blocks a plain bind there, and SO_REUSEADDR would bind over a live
    listener: --reuseaddr is a plain bind on Windows."""
    assert bind_option("reuseaddr", "win32") == "plain"
    assert bind_option("reuseaddr", "linux") == "SO_REUSEADDR"
    assert bind_option("plain", "linux") == "plain"


def test_connections_left_by_a_reuseaddr_listener_let_a_reuseaddr_server_start(
    spawn: Spawn,
) -> None:
    proc, line = spawn(
        """
        import socket, time
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0)); srv.listen()
        print(srv.getsockname()[1], flush=True)
        conn, _ = srv.accept()
        srv.close()
        print("accepted", flush=True)
        time.sleep(60)
        """
    )
    port = int(line)
    with socket.create_connection(("127.0.0.1", port)):
        assert proc.stdout is not None and proc.stdout.readline().strip() == "accepted"
        verdict = diagnose(port, "127.0.0.1", suggest=False)
    assert verdict.kind == "connections"
    assert verdict.can_bind("reuseaddr") and not verdict.can_bind("plain")
    assert verdict.server_bind == ServerBind(True, None, "connections")
    assert any("--reuseaddr returns at once" in a for a in verdict.advice)
