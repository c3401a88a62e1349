"""Loads for the collector benchmark, built on loopback only and torn down afterwards.

Not a test module (pytest collects only test_*.py): the benchmark script imports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

# Clients bind explicit ports below the ephemeral range (32768-60999 here) on 127.0.0.2 and
# up, so the load never takes an ephemeral port from 127.0.0.1 that another test's connect()
# needs, and every (client address, port) pair is used once per server port: reusing one
# while its server-side TIME_WAIT lives would recycle that TIME_WAIT instead of adding one.
CLIENT_PORTS = range(10_000, 32_000)


def client_endpoints() -> Iterator[tuple[str, int]]:
    for last in range(2, 255):
        for port in CLIENT_PORTS:
            yield f"127.0.0.{last}", port


class TimeWaitMaker:
    """Leaves server-side TIME_WAIT sockets on one fresh loopback port, on demand.

    The listener stays open so `make` can top the load up (TIME_WAIT lasts 60 s); close()
    frees it. TIME_WAIT belongs to no process: nothing has to live for the load to last.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port: int = self.listener.getsockname()[1]
        self._clients = client_endpoints()

    def make(self, count: int) -> float:
        """Make `count` more; return the seconds it took."""
        started = time.monotonic()
        made = 0
        for host, cport in self._clients:
            if made >= count:
                break
            client = socket.socket()
            try:
                client.bind((host, cport))
            except OSError:  # someone else has it: skip, never steal
                client.close()
                continue
            client.connect(("127.0.0.1", self.port))
            conn, _ = self.listener.accept()
            conn.close()  # server's FIN first, so the TIME_WAIT stays on the server
            client.recv(1)
            client.close()
            made += 1
        return time.monotonic() - started

    def close(self) -> None:
        self.listener.close()


def make_time_wait(count: int) -> tuple[int, float]:
    """One-shot: `count` TIME_WAIT sockets on a fresh port; (port, seconds taken)."""
    maker = TimeWaitMaker()
    try:
        return maker.port, maker.make(count)
    finally:
        maker.close()


def count_time_wait() -> int:
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, "rb") as fh:
            total += fh.read().count(b" 06 ")
    return total


# A pre-fork server: the master opens `listeners` TCP listeners, a few UDP sockets, unix
# socketpairs and plain files (~fds in all), then forks `workers` children that inherit
# every one of them, as gunicorn or nginx workers do.
_PREFORK = """
import os, signal, socket, sys, time
workers, fds, listeners = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
keep = []
for _ in range(listeners):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); keep.append(s)
for _ in range(2):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); keep.append(u)
while len(keep) < fds:
    if len(keep) % 2:
        keep.extend(socket.socketpair())
    else:
        keep.append(open(os.devnull, "rb"))
kids = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            time.sleep(3600)
    kids.append(pid)
print(" ".join(str(s.getsockname()[1]) for s in keep[:listeners]), flush=True)
while True:
    time.sleep(3600)
"""


@contextlib.contextmanager
def prefork_servers(processes: int, fds: int = 250, listeners: int = 8) -> Iterator[list[int]]:
    """`processes` processes in all (one master), each holding ~`fds` inherited fds.

    Yields the listening ports; on exit the master's whole process group is killed.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_PREFORK), str(processes - 1), str(fds),
         str(listeners)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("pre-fork server failed to start")
        yield [int(p) for p in line.split()]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
