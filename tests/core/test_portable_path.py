"""The portable path's core (issue 22): one switch (core/platform_path.py) sends sockets,
process facts, kernel evidence and signals through psutil, as on macOS and Windows, and
nothing on that path reads /proc itself, opens a pidfd or guesses from argv. Real processes
and sockets; the fast path's readers are made to fail, so any use of them shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psutil
import pytest

import portscope.core.collect.fd_reads as fd_reads
import portscope.core.collect.proc_net as proc_net
import portscope.core.collect.sock_diag as sock_diag
import portscope.core.proc_facts as proc_facts
import portscope.core.processes as processes
import portscope.core.roles.cgroups as cgroups
import portscope.core.roles.evidence as evidence
import portscope.core.roles.managers as managers
import portscope.core.roles.privilege as privilege
import portscope.core.roles.procs as procs
from portscope.core import platform_path
from portscope.core.collect import default_collector
from portscope.core.collect.psutil_collector import HIDDEN_WITHOUT_ROOT, PsutilCollector
from portscope.core.kill.handles import PsutilHandle, open_handle, wait_exited
from portscope.core.roles.port import cast_port
from support import PREFORK_SERVER, make_server_time_wait, run_as_nobody, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.fixture
def portable(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv(platform_path.ENV, "1")
    return monkeypatch


@pytest.fixture(autouse=True)
def no_flag_left() -> Any:
    yield
    platform_path.choose(None)


def test_the_switch_reads_its_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [platform_path.parse(v) for v in ("", "0", "off", "1", "yes", " True ")] == [
        None, None, None, "portable", "portable", "portable",
    ]
    assert platform_path.parse("macOS-nonroot") == "macos-nonroot"
    with pytest.raises(ValueError, match="must be 1"):
        platform_path.parse("2")
    monkeypatch.delenv(platform_path.ENV, raising=False)
    assert not platform_path.portable() and platform_path.linux_proc()
    assert platform_path.source_name("psutil") == "psutil"
    monkeypatch.setenv(platform_path.ENV, "macos-nonroot")
    assert platform_path.portable() and platform_path.system_table_denied()
    assert not platform_path.linux_proc()
    monkeypatch.setenv(platform_path.ENV, "bogus")  # the CLI refuses it; the core stays safe
    assert platform_path.mode() == "portable"
    monkeypatch.setenv(platform_path.ENV, "0")
    platform_path.choose("portable")  # --portable wins over the variable
    assert platform_path.portable() and not platform_path.system_table_denied()
    assert platform_path.source_name("psutil") == "psutil (portable)"


def refuse_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reader the fast path has raises: the portable path must not call one."""

    def fast_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("the portable path read something itself")

    for module, name in (
        (proc_facts, "read"), (proc_facts, "parents"), (proc_facts, "cmdlines"),
        (proc_facts, "environ"), (proc_facts, "children"), (evidence, "_small"),
        (processes, "read_stat"), (fd_reads, "read_stat"), (fd_reads, "read_table"),
        (fd_reads, "read_many"), (sock_diag, "read_tables"), (proc_net, "read_tables"),
        (cgroups, "_read"), (os, "pidfd_open"),
    ):
        monkeypatch.setattr(module, name, fast_path)
    # /proc/PID/cgroup and /proc/net/unix are read with open(): shadow it in those modules.
    monkeypatch.setattr(privilege, "open", fast_path, raising=False)
    monkeypatch.setattr(managers, "open", fast_path, raising=False)


def test_collect_plan_and_signal_without_reading_proc(
    spawn: Spawn, portable: pytest.MonkeyPatch
) -> None:
    proc, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    port, *workers = (int(x) for x in line.split())
    master = proc.pid
    refuse_fast_path(portable)
    collector = default_collector()
    assert isinstance(collector, PsutilCollector)
    assert collector.name == "psutil (portable)"
    snap = collector.collect()
    assert snap.source == "psutil (portable)"
    [listener] = snap.listeners_on(port)
    assert set(listener.pids) == {master, *workers}  # every holder, as ss names them
    assert listener.uid is None and listener.v6only is None  # unknown, never guessed
    # The stop plan: the master (the workers' parent) is signalled, the workers follow.
    plan = cast_port(snap, port).plan
    assert (plan.how, plan.pids, set(plan.followers)) == ("signal", (master,), set(workers))
    assert plan.withheld == ()  # a root server this test started: started by its caller
    kernel = evidence.kernel(master)
    assert kernel is not None and kernel.ppid == os.getpid() and kernel.euid == os.geteuid()
    assert kernel.exe == os.path.realpath(sys.executable)
    assert evidence.ancestors(master)[0] == os.getpid()
    assert procs.LiveProcesses().get(master) is not None
    assert procs.all_parents()[master] == os.getpid()
    # psutil's guard (PID + start time) instead of a pidfd, which would fail loudly here.
    started = psutil.Process(master).create_time()
    handle = open_handle(master, started)
    assert isinstance(handle, PsutilHandle)
    handle.send(signal.SIGTERM)
    proc.wait(timeout=10)
    assert wait_exited([handle], 5) == {master}


