"""Issue 11: Windows excluded port ranges (Hyper-V, WSL 2, Docker Desktop, an admin's
exclusions) as a verdict of their own, from recorded `netsh` output. netsh is never run here:
the reader is injected, and off Windows the real one returns nothing without running it.

The WSAEACCES itself is real: as nobody, a bind below 1024 fails with EACCES (13), the errno
Python maps WSAEACCES (10013) to on Windows, so the probe meets exactly what it would there."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from portscope.core.diagnose.advice import Facts, attempt_line, compose
from portscope.core.diagnose.bind_attempt import Attempt
from portscope.core.diagnose.excluded import PortRange, containing, netsh_argv, parse, read_ranges
from portscope.core.diagnose.probe import diagnose
from portscope.core.model import Proto
from portscope.core.serialize import verdict_json
from support import run_as_nobody

RECORDED = Path(__file__).parent.parent / "recorded" / "windows"
NETSH_TCP = (RECORDED / "netsh-excludedportrange-tcp.txt").read_bytes().decode()


def recorded_ranges(proto: Proto, version: int) -> tuple[PortRange, ...]:
    assert (proto, version) == ("tcp", 4)  # what the probe of 127.0.0.1/tcp must ask for
    return parse(NETSH_TCP)


def test_recorded_netsh_output_is_parsed() -> None:
    assert "\r\n" in NETSH_TCP  # as netsh writes it
    ranges = parse(NETSH_TCP)
    assert ranges[0] == PortRange(80, 80)
    assert PortRange(1025, 1124) in ranges
    assert [r for r in ranges if r.administered] == [PortRange(50000, 50059, True)]
    assert len(ranges) == 10
    assert containing(50010, ranges) == PortRange(50000, 50059, True)
    assert containing(1100, ranges) == PortRange(1025, 1124)
    assert containing(8080, ranges) is None and containing(5358, ranges) is None


def test_translated_headings_do_not_matter() -> None:
    spanish = "Puerto de inicio    Puerto final\r\n----------    --------\r\n" \
              "     25313       25412\r\n     50000       50059     *\r\n"
    assert parse(spanish) == (PortRange(25313, 25412), PortRange(50000, 50059, True))
    assert parse("no such command\r\n") == ()


def test_reader_runs_netsh_through_the_runner_it_is_given() -> None:
    asked: list[Sequence[str]] = []

    def run(argv: Sequence[str]) -> str:
        asked.append(argv)
        return NETSH_TCP

    assert read_ranges("tcp", 4, run=run) == parse(NETSH_TCP)
    assert asked == [["netsh", "interface", "ipv4", "show", "excludedportrange", "protocol=tcp"]]
    assert netsh_argv("udp", 6)[2:] == ["ipv6", "show", "excludedportrange", "protocol=udp"]

    def broken(argv: Sequence[str]) -> str:
        raise subprocess.CalledProcessError(1, list(argv))

    assert read_ranges("tcp", 4, run=broken) == ()


def test_off_windows_netsh_is_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("netsh must not run here")

    monkeypatch.setattr(subprocess, "run", no_subprocess)  # the module excluded.py calls
    assert read_ranges("tcp", 4, platform="linux") == ()
    assert read_ranges("tcp", 4, platform="darwin") == ()
    # The probe asks only on Windows (or when told it is): a real bind here asks nothing.
    assert diagnose(closed_port(), "127.0.0.1", suggest=False).excluded is None


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _words(r: PortRange, port: int) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    denied = Attempt("plain", False, errno.EACCES, "EACCES", "Permission denied", "bind")
    text = compose(Facts(
        port=port, address="0.0.0.0", proto="tcp", kind="excluded_range",
        attempts=(denied, denied), holders=(), sockets=(), time_wait=None, live=0,
        already_running=False, inherited=(), suggested_port=None, is_root=False, excluded=r,
    ))
    return text.sentence, text.explanation, text.advice


def test_winnat_and_administered_ranges_get_their_own_advice() -> None:
    sentence, why, todo = _words(PortRange(1025, 1124), 1100)
    assert sentence == (
        "Port 1100/tcp is in a Windows excluded port range (1025-1124): Windows reserved it, "
        "usually for Hyper-V, WSL 2 or Docker Desktop (WinNAT); no process holds it."
    )
    assert "WSAEACCES (10013" in why[0]
    assert "netsh interface ipv4 show excludedportrange protocol=tcp" in why[1]
    assert "net stop winnat" in todo[1]
    sentence, _, todo = _words(PortRange(50000, 50059, True), 50010)
    assert "(50000-50059): an administrator excluded it" in sentence
    assert todo[1].endswith(
        "netsh interface ipv4 delete excludedportrange protocol=tcp startport=50000 "
        "numberofports=60"
    )


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="a real EACCES needs a drop from root to nobody",
)
def test_refused_bind_inside_a_recorded_range_is_excluded_range() -> None:
    """As on Windows: the bind is refused (a real EACCES), the recorded netsh output has the
    port in a range, so the verdict names the range, not a privilege problem."""

    def probe() -> tuple[dict[str, Any], dict[str, Any]]:
        windows = diagnose(80, "127.0.0.1", windows=True, excluded_ranges=recorded_ranges,
                           suggest=False)
        linux = diagnose(80, "127.0.0.1", suggest=False)
        return verdict_json(windows), verdict_json(linux)

    result: Any = run_as_nobody(probe)
    windows, linux = result
    assert windows["verdict"] == "excluded_range"
    assert windows["attempts"][0]["error"] == "EACCES"
    assert windows["excluded_range"] == {"start": 80, "end": 80, "administered": False}
    assert windows["holders"] == [] and windows["stop"]["how"] == "none"
    assert "Use a port outside the excluded ranges." in windows["advice"]
    # The same refusal on Linux is the privileged-port rule, and no range is read.
    assert linux["verdict"] == "permission_denied" and linux["excluded_range"] is None


# -- the probe's Windows branch, with Windows' socket layer faked at the OS boundary ------
# domain.md 3: on Windows SO_REUSEADDR binds over a live listener (so a probe that set it
# would call a taken port free), SO_EXCLUSIVEADDRUSE is the safe option, and TIME_WAIT does
# not block a plain bind. The fake answers as Windows does; the probe's own code runs.

WSAEADDRINUSE = 10048


class WindowsStack:
    """Windows' answers for the ports a test sets: "listening" (a live listener) or
    "time_wait" (only TIME_WAIT sockets). Records every setsockopt."""

    def __init__(self, ports: dict[int, str]) -> None:
        self.ports = ports
        self.options: list[tuple[int, int, int]] = []

    def socket(self, family: int, kind: int) -> WindowsSocket:
        return WindowsSocket(self)


class WindowsSocket:
    def __init__(self, stack: WindowsStack) -> None:
        self.stack = stack
        self.set: set[int] = set()

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.stack.options.append((level, name, value))
        if value:
            self.set.add(name)

    def bind(self, address: tuple[str, int]) -> None:
        import socket

        state = self.stack.ports.get(address[1])
        # SO_REUSEADDR binds over a live listener on Windows; nothing else does. TIME_WAIT
        # never blocks a bind there.
        if state == "listening" and socket.SO_REUSEADDR not in self.set:
            error = OSError(WSAEADDRINUSE, "Only one usage of each socket address "
                            "(protocol/network address/port) is normally permitted")
            error.winerror = WSAEADDRINUSE  # type: ignore[attr-defined]
            raise error

    def listen(self, backlog: int) -> None:
        pass

    def close(self) -> None:
        pass


def as_windows(monkeypatch: pytest.MonkeyPatch, ports: dict[int, str]) -> WindowsStack:
    import socket
    from types import SimpleNamespace

    from portscope.core.diagnose import bind_attempt

    stack = WindowsStack(ports)
    names = ("AF_INET", "AF_INET6", "SOCK_STREAM", "SOCK_DGRAM", "SOL_SOCKET", "SO_REUSEADDR",
             "IPPROTO_IPV6", "IPV6_V6ONLY")
    fake = SimpleNamespace(socket=stack.socket, **{n: getattr(socket, n) for n in names})
    monkeypatch.setattr(bind_attempt, "socket", fake)
    monkeypatch.setattr(bind_attempt, "sys", SimpleNamespace(platform="win32"))
    return stack


def windows_snapshot(port: int, *, listening: bool, time_wait: int = 0) -> Any:
    from datetime import datetime, timezone

    from portscope.core.model import Holder, PortStats, Snapshot, Socket

    me = Holder(os.getpid(), "python.exe", None, ("python.exe", "server.py"), None)
    sockets = (Socket("tcp", "ipv4", "0.0.0.0", port, (me,)),) if listening else ()
    ports = (PortStats(port, time_wait=time_wait),) if time_wait else ()
    return Snapshot(datetime.now(timezone.utc), sockets, ports, source="psutil")


def test_windows_probe_uses_exclusiveaddruse_never_reuseaddr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from portscope.core.diagnose import bind_attempt
    from portscope.core.diagnose.probe import first_blocked

    port = 8080
    stack = as_windows(monkeypatch, {port: "listening"})
    # The trap, as the fake models it: a probe that set SO_REUSEADDR would see "free".
    assert bind_attempt.try_bind(port, "0.0.0.0", "tcp", "SO_REUSEADDR").ok
    stack.options.clear()
    assert bind_attempt.server_options() == ("plain", "SO_EXCLUSIVEADDRUSE")
    verdict = diagnose(port, "0.0.0.0", snapshot=windows_snapshot(port, listening=True),
                       suggest=False, windows=True, excluded_ranges=lambda p, v: ())
    assert verdict.kind == "listening" and [h.pid for h in verdict.holders] == [os.getpid()]
    assert [a.option for a in verdict.attempts] == ["plain", "SO_EXCLUSIVEADDRUSE"]
    assert all(not a.ok and a.error == "EADDRINUSE" for a in verdict.attempts)
    assert verdict.attempts[0].windows_code == (10048, "WSAEADDRINUSE")
    assert "Windows 10048 WSAEADDRINUSE" in attempt_line(verdict.attempts[0])
    why = " ".join(verdict.explanation)
    assert "SO_REUSEADDR would bind over the live listener" in why
    assert "does not change that" not in why  # Linux's rule, false on Windows
    assert not verdict.can_bind("plain") and not verdict.can_bind("reuseaddr")
    # `check --reuseaddr` and `wait --reuseaddr` on Windows: a plain bind, still blocked.
    assert first_blocked(port, ["0.0.0.0", "::"], "tcp", "reuseaddr") == "0.0.0.0"
    set_options = {name for _, name, value in stack.options if value}
    assert socket.SO_REUSEADDR not in set_options
    assert bind_attempt._EXCLUSIVEADDRUSE in set_options
    assert (socket.SOL_SOCKET, bind_attempt._EXCLUSIVEADDRUSE, 1) in stack.options
    assert verdict_json(verdict)["attempts"][1]["option"] == "SO_EXCLUSIVEADDRUSE"


def test_windows_time_wait_does_not_block_a_plain_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from portscope.core.diagnose import bind_attempt
    from portscope.core.diagnose.probe import first_blocked

    port = 8081
    stack = as_windows(monkeypatch, {port: "time_wait"})
    snap = windows_snapshot(port, listening=False, time_wait=3)
    verdict = diagnose(port, "0.0.0.0", snapshot=snap, suggest=False, windows=True,
                       excluded_ranges=lambda p, v: ())
    assert verdict.kind == "free" and verdict.attempts[0].ok
    assert verdict.can_bind("plain") and verdict.can_bind("reuseaddr")
    assert first_blocked(port, ["0.0.0.0"], "tcp", "plain") is None
    assert first_blocked(port, ["0.0.0.0"], "tcp", "reuseaddr") is None
    assert bind_attempt.bind_option("reuseaddr") == "plain"  # read at the call: win32 here
    assert socket.SO_REUSEADDR not in {name for _, name, value in stack.options if value}
