"""proc_facts reads /proc as psutil does: compared with psutil field by field on every
process of this machine (as root and as nobody), and on processes started here with the
awkward cases psutil has quirks for (a name cut at 15 bytes, argv with spaces, newlines,
"\\r", non-UTF-8 bytes and empty arguments, a rewritten title, a deleted cwd and exe, an
account-less uid, a zombie, an exited PID)."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from portscope.core import proc_facts
from portscope.core.collect.fd_reads import read_stat
from portscope.core.proc_facts import Facts
from portscope.core.processes import describe, describe_psutil
from portscope.core.roles.procs import LiveProcesses, _read, _read_psutil
from support import PREFORK_SERVER, reap, run_as_nobody, wait_for

pytestmark = pytest.mark.skipif(not proc_facts.AVAILABLE, reason="reads /proc")
T = TypeVar("T")
as_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root")

SLEEPER = """
import sys, time
{setup}
print("ready", flush=True)
time.sleep(600)
"""

# Overwrites the argv area the kernel shows as /proc/self/cmdline, as setproctitle() does:
# the title, NULs, and a last byte that is not NUL, so the kernel reads up to the first NUL.
SET_TITLE = """
import ctypes
with open("/proc/self/stat", "rb") as f:
    fields = f.read().rpartition(b")")[2].split()
start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
title = b"portscope: worker [busy]"
area = title + b"\\0" * (end - start - len(title) - 1) + b"x"
ctypes.memmove(start, area, len(area))
"""

ODD_ARGS: list[str | bytes] = [
    "two words", "new\nline", "cr\rhere", "crlf\r\nhere", "tab\there", "",
    b"\xff\xfe\x80 not utf-8", "trailing space ",
]
# What psutil reads for ODD_ARGS: text mode turns "\r\n" and "\r" into "\n", and the
# file system encoding keeps bad bytes as surrogates.
ODD_ARGS_READ = (
    "two words", "new\nline", "cr\nhere", "crlf\nhere", "tab\there", "",
    "\udcff\udcfe\udc80 not utf-8", "trailing space ",
)
LONG_NAME = "portscope-proc-facts-long-name"
SLEEP = "/bin/sleep" if os.path.exists("/bin/sleep") else shutil.which("sleep") or "sleep"


def sleeper(setup: str = "") -> str:
    return textwrap.dedent(SLEEPER).format(setup=textwrap.dedent(setup))


def set_comm(comm: bytes) -> str:
    return f"open('/proc/self/comm', 'wb').write({comm!r})"


class Started:
    """Processes this module starts; each in its own session, killed and reaped at the end."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(
        self,
        key: str,
        argv: list[str | bytes],
        *,
        script: str | None = None,
        ready: bool = True,
        **popen: object,
    ) -> int:
        proc = subprocess.Popen(  # type: ignore[call-overload]
            argv,
            stdin=subprocess.PIPE if script is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **popen,
        )
        self.procs[key] = proc
        if script is not None:  # python with no arguments runs what stdin gives it
            assert proc.stdin is not None
            proc.stdin.write(script)
            proc.stdin.close()
        assert proc.stdout is not None
        if ready and proc.stdout.readline().strip() != "ready":
            raise AssertionError(f"{key}: child exited before it was ready")
        return int(proc.pid)

    def pid(self, key: str) -> int:
        return int(self.procs[key].pid)

    def stop(self) -> None:
        for proc in self.procs.values():
            reap(proc)


