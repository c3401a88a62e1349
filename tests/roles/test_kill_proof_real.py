"""`kill`'s exit code is the proof: 0 only when every target exited and no process holds the
port once the watch is over. Real processes: a restarter portscope does not recognise (a
Python parent that starts its server again), a plain server, and connections the kernel
still closes after their server is gone (FIN-WAIT-2 with no process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime

import pytest

from support import pid_alive, reap, spawn_python, wait_for

# A parent that is neither a shell loop nor a known manager: it starts its server child
# again 0.2 s after each exit. Prints: port parent_pid.
UNKNOWN_RESTARTER = """
import os, socket, subprocess, sys, time
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
probe.close()
server = (
    "import socket, time; s = socket.socket(); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    f"s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); time.sleep(600)"
)
print(port, os.getpid(), flush=True)
while True:
    child = subprocess.Popen([sys.executable, "-c", server])
    child.wait()
    time.sleep(0.2)
"""


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_restart_the_plan_did_not_foresee_exits_1_and_names_it() -> None:
    proc, line = spawn_python(UNKNOWN_RESTARTER)
    try:
        port, parent = (int(v) for v in line.split())
        wait_for(lambda: _listening(port), timeout=10)
        killed = portscope("kill", str(port), "--yes", "--json")
        outcome = json.loads(killed.stdout)
        assert killed.returncode == 1, killed.stdout
        assert outcome["port_free"] is False
        assert outcome["restarted_by"] is not None
        assert outcome["restarted_by"]["pid"] == parent
        assert "started again after the kill" in outcome["after_summary"]
        assert pid_alive(parent)  # not in the plan: never signalled
    finally:
        reap(proc)


def test_a_plain_server_exits_0_with_the_port_free() -> None:
    proc, line = spawn_python(
        """
        import socket, time
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        print(s.getsockname()[1], flush=True)
        time.sleep(600)
        """
    )
    try:
        killed = portscope("kill", line, "--yes", "--json")
        outcome = json.loads(killed.stdout)
        assert killed.returncode == 0, killed.stdout
        assert outcome["port_free"] is True and outcome["exited"] == [proc.pid]
    finally:
        reap(proc)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can tell an orphan from a hidden owner")
def test_connections_the_kernel_still_closes_are_named_as_such() -> None:
    """A server that closed its accepted connection first and then its listener (as postgres
    does on a clean stop) leaves FIN-WAIT-2 sockets that no process holds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server sends FIN first: its side goes FIN-WAIT-2
    listener.close()  # no process holds anything on the port any more
    try:
        wait_for(lambda: _state(port) == "05", timeout=5)
        checked = portscope("check", str(port), "--host", "127.0.0.1", "--json")
        verdict = json.loads(checked.stdout)
        assert checked.returncode == 1
        assert verdict["verdict"] == "kernel_held", verdict["verdict"]
        assert verdict["stop"]["how"] == "none" and verdict["stop"]["pids"] == []
        said = portscope("check", str(port), "--host", "127.0.0.1").stdout
        assert "held by the kernel after the process closed it" in said
        assert "sudo" not in said
        killed = portscope("kill", str(port), "--yes")
        assert killed.returncode == 0, killed.stdout  # no process holds it: nothing to prove
        assert "held by the kernel" in killed.stdout
    finally:
        client.close()


def _state(port: int) -> str | None:
    """The TCP state (hex, as /proc/net/tcp has it) of the socket whose local port is it."""
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                return fields[3]
    return None


def test_every_signal_is_in_the_audit_log(private_state: str) -> None:
    proc, line = spawn_python(
        """
        import socket, time
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        print(s.getsockname()[1], flush=True)
        time.sleep(600)
        """
    )
    try:
        killed = portscope("kill", line, "--yes")
        assert killed.returncode == 0, killed.stdout + killed.stderr
        path = os.path.join(private_state, "portscope", "audit.log")
        with open(path) as fh:
            entries = [json.loads(row) for row in fh]
        mine = [e for e in entries if e.get("target", {}).get("pid") == proc.pid]
        assert len(mine) == 1, entries
        entry = mine[0]
        assert entry["action"] == "SIGTERM" and entry["port"] == int(line)
        assert entry["target"]["exe"] == os.path.realpath(sys.executable)
        assert entry["by"]["euid"] == os.geteuid()
        assert time.time() - datetime.fromisoformat(entry["time"]).timestamp() < 60
        assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    finally:
        reap(proc)


# A server that forks its workers after listen() and, on SIGTERM, exits without stopping
# them (as `php -S` with workers does): they keep the port. With "stubborn", the workers
# also ignore SIGTERM. Prints: port worker_pids...
ORPHANING_MASTER = """
import os, signal, socket, sys, time
stubborn = sys.argv[1] == "stubborn"
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if stubborn else signal.SIG_DFL)
        while True:
            time.sleep(1)
    kids.append(pid)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print(s.getsockname()[1], *kids, flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("mode", ["plain", "stubborn"])
def test_workers_that_outlive_their_master_are_stopped_too(mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_MASTER, mode], stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port, *workers = (int(v) for v in proc.stdout.readline().split())
        checked = json.loads(portscope("check", str(port), "--json").stdout)
        assert checked["stop"]["pids"] == [proc.pid]  # the master; its workers follow
        args = ["kill", str(port), "--yes", "--json", "--timeout", "1"]
        killed = portscope(*args, *(["--force"] if mode == "stubborn" else []))
        outcome = json.loads(killed.stdout)
        assert killed.returncode == 0, killed.stdout
        assert outcome["port_free"] is True
        last = "KILL" if mode == "stubborn" else "TERM"
        assert outcome["followers_signalled"] == [
            {"pid": pid, "signal": last} for pid in sorted(workers)
        ]
        for pid in workers:
            wait_for(lambda pid=pid: not pid_alive(pid), timeout=5)
    finally:
        reap(proc)
