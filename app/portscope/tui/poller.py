"""One background thread that polls the collector and posts each result as a message.

A single long-lived loop (not a worker per tick) means polls can never overlap, however
slow one is: the next poll is scheduled only after the last one finished. Textual thread
workers cannot be cancelled, so piling one up per tick would leak threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.message import Message

from ..core.collect import Collector
from ..core.model import Snapshot


class SnapshotReady(Message):
    """A poll finished; `snapshot` is immutable, so the UI may keep it."""

    def __init__(self, snapshot: Snapshot, elapsed: float) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.elapsed = elapsed


class PollFailed(Message):
    """A poll raised; the UI shows `error` inline and keeps the last good snapshot."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class Poller:
    """Calls `source.collect()` every `interval` seconds until stopped; pausable."""

    def __init__(
        self, source: Collector, interval: float, post: Callable[[Message], object]
    ) -> None:
        self._source = source
        self._interval = interval
        self._post = post
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._paused = False
        self._thread = threading.Thread(target=self._run, name="portscope-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if not paused:
            self.poll_now()

    def poll_now(self) -> None:
        """Poll now, or right after the poll in flight finishes."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._paused:
                self._poll_once()
            self._wake.wait(self._interval)
            self._wake.clear()

    def _poll_once(self) -> None:
        started = time.monotonic()
        try:
            snapshot = self._source.collect()
        except Exception as exc:  # any failure is shown inline; the loop must live on
            self._post(PollFailed(_describe(exc)))
            return
        if not self._stopped.is_set():
            self._post(SnapshotReady(snapshot, time.monotonic() - started))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, PermissionError):
        return f"permission denied ({text}); run with sudo to see more"
    return f"{type(exc).__name__}: {text}" if str(exc) else text
