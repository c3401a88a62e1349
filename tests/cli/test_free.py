"""`portscope free`: ports a server can bind now, found by real binds, leaving out TIME_WAIT,
the ephemeral range, excluded ranges and dev ports taken on the other address family."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from cli.quiet_ports import bindable, ephemeral_range, has_ipv6, quiet_ports
from portscope.core.diagnose.excluded import PortRange
from portscope.core.diagnose.free_ports import DEV_PORTS, Judge, find_free
from real_servers import missing
from support import make_server_time_wait, tcp_listener, udp_socket

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")


def free(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", "free", *args],
        capture_output=True, text=True, timeout=60,
    )


def free_json(*args: str) -> tuple[int, dict[str, object]]:
    result = free(*args, "--json")
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == 1
    return result.returncode, data


def test_a_held_port_is_skipped_and_the_next_one_printed() -> None:
    port = quiet_ports(2)
    with tcp_listener("127.0.0.1", port):
        result = free("--range", f"{port}-{port + 1}")
        code, data = free_json("--range", f"{port}-{port + 1}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{port + 1}\n" and result.stderr == ""
    assert code == 0
    assert data["ports"] == [port + 1] and data["complete"] is True
    assert data["skipped"]["in_use"] == 1  # type: ignore[index]
    assert data["range"] == {"start": port, "end": port + 1}
    assert data["addresses"] == ["0.0.0.0"] and data["bind"] == "plain"


def test_fewer_than_asked_exits_one_and_says_why() -> None:
    port = quiet_ports(2)
    with tcp_listener("127.0.0.1", port):
        result = free("-n", "2", "--range", f"{port}-{port + 1}")
    assert result.returncode == 1
    assert result.stdout == f"{port + 1}\n"  # what was found is still printed
    assert result.stderr == (
        f"portscope: found 1 of 2 free TCP ports in {port}-{port + 1} (1 in use)\n"
    )


def test_time_wait_is_skipped_for_a_plain_bind_and_allowed_with_reuseaddr() -> None:
    port = quiet_ports()
    # A server that set SO_REUSEADDR closes first: its TIME_WAIT blocks a plain bind only.
    with tcp_listener("127.0.0.1", port, reuseaddr=True) as listener:
        make_server_time_wait(listener, 1)
    assert not bindable(port)  # the kernel agrees: a plain bind fails now
    code, plain = free_json("--range", f"{port}-{port}")
    assert code == 1 and plain["ports"] == []
    assert plain["skipped"]["time_wait"] == 1  # type: ignore[index]
    code, reuse = free_json("--range", f"{port}-{port}", "--reuseaddr")
    assert code == 0 and reuse["ports"] == [port] and reuse["bind"] == "reuseaddr"


def test_the_ephemeral_range_is_left_out() -> None:
    low, high = ephemeral_range()
    code, data = free_json("--range", f"{low}-{low + 2}")
    assert code == 1 and data["ports"] == []
    assert data["skipped"]["ephemeral"] == 3  # type: ignore[index]
    assert data["ephemeral"] == {"start": low, "end": high}


def test_a_dev_port_taken_on_the_other_family_is_left_out() -> None:
    if not has_ipv6():
        missing("IPv6 on loopback (::1)")
    dev = next((p for p in sorted(DEV_PORTS) if bindable(p)), None)
    if dev is None:
        pytest.skip("every well-known dev port is in use on this machine")
    plain = quiet_ports()
    # Both free on 127.0.0.1; both held on ::1 only (IPV6_V6ONLY): the dev port is the trap
    # (a browser's localhost:PORT reaches ::1 first), the other one is fine.
    with tcp_listener("::1", dev, v6only=True), tcp_listener("::1", plain, v6only=True):
        code, data = free_json("--range", f"{dev}-{dev}", "--host", "127.0.0.1")
        assert code == 1 and data["skipped"]["other_family"] == 1  # type: ignore[index]
        code, other = free_json("--range", f"{plain}-{plain}", "--host", "127.0.0.1")
        assert code == 0 and other["ports"] == [plain]
    code, data = free_json("--range", f"{dev}-{dev}", "--host", "127.0.0.1")
    assert code == 0 and data["ports"] == [dev]


def test_udp_ports_are_probed_with_udp() -> None:
    port = quiet_ports(2)
    with udp_socket("127.0.0.1", port):
        code, udp = free_json("--udp", "--range", f"{port}-{port + 1}")
        code_tcp, tcp = free_json("--range", f"{port}-{port + 1}")
    assert code == 0 and udp["ports"] == [port + 1] and udp["proto"] == "udp"
    assert code_tcp == 0 and tcp["ports"] == [port]  # TCP does not care about a UDP socket


def test_random_gives_distinct_ports_in_the_range_not_always_the_lowest() -> None:
    first = quiet_ports(40)
    picks = []
    for _ in range(4):
        result = free("-n", "3", "--random", "--range", f"{first}-{first + 39}")
        assert result.returncode == 0, result.stderr
        ports = [int(line) for line in result.stdout.split()]
        assert len(set(ports)) == 3 and all(first <= p < first + 40 for p in ports)
        picks.append(ports)
    assert any(p != [first, first + 1, first + 2] for p in picks)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--range", "9000-8000"], "a port range goes up: '9000-8000' (write 8000-9000)"),
        (["--range", "80-x"], "not a port range: '80-x'"),
        (["-n", "0"], "-n takes a number from 1 to 65535, got 0"),
        (["-n", "many"], "-n takes a number from 1 to 65535, got 'many'"),
        (["--host", "203.0.113.9"], "203.0.113.9 is not an address of this machine"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(args: list[str], message: str) -> None:
    result = free(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"portscope: {message}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_excluded_ranges_are_left_out() -> None:
    """Windows' excluded ranges (netsh) exist only there: a recorded range stands in."""
    first = quiet_ports(3)
    judge = Judge(
        ("127.0.0.1",), excluded_ranges=lambda proto, version: (PortRange(first, first + 1),)
    )
    found = find_free(2, first, first + 2, judge=judge, ephemeral=(60000, 60999))
    assert found.ports == (first + 2,) and not found.complete
    assert found.skipped["excluded"] == 2


def test_a_port_free_now_binds() -> None:
    """What `free` prints, a server can bind at once (the contract, checked by binding)."""
    result = free("--range", f"{quiet_ports()}-31999", "--random")
    assert result.returncode == 0, result.stderr
    port = int(result.stdout)
    with socket.create_server(("0.0.0.0", port)) as server:
        assert server.getsockname()[1] == port