def accountless_uid() -> int:
    uid = 4242
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    tmp = tmp_path_factory.mktemp("proc_facts")
    started = Started()
    python = sys.executable
    try:
        started.start("args", [python, "-c", sleeper(), *ODD_ARGS])
        # comm is cut to 15 bytes; argv[0]'s base name extends it back.
        copy = tmp / LONG_NAME
        shutil.copy(os.path.realpath(python), copy)
        started.start("long", [str(copy), "-I", "-S", "-c", sleeper()])
        started.start("deleted exe", [str(copy), "-I", "-S", "-c", sleeper()])
        copy.unlink()
        started.start(
            "extended comm",
            ["abcdefghijklmnopqrstuvwxyz", "-c", sleeper(set_comm(b"abcdefghijklmno"))],
            executable=python,
        )
        started.start("cut comm", [python, "-c", sleeper(set_comm(b"zyxwvutsrqponml"))])
        started.start("hostile comm", [python, "-c", sleeper(set_comm(b"x) (y\xff\n z"))])
        started.start("spaces only", ["prog with spaces"], executable=python, script=sleeper())
        started.start("title", [python, "-c", sleeper(SET_TITLE)])
        gone = tmp / "gone"
        gone.mkdir()
        started.start("deleted cwd", [python, "-c", sleeper()], cwd=gone)
        gone.rmdir()
        kept = tmp / "kept (deleted)"
        kept.mkdir()
        started.start("cwd named deleted", [python, "-c", sleeper()], cwd=kept)
        if os.geteuid() == 0:
            uid = accountless_uid()
            started.start(  # sleep: it may not exec an interpreter under /root
                "no account", [SLEEP, "600"], user=uid, group=uid, extra_groups=[], cwd="/",
                ready=False,
            )
        # Popen returns once exec succeeded, so the argv is sleep's already. /bin/sleep
        # where /bin links to /usr/bin: the exe link and argv[0] then differ.
        started.start("sleep", [SLEEP, "600"], ready=False)
    except BaseException:
        started.stop()
        raise
    yield started
    started.stop()


def _quiet(getter: Callable[[], T]) -> T | None:
    try:
        return getter()
    except psutil.AccessDenied:
        return None


