"""Issue 11: what a server that binds `localhost`, `::` or `[::]` v6only really meets, with
real sockets on loopback: IPV6_V6ONLY read from sock_diag, the probe's overlap rule and its
words, and the survey of the other addresses servers commonly bind."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from portscope.core import text
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.diagnose.probe import COMMON_ADDRESSES, diagnose, overlaps
from portscope.core.model import Socket
from portscope.core.serialize import socket_json, verdict_json
from support import listeners_on_one_port, make_server_time_wait, retried, tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bind rules")


def udp6_socket(v6only: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    sock.bind(("::", 0))
    return sock


@pytest.fixture
def wildcards() -> Iterator[tuple[int, int, int]]:
    """A `[::]` TCP listener with IPV6_V6ONLY, one without, and a v6only `[::]` UDP socket."""
    with (
        tcp_listener("::", v6only=True) as only,
        tcp_listener("::", v6only=False) as dual,
        udp6_socket(v6only=True) as udp,
    ):
        yield only.getsockname()[1], dual.getsockname()[1], udp.getsockname()[1]


def test_sock_diag_reports_v6only(wildcards: tuple[int, int, int]) -> None:
    only, dual, udp = wildcards
    snap = ProcNetCollector(netlink=True).collect()
    [s_only] = snap.listeners_on(only)
    [s_dual] = snap.listeners_on(dual)
    [s_udp] = snap.listeners_on(udp, "udp")
    assert (s_only.v6only, s_dual.v6only, s_udp.v6only) == (True, False, True)
    assert text.address_label(s_only) == "[::] v6only"
    assert text.address_label(s_dual) == "[::] (dual)"
    assert socket_json(s_only)["v6only"] is True and socket_json(s_dual)["v6only"] is False
    # IPv4 sockets carry no such flag.
    with tcp_listener() as v4:
        [s_v4] = ProcNetCollector(netlink=True).collect().listeners_on(v4.getsockname()[1])
    assert s_v4.v6only is None and text.address_label(s_v4) == "127.0.0.1"


def test_text_tables_cannot_tell_and_say_so_by_a_plain_label(
    wildcards: tuple[int, int, int],
) -> None:
    only, dual, _ = wildcards
    snap = ProcNetCollector(netlink=False).collect()
    [s_only] = snap.listeners_on(only)
    [s_dual] = snap.listeners_on(dual)
    assert s_only.v6only is None and s_dual.v6only is None
    assert text.address_label(s_only) == text.address_label(s_dual) == "[::]"


def test_overlap_rule_uses_v6only() -> None:
    def wildcard(v6only: bool | None) -> Socket:
        return Socket("tcp", "ipv6", "::", 8080, v6only=v6only)

    assert not overlaps(wildcard(True), "0.0.0.0")
    assert not overlaps(wildcard(True), "127.0.0.1")
    assert overlaps(wildcard(True), "::1") and overlaps(wildcard(True), "::")
    assert overlaps(wildcard(False), "0.0.0.0")
    assert overlaps(wildcard(None), "0.0.0.0")  # unknown: Linux's default, dual-stack


def test_v6only_listener_is_not_blamed_for_an_ipv4_conflict() -> None:
    """A v6only `[::]` beside 127.0.0.1 on one port: a bind on 0.0.0.0 fails because of
    127.0.0.1 only, and the words must not say `[::]` overlaps 0.0.0.0."""
    v6, v4 = listeners_on_one_port(("::", True), ("127.0.0.1", None))
    port = v6.getsockname()[1]
    with v6, v4:
        verdict = diagnose(port, "0.0.0.0", suggest=False)
    assert verdict.kind == "listening"
    clash = verdict.explanation[0]
    assert f"127.0.0.1:{port} overlaps 0.0.0.0:{port}" in clash
    assert "[::]" not in clash


def test_v6only_listener_does_not_hide_the_time_wait_that_blocks() -> None:
    """TIME_WAIT on 127.0.0.1:P blocks 0.0.0.0:P; a v6only `[::]:P` listener beside it must
    not be named instead (it was, when every `[::]` was taken for dual-stack)."""

    def time_wait_then_v6only() -> tuple[int, socket.socket]:
        with tcp_listener("127.0.0.1") as listener:
            port = listener.getsockname()[1]
            make_server_time_wait(listener, 2)
        return port, tcp_listener("::", port, v6only=True)

    port, v6 = retried(time_wait_then_v6only)
    with v6:
        verdict = diagnose(port, "0.0.0.0", suggest=False)
    assert verdict.kind == "time_wait", verdict.sentence
    assert verdict.holders == ()
    assert not any("[::]" in line for line in verdict.explanation)


def test_dual_stack_listener_says_it_takes_ipv4_too() -> None:
    with tcp_listener("::", v6only=False) as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port, "0.0.0.0", suggest=False)
    assert verdict.kind == "listening"
    assert f"[::]:{port} overlaps 0.0.0.0:{port}" in verdict.explanation[0]
    assert "dual-stack [::] takes IPv4 too" in verdict.explanation[0]


def test_server_on_ipv6_loopback_only_is_named_when_ipv4_is_free() -> None:
    """node 17+ binds `localhost` as ::1: the survey names what such a server meets."""
    with tcp_listener("::1") as sock:
        port = sock.getsockname()[1]
        verdict = diagnose(port, survey=True)
        plain = diagnose(port)
    assert verdict.kind == "free" and verdict.address == "0.0.0.0"
    assert [o.address for o in verdict.others] == [a for a in COMMON_ADDRESSES if a != "0.0.0.0"]
    kinds = {o.address: o.kind for o in verdict.others}
    # The probe of :: is dual-stack, so ::1 blocks it too; 127.0.0.1 is free.
    assert kinds == {"::": "listening", "127.0.0.1": "free", "::1": "listening"}
    [v6] = [o for o in verdict.others if o.address == "::1"]
    assert [h.pid for h in v6.holders] == [os.getpid()]
    assert verdict.sentence.endswith(" It is taken on [::], [::1].")
    line = next(line for line in verdict.explanation if f"[::1]:{port}" in line)
    assert f"pid {os.getpid()}" in line and "localhost" in line and "node 17+" in line
    data = verdict_json(verdict)
    assert [(o["address"], o["verdict"]) for o in data["others"]] == [
        ("::", "listening"), ("127.0.0.1", "free"), ("::1", "listening"),
    ]
    assert os.getpid() in [h["pid"] for h in data["others"][2]["holders"]]
    # Without the survey, nothing about other addresses: the plain contract as before.
    assert plain.others == () and verdict_json(plain)["others"] == []
    assert plain.sentence == f"Port {port}/tcp is free on 0.0.0.0: a server can bind it now."


def test_others_taken_for_the_same_reason_are_said_once() -> None:
    with tcp_listener("::", v6only=False) as sock:  # takes every address but ::1's own
        port = sock.getsockname()[1]
        verdict = diagnose(port, survey=True, suggest=False)
    assert verdict.kind == "listening"
    assert all(o.taken for o in verdict.others)
    same = [line for line in verdict.explanation if "for the same reason" in line]
    # 127.0.0.1 and [::] meet the very socket 0.0.0.0 does; [::1] too (dual-stack wildcard).
    assert len(same) == 1 and f"127.0.0.1:{port}" in same[0] and f"[::]:{port}" in same[0]
