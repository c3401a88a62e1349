"""The killer against real processes this test starts on loopback: targets, the signal
sequence, escalation, and what holds the port afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable

import psutil

from portscope.core.collect import default_collector
from portscope.core.kill.after import settle_after
from portscope.core.kill.plan import KillPlan
from portscope.core.kill.session import KillSession, run_kill
from portscope.core.kill.targets import holders_on, plan_kill
from portscope.core.model import Proto
from portscope.core.record import replace
from portscope.core.roles.model import Role
from support import (
    PREFORK_SERVER,
    ROOT_LISTENER,
    TERM_IGNORING_LISTENER,
    UDP_LISTENER,
    exited,
    pid_alive,
    run_as_nobody,
    wait_for,
)

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]

ACCEPTING_SERVER = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
conn, _ = s.accept()
conn.sendall(b"+")
while True:
    time.sleep(1)
"""

# Keeps one server running on a fixed port, restarting it when it dies (as systemd or
# supervisord would). The port is a free one the kernel picked; SO_REUSEADDR lets the restarted
# server bind despite TIME_WAIT.
SUPERVISOR = """
import socket, subprocess, sys
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
probe.close()
server = (
    "import socket, sys, time\\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\\n"
    f"s.bind(('127.0.0.1', {port})); s.listen()\\n"
    "print('up', flush=True)\\n"
    "while True: time.sleep(1)\\n"
)
while True:
    child = subprocess.Popen([sys.executable, "-c", server], stdout=subprocess.PIPE)
    child.stdout.readline()
    print(port, child.pid, flush=True)
    child.wait()
"""


def plan_for(port: int, proto: Proto = "tcp", *, all_holders: bool = False) -> KillPlan:
    snap = default_collector().collect()
    holders, hidden = holders_on(snap, port, proto)
    return plan_kill(
        [h.identity for h in holders], port, proto,
        all_holders=all_holders, owner_hidden=hidden, snapshot=snap,
    )


