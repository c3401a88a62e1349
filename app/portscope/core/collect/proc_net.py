"""Lean parser of Linux's /proc/net/{tcp,tcp6,udp,udp6}.

Only what a line's state needs is decoded: a TIME_WAIT line costs a split and two int()s,
which is what keeps 100,000 of them inside a 1 s poll.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from ..model import Family, Proto
from .tables import TIME_WAIT as TIME_WAIT_STATE
from .tables import SocketRow, Tables

LISTEN = b"0A"
TIME_WAIT = b"06"
UDP_UNCONNECTED = b"07"  # a bound UDP socket shows TCP's CLOSE state

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


@dataclass(frozen=True, slots=True)
class Line:
    """One socket line, fields still mostly raw."""

    proto: Proto
    family: Family
    local: str  # "0100007F:1F90"
    remote: str
    state: str  # two hex digits, as the kernel prints them
    timer: str  # "03:000016A7"
    uid: int
    inode: int

    @property
    def port(self) -> int:
        return int(self.local[-4:], 16)

    @property
    def remote_port(self) -> int:
        return int(self.remote[-4:], 16)

    @property
    def address(self) -> str:
        return decode_address(self.local[:-5])


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


def to_line(proto: Proto, family: Family, f: list[bytes]) -> Line:
    return Line(
        proto, family, f[1].decode(), f[2].decode(), f[3].decode(), f[5].decode(),
        int(f[7]), int(f[9]),
    )


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


def read_tables(root: str = "/proc/net", with_tcp: bool = True) -> Tables:
    """The same result as sock_diag.read_tables, from the text tables (the fallback where
    netlink is not allowed, and the only way to read a /proc other than our own)."""
    tables = Tables()
    for proto, family, f in iter_rows(root):
        if proto == "tcp" and not with_tcp:
            continue
        state = int(f[3], 16)
        if proto == "tcp" and state == TIME_WAIT_STATE:
            expires = timer_seconds(f[5].decode())
            port, remote = int(f[1][-4:], 16), int(f[2][-4:], 16)
            tables.tally(port).add(1, remote, expires, expires)
            continue
        ln = to_line(proto, family, f)
        tables.rows.append(
            SocketRow(proto, family, state, ln.address, ln.port, ln.remote_port, ln.uid, ln.inode)
        )
    return tables
