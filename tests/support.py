"""Real sockets and real processes on loopback for the tests; everything started here is
cleaned up by the fixtures in conftest.py, and nothing else is ever signalled."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def tcp_listener(
    host: str = LOOPBACK, port: int = 0, *, reuseaddr: bool = False, v6only: bool | None = None
) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if reuseaddr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    sock.bind((host, port))
    sock.listen(128)
    return sock


def udp_socket(host: str = LOOPBACK, port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    return sock


def free_in_both(host: str = LOOPBACK, tries: int = 50) -> int:
    """A port that TCP and UDP can both bind now. The kernel hands out TCP ports clear of
    TIME_WAIT but UDP ports clear of UDP only, so a UDP-chosen port may be a TCP TIME_WAIT."""
    for _ in range(tries):
        with tcp_listener(host) as tcp:
            port: int = tcp.getsockname()[1]
            try:
                udp_socket(host, port).close()
            except OSError:
                continue
            return port
    raise AssertionError(f"no port free for both TCP and UDP in {tries} tries")


def client_time_wait(listener: socket.socket, count: int) -> None:
    """`count` connections the client closes first: TIME_WAIT on the client's own ports."""
    host, port = listener.getsockname()[:2]
    for _ in range(count):
        client = socket.create_connection((host, port))
        conn, _ = listener.accept()
        client.close()
        conn.recv(1)
        conn.close()


def netlink_messages(chunk: bytes) -> Iterator[bytes]:
    """The netlink messages of one datagram, each with its header."""
    off = 0
    while off + 16 <= len(chunk):
        length = struct.unpack_from("=I", chunk, off)[0]
        yield chunk[off : off + length]
        off += (length + 3) & ~3


def quiet_port(tries: int = 200) -> int:
    """A port below the ephemeral range that no TCP socket of either family and no UDP
    socket uses now (plain binds, no SO_REUSEADDR: a TIME_WAIT or an orphan there makes them
    fail), so a test that counts a port's sockets counts its own alone: a kernel-chosen
    port can carry another program's client TIME_WAIT on the other family, or a TCP socket
    on the port a UDP bind was given."""
    for _ in range(tries):
        port = random.randrange(20_000, 32_000)
        try:
            for host in (LOOPBACK, "::1"):
                tcp_listener(host, port).close()
                udp_socket(host, port).close()
        except OSError:
            continue
        return port
    raise AssertionError(f"no quiet port in {tries} tries")


def neighbouring_listeners(
    host: str = LOOPBACK, tries: int = 50
) -> tuple[socket.socket, socket.socket]:
    """Listeners on two consecutive ports, retried while someone else holds the second."""
    for _ in range(tries):
        first = tcp_listener(host)
        try:
            return first, tcp_listener(host, first.getsockname()[1] + 1)
        except (OSError, OverflowError):
            first.close()
    raise AssertionError(f"no two neighbouring ports free in {tries} tries")


def retried(setup: Callable[[], T], tries: int = 50) -> T:
    """`setup()` again while a bind in it fails for EADDRINUSE: a test that binds a second
    socket on a port it chose by binding a first one races every other program on the
    machine (another copy of the suite among them) for that second address."""
    for _ in range(tries - 1):
        try:
            return setup()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return setup()


def listeners_on_one_port(*specs: tuple[str, bool | None]) -> list[socket.socket]:
    """Listeners on one port, one per (host, v6only), the port chosen by the kernel for the
    first; retried while another program holds the port on a later address."""

    def bind_all() -> list[socket.socket]:
        (host, v6only), *rest = specs
        socks = [tcp_listener(host, v6only=v6only)]
        port = socks[0].getsockname()[1]
        try:
            for host, v6only in rest:
                socks.append(tcp_listener(host, port, v6only=v6only))
        except OSError:
            for sock in socks:
                sock.close()
            raise
        return socks

    return retried(bind_all)


