"""A cold poll describes each holder with as few /proc reads as the facts allow: its own
stat read is its identity, the owner walk's CPU time its witness, and an account name is
asked of the system once for many processes of one user."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from portscope.core import proc_facts
from portscope.core.collect import fd_reads, proc_collector
from portscope.core.collect.fd_reads import read_stat
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.processes import ProcessTable, describe
from support import PREFORK_SERVER

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def test_a_first_sight_is_cached_under_read_stats_identity(spawn: Spawn) -> None:
    proc, _ = spawn("import time\nprint('ready', flush=True)\ntime.sleep(60)")
    table = ProcessTable(ran=lambda pid: -1)
    first = table.holder(proc.pid)
    assert first is not None and first == describe(proc.pid)
    table.begin_poll()
    assert table.holder(proc.pid) == first
    assert table.described == 1  # the next poll's identity check found it cached
    stat = read_stat(proc.pid)
    assert stat is not None
    assert table.export()[proc.pid].start == stat[0]  # what another run's seed compares


def test_a_cold_poll_takes_the_walks_cpu_times_as_witnesses(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *pids = map(int, line.split())
    asked: list[int] = []
    real = proc_collector.cpu_time

    def counted(pid: int, proc: str = "/proc") -> int:
        asked.append(pid)
        return real(pid, proc)

    monkeypatch.setattr(proc_collector, "cpu_time", counted)
    collector = ProcNetCollector()
    # Walked here: with helper processes walking (a busy machine), the descriptions are
    # made while they do, before any CPU time was read (the test below).
    collector._owners._helped_from = 10**9
    snap = collector.collect()
    (listener,) = snap.listeners_on(port)
    holders = {h.pid for h in listener.holders}
    assert set(pids) < holders  # the master and its three workers, all described here
    assert not holders & set(asked)  # none read again: the walk had just read them
    described = collector._processes.export()
    for pid in holders:
        assert described[pid].ran == collector._owners.witnessed[pid] > 0


def test_an_account_name_is_asked_once_for_many_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = pwd.getpwuid

    def counted(uid: int) -> pwd.struct_passwd:
        calls.append(uid)
        return real(uid)

    monkeypatch.setattr(pwd, "getpwuid", counted)
    monkeypatch.setattr(proc_facts, "_users", {})
    me = os.getuid()
    names = {proc_facts._user(me) for _ in range(5)}
    assert names == {real(me).pw_name} and calls == [me]
    monkeypatch.setattr(proc_facts, "USER_KEPT", 0.0)  # expired: asked again, each time
    proc_facts._user(me)
    proc_facts._user(me)
    assert calls == [me, me, me]


def test_helpers_that_walk_describe_the_holders_and_only_they_are_kept(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold whole poll whose fd tables helper processes read: they describe the processes
    they walk too (the same proc_facts.read, on every core), so this process reads no
    description of a holder itself; each is what a read here gives, its witness the CPU
    time its helper read before it; a process that holds no live socket is not kept."""
    _, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *pids = map(int, line.split())
    idle, _ = spawn("import time\nprint('ready', flush=True)\ntime.sleep(60)")
    reads: list[int] = []
    real = proc_facts.read

    def counted(pid: int, **kwargs: bool) -> proc_facts.Facts | None:
        reads.append(pid)
        return real(pid, **kwargs)

    monkeypatch.setattr(proc_facts, "read", counted)  # this process's reads only
    collector = ProcNetCollector()
    collector._owners._helped_from = 1  # helpers walk, whatever this machine holds
    snap = collector.collect()
    assert collector._owners.helped > 0
    (listener,) = snap.listeners_on(port)
    holders = {h.pid for h in listener.holders}
    assert set(pids) < holders
    described = collector._processes.export()
    for pid in holders:
        assert pid not in reads  # described by a helper, not here
        assert collector._processes.holder(pid) == describe(pid)
        assert described[pid].ran == collector._owners.witnessed[pid] > 0
    # Walked by a helper, but it holds no socket: not described there nor here, not kept,
    # nor described by the next poll.
    assert idle.pid in collector._owners._tables or idle.pid in collector._owners._refused
    assert idle.pid not in collector._owners.described and idle.pid not in described
    collector.collect()
    assert idle.pid not in reads


def test_the_workers_described_by_one_poll_share_one_command_line(spawn: Spawn) -> None:
    """Each /proc read makes its own copy of a command line; one poll's descriptions share
    equal ones, so a pre-fork server's Snapshot carries (and the child that takes the first
    poll pickles, ahead.py) its command line once, not once per worker."""
    _, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = map(int, line.split())
    snap = ProcNetCollector().collect()
    (listener,) = snap.listeners_on(port)
    mine = [h for h in listener.holders if h.pid in workers]
    assert len(mine) == 3
    first = mine[0]
    assert all(h.cmdline is first.cmdline and h.cwd is first.cwd for h in mine)
    assert all(h == describe(h.pid) for h in mine)  # the same values a lone read gives


def test_helpers_describe_as_this_process_would_and_only_in_its_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper's description is proc_facts.read's, field for field. One from a helper
    started from another copy of the package (installed while the monitor ran) whose Facts
    has other fields is not taken; its tables are."""
    me = os.getpid()
    with socket.socket():  # a process that holds no socket is not described
        tables, _, described = fd_reads.read_many("/proc", [me], 1, describe=True)
        assert me in tables and set(described) == {me}
        assert proc_facts.Facts(*described[me]) == proc_facts.read(me)
        assert fd_reads.read_many("/proc", [me], 1)[2] == {}  # not asked: not described
        monkeypatch.setattr(fd_reads, "_facts_fields", lambda: ("pid", "name"))
        tables, _, described = fd_reads.read_many("/proc", [me], 1, describe=True)
        assert me in tables and described == {}
