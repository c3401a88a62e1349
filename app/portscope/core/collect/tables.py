"""What a socket-table reader hands the Linux collector: live sockets one by one, TIME_WAIT
already tallied per local port (100,000 of them must not become 100,000 objects)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

from ..model import Family, Proto

LISTEN = 0x0A
TIME_WAIT = 0x06
CLOSE = 0x07  # a bound, unconnected UDP socket shows TCP's CLOSE state
SEVERAL = -2  # remote_port of a tally whose sockets talk to different remote ports


class SocketRow(NamedTuple):
    """One socket that is not TIME_WAIT, decoded."""

    proto: Proto
    family: Family
    state: int
    address: str
    port: int
    remote_port: int
    uid: int
    inode: int


@dataclass(slots=True)
class TimeWaitTally:
    """TIME_WAIT sockets on one local port; expiries in seconds from now."""

    count: int = 0
    first: float | None = None
    last: float | None = None
    remote_port: int = -1  # -1: none yet; SEVERAL: more than one

    def add(self, count: int, remote_port: int, first: float | None, last: float | None) -> None:
        self.count += count
        if self.remote_port == -1:
            self.remote_port = remote_port
        elif self.remote_port != remote_port:
            self.remote_port = SEVERAL
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last


@dataclass(slots=True)
class Tables:
    rows: list[SocketRow] = field(default_factory=list)
    time_wait: dict[int, TimeWaitTally] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    def tally(self, port: int) -> TimeWaitTally:
        found = self.time_wait.get(port)
        if found is None:
            found = self.time_wait[port] = TimeWaitTally()
        return found


def reason(exc: OSError) -> str:
    """Why a read failed, for a note: "Permission denied", not the whole exception."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__
