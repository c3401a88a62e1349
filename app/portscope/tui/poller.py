"""One background thread that polls the collector and posts each result as a message.

A single long-lived loop (not a worker per tick) means polls can never overlap, however
slow one is: the next poll is scheduled only after the last one finished. Textual thread
workers cannot be cancelled, so piling one up per tick would leak threads.

A failed collect() is reported and the loop goes on. So is anything else that goes wrong
in the loop itself (an exception whose str() raises, a post that fails): a poller that
died silently would leave the header saying "polled 02:50:01" for ever.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from textual.message import Message

from ..core.collect import Collector
from ..core.model import Snapshot

JOIN_TIMEOUT = 2.0  # seconds unmount waits for a poll in flight; the thread is a daemon


class SnapshotReady(Message):
    """A poll finished; `snapshot` is immutable, so the UI may keep it."""

    def __init__(self, snapshot: Snapshot, elapsed: float) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.elapsed = elapsed


class PollFailed(Message):
    """A poll raised; the UI shows `error` (raw: the UI escapes it) and keeps the last good
    snapshot."""

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
        self._held_until = 0.0  # time.monotonic() before which no poll starts
        self._thread = threading.Thread(target=self._run, name="portscope-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Stop and wait (up to `timeout`) for a poll in flight to finish."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if not paused:
            self.poll_now()

    def hold(self, seconds: float) -> None:
        """Start no poll for `seconds`: a key's answer is being worked out and drawn, and a
        poll now would share the two cores and the GIL with it. A poll in flight runs on."""
        self._held_until = max(self._held_until, time.monotonic() + seconds)

    def poll_now(self) -> None:
        """Poll now, or right after the poll in flight finishes."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._wait_hold()
                if not self._paused and not self._stopped.is_set():
                    self._poll_once()
            except Exception as exc:  # the loop itself failed: say so, and try again
                self._report(f"poller error: {_describe(exc)}")
            self._wake.wait(self._interval)
            self._wake.clear()

    def _wait_hold(self) -> None:
        while (left := self._held_until - time.monotonic()) > 0:
            if self._stopped.wait(left):
                return

    def _poll_once(self) -> None:
        started = time.monotonic()
        try:
            snapshot = self._source.collect()
        except Exception as exc:  # any failure is shown inline; the loop must live on
            self._post(PollFailed(_describe(exc)))
            return
        if not self._stopped.is_set():
            self._post(SnapshotReady(snapshot, time.monotonic() - started))

    def _report(self, error: str) -> None:
        if self._stopped.is_set():
            return
        with contextlib.suppress(Exception):  # nowhere left to say it; the next poll tries
            self._post(PollFailed(error))


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not take the poller down with it
        text = ""
    if isinstance(exc, PermissionError):
        return f"permission denied ({text or name}); run with sudo to see more"
    return f"{name}: {text}" if text else name