def psutil_facts(pid: int) -> Facts | None:
    """The same facts through psutil's public API, AccessDenied as None; None for a process
    gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmdline = _quiet(proc.cmdline)
            return Facts(
                pid,
                _quiet(proc.name),
                _quiet(proc.ppid),
                _quiet(proc.create_time),
                None if cmdline is None else tuple(cmdline),
                _quiet(proc.cwd),
                _quiet(lambda: int(proc.uids().real)),
                _quiet(proc.username),
                _quiet(proc.exe),
                # Not psutil's: ProcessTable's identity, the start time read_stat reads.
                ticks=stat[0] if (stat := read_stat(pid)) is not None else None,
            )
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None


def ours(pid: int) -> Facts | None:
    return proc_facts.read(pid, exe=True)


def settled(
    pid: int, mine: Callable[[int], object], reference: Callable[[int], object]
) -> tuple[object, object] | None:
    """(ours, psutil's) read while ours did not change around psutil's read; None if the
    process kept changing (it exec'd, exited, moved) on every try."""
    for _ in range(5):
        before = mine(pid)
        theirs = reference(pid)
        if mine(pid) == before:
            return before, theirs
    return None


def compare_all(
    mine: Callable[[int], object], reference: Callable[[int], object]
) -> tuple[list[tuple[object, object]], set[int]]:
    """(mismatches, PIDs compared) over every PID in /proc."""
    mismatches: list[tuple[object, object]] = []
    compared: set[int] = set()
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        pair = settled(pid, mine, reference)
        if pair is None:
            continue
        compared.add(pid)
        if pair[0] != pair[1]:
            mismatches.append(pair)
    return mismatches, compared


def test_every_process_reads_as_psutil_reads_it(odd: Started) -> None:
    mismatches, compared = compare_all(ours, psutil_facts)
    assert mismatches == []
    assert {1, os.getpid(), *(p.pid for p in odd.procs.values())} <= compared


def test_started_is_psutils_create_time_to_the_bit(odd: Started) -> None:
    for pid in (1, os.getpid(), *(p.pid for p in odd.procs.values())):
        facts = proc_facts.read(pid)
        assert facts is not None and facts.started is not None
        assert facts.started.hex() == psutil.Process(pid).create_time().hex()


def test_awkward_argv_and_names(odd: Started) -> None:
    def read(key: str) -> Facts:
        facts = proc_facts.read(odd.pid(key), exe=True)
        assert facts is not None and facts == psutil_facts(odd.pid(key))
        return facts

    assert read("args").cmdline == (sys.executable, "-c", sleeper(), *ODD_ARGS_READ)
    assert read("long").name == LONG_NAME  # comm says "portscope-proc-"
    deleted = read("deleted exe")
    assert deleted.name == LONG_NAME
    assert deleted.exe is not None and deleted.exe.endswith(f"/{LONG_NAME}")  # no " (deleted)"
    assert read("extended comm").name == "abcdefghijklmnopqrstuvwxyz"
    assert read("cut comm").name == "zyxwvutsrqponml"
    assert read("hostile comm").name == "x) (y\udcff\n z"
    # One NUL-terminated argument holding spaces: psutil splits it on the spaces.
    assert read("spaces only").cmdline == ("prog", "with", "spaces")
    # A rewritten title with no NUL at its end: separated by spaces.
    assert read("title").cmdline == ("portscope:", "worker", "[busy]")


def test_deleted_cwd_and_a_cwd_really_named_deleted(odd: Started) -> None:
    gone = proc_facts.read(odd.pid("deleted cwd"))
    kept = proc_facts.read(odd.pid("cwd named deleted"))
    assert gone is not None and kept is not None
    assert gone.cwd is not None and gone.cwd.endswith("/gone")
    assert kept.cwd is not None and kept.cwd.endswith("/kept (deleted)")
    assert gone.cwd == psutil.Process(gone.pid).cwd()
    assert kept.cwd == psutil.Process(kept.pid).cwd()


@as_root_only
def test_a_uid_without_an_account_is_its_number(odd: Started) -> None:
    facts = proc_facts.read(odd.pid("no account"))
    assert facts is not None and facts.uid is not None and facts.uid != 0
    assert facts.user == str(facts.uid) == psutil.Process(facts.pid).username()


@as_root_only
def test_as_nobody_refused_fields_are_none_as_psutil_has_them(odd: Started) -> None:
    sleep = odd.procs["sleep"]

    def look() -> tuple[list[str], set[int], str, str]:
        mismatches, compared = compare_all(ours, psutil_facts)
        return (
            [repr(m) for m in mismatches], compared,
            repr(proc_facts.read(sleep.pid, exe=True)), repr(psutil_facts(sleep.pid)),
        )

    result = run_as_nobody(look)
    assert isinstance(result, tuple)
    mismatches, compared, mine, theirs = result
    assert mismatches == []
    assert {1, *(p.pid for p in odd.procs.values())} <= compared
    # root's `sleep`: its exe and cwd links are refused to nobody; psutil then takes an
    # absolute argv[0] that nobody may execute as the exe.
    assert mine == theirs
    assert f"cwd=None, uid=0, user='root', exe={SLEEP!r}, ticks=" in mine


def test_describe_and_read_match_the_psutil_paths(odd: Started) -> None:
    for mine, reference in ((describe, describe_psutil), (_read, _read_psutil)):
        mismatches, compared = compare_all(mine, unless_zombie(reference))
        assert mismatches == []
        assert {1, os.getpid(), *(p.pid for p in odd.procs.values())} <= compared


def unless_zombie(reference: Callable[[int], object]) -> Callable[[int], object]:
    """The psutil path, but None for a zombie, where the two differ on purpose (see
    test_a_zombie_and_an_exited_pid_are_none)."""

    def read(pid: int) -> object:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return reference(pid)

    return read


def test_a_zombie_and_an_exited_pid_are_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE)
        # psutil still answers for a zombie (the psutil path made a partial Holder of it);
        # the /proc reader calls it gone, as ProcessTable's read_stat does.
        assert psutil.pid_exists(child.pid)
        assert describe_psutil(child.pid) is not None
        assert proc_facts.read(child.pid, exe=True) is None
        assert describe(child.pid) is None and _read(child.pid) is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)  # it has exited: this only guards a failure
        child.wait(timeout=5)
    assert proc_facts.read(child.pid, exe=True) is None
    assert describe(child.pid) is None and _read(child.pid) is None
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(child.pid)


def test_a_kernel_thread_has_no_argv_and_an_empty_exe() -> None:
    facts = proc_facts.read(2, exe=True)  # kthreadd
    assert facts == psutil_facts(2)
    assert facts is not None and facts.cmdline == () and facts.exe == ""


def test_uid_parsing_matches_psutils_pattern() -> None:
    pattern = re.compile(rb"Uid:\t(\d+)\t(\d+)\t(\d+)")
    samples = [
        b"Name:\tx\nUid:\t1000\t1001\t1002\t1003\n",
        b"Name:\tUid:\t9\nUid:\t7\t8\t9\t9\n",
        b"Uid:\t12\tx\t3\nUid:\t5\t6\t7x\n",
        b"Uid:\t\t1\t2\t3\n",
        b"Uid:\t1\t2\n",
        b"",
    ]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                samples.append(Path(f"/proc/{pid}/status").read_bytes())
    for status in samples:
        found = pattern.findall(status)
        assert proc_facts.uid_from_status(status) == (int(found[0][0]) if found else None)


