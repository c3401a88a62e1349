"""`portscope wait PORT --listening`: until a TCP connect succeeds (also HOST:PORT), and
`wait` with several ports, all within one --timeout."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cli.quiet_ports import has_ipv6, quiet_ports
from real_servers import missing
from support import tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")


def wait_cmd(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portscope", "wait", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_listening_waits_until_a_connect_succeeds() -> None:
    port = quiet_ports()
    waiter = wait_cmd(str(port), "--listening", "--host", "127.0.0.1", "--timeout", "30")
    assert waiter.stderr is not None
    refused = waiter.stderr.readline()
    assert refused == f"waiting for 127.0.0.1:{port}: connection refused (nothing listens)\n"
    assert waiter.poll() is None  # it really blocks while nothing accepts
    opened = time.monotonic()
    with tcp_listener("127.0.0.1", port) as listener:
        out, err = finish(waiter)
        # connect only: the listener is the one socket on the port, and it was never bound
        # by the waiter (our bind above would have failed had it held the port)
        assert listener.getsockname()[1] == port
    assert waiter.returncode == 0, err
    assert out.startswith(f"127.0.0.1:{port} accepts connections (waited ")
    assert time.monotonic() - opened < 10


def test_host_colon_port_and_a_bracketed_ipv6_address() -> None:
    if not has_ipv6():
        missing("IPv6 on loopback (::1)")
    with tcp_listener("::1") as listener:
        port = listener.getsockname()[1]
        result = finish(wait_cmd(f"[::1]:{port}", "--listening", "--timeout", "10"))
    assert result[0].startswith(f"[::1]:{port} accepts connections")


def test_listening_times_out_with_exit_one_naming_the_reason() -> None:
    port = quiet_ports()
    started = time.monotonic()
    proc = wait_cmd(f"localhost:{port}", "--listening", "--timeout", "0.3")
    out, err = finish(proc)
    assert proc.returncode == 1 and out == ""
    assert err.endswith(
        f"portscope: timed out after 0.3 s: localhost:{port}: connection refused "
        "(nothing listens)\n"
    )
    assert time.monotonic() - started < 30


def test_several_ports_are_all_waited_for() -> None:
    first = quiet_ports(2)
    with tcp_listener("127.0.0.1", first):
        waiter = wait_cmd(str(first), str(first + 1), "--listening", "--host", "127.0.0.1",
                          "--timeout", "30")
        assert waiter.stderr is not None
        line = waiter.stderr.readline()  # the first accepts; the second does not yet
        assert line.startswith(f"waiting for 127.0.0.1:{first + 1}: ")
        with tcp_listener("127.0.0.1", first + 1):
            out, err = finish(waiter)
    assert waiter.returncode == 0, err
    assert [ln.split(" ")[0] for ln in out.splitlines()] == [
        f"127.0.0.1:{first}", f"127.0.0.1:{first + 1}",
    ]


def test_several_ports_to_free_share_one_timeout() -> None:
    first = quiet_ports(3)
    with tcp_listener("127.0.0.1", first + 2):
        started = time.monotonic()
        proc = wait_cmd(f"{first}-{first + 2}", "--timeout", "0.5")
        out, err = finish(proc)
    assert proc.returncode == 1
    assert out.splitlines()[:2] == [
        f"port {first}/tcp is free on 0.0.0.0 (waited 0.0 s)",
        f"port {first + 1}/tcp is free on 0.0.0.0 (waited 0.0 s)",
    ]
    assert "portscope: timed out after 0.5 s: " in err and str(first + 2) in err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db:5432"], "HOST:PORT (db) is for --listening, which connects"),
        (["5432", "--listening", "--udp"], "--listening waits for a TCP connect"),
        (["5432", "--listening", "--host", "bad host"], "not a host name or address: 'bad host'"),
        (["::1:5432", "--listening"], "not HOST:PORT: '::1:5432' (put an IPv6 address in"),
        (["5432", "--host", "db.internal"], "not an IP address: 'db.internal'"),
    ],
)
def test_bad_targets_are_one_line_and_exit_two(args: list[str], message: str) -> None:
    proc = wait_cmd(*args, "--timeout", "1")
    out, err = finish(proc)
    assert proc.returncode == 2 and out == ""
    assert err.startswith(f"portscope: {message}") and err.count("\n") == 1, err


def test_a_name_is_looked_up_at_each_try() -> None:
    """A host that does not resolve yet (a compose service starting) is waited for, not
    refused."""
    proc = wait_cmd("portscope-test.invalid:80", "--listening", "--timeout", "0.3")
    _, err = finish(proc)
    assert proc.returncode == 1
    assert "cannot resolve portscope-test.invalid" in err
