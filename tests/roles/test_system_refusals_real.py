"""System-process protection against real processes the test starts: a real sshd on a
loopback port (told by the binary the kernel runs, root's), and a root daemon orphaned to
PID 1 inside a systemd system unit's cgroup. Both are refused, naming the rule, unless
--allow-system; the same daemon outside a system unit (a `server &` orphan) is not."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cli.quiet_ports import quiet_ports
from real_servers import listener_holders, missing
from support import wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not sys.platform.startswith("linux"),
    reason="root runs sshd and places a daemon in a system cgroup",
)

SSHD = "/usr/sbin/sshd"
# Listens on a free loopback port and writes "port pid" to the file it is given.
ORPHAN = """
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(f"{s.getsockname()[1]} {os.getpid()}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(1)
"""


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )


def kill_json(*args: str, code: int) -> dict[str, object]:
    result = portscope("kill", *args, "--json")
    assert result.returncode == code, result.stdout + result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@contextlib.contextmanager
def real_sshd() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """/usr/sbin/sshd in the foreground on 127.0.0.1, with a host key of its own and no
    config file: nothing of the machine's own sshd setup is used."""
    keygen = shutil.which("ssh-keygen")
    if not os.access(SSHD, os.X_OK) or keygen is None:
        missing("openssh-server is not installed (.ci/services installs it)")
    made_run_dir = not os.path.isdir("/run/sshd")  # its privilege separation directory
    if made_run_dir:
        os.mkdir("/run/sshd", 0o755)
    with tempfile.TemporaryDirectory(prefix="portscope-sshd-") as tmp:
        key = Path(tmp) / "host_key"
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        port = quiet_ports()
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", "/dev/null", "-h", str(key), "-o", "PidFile=none",
             "-o", f"ListenAddress=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: proc.pid in listener_holders(port), timeout=10)
            yield proc, port
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if made_run_dir:
                os.rmdir("/run/sshd")


def test_sshd_is_refused_by_its_binary_unless_allow_system() -> None:
    with real_sshd() as (sshd, port):
        # check advises what kill does: the plan itself withholds sshd
        checked = json.loads(portscope("check", str(port), "--json").stdout)["stop"]
        assert checked["pids"] == [] and [w["pid"] for w in checked["withheld"]] == [sshd.pid]
        assert "(rule: sshd; --allow-system signals it)" in checked["withheld"][0]["reason"]
        data = kill_json(str(port), "--yes", code=1)
        assert data["targets"] == [] and data["exited"] == []
        refused = data["refused"]
        assert isinstance(refused, list) and [r["pid"] for r in refused] == [sshd.pid]
        reason = refused[0]["reason"]
        assert f"PID {sshd.pid} is the SSH server ({SSHD}, root's)" in reason
        assert "(rule: sshd; --allow-system signals it)" in reason
        assert sshd.poll() is None

        dry = portscope("kill", "--pid", str(sshd.pid), "--dry-run")
        assert dry.returncode == 1 and "rule: sshd" in " ".join(dry.stdout.split())

        data = kill_json(str(port), "--yes", "--allow-system", code=0)
        assert data["exited"] == [sshd.pid] and data["port_free"] is True
        sshd.wait(timeout=10)


def _cgroup_mounts() -> list[str]:
    """Where this machine mounts the cgroup v2 tree and v1's name=systemd tree."""
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fstype, _, options = [*right.split(), "", "", ""][:3]
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
                found.append(left.split()[4])
    return found


@contextlib.contextmanager
def orphan(unit: str | None) -> Iterator[tuple[int, int]]:
    """A root listener whose starter exited (its parent is PID 1), placed in the systemd
    system unit `unit`'s cgroup when given; (port, pid). Stopped and its cgroups removed
    at the end."""
    made: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="portscope-orphan-") as tmp:
        ready = Path(tmp) / "ready"
        subprocess.run(
            ["sh", "-c", '"$0" -c "$1" "$2" >/dev/null 2>&1 &', sys.executable, ORPHAN,
             str(ready)],
            check=True, stdin=subprocess.DEVNULL,
        )
        wait_for(ready.exists, timeout=10)
        port, pid = (int(x) for x in ready.read_text().split())
        proc = psutil.Process(pid)  # its start time: cleanup never hits a reused PID
        try:
            if proc.ppid() != 1:
                missing("an orphan is not reparented to PID 1 here (a subreaper)")
            if unit is not None:
                mounts = _cgroup_mounts()
                if not mounts:
                    missing("no cgroup v2 or name=systemd hierarchy is mounted")
                try:
                    for mount in mounts:
                        base = Path(mount) / "system.slice"
                        if not base.exists():
                            base.mkdir()
                            made.append(base)
                        (base / unit).mkdir()
                        made.append(base / unit)
                        (base / unit / "cgroup.procs").write_text(str(pid))
                except OSError as exc:
                    missing(f"cannot make a system unit's cgroup here: {exc}")
            yield port, pid
        finally:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()  # psutil checks the start time first
                proc.wait(timeout=10)
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    path.rmdir()


def test_a_system_daemon_is_refused_unless_allow_system() -> None:
    unit = f"portscope-test-{secrets.token_hex(4)}.service"
    with orphan(unit) as (port, pid):
        assert f"/system.slice/{unit}" in Path(f"/proc/{pid}/cgroup").read_text()
        data = kill_json("--pid", str(pid), "--yes", code=1)
        refused = data["refused"]
        assert isinstance(refused, list) and [r["pid"] for r in refused] == [pid]
        reason = " ".join(refused[0]["reason"].split())
        assert "started by init (parent PID 1), runs as root" in reason
        assert f"in the system unit {unit}" in reason
        assert "(rule: init-managed system daemons; --allow-system signals it)" in reason
        assert psutil.pid_exists(pid)

        data = kill_json("--pid", str(pid), "--yes", "--allow-system", code=0)
        assert data["exited"] == [pid] and data["port_free"] is True
        assert data["port"] == port


def test_an_orphan_outside_a_system_unit_is_a_normal_target() -> None:
    """`server &` from a script that exited: parent PID 1, root, but no system unit."""
    with orphan(None) as (port, pid):
        data = kill_json(str(port), "--yes", code=0)
        assert data["exited"] == [pid] and data["refused"] == []