def test_reading_a_process_never_imports_psutil() -> None:
    script = """
import os, sys
import portscope.core.proc_facts as facts
loaded = set(sys.modules)
assert facts.read(os.getpid(), exe=True).pid == os.getpid() and facts.read(1) is not None
new = sorted(set(sys.modules) - loaded)
import portscope.core.roles.procs as procs
from portscope.core.processes import describe
assert procs._read(1) is not None and describe(os.getpid()) is not None
print(new, "psutil" in sys.modules, "typing" in loaded)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["['pwd']", "False", "False"]


def test_environ_reads_as_psutil_reads_it(odd: Started) -> None:
    env = {
        b"PATH": os.environb.get(b"PATH", b"/usr/bin:/bin"),
        b"WERKZEUG_RUN_MAIN": b"true",
        b"ODD": b"a=b\nc\xff",  # an "=" in the value, a newline, a byte that is not UTF-8
    }
    pid = odd.start("environ", [sys.executable, "-c", sleeper()], env=env)
    found = proc_facts.environ(pid)
    assert found == psutil.Process(pid).environ()
    assert found is not None and found["ODD"] == "a=b\nc\udcff"
    view = LiveProcesses()
    assert view.environ(pid, "WERKZEUG_RUN_MAIN") == "true"
    assert view.environ(pid, "MISSING") is None
    for key in odd.procs:
        assert proc_facts.environ(odd.pid(key)) == psutil.Process(odd.pid(key)).environ()


def test_environ_of_a_gone_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait(timeout=10)
    assert proc_facts.environ(child.pid) is None
    assert LiveProcesses().environ(child.pid, "PATH") is None


def test_parents_and_children_match_psutil(odd: Started) -> None:
    def psutil_parents() -> dict[int, int]:
        return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}

    before, ours_now, after = psutil_parents(), proc_facts.parents(), psutil_parents()
    steady = {pid for pid in before.keys() & after.keys() if before[pid] == after[pid]}
    assert steady and steady <= ours_now.keys()
    assert {pid: ours_now[pid] for pid in steady} == {pid: before[pid] for pid in steady}
    me = os.getpid()
    kids = LiveProcesses().children(me)
    assert {odd.pid(key) for key in odd.procs} <= set(kids)
    assert list(kids) == sorted(kids)


def test_the_role_view_imports_no_psutil() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from portscope.core.roles.procs import LiveProcesses
        view = LiveProcesses()
        view.get(os.getppid()); view.children(1); view.environ(os.getpid(), "PATH")
        print("psutil" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cmdlines_read_as_psutil_reads_them(odd: Started) -> None:
    def psutil_cmdlines() -> dict[int, tuple[str, ...]]:
        found = {}
        for proc in psutil.process_iter(["cmdline", "status"]):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.info["cmdline"] is not None:
                found[proc.pid] = tuple(proc.info["cmdline"])
        return found

    before, ours_now, after = psutil_cmdlines(), proc_facts.cmdlines(), psutil_cmdlines()
    steady = {pid for pid in before.keys() & after.keys() if before[pid] == after[pid]}
    assert {odd.pid(key) for key in odd.procs} <= steady <= ours_now.keys()
    assert {pid: ours_now[pid] for pid in steady} == {pid: before[pid] for pid in steady}
    assert ours_now[odd.pid("args")][3:] == ODD_ARGS_READ


def test_children_are_the_kernels_list_and_agree_with_every_parent(
    spawn: Callable[..., tuple[subprocess.Popen[str], str]],
) -> None:
    """A master's workers from its own list (one read, not every process's stat), the same
    PIDs as every process's parent gives; a process with none has none; a gone one, None."""
    proc, line = spawn(PREFORK_SERVER.format(workers=3, port=0))
    _, *workers = (int(x) for x in line.split())
    kids = proc_facts.children(proc.pid)
    assert kids == tuple(sorted(workers))
    assert kids == tuple(sorted(c for c, p in proc_facts.parents().items() if p == proc.pid))
    assert proc_facts.children(workers[0]) == ()
    assert proc_facts.children(10**9) is None
