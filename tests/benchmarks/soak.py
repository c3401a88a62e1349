"""Soak: poll once a second for a long time while sockets and processes come and go, and
check every poll against what is really open. Run by `collect.py --soak SECONDS`.

Churn (all loopback, all started here, all cleaned up): in-process TCP/UDP sockets on IPv4
and IPv6 opened and closed; pre-fork servers (a master and 1-4 workers sharing a listener)
started, single workers killed, whole servers killed; bursts of TIME_WAIT. The real TUI runs
beside it in tmux, so its RSS is measured under the same churn.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: support.PREFORK_SERVER

from loads import TimeWaitMaker  # noqa: E402
from polling import proc_collector  # noqa: E402

from portscope.core.model import Snapshot  # noqa: E402
from support import PREFORK_SERVER  # noqa: E402

Key = tuple[str, str, str, int]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    workers: set[int] = field(default_factory=set)

    @property
    def holders(self) -> set[int]:
        return {self.proc.pid, *self.workers}


def start_server(workers: int) -> Server:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PREFORK_SERVER.format(workers=workers, port=0))],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    port, *kids = (int(x) for x in proc.stdout.readline().split())
    return Server(proc, port, set(kids))


def stop_server(server: Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    if server.proc.stdout:
        server.proc.stdout.close()


def open_socket() -> tuple[socket.socket, Key]:
    host = random.choice(["127.0.0.1", "::1"])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = random.choice([socket.SOCK_STREAM, socket.SOCK_DGRAM])
    sock = socket.socket(family, kind)
    sock.bind((host, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
    return sock, (proto, "ipv6" if ":" in host else "ipv4", host, sock.getsockname()[1])


class Checker:
    def __init__(self) -> None:
        self.missing = 0
        self.stale = 0
        self.wrong_holders = 0
        self.examples: list[str] = []

    def note(self, what: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(what)

    def check(
        self, snap: Snapshot, open_keys: set[Key], closed_keys: set[Key],
        servers: list[Server], dead: set[int],
    ) -> None:
        rows = {(s.proto, s.family, s.address, s.port): set(s.pids) for s in snap.sockets}
        me = os.getpid()
        for key in open_keys:
            if me not in rows.get(key, set()):
                self.missing += 1
                self.note(f"missing {key}")
        for key in closed_keys:
            if me in rows.get(key, set()):
                self.stale += 1
                self.note(f"stale {key}")
        for server in servers:
            got = rows.get(("tcp", "ipv4", "127.0.0.1", server.port))
            if got != server.holders:
                self.wrong_holders += 1
                self.note(f"server {server.port}: {got} != {server.holders}")
        every = {pid for pids in rows.values() for pid in pids}
        if every & dead:
            self.stale += 1
            self.note(f"dead pids shown: {every & dead}")


def _tui_in_tmux() -> tuple[str, psutil.Process] | None:
    if not Path("/usr/bin/tmux").exists():
        return None
    session = f"portscope-soak-{os.getpid()}"
    portscope = Path(sys.executable).parent / "portscope"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", f"exec {portscope}"],
        check=True,
    )
    pane = subprocess.run(
        ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return session, psutil.Process(int(pane))


def soak(seconds: float) -> int:
    random.seed(5)
    collector = proc_collector()
    me = psutil.Process()
    socks: list[tuple[socket.socket, Key]] = []
    closed: set[Key] = set()
    servers: list[Server] = []
    dead: set[int] = set()
    maker = TimeWaitMaker()
    checker = Checker()
    errors: list[str] = []
    times: list[float] = []
    rss: list[int] = []
    tui_rss: list[int] = []
    tui = _tui_in_tmux()
    started = time.monotonic()
    polls = 0
    try:
        while time.monotonic() - started < seconds:
            tick = time.monotonic()
            # -- churn ---------------------------------------------------------------------
            for _ in range(random.randint(0, 3)):
                if len(socks) < 30:
                    socks.append(open_socket())
            for _ in range(random.randint(0, 3)):
                if socks:
                    sock, key = socks.pop(random.randrange(len(socks)))
                    sock.close()
                    closed.add(key)
            closed -= {key for _, key in socks}  # a port the kernel handed out again
            if random.random() < 0.3 and len(servers) < 6:
                servers.append(start_server(random.randint(1, 4)))
            if random.random() < 0.2 and servers:
                server = servers.pop(random.randrange(len(servers)))
                dead |= server.holders
                stop_server(server)
            if random.random() < 0.2 and servers:
                server = random.choice(servers)
                if server.workers:
                    worker = random.choice(sorted(server.workers))
                    os.kill(worker, signal.SIGKILL)  # a worker of a server started here
                    server.workers.discard(worker)
                    dead.add(worker)
            if polls % 3 == 0:
                maker.make(300)
            # -- poll and check -------------------------------------------------------------
            poll_started = time.perf_counter()
            try:
                snap = collector.collect()
            except Exception as exc:  # the soak's job is to count these
                errors.append(repr(exc))
                continue
            times.append((time.perf_counter() - poll_started) * 1000)
            polls += 1
            checker.check(snap, {k for _, k in socks}, closed, servers, dead)
            dead = {pid for pid in dead if psutil.pid_exists(pid)}
            rss.append(me.memory_info().rss)
            if tui is not None:
                with contextlib.suppress(psutil.Error):
                    tui_rss.append(tui[1].memory_info().rss)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        for sock, _ in socks:
            sock.close()
        for server in servers:
            stop_server(server)
        maker.close()
        tui_alive = False
        screen = ""
        if tui is not None:
            tui_alive = tui[1].is_running()
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", tui[0]], capture_output=True, text=True,
                check=False,
            ).stdout
            subprocess.run(["tmux", "kill-session", "-t", tui[0]], check=False)

    def growth(samples: list[int]) -> str:
        if len(samples) < 20:
            return "n/a"
        base = statistics.median(samples[5:15])  # after warm-up
        # A leak keeps growing; a bounded cache filling up stops: the second half tells.
        half = statistics.median(samples[len(samples) // 2 - 5 : len(samples) // 2 + 5])
        mb = 2**20
        return (
            f"{base / mb:.1f} MB after warm-up -> {samples[-1] / mb:.1f} MB at end "
            f"(peak {max(samples) / mb:.1f} MB, growth {(samples[-1] - base) / mb:+.1f} MB, "
            f"in the second half {(samples[-1] - half) / mb:+.1f} MB)"
        )

    print(f"soak: {seconds:.0f} s, {polls} polls, {len(errors)} errors")
    print(f"- poll time: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms; "
          f"full fd walks: {collector.full_walks}")
    print(f"- rows checked each poll: missing {checker.missing}, stale {checker.stale}, "
          f"wrong holders {checker.wrong_holders}")
    for example in checker.examples:
        print(f"  - {example}")
    for error in errors[:5]:
        print(f"  - error: {error}")
    print(f"- collector process RSS: {growth(rss)}")
    if tui is not None:
        print(f"- TUI (`portscope` in tmux) RSS: {growth(tui_rss)}; alive at end: {tui_alive}; "
              f"traceback on screen: {'Traceback' in screen}")
    bad = errors or checker.missing or checker.stale or checker.wrong_holders
    return 1 if bad else 0
