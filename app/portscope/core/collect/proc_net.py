"""Linux's /proc/net/{tcp,tcp6,udp,udp6} as text: the fallback where netlink sock_diag is
not allowed (some sandboxes), and the only way to read a /proc other than our own.

It costs more than netlink (the kernel prints every line, ~1.6 us per TIME_WAIT socket
before Python sees it), so only what a line's state needs is decoded.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

from ..model import Family, Proto
from .tables import TIME_WAIT, SocketRow, Tables

TABLES: tuple[tuple[str, Proto, Family], ...] = (
    ("tcp", "tcp", "ipv4"),
    ("tcp6", "tcp", "ipv6"),
    ("udp", "udp", "ipv4"),
    ("udp6", "udp", "ipv6"),
)

try:
    CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
except (ValueError, OSError, AttributeError):
    CLK_TCK = 100.0


def read_tables(root: str = "/proc/net", with_tcp: bool = True) -> Tables:
    """The same result as sock_diag.read_tables, from the text tables.

    Columns: sl local rem st tx:rx tr:tm->when retrnsmt uid timeout inode.
    """
    tables = Tables()
    for proto, family, f in iter_rows(root):
        if proto == "tcp" and not with_tcp:
            continue
        state = int(f[3], 16)
        port, remote = int(f[1][-4:], 16), int(f[2][-4:], 16)
        if proto == "tcp" and state == TIME_WAIT:
            expires = timer_seconds(f[5].decode())
            tables.tally(port).add(1, remote, expires, expires)
            continue
        address = decode_address(f[1][:-5].decode())
        tables.rows.append(
            SocketRow(proto, family, state, address, port, remote, int(f[7]), int(f[9]))
        )
    return tables


def iter_rows(root: str = "/proc/net") -> Iterator[tuple[Proto, Family, list[bytes]]]:
    """Yield each socket line of the four tables, split into its raw fields."""
    for table, proto, family in TABLES:
        try:
            with open(os.path.join(root, table), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for raw in data.splitlines()[1:]:
            f = raw.split()
            if len(f) >= 10:
                yield proto, family, f


def timer_seconds(timer: str) -> float | None:
    """Seconds left on a TIME_WAIT timer ("03:000016A7" -> 57.99); None if no timer runs."""
    active, _, when = timer.partition(":")
    if active == "00" or not when:
        return None
    return int(when, 16) / CLK_TCK


def decode_address(hexaddr: str) -> str:
    """The kernel prints each 32-bit word in host byte order."""
    raw = bytes.fromhex(hexaddr)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw)
