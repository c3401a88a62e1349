"""Handles that signal exactly the process that was picked, never a later one with its PID.

Linux: open a pidfd first, THEN check the start time, then signal through the pidfd. A pidfd
names one process for its whole life, and the process it names was already running when the
check passed, so a reused PID can never be hit. Elsewhere, and on the portable path
(platform_path.py), psutil re-checks (PID, start time) just before signalling, which leaves
only a tiny window.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import psutil

from .. import platform_path
from .refusals import same_start


class StaleProcess(Exception):
    """The PID now belongs to a process that started at another time."""


class ProcessHandle(Protocol):
    pid: int

    def send(self, signum: int) -> None:
        """Raises ProcessLookupError (exited) or PermissionError (another user's)."""

    def exited(self) -> bool: ...

    def close(self) -> None: ...


Opener = Callable[[int, float | None], ProcessHandle]


def open_handle(pid: int, started: float | None) -> ProcessHandle:
    """A handle on PID if it still started at `started` (None: watch only, never verified).

    Raises StaleProcess, ProcessLookupError or PermissionError.
    """
    if (
        sys.platform.startswith("linux")
        and hasattr(os, "pidfd_open")
        and not platform_path.portable()
    ):
        return PidfdHandle(pid, started)
    return PsutilHandle(pid, started)


class PidfdHandle:
    def __init__(self, pid: int, started: float | None) -> None:
        self.pid = pid
        self._fd = os.pidfd_open(pid)  # ProcessLookupError if it is gone already
        try:
            if started is not None:
                _verify(pid, started)
        except BaseException:
            os.close(self._fd)
            raise

    def send(self, signum: int) -> None:
        signal.pidfd_send_signal(self._fd, signum)

    def exited(self) -> bool:
        # A pidfd polls readable once its process has exited (even before it is reaped).
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return bool(poller.poll(0))

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PsutilHandle:
    def __init__(self, pid: int, started: float | None) -> None:
        self.pid = pid
        try:
            self._proc = psutil.Process(pid)
            if started is not None:
                _verify(pid, started)
        except psutil.NoSuchProcess:
            raise ProcessLookupError(pid) from None

    def send(self, signum: int) -> None:
        try:
            self._proc.send_signal(signum)  # psutil re-checks (PID, start time) first
        except psutil.NoSuchProcess:
            raise ProcessLookupError(self.pid) from None
        except psutil.AccessDenied:
            raise PermissionError(self.pid) from None

    def exited(self) -> bool:
        try:
            return not self._proc.is_running() or self._proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:
            return False

    def close(self) -> None:
        pass


def _verify(pid: int, started: float) -> None:
    try:
        actual = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None
    except psutil.AccessDenied:
        raise PermissionError(pid) from None
    if not same_start(started, actual):
        raise StaleProcess(pid)


def wait_exited(handles: Iterable[ProcessHandle], timeout: float) -> set[int]:
    """Block until every handle's process exited or `timeout` passed; return who exited.

    pidfds are waited on with poll(), so an exit is seen at once, not at the next tick.
    """
    pending = {h.pid: h for h in handles}
    gone: set[int] = set()
    deadline = time.monotonic() + timeout
    while pending:
        for pid in [p for p, h in pending.items() if h.exited()]:
            gone.add(pid)
            del pending[pid]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        fds = [h for h in pending.values() if isinstance(h, PidfdHandle)]
        if len(fds) == len(pending):
            poller = select.poll()
            for h in fds:
                poller.register(h.fileno(), select.POLLIN)
            poller.poll(max(1, int(left * 1000)))
        else:
            time.sleep(min(0.05, left))
    return gone
