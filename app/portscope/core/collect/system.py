"""Facts about this host that classify ports."""

from __future__ import annotations

import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def ephemeral_range() -> tuple[int, int]:
    """The range the kernel picks client ports from (Linux reads it; others use IANA's)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = fh.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return (49152, 65535) if sys.platform in ("darwin", "win32") else (32768, 60999)


def tcp_tw_reuse() -> int | None:
    """net.ipv4.tcp_tw_reuse: 1 lets connect() reuse a TIME_WAIT port older than 1 s, 2 (the
    default) only for loopback; None off Linux. Read each poll: a person may change it."""
    try:
        with open("/proc/sys/net/ipv4/tcp_tw_reuse") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def time_wait_count(proc: str = "/proc") -> int:
    """TIME_WAIT sockets in this network namespace, IPv4 and IPv6 (the kernel's own
    count, the `tw` of /proc/net/sockstat: one small read); 0 if unreadable."""
    try:
        with open(f"{proc}/net/sockstat", "rb") as fh:
            for line in fh:
                if line.startswith(b"TCP:"):
                    fields = line.split()
                    return int(fields[fields.index(b"tw") + 1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
