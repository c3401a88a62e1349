"""`list` filters (--port lists and ranges, --name, --pid, --user, --proto, --address), --all
(every socket on a port, not only its listener), --wide, and --format table|plain|csv|json.

Each test looks only at the rows of its own sockets: other tests' and other programs'
sockets may sit in any range a test asks for."""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.quiet_ports import has_ipv6
from support import make_server_time_wait, reap, tcp_listener, udp_socket

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

FIELDS = 8  # PORT PROTO ADDRESS PID PROCESS USER TIME_WAIT OTHER
NAME = "pstestholder"  # the comm of the other process: its executable's name


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", "list", *args],
        capture_output=True, text=True, timeout=60,
    )


def plain(*args: str) -> list[list[str]]:
    result = portscope("--format", "plain", *args)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.fixture
def other(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A process named NAME listening on ::1 (or 127.0.0.1 without IPv6), with a marker in
    its command line."""
    exe = tmp_path / NAME
    exe.symlink_to(sys.executable)
    host = "::1" if has_ipv6() else "127.0.0.1"
    family = "AF_INET6" if ":" in host else "AF_INET"
    code = (
        f"import socket, time\ns = socket.socket(socket.{family}); s.bind(({host!r}, 0))\n"
        "s.listen(); print(s.getsockname()[1], flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(  # its own session: reap() takes its whole group
        [str(exe), "-c", code, "--marker=wide-column"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield proc, port
    reap(proc)


def mine(rows: list[list[str]], *ports: int) -> list[list[str]]:
    return [r for r in rows if int(r[0]) in ports]


def test_several_ports_as_options_lists_and_ranges(
    other: tuple[subprocess.Popen[str], int],
) -> None:
    _, theirs = other
    with tcp_listener() as listener:
        ours = listener.getsockname()[1]
        low, high = sorted((ours, theirs))
        repeated = plain("--port", str(ours), "--port", str(theirs))
        listed = plain("--port", f"{ours},{theirs}")
        ranged = plain("--port", f"{low}-{high}")
        single = plain("--port", str(ours))
    for rows in (repeated, listed, ranged):
        assert {int(r[0]) for r in mine(rows, ours, theirs)} == {ours, theirs}
        assert all(len(r) == FIELDS for r in rows)  # no header, 8 tab-separated fields
    assert {int(r[0]) for r in repeated} == {ours, theirs}
    assert all(low <= int(r[0]) <= high for r in ranged)
    assert [r[0] for r in single] == [str(ours)]
    assert mine(repeated, ours)[0][3] == str(os.getpid())


def test_name_pid_user_proto_and_address(other: tuple[subprocess.Popen[str], int]) -> None:
    proc, theirs = other
    me = pwd.getpwuid(os.geteuid()).pw_name
    with tcp_listener() as listener, udp_socket() as udp:
        ours = listener.getsockname()[1]
        udp_port = udp.getsockname()[1]
        by_name = plain("--name", NAME.upper()[:8])  # any case, part of the name
        by_pid = plain("--pid", str(proc.pid))
        by_user = plain("--user", me, "--port", f"{ours},{theirs}")
        by_uid = plain("--user", str(os.geteuid()), "--port", str(ours))
        nobody = plain("--user", "portscope-no-such-user", "--port", str(ours))
        by_proto = plain("--proto", "udp", "--port", f"{ours},{udp_port}")
        by_address = plain("--address", "127.0.0.1", "--port", f"{ours},{theirs}")
        both = plain("--name", NAME, "--pid", str(os.getpid()))
    assert [(r[0], r[4]) for r in by_name] == [(str(theirs), NAME)]
    assert [r[0] for r in by_pid] == [str(theirs)]
    assert {r[0] for r in by_user} == {str(ours), str(theirs)}
    assert [r[0] for r in by_uid] == [str(ours)] and nobody == []
    assert [(r[0], r[1]) for r in by_proto] == [(str(udp_port), "udp")]
    expected = {str(ours)} | ({str(theirs)} if not has_ipv6() else set())
    assert {r[0] for r in by_address} == expected
    assert both == []  # options together must all hold


def test_all_shows_every_socket_on_the_port() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 2)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        try:
            rows = plain("--all", "--port", str(port))
            table = portscope("--all", "--port", str(port))
            data = json.loads(portscope("--all", "--port", str(port), "--json").stdout)
        finally:
            client.close()
            conn.close()
    states = {r[2]: r for r in rows}
    assert set(states) == {"LISTEN", "ESTABLISHED", "TIME_WAIT"}
    assert states["LISTEN"][4] == "127.0.0.1" and states["LISTEN"][5] == str(os.getpid())
    assert states["ESTABLISHED"][3] == "1" and states["ESTABLISHED"][5] == str(os.getpid())
    assert states["TIME_WAIT"][3] == "2" and states["TIME_WAIT"][5:] == ["-", "-", "-"]
    assert table.stdout.splitlines()[0].split() == [
        "PORT", "PROTO", "STATE", "SOCKETS", "ADDRESS", "PID", "PROCESS", "USER",
    ]
    [stats] = data["ports"]
    assert stats["states"] == {"ESTABLISHED": 1} and stats["time_wait"] == 2
    assert [p["pid"] for p in stats["processes"]] == [os.getpid()]


def test_wide_shows_every_pid_and_the_whole_command_line(
    other: tuple[subprocess.Popen[str], int],
) -> None:
    _, theirs = other
    result = portscope("--wide", "--port", str(theirs))
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[-1] == "COMMAND"
    assert row.endswith("--marker=wide-column")


def test_csv_has_a_header_and_json_is_json() -> None:
    with tcp_listener() as listener:
        port = str(listener.getsockname()[1])
        as_csv = portscope("--format", "csv", "--port", port)
        as_json = portscope("--format", "json", "--port", port)
        same = portscope("--json", "--port", port)
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["PORT", "PROTO", "ADDRESS", "PID", "PROCESS", "USER", "TIME_WAIT", "OTHER"]
    assert rows[1][:4] == [port, "tcp", "127.0.0.1", str(os.getpid())]
    data = json.loads(as_json.stdout)
    assert data["schema"] == 1 and [s["port"] for s in data["sockets"]] == [int(port)]
    assert json.loads(same.stdout)["sockets"] == data["sockets"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all"], "--all shows every socket on the ports given with --port: add --port P"),
        (["--json", "--format", "csv"], "--json and --format csv ask for two formats"),
        (["--port", "9-3"], "a port range goes up: '9-3' (write 3-9)"),
        (["--port", "80,,81"], "empty item in the port list '80,,81'"),
        (["--pid", "abc"], "not a PID: 'abc'"),
        (["--proto", "sctp"], "unknown value for --proto 'sctp': choose from tcp, udp"),
        (["--address", "nope"], "not an IP address: 'nope'"),
    ],
)
def test_bad_filters_are_one_line_and_exit_two(args: list[str], message: str) -> None:
    result = portscope(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"portscope: {message}") and result.stderr.count("\n") == 1
