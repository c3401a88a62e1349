"""Listener events from the real collector, for listeners and servers this test starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from portscope.core.collect import default_collector
from portscope.core.history.events import ListenerEvent, ListenerWatch
from portscope.core.history.trends import TrendBook
from real_servers import (
    Running,
    free_port,
    group_members,
    holders,
    listening_inodes,
    ppid,
)
from support import (
    ROOT_LISTENER,
    make_server_time_wait,
    reap,
    spawn_python,
    tcp_listener,
    wait_for,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, netlink")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
POLL = 0.05


def poll_until(
    watch: ListenerWatch, port: int, done: Callable[[list[ListenerEvent]], bool],
    timeout: float = 20.0,
) -> list[ListenerEvent]:
    """Poll the real collector until `done` holds for the events seen on `port`."""
    collector = default_collector()
    seen: list[ListenerEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(e for e in watch.update(collector.collect()) if e.port == port)
        if done(seen):
            return seen
        time.sleep(POLL)
    raise AssertionError(f"events on {port} so far: {[(e.kind, e.pids) for e in seen]}")


def kinds(events: list[ListenerEvent]) -> list[str]:
    return [e.kind for e in events]


def test_listen_then_unlisten_name_the_child() -> None:
    collector = default_collector()
    watch = ListenerWatch()
    watch.update(collector.collect())  # the present: not news
    child, line = spawn_python(ROOT_LISTENER)
    port = int(line)
    try:
        events = poll_until(watch, port, lambda seen: "listen" in kinds(seen))
        started = time.monotonic()
    finally:
        reap(child)
    events += poll_until(watch, port, lambda seen: "unlisten" in kinds(seen))
    listened = time.monotonic() - started
    assert kinds(events) == ["listen", "unlisten"]
    listen, unlisten = events
    assert listen.pids == (child.pid,) and not listen.at_start
    assert (listen.proto, listen.family, listen.address) == ("tcp", "ipv4", "127.0.0.1")
    assert listen.holders[0].cmdline[:2] == (sys.executable, "-c")
    assert unlisten.pids == (child.pid,)
    assert unlisten.listened_for is not None and 0 < unlisten.listened_for < listened + 10


# The tests below poll only while no socket is being opened: the collector reads the
# socket table and then the processes' fds, and a socket opened between the two reads by a
# process that then sleeps stays without holders until its next full fd walk (reported).


def serving_pid(port: int, group: int, old: int | None = None, timeout: float = 20.0) -> int:
    """Wait, reading /proc (not the collector), until a process of `group` other than `old`
    holds the listener on `port`; its PID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = holders(listening_inodes(port), group_members(group)) - {old}
        if held:
            [pid] = held
            return pid
        time.sleep(0.02)
    raise AssertionError(f"nothing of group {group} listens on {port}")


def test_a_shell_loop_restart_names_the_new_pid_and_the_loop(
    real_server: Callable[..., Running],
) -> None:
    """Killed and back between two polls (the loop sleeps 0.3 s): the holders were replaced."""
    loop = real_server("shell-loop")
    [old] = loop.pids_holding
    assert loop.proc is not None
    collector = default_collector()
    watch = ListenerWatch(port=loop.port)
    watch.update(collector.collect())  # the baseline
    os.kill(old, signal.SIGKILL)  # the server, a child of the loop this test started
    new = serving_pid(loop.port, loop.proc.pid, old)
    [restart] = watch.update(collector.collect())
    assert (restart.kind, restart.pids, restart.previous_pids) == ("restart", (new,), (old,))
    assert ppid(new) == loop.proc.pid
    assert restart.restarted_by is not None
    assert (restart.restarted_by.pid, restart.restarted_by.name) == (loop.proc.pid, "bash")
    assert restart.restarted_by.note == "shell loop"


def test_unlisten_then_restart_when_a_poll_sees_the_gap() -> None:
    """A loop that waits 1 s before it starts the server again: a poll falls in the gap."""
    port = free_port()
    server = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    loop = subprocess.Popen(
        ["bash", "-c", f"while true; do {server}; sleep 1; done"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        old = serving_pid(port, loop.pid)
        collector = default_collector()
        watch = ListenerWatch(port=port)
        watch.update(collector.collect())
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: not listening_inodes(port))
        [gone] = watch.update(collector.collect())
        new = serving_pid(port, loop.pid, old)
        [back] = watch.update(collector.collect())
    finally:
        os.killpg(loop.pid, signal.SIGKILL)
        loop.wait()
    assert (gone.kind, gone.pids, gone.at_start) == ("unlisten", (old,), True)
    assert (back.kind, back.pids, back.previous_pids) == ("restart", (new,), (old,))
    assert back.restarted_by is not None and back.restarted_by.pid == loop.pid
    assert back.restarted_by.note == "shell loop"


def test_trend_shows_time_wait_climbing() -> None:
    collector = default_collector()
    book = TrendBook(interval=0.1, window=6.0, max_samples=60)  # a cell per sample
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        book.update(collector.collect())
        for burst in (3, 6, 9):
            time.sleep(0.15)  # past one step: every burst is its own sample
            make_server_time_wait(listener, burst)
            book.update(collector.collect())
    trend = book.trend(port)
    assert trend is not None
    assert trend.time_wait == (0, 3, 9, 18)
    assert trend.peak_time_wait == 18
    assert trend.growth is not None and trend.growth > 0
    assert book.sparkline(port, 60) == " " * 56 + "▁▃▅█"
