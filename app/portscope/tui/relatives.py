"""Parent and children of a holder, looked up when its row is selected (not every poll).

This reads /proc through psutil, so the details pane runs it in a thread worker: a slow
or vanished process must never stall the UI.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

from ..core.model import Holder
from ..core.record import record
from ..core.roles.procs import child_pids

MAX_CHILDREN = 12  # a pre-fork master with 64 workers: list a few, count the rest


@record
class Relatives:
    parent: str | None  # "1 systemd"; None when unknown
    children: tuple[str, ...]  # "4243 gunicorn", at most MAX_CHILDREN
    more_children: int = 0
    gone: bool = False  # the process exited (or its PID now belongs to another one)


RelativesLookup = Callable[[Holder], Relatives]


def lookup_relatives(holder: Holder) -> Relatives:
    try:
        proc = psutil.Process(holder.pid)
        if holder.started is not None and proc.create_time() != holder.started:
            return Relatives(None, (), gone=True)
        parent = _label(proc.parent())
        # From the kernel's list on Linux: psutil's children() reads every process's
        # stat (35 ms at 2,000), in a thread sharing the GIL with the keys pressed.
        kids = child_pids(proc.pid)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return Relatives(None, (), gone=True)
    except psutil.AccessDenied:
        return Relatives(None, ())
    labels = tuple(label for label in (_label(k) for k in kids[:MAX_CHILDREN]) if label)
    return Relatives(parent, labels, max(0, len(kids) - MAX_CHILDREN))


def _label(proc: int | psutil.Process | None) -> str | None:
    if proc is None:
        return None
    try:
        found = psutil.Process(proc) if isinstance(proc, int) else proc
        return f"{found.pid} {found.name()}"
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return str(proc if isinstance(proc, int) else proc.pid)
