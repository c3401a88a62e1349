"""Which processes hold which socket inodes: a walk of /proc/PID/fd (Linux)."""

from __future__ import annotations

import os
from collections import defaultdict


def socket_holders(wanted: set[int], proc: str = "/proc") -> dict[int, list[int]]:
    """Map each wanted inode to every PID that has it open.

    Unlike psutil.net_connections(), this keeps all PIDs of a shared socket (pre-fork
    servers, inherited fds). Processes we may not read are skipped: their sockets stay
    ownerless, which the caller reports as hidden.
    """
    found: dict[int, list[int]] = defaultdict(list)
    if not wanted:
        return found
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        for inode in _socket_inodes(f"{proc}/{entry.name}/fd"):
            if inode in wanted and pid not in found[inode]:
                found[inode].append(pid)
    return found


def _socket_inodes(fd_dir: str) -> list[int]:
    try:
        names = os.listdir(fd_dir)
    except OSError:  # gone, or not ours to read
        return []
    inodes = []
    for name in names:
        try:
            link = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.append(int(link[8:-1]))
    return inodes
