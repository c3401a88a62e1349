"""`portscope check` as a script sees it: exit codes, text, and the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from portscope.core.platform_path import portable
from support import free_in_both, make_server_time_wait, tcp_listener, udp_socket

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=30
    )


def free_port() -> int:
    with tcp_listener() as sock:
        port: int = sock.getsockname()[1]
    return port


def test_free_port_exits_zero() -> None:
    port = free_port()
    result = portscope("check", str(port))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Port {port}/tcp is free on 0.0.0.0")
    assert "SO_REUSEADDR ok" in " ".join(result.stdout.split())


def test_an_ipv6_address_is_bracketed_in_the_sentence() -> None:
    port = free_port()
    result = portscope("check", str(port), "--host", "::")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Port {port}/tcp is free on [::]: ")


def test_listener_text_names_the_holder_and_exits_one() -> None:
    with tcp_listener("0.0.0.0") as sock:
        port = sock.getsockname()[1]
        result = portscope("check", str(port))
    assert result.returncode == 1, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"Port {port}/tcp is in use") and f"pid {os.getpid()}" in first
    assert "EADDRINUSE (errno 98; Windows 10048 WSAEADDRINUSE)" in result.stdout
    assert "What to do:" in result.stdout and f"kill {os.getpid()}" in result.stdout
    assert result.stderr == ""


def test_listener_json() -> None:
    with tcp_listener("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        result = portscope("check", str(port), "--host", "127.0.0.1", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert (data["port"], data["proto"], data["address"]) == (port, "tcp", "127.0.0.1")
    assert data["verdict"] == "listening"
    assert os.getpid() in [h["pid"] for h in data["holders"]]
    assert [a["option"] for a in data["attempts"]] == ["plain", "SO_REUSEADDR"]
    assert [a["error"] for a in data["attempts"]] == ["EADDRINUSE", "EADDRINUSE"]
    assert data["time_wait"] is None
    assert isinstance(data["suggested_port"], int) and data["suggested_port"] > port


def test_time_wait_json_says_reuseaddr_would_not_help() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 2)
    result = portscope("check", str(port), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["verdict"] == "time_wait" and data["holders"] == []
    assert data["time_wait"]["count"] == 2
    assert data["time_wait"]["reuseaddr_fixes"] is False
    if portable():  # psutil gives no TIME_WAIT timers: unknown, never guessed
        assert data["time_wait"]["expires_in"] is None
    else:
        assert 0 < data["time_wait"]["expires_in"] <= 61
    assert any(f"portscope wait {port}" in line for line in data["advice"])


def test_udp_flag_checks_the_udp_port_space() -> None:
    port = free_in_both("0.0.0.0")  # a UDP-chosen port may be a TCP TIME_WAIT
    with udp_socket("0.0.0.0", port):
        udp = portscope("check", str(port), "--udp", "--json")
        tcp = portscope("check", str(port), "--json")
    assert udp.returncode == 1 and json.loads(udp.stdout)["verdict"] == "udp_bound"
    assert json.loads(udp.stdout)["proto"] == "udp"
    assert tcp.returncode == 0 and json.loads(tcp.stdout)["verdict"] == "free"


def test_ipv6_host() -> None:
    with tcp_listener("::1") as sock:
        port = sock.getsockname()[1]
        result = portscope("check", str(port), "--host", "[::1]", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert (data["address"], data["verdict"]) == ("::1", "listening")
