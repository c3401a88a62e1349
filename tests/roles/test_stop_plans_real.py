"""The stop plan against the real servers people run: `check --json` advises it, `kill
--json` carries out exactly it, and the port is still free 3 s later.

Each scenario is the real program (tests/real_servers.py), started by the test on
loopback; nothing else is signalled. What an expert would stop is in domain.md 7 and
/work/notes/servers.md; the expected targets below say it per scenario.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import psutil
import pytest

from portscope.core.diagnose.bind_attempt import try_bind
from real_servers import SCENARIOS, Running, connection_inodes, holders, listener_holders

StartServer = Callable[..., Running]
FREE_FOR = 3.0  # seconds the port must stay free after the kill (the done-when)


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def expected_targets(srv: Running) -> list[int] | None:
    """Whom an expert signals, in order; None for a container (stopped through Docker)."""
    pids = sorted(srv.pids_holding)
    if srv.how == "docker":
        return None
    if srv.name == "shell-loop":
        return [srv.root_pid, *pids]  # the loop first, then the server it runs
    if srv.name in ("flask-debug", "django-runserver"):
        # Werkzeug and Django restart their child only on exit code 3: stop the child,
        # and the reloader exits with it.
        child = [p for p in pids if p != srv.root_pid]
        return child or pids
    if srv.name == "socat-fork":
        # The listener, then its child serving the open connection (it keeps the port busy).
        served = holders(connection_inodes(srv.port)) - {srv.root_pid}
        return [srv.root_pid, *sorted(served)]
    return [srv.root_pid]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_check_advises_what_kill_does_and_the_port_stays_free(
    real_server: StartServer, name: str
) -> None:
    srv = real_server(name)
    port = str(srv.port)
    checked = portscope("check", port, "--json")
    assert checked.returncode == 1, checked.stderr
    stop = json.loads(checked.stdout)["stop"]
    assert stop["how"] == srv.how
    expected = expected_targets(srv)
    if expected is not None:
        assert stop["pids"] == expected, stop
        assert stop["command"] == "kill " + " ".join(map(str, expected))
    else:
        assert stop["pids"] == [] and stop["container"]["name"] == srv.container
        assert stop["command"] == f"docker stop {srv.container}"
    # The advice's first step is the plan's command.
    advice = json.loads(checked.stdout)["advice"]
    assert stop["command"] in advice[0]
    # A reloader's child, a worker or a connection child runs the same command as its
    # relative by design: none of them is "an earlier copy of your own program".
    assert not any("earlier copy" in line for line in advice), advice

    killed = portscope("kill", port, "--json", "--yes")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    outcome = json.loads(killed.stdout)
    assert outcome["how"] == stop["how"]
    assert [t["pid"] for t in outcome["targets"]] == stop["pids"]
    assert outcome["restarted_by"] is None
    if srv.how == "docker":
        assert outcome["container_stopped"] is True
    deadline = time.monotonic() + FREE_FOR
    while time.monotonic() < deadline:  # nobody holds it now, nor 3 s later
        assert not listener_holders(srv.port), f"port {port} taken again"
        assert not holders(connection_inodes(srv.port)), f"a connection still holds {port}"
        time.sleep(0.25)
    if srv.name == "socat-fork":
        # Its child closed the open connection first, so the kernel keeps it in TIME_WAIT
        # (no process): socat set SO_REUSEADDR, and so can a new server, at once.
        assert try_bind(srv.port, "127.0.0.1", "tcp", "SO_REUSEADDR").ok
    else:
        assert try_bind(srv.port, "127.0.0.1", "tcp", "plain").ok
    assert not any(running(p) for p in srv.pids_holding)


def running(pid: int) -> bool:
    """Alive and not a zombie (the fixture's own child stays a zombie until it is reaped)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
