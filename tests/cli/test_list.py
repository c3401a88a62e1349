"""`portscope list` as a script sees it: a real process, real sockets, the JSON contract."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from datetime import datetime

from portscope.core.platform_path import portable
from support import make_server_time_wait, tcp_listener, udp_socket


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=30
    )


def test_list_json_contract() -> None:
    with tcp_listener() as listener, udp_socket("::1") as udp:
        port = listener.getsockname()[1]
        make_server_time_wait(listener, 2)
        result = portscope("list", "--json")
        udp_port = udp.getsockname()[1]
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {
        "schema", "taken_at", "source", "hidden_owners", "sockets", "ports", "clients"
    }
    assert data["source"] == ("psutil (portable)" if portable() else "proc")
    assert isinstance(data["clients"], list)
    assert datetime.fromisoformat(data["taken_at"]).tzinfo is not None
    assert isinstance(data["hidden_owners"], int)
    [tcp] = [s for s in data["sockets"] if s["port"] == port and s["proto"] == "tcp"]
    assert (tcp["family"], tcp["address"]) == ("ipv4", "127.0.0.1")
    [me] = [p for p in tcp["processes"] if p["pid"] == os.getpid()]
    assert set(me) == {"pid", "name", "user", "cmdline", "started", "ppid", "role"}
    assert me["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert isinstance(me["cmdline"], list) and isinstance(me["started"], float)
    assert any(s["port"] == udp_port and s["family"] == "ipv6" for s in data["sockets"])
    [stats] = [p for p in data["ports"] if p["port"] == port]
    assert stats["time_wait"] == 2
    if portable():  # psutil gives no timers: unknown, never guessed
        assert stats["time_wait_expires_in"] is None
        assert tcp["uid"] is None and tcp["v6only"] is None
    else:
        assert 0 < stats["time_wait_expires_in"] <= 60
        assert tcp["uid"] == os.geteuid()
    assert isinstance(stats["states"], dict)
    # every port in "ports" has at least one non-LISTEN socket
    assert all(p["time_wait"] + sum(p["states"].values()) > 0 for p in data["ports"])


def test_list_port_filter_and_table() -> None:
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        as_json = portscope("list", "--json", "--port", str(port))
        as_text = portscope("list", "--port", str(port))
    data = json.loads(as_json.stdout)
    assert [s["port"] for s in data["sockets"]] == [port]
    lines = as_text.stdout.splitlines()
    assert lines[0].split()[:3] == ["PORT", "PROTO", "ADDRESS"]
    assert lines[1].split()[:4] == [str(port), "tcp", "127.0.0.1", str(os.getpid())]


def test_version_and_help() -> None:
    from portscope import __version__

    assert portscope("--version").stdout.strip() == f"portscope {__version__}"
    helped = portscope("--help")
    assert helped.returncode == 0 and "list" in helped.stdout