def test_kernel_facts_from_psutil_are_the_kernels(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    child, _ = spawn("import time; print('up', flush=True); time.sleep(60)")
    for pid in (os.getpid(), child.pid):
        monkeypatch.delenv(platform_path.ENV, raising=False)
        fast, fast_chain = evidence.kernel(pid), evidence.ancestors(pid)
        monkeypatch.setenv(platform_path.ENV, "1")
        slow, slow_chain = evidence.kernel(pid), evidence.ancestors(pid)
        assert fast is not None and slow is not None
        assert slow.groups == ()  # psutil does not say: a group-only script is not read
        same = ("ppid", "ruid", "euid", "egid", "exe", "exe_uid", "exe_trusted")
        assert {f: getattr(slow, f) for f in same} == {f: getattr(fast, f) for f in same}
        assert slow_chain == fast_chain and slow_chain[0] == fast.ppid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a drop from root to nobody")
def test_an_exe_psutil_would_guess_from_argv0_is_unknown(
    portable: pytest.MonkeyPatch,
) -> None:
    """`sleep` started with argv[0] "/bin/true": as nobody the exe link of root's process is
    refused, and psutil's exe() then answers argv[0], a claim anyone can make. The portable
    kernel facts say unknown instead; as root they give the kernel's answer."""
    sleeper = subprocess.Popen(["/bin/true", "60"], executable="/bin/sleep")
    try:
        as_root = evidence.kernel(sleeper.pid)
        assert as_root is not None and as_root.exe == os.path.realpath("/bin/sleep")

        def look() -> tuple[str, str | None, int | None]:
            k = evidence.kernel(sleeper.pid)
            assert k is not None  # the parent and uids are readable, the exe is not
            return psutil.Process(sleeper.pid).exe(), k.exe, k.euid

        seen: Any = run_as_nobody(look)
        guessed, exe, euid = seen
    finally:
        sleeper.kill()
        sleeper.wait()
    assert guessed == "/bin/true"  # psutil's public exe(): argv[0]
    assert exe is None and euid == 0


def test_root_target_with_an_unknown_socket_creator(
    spawn: Spawn, portable: pytest.MonkeyPatch
) -> None:
    """No creator uid on the portable path: a root process that the caller of portscope did
    not start is withheld (PID 1 here); one it started is not; known creators decide as on
    the fast path."""
    init = evidence.kernel(1)
    assert init is not None and init.euid == 0
    refusal = privilege.step_up_refusal(1, [None])
    assert refusal is not None and "does not say who created its socket" in refusal
    assert "--allow-system" in refusal
    assert privilege.step_up_refusal(1, [None], allow_system=True) is None
    child, _ = spawn("import time; print('up', flush=True); time.sleep(60)")
    assert privilege.started_by_caller(child.pid)  # it descends from pytest's caller
    assert privilege.step_up_refusal(child.pid, [None]) is None
    assert privilege.step_up_refusal(child.pid, [0, None]) is None  # root's own socket
    assert privilege.step_up_refusal(child.pid, [65534]) is not None  # another user's
    assert privilege.system_refusal(child.pid) is None  # no cgroups here: no unit rule


def test_as_macos_without_root_the_system_table_is_never_asked(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(platform_path.ENV, "macos-nonroot")

    def asked(kind: str = "inet") -> None:
        raise AssertionError("psutil.net_connections() was called")

    monkeypatch.setattr(psutil, "net_connections", asked)
    proc, line = spawn(PREFORK_SERVER.format(workers=2, port=0))
    port, *workers = (int(x) for x in line.split())
    with tcp_listener() as mine:
        make_server_time_wait(mine, 3)
        snap = default_collector().collect()
        stats = snap.port_stats(mine.getsockname()[1])
    assert snap.source == "psutil (portable, as macOS without root)"
    assert HIDDEN_WITHOUT_ROOT in snap.notes
    [listener] = snap.listeners_on(port)
    assert set(listener.pids) == {proc.pid, *workers}  # each process asked for its own
    assert stats is None or stats.time_wait == 0  # TIME_WAIT belongs to no process: hidden


def test_psutil_names_one_holder_and_the_collector_finds_the_rest(spawn: Spawn) -> None:
    """Why the collector asks a holder's relatives: psutil's system-wide list names one
    PID per socket on Linux."""
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    port, *workers = (int(x) for x in line.split())
    named = {
        c.pid for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
    }
    [listener] = PsutilCollector().collect(port).listeners_on(port)
    assert len(named) == 1 and named < {proc.pid, *workers}
    assert set(listener.pids) == {proc.pid, *workers}
