"""The probe leaves nothing behind, validates input once, and keeps its JSON contract."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys

import pytest

from portscope.core.diagnose.bind_attempt import WINDOWS_CODES, Attempt, try_bind
from portscope.core.diagnose.probe import diagnose, parse_address, parse_port
from portscope.core.diagnose.verdict import VERDICT_KINDS
from portscope.core.serialize import verdict_json
from support import make_server_time_wait, tcp_listener, udp_socket

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def open_fds() -> list[str]:
    """This process's open descriptors, as targets ("socket:[123]", "/dev/null", ...)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used, closed by now
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(out)


@linux_only
def test_no_socket_left_open_whatever_the_outcome() -> None:
    with tcp_listener("0.0.0.0") as busy, udp_socket("0.0.0.0") as udp:
        busy_port = busy.getsockname()[1]
        udp_port = udp.getsockname()[1]
        before = open_fds()
        sockets_before = [t for t in before if t.startswith("socket:")]
        outcomes = [
            try_bind(busy_port, "0.0.0.0", "tcp", "plain"),  # bind raises
            try_bind(busy_port, "0.0.0.0", "tcp", "SO_REUSEADDR"),
            try_bind(busy_port + 1 if busy_port < 65535 else 1025, "127.0.0.1", "tcp", "plain"),
            try_bind(busy_port, "192.0.2.1", "tcp", "plain"),  # EADDRNOTAVAIL
            try_bind(udp_port, "0.0.0.0", "udp", "plain"),
            try_bind(busy_port, "::", "tcp", "plain"),
        ]
        verdicts = [
            diagnose(busy_port).kind,
            diagnose(udp_port, proto="udp").kind,
            diagnose(busy_port, "192.0.2.1").kind,
        ]
        after = open_fds()
    assert [t for t in after if t.startswith("socket:")] == sockets_before
    assert after == before
    assert [a.ok for a in outcomes][:2] == [False, False]
    assert outcomes[3].errno == errno.EADDRNOTAVAIL
    assert verdicts == ["listening", "udp_bound", "address_not_available"]


@linux_only
def test_listen_step_is_part_of_the_attempt() -> None:
    # A plain bind that succeeds is followed by listen(): the attempt reports both passed,
    # and the port is free again right after (the socket was closed).
    with tcp_listener() as sock:
        port = sock.getsockname()[1]
    first = try_bind(port, "127.0.0.1", "tcp", "plain")
    assert first == Attempt("plain", True)
    assert try_bind(port, "127.0.0.1", "tcp", "plain").ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "not a port number: 'abc'"),
        ("", "not a port number: ''"),
        ("80.5", "not a port number: '80.5'"),
        ("0", "port must be 1-65535, got 0"),
        ("-1", "port must be 1-65535, got -1"),
        ("65536", "port must be 1-65535, got 65536"),
    ],
)
def test_parse_port_rejects_with_a_human_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_port(text)
    assert str(err.value) == message


def test_parse_port_accepts_spaces_and_ints() -> None:
    assert parse_port(" 8080 ") == 8080
    assert parse_port(65535) == 65535


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0", "0.0.0.0"), ("::", "::"), ("[::]", "::"), ("[::1]", "::1"),
     ("127.0.0.1", "127.0.0.1"), (" ", "0.0.0.0"),
     ("0:0:0:0:0:0:0:1", "::1")],
)
def test_parse_address_normalises(text: str, expected: str) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["localhost", "1.2.3", "256.1.1.1", ":::", "[::", "12ab"])
def test_parse_address_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        parse_address(text)


def test_diagnose_rejects_bad_input_before_probing() -> None:
    with pytest.raises(ValueError, match="1-65535"):
        diagnose(0)
    with pytest.raises(ValueError, match="not an IP address"):
        diagnose(8080, "nope")


def test_windows_codes_match_the_errnos() -> None:
    assert WINDOWS_CODES[errno.EADDRINUSE] == (10048, "WSAEADDRINUSE")
    assert WINDOWS_CODES[errno.EACCES] == (10013, "WSAEACCES")
    assert WINDOWS_CODES[errno.EADDRNOTAVAIL] == (10049, "WSAEADDRNOTAVAIL")
    assert Attempt("plain", True).windows_code is None


@linux_only
def test_verdict_json_is_the_check_contract() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = sock.getsockname()[1]
        listening = verdict_json(diagnose(port))
        make_server_time_wait(sock, 1)
    waiting = verdict_json(diagnose(port))
    keys = {"schema", "port", "proto", "address", "verdict", "attempts", "holders", "time_wait",
            "advice", "suggested_port", "stop",
            # issue 11 (tested in tests/core/test_precision*.py)
            "can_bind", "others", "other_proto", "server_bind", "excluded_range"}
    for data in (listening, waiting):
        assert set(data) == keys
        assert data["port"] == port and data["proto"] == "tcp" and data["address"] == "0.0.0.0"
        assert data["verdict"] in VERDICT_KINDS
        for a in data["attempts"]:
            assert set(a) == {"option", "ok", "errno", "error", "message"}
            assert a["option"] in ("plain", "SO_REUSEADDR", "SO_EXCLUSIVEADDRUSE")
        assert all(isinstance(line, str) for line in data["advice"])
    assert listening["verdict"] == "listening" and listening["time_wait"] is None
    [me] = [h for h in listening["holders"] if h["pid"] == os.getpid()]
    assert set(me) == {"pid", "name", "user", "cmdline", "ppid", "started", "role"}
    assert isinstance(me["cmdline"], list) and me["role"] == "server"
    assert me["ppid"] == os.getppid() and isinstance(me["started"], float)
    stop = listening["stop"]
    assert set(stop) == {
        "how", "pids", "command", "why", "container", "unit", "evidence", "withheld", "signal",
    }
    # The holder is this very test: portscope itself, so the plan names it and kill refuses.
    assert stop["how"] == "signal" and stop["pids"] == [os.getpid()]
    assert waiting["stop"]["how"] == "none" and waiting["stop"]["pids"] == []
    assert waiting["verdict"] == "time_wait" and waiting["holders"] == []
    tw = waiting["time_wait"]
    assert set(tw) == {"count", "expires_in", "reuseaddr_fixes"}
    assert tw["count"] == 1 and tw["reuseaddr_fixes"] is False
    assert isinstance(tw["expires_in"], float)
    assert isinstance(waiting["suggested_port"], int)
    assert waiting["attempts"][0] == {
        "option": "plain", "ok": False, "errno": errno.EADDRINUSE, "error": "EADDRINUSE",
        "message": os.strerror(errno.EADDRINUSE),
    }




@linux_only
def test_bound_but_not_listening_socket() -> None:
    """A socket bound with SO_REUSEADDR but not listening (a server between bind() and
    listen(), or a client that bound its port) blocks a plain bind, while a second
    SO_REUSEADDR socket may bind and listen beside it."""
    bound = socket.socket()
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bound.bind(("127.0.0.1", 0))
    with bound:
        port = bound.getsockname()[1]
        verdict = diagnose(port, "127.0.0.1")
    plain, reuse = verdict.attempts
    assert (plain.ok, plain.error, plain.step) == (False, "EADDRINUSE", "bind")
    assert reuse.ok
    # /proc/net/tcp does not list bound-only sockets, so even root cannot name the holder.
    assert verdict.kind == "owner_hidden" and verdict.holders == ()
    assert "bound but not listening" in " ".join(verdict.explanation)
