"""Never a privilege step up: a root process that was handed a user's listening socket
(SCM_RIGHTS, as fd-passing daemons do) is shown, withheld from the plan, and signalled only
with --allow-system. Real processes: a root parent and a child that dropped to nobody,
which creates the socket and passes it up a socketpair."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from support import NOBODY, pid_alive, reap, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root drops to nobody here")

# The root parent forks a child that becomes nobody, creates and listens on a loopback
# socket and passes it up; the parent keeps it. With KEEP the child stays alive holding it
# too, else it exits and only root holds the user's socket. Prints: port root_pid child_pid.
PASSED_SOCKET = """
import array, os, signal, socket, sys, time
keep = sys.argv[1] == "keep"
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
child = os.fork()
if child == 0:
    os.setgroups([]); os.setresgid({nobody}, {nobody}, {nobody})
    os.setresuid({nobody}, {nobody}, {nobody})
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    socket.send_fds(b, [s.getsockname()[1].to_bytes(2, "big")], [s.fileno()])
    if not keep:
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        time.sleep(1)
data, fds, _, _ = socket.recv_fds(a, 2, 1)
held = socket.socket(fileno=fds[0])
if not keep:
    os.waitpid(child, 0)
print(int.from_bytes(data, "big"), os.getpid(), child, flush=True)
while True:
    time.sleep(1)
""".replace("{nobody}", str(NOBODY))


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def _pair(mode: str) -> Iterator[tuple[int, int, int, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", PASSED_SOCKET, mode], stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line, "the passing pair did not start"
        port, root_pid, child = (int(v) for v in line.split())
        yield port, root_pid, child, mode
    finally:
        reap(proc)


@pytest.fixture(params=["alone", "keep"])
def passed(request: pytest.FixtureRequest) -> Iterator[tuple[int, int, int, str]]:
    with _pair(request.param) as found:
        yield found


def test_root_holder_of_a_users_socket_is_withheld(passed: tuple[int, int, int, str]) -> None:
    port, root_pid, child, mode = passed
    checked = portscope("check", str(port), "--host", "127.0.0.1", "--json")
    stop = json.loads(checked.stdout)["stop"]
    assert root_pid not in stop["pids"], stop
    assert [w["pid"] for w in stop["withheld"]] == [root_pid]
    assert "--allow-system" in stop["withheld"][0]["reason"]
    facts = {(f["pid"], f["fact"], f["value"]) for f in stop["evidence"]}
    assert (root_pid, "euid", "0") in facts and (None, "socket_uid", str(NOBODY)) in facts
    assert stop["pids"] == ([child] if mode == "keep" else [])

    killed = portscope("kill", str(port), "--yes", "--json")
    outcome = json.loads(killed.stdout)
    assert killed.returncode == 1, killed.stdout  # the port is still held: no proof
    assert root_pid not in [t["pid"] for t in outcome["targets"]]
    assert root_pid in [r["pid"] for r in outcome["refused"]]
    assert outcome["port_free"] is False
    assert pid_alive(root_pid)  # the root process was never signalled
    if mode == "keep":  # the user's own process was the plan, and it is gone
        wait_for(lambda: not pid_alive(child) or _zombie(child))


def test_allow_system_includes_it() -> None:
    with _pair("alone") as (port, root_pid, _, _):
        _allowed(port, root_pid)


def _allowed(port: int, root_pid: int) -> None:
    checked = portscope("check", str(port), "--host", "127.0.0.1", "--json")
    assert json.loads(checked.stdout)["stop"]["pids"] == []
    killed = portscope("kill", str(port), "--yes", "--json", "--allow-system")
    outcome = json.loads(killed.stdout)
    assert [t["pid"] for t in outcome["targets"]] == [root_pid]
    assert killed.returncode == 0, killed.stdout
    assert outcome["port_free"] is True


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
