"""Issue 11: what `kill` says when it has nothing to stop, against real sockets on loopback:
a port held only by the other protocol (the `--udp` hint, the same words `check` and `b`
show), and a port held only by TIME_WAIT (nothing to stop, how many, free in how long)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from portscope.core.collect import default_collector
from portscope.core.diagnose.advice import other_proto_line
from portscope.core.diagnose.probe import diagnose
from portscope.core.kill import wording
from portscope.core.kill.after import settle_after
from portscope.core.kill.session import run_kill
from portscope.core.kill.targets import holders_on, plan_kill
from portscope.core.model import Proto
from support import UDP_LISTENER, make_server_time_wait, pid_alive, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def nothing_killed(port: int, proto: Proto = "tcp") -> tuple[list[str], str]:
    snap = default_collector().collect()
    holders, hidden = holders_on(snap, port, proto)
    plan = plan_kill([h.identity for h in holders], port, proto, owner_hidden=hidden,
                     snapshot=snap)
    assert plan.targets == () and plan.how == "none"
    result = run_kill(plan, timeout=1)
    after = settle_after(result, settle=0)
    return wording.nothing_to_stop(plan, after), after.summary


def test_tcp_kill_of_a_udp_only_port_says_udp_is_bound_and_how_to_stop_it(spawn: Spawn) -> None:
    proc, line = spawn(UDP_LISTENER)
    port = int(line)
    lines, summary = nothing_killed(port, "tcp")
    assert lines[0] == f"nothing holds tcp port {port}"
    assert lines[1].startswith(f"UDP port {port} is bound by python")
    assert f"pid {proc.pid}" in lines[1]
    assert lines[1].endswith(f"so it does not hold tcp port {port}; portscope kill --udp {port} "
                             "stops it.")
    assert summary == f"tcp port {port} is free"
    assert pid_alive(proc.pid)  # nothing was signalled
    # `check` (and the panel, which shows the same explanation) says the very same line.
    verdict = diagnose(port, "0.0.0.0", suggest=False)
    assert verdict.free and lines[1] in verdict.explanation
    assert [s.proto for s in verdict.other_proto] == ["udp"]


def test_udp_kill_of_a_tcp_only_port_points_back_to_tcp() -> None:
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
        lines, _ = nothing_killed(port, "udp")
        line = other_proto_line(port, "udp", default_collector().collect().listeners_on(port))
    assert lines == [f"nothing holds udp port {port}", line]
    assert line.startswith(f"TCP port {port} is in use by ") and f"pid {os.getpid()}" in line
    assert line.endswith(f"portscope kill {port} stops it.")


def test_kill_of_a_time_wait_only_port_says_nothing_was_stopped() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 3)
    lines, summary = nothing_killed(port)
    assert lines == [f"nothing to stop on tcp port {port}"]
    prefix = (f"tcp port {port} is held only by 3 TIME_WAIT sockets, which belong to no "
              "process; it frees itself in ")
    assert summary.startswith(prefix) and summary.endswith(" s; until then bind() fails")
    seconds_left = int(summary[len(prefix):].split(" ")[0])
    assert 50 <= seconds_left <= 60
    assert "killed" not in summary


def test_nothing_stopped_with_reuseaddr_time_wait_says_a_reuseaddr_server_can_start() -> None:
    with tcp_listener(reuseaddr=True) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 1)
    _, summary = nothing_killed(port)
    assert summary.startswith(f"tcp port {port} is held only by 1 TIME_WAIT socket, which ")
    assert summary.endswith("; a server that sets SO_REUSEADDR can bind it now")
