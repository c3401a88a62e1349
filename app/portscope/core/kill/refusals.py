"""Processes portscope never signals, and the sentence that says why."""

from __future__ import annotations

import os

import psutil

from ..untrusted import shown

# Linux's kthreadd; every kernel thread is its child. Other systems have no such PID.
KTHREADD = 2
HIDDEN_OWNER = (
    "no visible owner: the socket belongs to another user's process; "
    "run portscope with sudo to see (and stop) it"
)


def protected_pids() -> frozenset[int]:
    """portscope itself and its ancestors: the shell and the terminal it runs in."""
    me = os.getpid()
    try:
        parents = [p.pid for p in psutil.Process(me).parents()]
    except psutil.Error:
        parents = [os.getppid()]
    return frozenset([me, *parents])


def fixed_refusal(pid: int, protected: frozenset[int]) -> str | None:
    """Refusals that need no lookup: the PID alone decides."""
    if pid == 0:
        return "PID 0 is the kernel's idle task, not a process"
    if pid == 1:
        return (
            "PID 1 is the init system; if it holds the socket (socket activation), "
            "stop the unit with your service manager instead"
        )
    if pid == os.getpid():
        return f"PID {pid} is portscope itself"
    if pid in protected:
        return f"PID {pid} is an ancestor of portscope (the shell or terminal it runs in)"
    return None


def process_refusal(
    pid: int, ppid: int | None, captured: float | None, actual: float
) -> str | None:
    """Refusals that need the live process: kernel threads and a PID now used by another."""
    if pid == KTHREADD or ppid == KTHREADD:
        return f"PID {pid} is a kernel thread"
    if captured is None:
        return f"cannot tell whether PID {pid} is still the process picked (start time unknown)"
    if not same_start(captured, actual):
        return reused(pid)
    return None


def reused(pid: int) -> str:
    return f"PID {pid} now belongs to a different process (the PID was reused)"


def same_start(captured: float, actual: float) -> bool:
    # Both come from psutil's create_time() (boot time + start ticks), so the same process
    # gives the same float; a tolerance far below a clock tick only absorbs rounding.
    return abs(captured - actual) < 1e-3


def permission_denied(pid: int, user: str | None) -> str:
    owner = shown(user) or "another user"
    return f"permission denied: PID {pid} belongs to {owner}; run portscope with sudo"
