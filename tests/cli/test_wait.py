"""`portscope wait`: blocks while the port is held, exits 0 once a bind works, 1 on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from portscope.core.platform_path import portable
from support import make_server_time_wait, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def wait_cmd(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portscope", "wait", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


# Listens until SIGUSR1, then closes its socket and exits 0, as a server that stops does.
STOPPABLE_SERVER = """
import signal, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
def stop(*_):
    s.close()
    sys.exit(0)
signal.signal(signal.SIGUSR1, stop)
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


def test_wait_returns_once_the_server_closes(spawn: Spawn) -> None:
    server, line = spawn(STOPPABLE_SERVER)
    port = line
    waiter = wait_cmd(port, "--host", "127.0.0.1", "--timeout", "20")
    try:
        assert waiter.stderr is not None
        blocked = waiter.stderr.readline()  # not a TTY: one line per new reason
        assert blocked.startswith("waiting: ") and f"pid {server.pid}" in blocked
        assert waiter.poll() is None  # it really blocks while the port is held
        stopped_at = time.monotonic()
        os.kill(server.pid, signal.SIGUSR1)
        out, err = waiter.communicate(timeout=20)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert server.wait(timeout=5) == 0
    assert out.startswith(f"port {port}/tcp is free on 127.0.0.1")
    assert time.monotonic() - stopped_at < 5


def test_wait_times_out_with_exit_one() -> None:
    with tcp_listener() as sock:
        port = str(sock.getsockname()[1])
        started = time.monotonic()
        waiter = wait_cmd(port, "--timeout", "0.3")
        out, err = waiter.communicate(timeout=20)
        elapsed = time.monotonic() - started
    assert waiter.returncode == 1
    assert out == ""
    assert "timed out after 0.3 s" in err and f"pid {os.getpid()}" in err
    assert elapsed < 10
    assert "Traceback" not in err


def test_wait_shows_the_time_wait_countdown() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = str(sock.getsockname()[1])
        make_server_time_wait(sock, 1)
    waiter = wait_cmd(port, "--timeout", "0.5")
    _, err = waiter.communicate(timeout=20)
    assert waiter.returncode == 1
    first = err.splitlines()[0]
    assert first.startswith(f"waiting: 1 TIME_WAIT on {port}, clears in ")
    if portable():  # psutil gives no TIME_WAIT timers: unknown, never guessed
        assert first.endswith("clears in ?")
        return
    seconds_left = int(first.rsplit(" ", 2)[-2])
    assert 50 <= seconds_left <= 60


def test_wait_on_a_free_port_exits_zero_at_once() -> None:
    with tcp_listener() as sock:
        port = str(sock.getsockname()[1])
    waiter = wait_cmd(port, "--timeout", "5")
    out, _ = waiter.communicate(timeout=20)
    assert waiter.returncode == 0 and f"port {port}/tcp is free" in out


def test_wait_for_a_foreign_address_gives_up_at_once() -> None:
    waiter = wait_cmd("8080", "--host", "192.0.2.1")
    _, err = waiter.communicate(timeout=20)
    assert waiter.returncode == 1
    assert "waiting will not help" in err and "not an address of this machine" in err
