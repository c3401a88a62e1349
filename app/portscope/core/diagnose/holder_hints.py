"""Read the holders of a busy port the way a person would: mine? inherited? pre-fork?

These are heuristics over /proc facts, so each one is worded as "probably" in the advice.
"""

from __future__ import annotations

import os

import psutil

from ..model import Holder


def looks_already_running(holders: tuple[Holder, ...], cwd: str) -> bool:
    """An earlier copy of the user's own program: same working directory, or a second
    process (not just a worker sharing the socket) runs the same command line."""
    here = os.path.realpath(cwd)
    if any(h.cwd and os.path.realpath(h.cwd) == here for h in holders):
        return True
    commands = {h.cmdline for h in holders if h.cmdline}
    if not commands:
        return False
    mine = {h.pid for h in holders} | {os.getpid()}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline")
        if proc.pid not in mine and cmdline and tuple(cmdline) in commands:
            return True
    return False


def inherited_pids(holders: tuple[Holder, ...]) -> tuple[int, ...]:
    """Holders that kept a socket they did not open.

    A child running another program than its parent holder inherited the fd; a holder whose
    process group leader (the server it was started with) is gone is an orphan that kept it.
    Daemons lead their own group, so they are not mistaken for orphans.
    """
    by_pid = {h.pid: h for h in holders}
    found: list[int] = []
    for h in holders:
        parent = by_pid.get(h.ppid) if h.ppid is not None else None
        if parent is not None:
            if parent.cmdline != h.cmdline:
                found.append(h.pid)
            continue
        if _orphaned_from_group(h.pid):
            found.append(h.pid)
    return tuple(found)


def prefork_master(holders: tuple[Holder, ...]) -> Holder | None:
    """The parent of a pre-fork server (several holders, one command line), else None."""
    if len(holders) < 2 or len({h.cmdline for h in holders}) != 1:
        return None
    pids = {h.pid for h in holders}
    roots = [h for h in holders if h.ppid not in pids]
    return roots[0] if len(roots) == 1 else None


def _orphaned_from_group(pid: int) -> bool:
    getpgid = getattr(os, "getpgid", None)
    if getpgid is None:  # Windows has no process groups of this kind
        return False
    try:
        pgid = int(getpgid(pid))
    except OSError:
        return False
    if pgid == pid:
        return False
    try:
        return psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