def make_server_time_wait(listener: socket.socket, count: int) -> None:
    """Leave `count` TIME_WAIT sockets on the listener's own port: the server closes first,
    as a server that restarts does, so the TIME_WAIT lands on the server side."""
    host, port = listener.getsockname()[:2]
    family = listener.family
    for _ in range(count):
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect((host, port))
        conn, _ = listener.accept()
        conn.close()  # server's FIN first
        client.recv(1)  # wait for it to arrive
        client.close()  # then the client's FIN moves the server side to TIME_WAIT
    wait_for(lambda: True)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def ss_lines(*args: str) -> list[str]:
    out = subprocess.run(["ss", "-H", *args], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def ss_time_wait(port: int) -> int:
    """TIME_WAIT sockets on local `port`, any address, as `ss` counts them: the reference
    for a test whose port may also carry an earlier test's TIME_WAIT."""
    lines = ss_lines("-tan", "state", "time-wait")
    return sum(1 for line in lines if int(line.split()[2].rpartition(":")[2]) == port)


def spawn_python(code: str, *, ready_line: bool = True, **popen: object) -> tuple[
    subprocess.Popen[str], str
]:
    """Start `python -c code`; with ready_line, wait for its first stdout line and return it.

    The child inherits nothing but stdio, so it holds only the sockets its code opens.
    """
    proc = subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, so reap() can take its children too
        **popen,
    )
    line = ""
    if ready_line:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            proc.kill()
            raise AssertionError("child exited before it was ready")
    return proc, line


# A server that binds a free loopback port, forks `workers` children that share the listening
# socket (as gunicorn and nginx do), prints the port, then waits for SIGTERM. On SIGTERM the
# master terminates its workers, as real pre-fork masters do.
PREFORK_SERVER = """
import os, signal, socket, sys, time
workers = int(sys.argv[1]) if len(sys.argv) > 1 else {workers}
s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen(16)
kids = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            time.sleep(1)
    kids.append(pid)
def stop(*_):
    for k in kids:
        try:
            os.kill(k, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for k in kids:
        try:
            os.waitpid(k, 0)
        except ChildProcessError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
print(s.getsockname()[1], *kids, flush=True)
while True:
    time.sleep(1)
"""


def reap(proc: subprocess.Popen[str]) -> None:
    """Stop a process this test started and the children it forked (its own process group,
    made by spawn_python), and nothing else."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    if proc.stdout:
        proc.stdout.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


NOBODY = 65534

# A child that listens on a free loopback port, prints it, and waits to be killed.
ROOT_LISTENER = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


def run_as_nobody(func: Callable[[], object]) -> object:
    """Run func in a forked child that dropped to uid/gid nobody; return its pickled result.

    In-process, because an interpreter under /root cannot be exec'd by nobody. Only root
    can drop privileges: callers skip unless os.geteuid() == 0.
    """
    import pickle

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            try:
                payload = pickle.dumps(("ok", func()))
            except BaseException as exc:
                payload = pickle.dumps(("error", repr(exc)))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as src:
        data = src.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status != "ok":
        raise AssertionError(f"as nobody: {value}")
    return value


# A listener that ignores SIGTERM, as a stuck server does: only SIGKILL stops it.
TERM_IGNORING_LISTENER = """
import signal, socket, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""

# A bound UDP socket on a free loopback port.
# A UDP socket on a quiet port (see quiet_port): a UDP port the kernel chose may carry
# another program's TCP socket, which a test of "nothing holds tcp port P" would meet.
UDP_LISTENER = """
import random, socket, time
while True:
    port = random.randrange(20000, 32000)
    try:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            socket.socket(family, socket.SOCK_STREAM).bind((host, port))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", port))
        break
    except OSError:
        continue
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


def exited(proc: subprocess.Popen[str], timeout: float = 5.0) -> bool:
    """True once a child this test started has exited (and is reaped, so no zombie lingers)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True