def test_single_listener_is_terminated_and_the_port_is_free(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    plan = plan_for(port)
    assert [t.pid for t in plan.targets] == [proc.pid]
    target = plan.targets[0]
    assert target.name.startswith("python")
    assert target.ports == (f"tcp 127.0.0.1:{port}",)
    # without the snapshot, psutil finds the same socket
    assert plan_kill([(target.pid, target.started)], port).targets[0].ports == target.ports
    result = run_kill(plan, timeout=5)
    assert result.exited == (proc.pid,)
    assert result.signals == {proc.pid: "TERM"}
    assert result.ok and not result.escalated and not result.still_running
    assert exited(proc)
    assert proc.returncode == -signal.SIGTERM
    after = settle_after(result, settle=0)
    assert after.free, after.summary
    assert after.summary == f"tcp port {port} is free"


def test_after_reports_time_wait_left_by_the_killed_servers_connections(spawn: Spawn) -> None:
    proc, line = spawn(ACCEPTING_SERVER)
    port = int(line)
    client = socket.create_connection(("127.0.0.1", port))
    assert client.recv(1) == b"+"  # accepted: the server holds the connection
    result = run_kill(plan_for(port), timeout=5)
    assert result.ok and exited(proc)
    assert client.recv(1) == b""  # the dying server closed first ...
    client.close()  # ... so the TIME_WAIT lands on the server's port
    after = settle_after(result, settle=0)
    assert not after.free
    assert after.verdict is not None and after.verdict.kind == "time_wait"
    assert after.summary.startswith(f"tcp port {port} is held by TIME_WAIT for ")
    assert "(1 closed connection of the killed server)" in after.summary


def test_prefork_master_is_the_only_target_and_no_worker_survives(spawn: Spawn) -> None:
    master, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = (int(x) for x in line.split())
    assert len(workers) == 3
    plan = plan_for(port)
    assert [t.pid for t in plan.targets] == [master.pid]
    assert sorted(plan.followers) == sorted(workers)
    assert sorted(plan.targets[0].children) == sorted(workers)
    result = run_kill(plan, timeout=5)
    assert result.signals == {master.pid: "TERM"}  # workers are stopped by their master
    assert sorted(result.exited) == sorted([master.pid, *workers])
    assert result.ok
    assert not any(pid_alive(w) for w in workers)
    assert settle_after(result, settle=0).free


def test_workers_that_survive_a_sigkilled_master_are_stopped_next(spawn: Spawn) -> None:
    """SIGKILL gives the master no chance to stop its workers: they still hold the port,
    so they are signalled next (they are the plan's holders), and the port is freed."""
    master, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    port, *workers = (int(x) for x in line.split())
    result = run_kill(plan_for(port), signal.SIGKILL, timeout=2)
    assert master.pid in result.exited
    assert {w: result.signals.get(w) for w in workers} == {w: "KILL" for w in workers}
    assert result.ok and not result.still_running
    assert settle_after(result, settle=0).free


def test_a_worker_that_cannot_be_stopped_is_named_as_the_survivor(spawn: Spawn) -> None:
    """A follower whose handle cannot be opened (here: its start time no longer matches, as
    for a reused PID) is never signalled: the proof names it as the survivor."""
    master, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    port, *workers = (int(x) for x in line.split())
    plan = plan_for(port)
    stale = tuple(
        Role(r.pid, r.kind, r.name, r.holds, r.ppid, (r.started or 0) + 5, r.note)
        if r.pid in workers else r
        for r in plan.roles
    )
    result = run_kill(replace(plan, roles=stale), signal.SIGKILL, timeout=0.3)
    assert master.pid in result.exited
    assert all(w not in result.signals for w in workers)
    assert all(pid_alive(w) for w in workers)
    after = settle_after(result, settle=0)
    assert sorted(after.holders) == sorted(workers) and not after.released
    assert after.summary.count("a worker that survived its master") == 2


def test_a_supervisor_restarting_the_server_is_named(spawn: Spawn) -> None:
    supervisor, line = spawn(SUPERVISOR)
    port, first = (int(x) for x in line.split())
    plan = plan_for(port)
    assert [t.pid for t in plan.targets] == [first]  # the supervisor holds no socket
    result = run_kill(plan, timeout=5)
    assert result.exited == (first,) and result.ok
    after = settle_after(result, settle=3)
    assert not after.free and after.holders and first not in after.holders
    assert "a supervisor restarted the server" in after.summary
    assert supervisor.poll() is None


def test_all_holders_signals_every_process_of_the_family(spawn: Spawn) -> None:
    master, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = (int(x) for x in line.split())
    plan = plan_for(port, all_holders=True)
    assert sorted(t.pid for t in plan.targets) == sorted([master.pid, *workers])
    assert not plan.followers
    result = run_kill(plan, timeout=5)
    # The master's own SIGTERM handler stops its workers, so a worker can be gone before
    # its own signal is sent: that is "already exited", never a failure.
    assert master.pid in result.signals
    assert sorted([*result.signals, *result.already_exited]) == sorted([master.pid, *workers])
    assert result.ok and not any(pid_alive(w) for w in workers)


def test_term_ignoring_process_survives_without_force(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    port = int(line)
    result = run_kill(plan_for(port), timeout=0.3)
    assert result.still_running == (proc.pid,)
    assert not result.ok and not result.escalated
    assert proc.poll() is None
    after = settle_after(result, settle=0)
    assert not after.free
    assert after.holders == (proc.pid,)
    assert "still running" in after.summary


def test_term_ignoring_process_is_killed_with_force(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    result = run_kill(plan_for(int(line)), timeout=0.3, force=True)
    assert result.escalated
    assert result.signals == {proc.pid: "KILL"}
    assert result.exited == (proc.pid,) and result.ok
    assert exited(proc) and proc.returncode == -signal.SIGKILL


def test_escalation_is_asked_for_and_a_no_sends_nothing_more(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    asked: list[tuple[int, ...]] = []

    def no(survivors: tuple[int, ...]) -> bool:
        asked.append(survivors)
        return False

    result = run_kill(plan_for(int(line)), timeout=0.3, on_escalate=no)
    assert asked == [(proc.pid,)]
    assert not result.escalated and proc.poll() is None


def test_stale_start_time_is_refused_and_not_signalled(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    (holder,), _ = holders_on(default_collector().collect(), port, "tcp")
    assert holder.started is not None
    plan = plan_kill([(proc.pid, holder.started - 1.0)], port)
    assert not plan.targets
    assert [r.pid for r in plan.refused] == [proc.pid]
    assert "reused" in plan.refused[0].reason
    result = run_kill(plan, timeout=0.2)
    assert not result.signals and not result.ok
    assert proc.poll() is None


def test_pid_reused_between_plan_and_signal_is_caught_by_the_handle(spawn: Spawn) -> None:
    """The plan saw the right process; by signal time the start time differs (as after PID
    reuse): the pidfd check refuses and nothing is sent."""
    proc, line = spawn(ROOT_LISTENER)
    plan = plan_for(int(line))
    target = plan.targets[0]
    wrong = replace(target, started=target.started + 3.0)
    with KillSession(KillPlan(plan.port, "tcp", (wrong,))) as session:
        session.send(signal.SIGTERM)
        result = session.result()
    assert not result.signals
    assert [r.pid for r in result.refused] == [proc.pid]
    assert "reused" in result.refused[0].reason
    assert proc.poll() is None


def test_protected_pids_are_refused() -> None:
    identities = [(0, 0.0), (1, 0.0), (2, 0.0), (os.getpid(), 0.0), (os.getppid(), 0.0)]
    plan = plan_kill(identities, 9, all_holders=True)
    assert not plan.targets
    reasons = {r.pid: r.reason for r in plan.refused}
    assert set(reasons) == {0, 1, 2, os.getpid(), os.getppid()}
    assert "init" in reasons[1]
    assert "kernel thread" in reasons[2]
    assert "portscope itself" in reasons[os.getpid()]
    assert "ancestor" in reasons[os.getppid()]


def test_kernel_thread_is_refused() -> None:
    kthread = next(p for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == 2)
    plan = plan_kill([(kthread.pid, kthread.create_time())], 9, all_holders=True)
    assert not plan.targets
    assert "kernel thread" in plan.refused[0].reason


def test_hidden_owner_is_refused_with_a_sudo_hint() -> None:
    plan = plan_kill([], 9, owner_hidden=True)
    assert not plan.targets
    assert plan.refused[0].pid is None
    assert "sudo" in plan.refused[0].reason


def test_process_gone_before_the_signal_counts_as_already_exited(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    plan = plan_for(int(line))
    proc.kill()
    proc.wait()
    result = run_kill(plan, timeout=0.2)
    assert result.exited == (proc.pid,) and result.already_exited == (proc.pid,)
    assert result.ok and not result.signals


def test_udp_socket_holder_is_terminated(spawn: Spawn) -> None:
    proc, line = spawn(UDP_LISTENER)
    port = int(line)
    assert not plan_for(port, "tcp").targets  # TCP and UDP are separate port spaces
    plan = plan_for(port, "udp")
    assert [t.pid for t in plan.targets] == [proc.pid]
    result = run_kill(plan, timeout=5)
    assert result.ok and exited(proc)
    wait_for(lambda: not holders_on(default_collector().collect(), port, "udp")[0])


def test_nobody_gets_permission_denied_not_a_crash(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    plan = plan_for(int(line))

    def kill_as_nobody() -> tuple[tuple[int, ...], list[str]]:
        result = run_kill(plan, timeout=0.2)
        return tuple(result.signals), [r.reason for r in result.refused]

    signalled, reasons = run_as_nobody(kill_as_nobody)  # type: ignore[misc]
    assert signalled == ()
    assert reasons == [
        f"permission denied: PID {proc.pid} belongs to root; run portscope with sudo"
    ]
    assert proc.poll() is None
