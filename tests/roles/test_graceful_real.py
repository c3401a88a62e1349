"""gunicorn with a request in flight: SIGTERM to the master is a graceful shutdown, not a
process that ignores it. `kill` waits for it and says so; with --force it does not wait,
and the worker left holding the port is named with the next step."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from real_servers import Running, listener_holders, start_request, wait_in_flight

StartServer = Callable[..., Running]


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_kill_waits_for_requests_in_flight_and_says_so(real_server: StartServer) -> None:
    srv = real_server("gunicorn", graceful_timeout=10)
    client = start_request(srv.port, "/slow?s=4")
    try:
        busy = wait_in_flight(srv.port)
        result = portscope("kill", str(srv.port), "--json", "--yes", "--timeout", "1")
    finally:
        client.close()
    assert "shutting down gracefully" in result.stderr and "1 request in flight" in result.stderr
    out = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert [t["pid"] for t in out["targets"]] == [srv.root_pid]
    assert out["still_running"] == [] and not out["escalated"]
    assert sorted(out["exited"]) == sorted(srv.pids_holding)  # the busy worker too
    assert busy <= srv.pids_holding
    assert not listener_holders(srv.port)


def test_force_does_not_wait_and_offers_the_next_step(real_server: StartServer) -> None:
    srv = real_server("gunicorn", graceful_timeout=20)
    client = start_request(srv.port, "/slow?s=6")
    try:
        (busy,) = wait_in_flight(srv.port)
        result = portscope(
            "kill", str(srv.port), "--json", "--yes", "--timeout", "0.5", "--force"
        )
        out = json.loads(result.stdout)
        assert out["escalated"] is True and srv.root_pid in out["exited"]
        # SIGKILL gave the master no time to stop its busy worker: it still listens,
        # and the outcome names it and what to run next.
        # The request takes 6 s, so the worker still holds the port when kill reports.
        assert busy in out["still_running"] and busy in listener_holders(srv.port)
        assert f"PID {busy}" in out["after_summary"]
        assert "a worker that survived its master" in out["after_summary"]
        assert f"portscope kill {srv.port}" in out["after_summary"]
        assert result.returncode == 1
    finally:
        client.close()
