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
import threading
import time
from collections.abc import Callable, Iterable, Iterator

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


def _start_child(
    script: str, *args: str, commands: bool = False
) -> tuple[subprocess.Popen[str], list[int]]:
    """`script` in a child process (its own session, so one killpg ends it and all it
    forked); it prints its ports on one line first. `commands`: its stdin is a pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE if commands else subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _stop_child(proc)
        raise RuntimeError("a load's child process failed to start")
    return proc, [int(p) for p in line.split()]


def _stop_child(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# One process holding `count` TCP listeners on 127.0.0.1 (its fd limit raised to fit).
_LISTENERS = """
import resource, socket, sys, time
count = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = count + 64
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
keep = []
for _ in range(count):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); keep.append(s)
print(" ".join(str(s.getsockname()[1]) for s in keep), flush=True)
while True:
    time.sleep(3600)
"""


@contextlib.contextmanager
def many_listeners(count: int) -> Iterator[tuple[int, list[int]]]:
    """One process holding `count` TCP listeners; yields (its PID, the ports)."""
    proc, ports = _start_child(_LISTENERS, str(count))
    try:
        yield proc.pid, ports
    finally:
        _stop_child(proc)


# A process that names itself (its comm, what process lists and the monitor show) and holds
# TCP listeners on the ports given.
_NAMED = """
import socket, sys, time
with open("/proc/self/comm", "w") as fh:
    fh.write(sys.argv[1])
keep = []
for port in sys.argv[2:]:
    s = socket.socket(); s.bind(("127.0.0.1", int(port))); s.listen(16); keep.append(s)
print(" ".join(str(s.getsockname()[1]) for s in keep), flush=True)
while True:
    time.sleep(3600)
"""


@contextlib.contextmanager
def named_listeners(name: str, ports: Iterable[int]) -> Iterator[int]:
    """A process called `name` (Linux: its comm) listening on `ports` of 127.0.0.1; yields
    its PID."""
    proc, _ = _start_child(_NAMED, name, *(str(port) for port in ports))
    try:
        yield proc.pid
    finally:
        _stop_child(proc)

# A load-test client and its servers in one process: each line read on stdin (a count)
# makes that many connections to the servers in turn, from ports the kernel picks, and the
# CLIENT closes first, so the TIME_WAIT stays on the client's ephemeral port.
_CLIENTS = """
import socket, sys
servers = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024); servers.append(s)
print(" ".join(str(s.getsockname()[1]) for s in servers), flush=True)
turn = 0
for line in sys.stdin:
    made = 0
    for _ in range(int(line)):
        server = servers[turn % len(servers)]
        turn += 1
        client = socket.socket()
        try:
            client.connect(server.getsockname())
        except OSError:  # no ephemeral port left for this server: say how many were made
            client.close()
            break
        conn, _ = server.accept()
        client.close()  # the client's FIN first
        conn.recv(1)  # its EOF
        conn.close()
        made += 1
    print(made, flush=True)
"""


class ClientTimeWait:
    """Client-side TIME_WAIT towards `listeners` server ports, on demand, as a load test
    hitting that many services leaves them: the servers (one child process) listen on
    127.0.0.1; the clients connect from kernel-chosen ephemeral ports and close first.
    close() kills the child; the TIME_WAIT it left expires by itself."""

    def __init__(self, listeners: int = 20) -> None:
        self._proc, self.ports = _start_child(_CLIENTS, str(listeners), commands=True)
        self.pid = self._proc.pid

    def make(self, count: int) -> float:
        """Make `count` more; return the seconds it took."""
        started = time.monotonic()
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{count}\n")
        stdin.flush()
        if not stdout.readline():
            raise RuntimeError("the client load's child process died")
        return time.monotonic() - started

    def close(self) -> None:
        _stop_child(self._proc)


class TimeWaitKeeper(threading.Thread):
    """Keeps about `target` TIME_WAIT sockets on the machine during a measurement: twice a
    second it counts them and has `make(missing)` refill what expired (each lasts 60 s).
    `paused()` holds refills off while something short is timed; `samples` are the counts
    it saw."""

    def __init__(self, make: Callable[[int], object], target: int) -> None:
        super().__init__(daemon=True)
        self._make = make
        self.target = target
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.samples: list[int] = []

    def fill(self, target: int | None = None) -> int:
        """Top up to `target` (default: the keeper's) now; the count found before."""
        wanted = self.target if target is None else target
        with self._lock:
            now = count_time_wait()
            if now < wanted:
                self._make(wanted - now)
            return now

    def ramp(self, seconds: float, steps: int = 10) -> None:
        """Build the load in even steps over `seconds` (before start()): built in one burst,
        it would also expire in one, every 60 s, and the count would dip to nothing."""
        began = time.monotonic()
        for step in range(1, steps + 1):
            self.fill(self.target * step // steps)
            time.sleep(max(0.0, began + seconds * step / steps - time.monotonic()))

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.samples.append(self.fill())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            yield

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
