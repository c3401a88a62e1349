"""Ports for tests of `free` and `run`: below the ephemeral range (where `free` looks, and
where the kernel never hands out a port by itself), free now on both families, with no
TIME_WAIT. Each search starts at a random place, so test runs side by side rarely meet."""

from __future__ import annotations

import random
import socket

LOW, HIGH = 20000, 32000  # under Linux's default ephemeral range (32768-60999)


def ephemeral_range() -> tuple[int, int]:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        low, high = fh.read().split()
    return int(low), int(high)


def bindable(port: int, proto: int = socket.SOCK_STREAM) -> bool:
    """A plain bind on `::` (dual-stack, so IPv4 too) succeeds: nothing holds the port and,
    for TCP, no TIME_WAIT is on it."""
    sock = socket.socket(socket.AF_INET6, proto)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        if proto == socket.SOCK_STREAM:
            sock.listen(1)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def quiet_ports(count: int = 1, tries: int = 200) -> int:
    """The first of `count` consecutive ports that TCP and UDP can both bind now."""
    low = max(LOW, 1024)
    high = min(HIGH, ephemeral_range()[0] - 1) - count
    for _ in range(tries):
        first = random.randint(low, high)
        span = range(first, first + count)
        if all(bindable(p) and bindable(p, socket.SOCK_DGRAM) for p in span):
            return first
    raise AssertionError(f"no {count} quiet ports in {low}-{high} after {tries} tries")


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
