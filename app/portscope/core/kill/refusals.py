"""Processes portscope never signals, or signals only with `--allow-system`, and the
sentence that says why, naming the rule that refused.

Never, whatever the flags: PID 0 (not a process), portscope itself, kernel threads (a
signal does nothing to them). Unless `--allow-system`: PID 1, portscope's own ancestors
(the login shell, the terminal, the multiplexer it runs in), sshd, init-managed system
daemons, and a root process holding another user's socket. Inside a container the server
may well be PID 1, and a person who means it can say so.

The last three are rules of the stop plan itself (roles/privilege.py, on kernel facts), so
`check` advises what `kill` does; they are applied here again to a PID named directly
(`kill --pid`) or picked in the TUI.
"""

from __future__ import annotations

import os

import psutil

from ..roles.privilege import ALLOW, step_up_refusal, system_refusal
from ..untrusted import shown

__all__ = ["step_up_refusal", "system_refusal"]  # the roles layer's rules, for by_pid

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


def fixed_refusal(
    pid: int, protected: frozenset[int], *, allow_system: bool = False
) -> str | None:
    """Refusals that need no lookup: the PID alone decides."""
    if pid == 0:
        return "PID 0 is the kernel's idle task, not a process"
    if pid == os.getpid():
        return f"PID {pid} is portscope itself"
    if allow_system:
        return None
    if pid == 1:
        return (
            "PID 1 is the init system; if it holds the socket (socket activation), "
            f"stop the unit with your service manager instead (rule: PID 1; {ALLOW})"
        )
    if pid in protected:
        return (
            f"PID {pid} is an ancestor of portscope, the shell or terminal it runs in "
            f"(rule: portscope's own session; {ALLOW})"
        )
    return None


def process_refusal(
    pid: int, ppid: int | None, captured: float | None, actual: float
) -> str | None:
    """Refusals that need the live process: kernel threads and a PID now used by another."""
    if pid == KTHREADD or ppid == KTHREADD:
        return f"PID {pid} is a kernel thread (rule: kernel threads, never signalled)"
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
