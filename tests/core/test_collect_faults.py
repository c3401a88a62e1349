"""The Linux collector where the kernel or /proc says no: netlink refused, socket tables
missing or unreadable, a /proc that cannot be listed, processes that vanish or look odd.
Each poll still returns the real sockets it could see, and says in `notes` what it could
not; nothing but a genuine bug raises.

The stand-in /proc roots hold copies of this moment's /proc/net tables (so they list the
sockets this test opened) and links into the real /proc for the PIDs a test chooses.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest

from portscope.core.collect import default_collector, sock_diag
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.model import Proto, Snapshot
from support import (
    ROOT_LISTENER,
    make_server_time_wait,
    reap,
    run_as_nobody,
    spawn_python,
    ss_time_wait,
    tcp_listener,
    udp_socket,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

Spawn = Callable[..., tuple[Popen[str], str]]
NET_FILES = ("tcp", "tcp6", "udp", "udp6", "if_inet6")
as_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root")


def stand_in_proc(
    root: Path,
    pids: Iterable[int] = (),
    *,
    missing: Iterable[str] = (),
    dirs: Iterable[str] = (),
    private: Iterable[str] = (),
) -> str:
    """A /proc-like root: net/ tables copied now, except those `missing`, those replaced by
    a directory (`dirs`), and those only root may read (`private`)."""
    net = root / "net"
    net.mkdir(parents=True)
    for name in NET_FILES:
        if name in missing:
            continue
        if name in dirs:
            (net / name).mkdir()
            continue
        (net / name).write_bytes(Path("/proc/net", name).read_bytes())
        (net / name).chmod(0o600 if name in private else 0o644)
    for pid in pids:
        (root / str(pid)).symlink_to(f"/proc/{pid}")
    return str(root)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory nobody may enter too (pytest's tmp_path sits under a 0700
    directory of root's)."""
    path = Path(tempfile.mkdtemp(prefix="portscope-proc-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def key_set(snap: Snapshot) -> set[tuple[str, str, str, int]]:
    return {(s.proto, s.family, s.address, s.port) for s in snap.sockets}


def pids_on(snap: Snapshot, port: int, proto: Proto = "tcp") -> set[int]:
    [found] = snap.listeners_on(port, proto)
    return set(found.pids)


# --- netlink refused ----------------------------------------------------------------------


def _refuse_socket(code: int) -> Callable[[pytest.MonkeyPatch], None]:
    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        def refused() -> socket.socket:  # where sock_diag opens its netlink socket
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(sock_diag, "_netlink", refused)

    return inject


def _refuse_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket opens, then the kernel answers the dump with NLMSG_ERROR (no inet_diag)."""

    def refused(*_: object, **__: object) -> list[bytes]:
        raise sock_diag.SockDiagError(errno.ENOENT, "sock_diag dump refused")

    monkeypatch.setattr(sock_diag, "_dump", refused)


def _break_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> object:
        raise OSError("netlink reader gave up")

    monkeypatch.setattr(sock_diag, "read_tables", broken)


REFUSALS = {
    "socket-EPERM": (_refuse_socket(errno.EPERM), os.strerror(errno.EPERM)),
    "socket-EACCES": (_refuse_socket(errno.EACCES), os.strerror(errno.EACCES)),
    "socket-EPROTONOSUPPORT": (
        _refuse_socket(errno.EPROTONOSUPPORT),
        os.strerror(errno.EPROTONOSUPPORT),
    ),
    "dump-ENOENT": (_refuse_dump, os.strerror(errno.ENOENT)),
    "reader-no-errno": (_break_reader, "netlink reader gave up"),
}


@pytest.mark.parametrize("refusal", list(REFUSALS), ids=list(REFUSALS))
def test_netlink_refused_reads_proc_net_and_says_so(
    refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject, why = REFUSALS[refusal]
    inject(monkeypatch)
    calls = {"read_tables": 0, "udp_available": 0}
    for name in calls:
        monkeypatch.setattr(sock_diag, name, _counted(getattr(sock_diag, name), calls, name))
    with tcp_listener() as t4, tcp_listener("::1") as t6, udp_socket() as u4:
        make_server_time_wait(t4, 3)
        collector = ProcNetCollector()
        first = collector.collect()
        tried = dict(calls)
        second = collector.collect()
        ports = t4.getsockname()[1], t6.getsockname()[1], u4.getsockname()[1]
        # An earlier test's TIME_WAIT can share the port: ss says how many there are.
        time_wait = ss_time_wait(ports[0])
    note = f"netlink sock_diag refused ({why}): reading /proc/net instead"
    for snap in (first, second):
        assert snap.notes == (note,)  # said on every poll that reads the text instead
        assert pids_on(snap, ports[0]) == pids_on(snap, ports[1]) == {os.getpid()}
        assert pids_on(snap, ports[2], "udp") == {os.getpid()}
        stats = snap.port_stats(ports[0])
        assert stats is not None and stats.time_wait == time_wait >= 3
        assert stats.time_wait_first is not None  # the text tables carry the timers too
    assert calls == tried  # refused once: later polls do not knock again


def _counted(func: Callable[..., Any], calls: dict[str, int], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return func(*args, **kwargs)

    return wrapper


def test_udp_dump_refused_keeps_tcp_on_netlink(monkeypatch: pytest.MonkeyPatch) -> None:
    """udp_diag answered once, then not (module unloaded): UDP comes from /proc/net/udp*,
    TCP stays on netlink, and nothing is hidden, so nothing is noted."""
    real = sock_diag.read_tables
    asked: list[bool] = []

    def tcp_only(with_udp: bool = True, **kwargs: Any) -> Any:
        asked.append(with_udp)
        if with_udp:
            raise sock_diag.SockDiagError(errno.ENOENT, "sock_diag dump refused")
        return real(with_udp=False, **kwargs)

    monkeypatch.setattr(sock_diag, "udp_available", lambda: True)
    monkeypatch.setattr(sock_diag, "read_tables", tcp_only)
    with tcp_listener() as t4, udp_socket() as u4, udp_socket("::1") as u6:
        collector = ProcNetCollector()
        snaps = [collector.collect(), collector.collect()]
        ports = t4.getsockname()[1], u4.getsockname()[1], u6.getsockname()[1]
    assert asked == [True, False, False]  # one refusal, then TCP alone over netlink
    for snap in snaps:
        assert snap.notes == ()
        assert pids_on(snap, ports[0]) == {os.getpid()}
        assert pids_on(snap, ports[1], "udp") == pids_on(snap, ports[2], "udp") == {os.getpid()}


def test_default_collector_copes_with_netlink_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_socket(errno.EPERM)(monkeypatch)
    collector = default_collector()
    with tcp_listener() as t4:
        snap = collector.collect()
        port = t4.getsockname()[1]
    assert pids_on(snap, port) == {os.getpid()}
    assert len(snap.notes) == 1 and "refused (Operation not permitted)" in snap.notes[0]


def test_an_unexpected_error_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only permission and missing-file problems are notes; a bug must reach the poller."""

    def garbled(*_: object, **__: object) -> object:
        raise ValueError("a record we cannot decode")

    monkeypatch.setattr(sock_diag, "read_tables", garbled)
    with pytest.raises(ValueError, match="cannot decode"):
        ProcNetCollector().collect()


# --- /proc/net tables missing or unreadable -----------------------------------------------


def test_missing_and_odd_tables_are_skipped_and_named(tmp_path: Path) -> None:
    with (
        tcp_listener() as t4,
        tcp_listener("::1") as t6,
        udp_socket() as u4,
        udp_socket("::1") as u6,
    ):
        root = stand_in_proc(tmp_path, [os.getpid()], missing=["tcp6"], dirs=["udp"])
        snap = ProcNetCollector(root).collect()
        ports = [s.getsockname()[1] for s in (t4, t6, u4, u6)]
    assert snap.notes == (
        f"cannot read {root}/net/tcp6 (No such file or directory): "
        "IPv6 TCP sockets are not shown",
        f"cannot read {root}/net/udp (Is a directory): IPv4 UDP sockets are not shown",
    )
    seen = key_set(snap)
    assert ("tcp", "ipv4", "127.0.0.1", ports[0]) in seen
    assert ("udp", "ipv6", "::1", ports[3]) in seen
    assert not {("tcp", "ipv6", "::1", ports[1]), ("udp", "ipv4", "127.0.0.1", ports[2])} & seen
    assert pids_on(snap, ports[0]) == {os.getpid()}


def test_kernel_without_ipv6_is_not_a_fault(tmp_path: Path) -> None:
    """No tcp6/udp6 and no if_inet6: the kernel has no IPv6, so nothing is hidden."""
    with tcp_listener() as t4:
        root = stand_in_proc(tmp_path, [os.getpid()], missing=["tcp6", "udp6", "if_inet6"])
        snap = ProcNetCollector(root).collect()
        port = t4.getsockname()[1]
    assert snap.notes == ()
    assert pids_on(snap, port) == {os.getpid()}


def test_no_table_at_all_is_an_empty_snapshot_with_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Netlink refused and no /proc/net: psutil reads the same files, so there is nothing
    left to fall back to. An empty poll that says why, never a traceback."""
    _refuse_socket(errno.EPERM)(monkeypatch)
    (tmp_path / str(os.getpid())).symlink_to(f"/proc/{os.getpid()}")
    with tcp_listener():
        snap = ProcNetCollector(str(tmp_path), netlink=True).collect()
    assert snap.sockets == () and snap.ports == () and snap.hidden_owners == 0
    assert snap.notes == (
        f"netlink sock_diag refused (Operation not permitted): reading {tmp_path}/net instead",
        f"cannot read {tmp_path}/net/{{tcp,tcp6,udp,udp6}} (No such file or directory): "
        "no sockets are shown",
    )


@as_root_only
def test_table_only_root_may_read_is_named_for_nobody(open_dir: Path) -> None:
    """A real EACCES: as nobody, a root-only udp table is skipped, the rest still read, and
    root's sockets are listed with their owners hidden (root's /proc/PID/fd is closed)."""
    with tcp_listener() as t4, udp_socket() as u4, udp_socket("::1") as u6:
        root = stand_in_proc(open_dir, [os.getpid()], private=["udp"])
        snap = run_as_nobody(lambda: ProcNetCollector(root).collect())
        ports = t4.getsockname()[1], u4.getsockname()[1], u6.getsockname()[1]
    assert isinstance(snap, Snapshot)
    assert snap.notes == (
        f"cannot read {root}/net/udp (Permission denied): IPv4 UDP sockets are not shown",
    )
    [found] = snap.listeners_on(ports[0])
    assert found.owner_hidden and found.uid == 0
    assert snap.listeners_on(ports[1], "udp") == ()
    assert len(snap.listeners_on(ports[2], "udp")) == 1


@as_root_only
def test_unreadable_net_dir_and_unlistable_proc_for_nobody(open_dir: Path) -> None:
    """net/ closed to nobody: every table fails at once, so one note says it; a /proc root
    that may be entered but not listed: sockets are read, no owner can be, and that too is
    said."""
    closed, unlisted = open_dir / "closed", open_dir / "unlisted"
    with tcp_listener() as t4:
        port = t4.getsockname()[1]
        stand_in_proc(closed, [os.getpid()])
        stand_in_proc(unlisted, [os.getpid()])
        (closed / "net").chmod(0o700)
        unlisted.chmod(stat.S_IRWXU | stat.S_IXGRP | stat.S_IXOTH)  # 0711: enter, not list
        snaps = run_as_nobody(
            lambda: [ProcNetCollector(str(path)).collect() for path in (closed, unlisted)]
        )
    assert isinstance(snaps, list)
    none_read, ownerless = snaps
    assert none_read.sockets == () and none_read.notes == (
        f"cannot read {closed}/net/{{tcp,tcp6,udp,udp6}} (Permission denied): "
        "no sockets are shown",
    )
    assert ownerless.notes == (
        f"cannot list {unlisted} (Permission denied): no socket shows its processes",
    )
    [found] = ownerless.listeners_on(port)
    assert found.owner_hidden and ownerless.hidden_owners >= 1


# --- the /proc/*/fd owner walk --------------------------------------------------------------


def odd_entries(root: Path, inode: int) -> None:
    """What a walk of /proc may meet besides well-formed processes."""
    (root / "self").symlink_to("/proc/self")  # not a PID
    (root / "²").mkdir()  # "²".isdigit() is True, int("²") raises
    (root / "4000000001").write_text("a file where a PID directory should be")
    no_fd = root / "4000000002"
    no_fd.mkdir()
    (no_fd / "fd").write_text("a file where the fd directory should be")
    odd = root / "4000000003"
    (odd / "fd").mkdir(parents=True)
    (odd / "fd" / "3").symlink_to("socket:[not-a-number]")
    (odd / "fd" / "4").symlink_to("socket:[")
    (odd / "fd" / "5").symlink_to(f"socket:[{inode}")  # no closing bracket
    (odd / "fd" / "6").write_text("a plain file, not a link")
    (odd / "fd" / "not-a-number").symlink_to("pipe:[1]")


def test_owner_walk_survives_vanished_and_odd_processes(spawn: Spawn, tmp_path: Path) -> None:
    gone, _ = spawn_python("print(1, flush=True)")
    reap(gone)  # its /proc entry is gone: the link to it dangles
    holder, line = spawn(ROOT_LISTENER)
    theirs = int(line)
    with tcp_listener() as t4:
        inode = os.fstat(t4.fileno()).st_ino
        root = tmp_path / "proc"
        stand_in_proc(root, [os.getpid(), gone.pid, holder.pid])
        odd_entries(root, inode)
        collector = ProcNetCollector(str(root))
        first = collector.collect()
        reap(holder)  # its socket is still in the copied table; the process is not
        second = collector.collect()
        mine = t4.getsockname()[1]
    assert first.notes == second.notes == ()
    for snap in (first, second):
        assert pids_on(snap, mine) == {os.getpid()}
    assert pids_on(first, theirs) == {holder.pid}
    [left] = second.listeners_on(theirs)  # listed in the dump, its holder gone since
    assert left.owner_hidden


def test_default_collector_never_reads_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing it could be refused happens before collect(): building one cannot raise."""

    def no_io(*_: object, **__: object) -> object:
        raise PermissionError(errno.EACCES, "no I/O expected here")

    monkeypatch.setattr("builtins.open", no_io)
    monkeypatch.setattr(os, "listdir", no_io)
    monkeypatch.setattr(os, "stat", no_io)
    assert default_collector().name == "proc"
