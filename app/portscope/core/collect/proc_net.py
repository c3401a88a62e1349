"""Linux's /proc/net/{tcp,tcp6,udp,udp6} as text: the fallback where netlink sock_diag is
not allowed (some sandboxes), and the only way to read a /proc other than our own.

It costs more than netlink (the kernel prints every line, ~1.6 us per TIME_WAIT socket
before Python sees it), so only what a line's state needs is decoded.
"""

from __future__ import annotations

import os
import sys
from _socket import AF_INET, AF_INET6, inet_ntop  # `socket` costs ~3 ms more
from collections.abc import Iterator

from ..model import Family, Proto
from .system import ephemeral_range
from .tables import LISTEN, TIME_WAIT, SocketRow, Tables, reason

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


def read_tables(root: str = "/proc/net", with_tcp: bool = True, whole: bool = True) -> Tables:
    """The same result as sock_diag.read_tables, from the text tables.

    Columns: sl local rem st tx:rx tr:tm->when retrnsmt uid timeout inode. A table that
    cannot be read is skipped and said in `tables.notes`; the others still count. `whole`:
    clients are told from servers (Tables.settle); False for a one-port question, which
    keeps its port's sockets whoever's they are.
    """
    tables = Tables()
    wanted = TABLES if with_tcp else tuple(t for t in TABLES if t[1] == "udp")
    defer = whole and with_tcp
    remotes: dict[bytes, str] = {}  # each remote address decoded once

    def peer(raw: bytes) -> str:
        found = remotes.get(raw)
        if found is None:
            found = remotes[raw] = decode_address(raw.decode())
        return found

    for proto, family, f in iter_rows(root, wanted, tables.notes):
        state = int(f[3], 16)
        port, remote = int(f[1][-4:], 16), int(f[2][-4:], 16)
        if proto == "tcp" and state == TIME_WAIT:
            expires = timer_seconds(f[5].decode())
            if defer:  # tallied or summed once the listeners are known
                tables.loose.append((port, peer(f[2][:-5]), remote, expires))
            else:
                tables.tally(port).add(1, remote, expires, expires)
            continue
        address = decode_address(f[1][:-5].decode())
        far = peer(f[2][:-5]) if proto == "tcp" and state != LISTEN else ""
        # The text tables have no IPV6_V6ONLY column: v6only stays None (unknown).
        tables.rows.append(
            SocketRow(proto, family, state, address, port, remote, int(f[7]), int(f[9]), None, far)
        )
    if defer:
        tables.settle(ephemeral_range())
    return tables


def iter_rows(
    root: str = "/proc/net",
    tables: tuple[tuple[str, Proto, Family], ...] = TABLES,
    notes: list[str] | None = None,
) -> Iterator[tuple[Proto, Family, list[bytes]]]:
    """Yield each socket line of the tables, split into its raw fields; what cannot be read
    (gone, a directory, not ours to read) is skipped and said in `notes`."""
    unread: list[tuple[str, Proto, Family, OSError]] = []
    for table, proto, family in tables:
        try:
            with open(os.path.join(root, table), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            unread.append((table, proto, family, exc))
            continue
        for raw in data.splitlines()[1:]:
            f = raw.split()
            if len(f) >= 10:
                yield proto, family, f
    if notes is not None:
        notes.extend(_unread_notes(root, tables, unread))


def _unread_notes(
    root: str,
    tables: tuple[tuple[str, Proto, Family], ...],
    unread: list[tuple[str, Proto, Family, OSError]],
) -> list[str]:
    """One sentence per table that could not be read, or one for all of them."""
    if len(unread) == len(tables) > 1:
        names = ",".join(table for table, _, _ in tables)
        why = ", ".join(dict.fromkeys(reason(exc) for *_, exc in unread))
        what = "no sockets" if len(tables) == len(TABLES) else "no UDP sockets"
        return [f"cannot read {root}/{{{names}}} ({why}): {what} are shown"]
    read = {(proto, family) for _, proto, family in tables} - {
        (proto, family) for _, proto, family, _ in unread
    }
    return [
        f"cannot read {root}/{table} ({reason(exc)}): "
        f"{'IPv4' if family == 'ipv4' else 'IPv6'} {proto.upper()} sockets are not shown"
        for table, proto, family, exc in unread
        if not _no_ipv6(root, family, proto, exc, read)
    ]


def _no_ipv6(
    root: str, family: Family, proto: Proto, exc: OSError, read: set[tuple[Proto, Family]]
) -> bool:
    """A kernel without IPv6 has no tcp6/udp6 (and no if_inet6): nothing is hidden then."""
    return (
        family == "ipv6"
        and isinstance(exc, FileNotFoundError)
        and (proto, "ipv4") in read
        and not os.path.exists(os.path.join(root, "if_inet6"))
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
    return inet_ntop(AF_INET if len(raw) == 4 else AF_INET6, raw)
