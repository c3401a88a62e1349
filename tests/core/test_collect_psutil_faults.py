"""The psutil collector where the system-wide socket list is refused, as on macOS without
root: each process we may inspect is asked for its own sockets instead, and the snapshot
says what that hides. Run on Linux by making psutil.net_connections() refuse; the sockets,
processes and per-process refusals (nobody reading root's /proc/PID/fd) are real.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from subprocess import Popen
from typing import Any

import psutil
import pytest

from portscope.core.collect.psutil_collector import HIDDEN_WITHOUT_ROOT, PsutilCollector
from portscope.core.model import Snapshot
from support import (
    PREFORK_SERVER,
    ROOT_LISTENER,
    make_server_time_wait,
    reap,
    run_as_nobody,
    spawn_python,
    tcp_listener,
    udp_socket,
    wait_for,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

Spawn = Callable[..., tuple[Popen[str], str]]

# Holds a listener, a connection to it and the accepted end, then forks: parent and child
# hold all three sockets. Prints the port and the child's PID.
SHARED_CONNECTION = """
import os, socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname())
conn, _ = s.accept()
pid = os.fork()
if pid == 0:
    while True:
        time.sleep(1)
print(s.getsockname()[1], pid, flush=True)
while True:
    time.sleep(1)
"""


def refuse_system_wide(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def refused(kind: str = "inet") -> Any:
        raise error

    monkeypatch.setattr(psutil, "net_connections", refused)


def pids_on(snap: Snapshot, port: int) -> set[int]:
    [found] = snap.listeners_on(port)
    return set(found.pids)


def test_access_denied_lists_each_process_sockets_once(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefork, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    prefork_port, *workers = (int(x) for x in line.split())
    shared, line = spawn(SHARED_CONNECTION)
    shared_port, child = (int(x) for x in line.split())
    refuse_system_wide(monkeypatch, psutil.AccessDenied())
    with tcp_listener() as t4, udp_socket("::1") as u6:
        make_server_time_wait(t4, 2)
        snap = PsutilCollector().collect()
        mine, udp = t4.getsockname()[1], u6.getsockname()[1]
    assert snap.notes == (HIDDEN_WITHOUT_ROOT,)
    assert pids_on(snap, mine) == {os.getpid()}
    [found] = snap.listeners_on(udp, "udp")
    assert set(found.pids) == {os.getpid()}
    # Every holder of a shared socket, which the system-wide call never gives.
    assert pids_on(snap, prefork_port) == {prefork.pid, *workers}
    assert pids_on(snap, shared_port) == {shared.pid, child}
    stats = snap.port_stats(shared_port)
    assert stats is not None
    assert stats.states == {"ESTABLISHED": 1}  # one connection, though two processes hold it
    assert {h.pid for h in stats.holders} == {shared.pid, child}
    # TIME_WAIT belongs to no process, so no process can report it: the note says so.
    assert snap.port_stats(mine) is None


def test_per_process_refusals_are_skipped_quietly(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process refuses (AccessDenied), one is a zombie (what macOS raises for it), one
    exited between the PID list and the question (NoSuchProcess); the rest still count."""
    denied, line = spawn(ROOT_LISTENER)
    denied_port = int(line)
    kept, line = spawn(ROOT_LISTENER)
    kept_port = int(line)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    gone, _ = spawn_python("print(1, flush=True)")
    reap(gone)
    try:
        wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE)
        real_pids, real_connections = psutil.pids, psutil.Process.net_connections

        def faulty(self: psutil.Process, kind: str = "inet") -> Any:
            if self.pid == denied.pid:
                raise psutil.AccessDenied(self.pid)
            if self.pid == zombie.pid:
                raise psutil.ZombieProcess(self.pid)
            return real_connections(self, kind)

        monkeypatch.setattr(psutil, "pids", lambda: [*real_pids(), gone.pid])
        monkeypatch.setattr(psutil.Process, "net_connections", faulty)
        refuse_system_wide(monkeypatch, psutil.AccessDenied())
        snap = PsutilCollector().collect()
    finally:
        zombie.wait()
    assert snap.notes == (HIDDEN_WITHOUT_ROOT,)
    assert pids_on(snap, kept_port) == {kept.pid}
    assert snap.listeners_on(denied_port) == ()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root")
def test_as_nobody_only_own_processes_sockets_are_listed(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user on macOS sees: root's processes refuse for real (their /proc/PID/fd is
    closed to nobody), the user's own listener is there with its PID."""
    _, line = spawn(ROOT_LISTENER)
    roots_port = int(line)
    refuse_system_wide(monkeypatch, psutil.AccessDenied())

    def as_user() -> tuple[Snapshot, int, int]:
        with tcp_listener() as own:
            return PsutilCollector().collect(), own.getsockname()[1], os.getpid()

    result = run_as_nobody(as_user)
    assert isinstance(result, tuple)
    snap, own_port, own_pid = result
    assert snap.notes == (HIDDEN_WITHOUT_ROOT,) and not snap.is_root
    [found] = snap.listeners_on(own_port)
    assert found.pids == (own_pid,) and found.holders[0].user == "nobody"
    assert snap.listeners_on(roots_port) == ()


def test_unreadable_system_table_falls_back_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refuse_system_wide(monkeypatch, PermissionError(errno.EACCES, "Permission denied"))
    with tcp_listener() as t4:
        snap = PsutilCollector().collect()
        port = t4.getsockname()[1]
    assert snap.notes == (
        "cannot list the system's sockets (Permission denied): showing only those of "
        "processes portscope may inspect, and no TIME_WAIT",
    )
    assert pids_on(snap, port) == {os.getpid()}


def test_unexpected_error_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_system_wide(monkeypatch, RuntimeError("psutil bug"))
    with pytest.raises(RuntimeError, match="psutil bug"):
        PsutilCollector().collect()


def test_system_wide_list_has_no_notes() -> None:
    with tcp_listener() as t4:
        snap = PsutilCollector().collect()
        port = t4.getsockname()[1]
    assert snap.notes == ()
    assert pids_on(snap, port) == {os.getpid()}
