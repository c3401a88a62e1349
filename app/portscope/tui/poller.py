"""One background thread that polls the collector on a fixed beat and hands the newest result
to the UI.

A single long-lived loop (not a worker per tick) means polls can never overlap, however
slow one is. Textual thread workers cannot be cancelled, so piling one up per tick would
leak threads.

Fixed rate: poll k starts on the tick `anchor + k * interval` (the anchor is the first poll,
or the last one asked for at once), so the period is the interval, not the interval plus
the poll. A poll that overruns skips the tick(s) it ran over, rather than starting late
ones back to back, and says how many (SnapshotReady.skipped: the header shows it).

A sketch first, when asked for (`sketch`): the sockets alone (owners=False: no fd table
read, no process described), made ready and shown at once, then the first whole poll right
after it. The first frame shows what listens where in a few hundred ms, not after the
first whole poll's walk of every process's fd table (over a second at 2,000 processes). A
source that can tell (ProcNetCollector.sketch) gives no sketch when its first whole poll
will be quick: the first frame is then the one naming the processes.

No queue: the thread turns each snapshot into the table's rows (`prepare`, everything but
the final diff) and leaves the result in a one-place mailbox. A message tells the UI only
when the mailbox was empty; a result the UI has not taken yet is replaced by the newer one,
so a UI busy for 3 s shows the newest poll next, not three old ones in turn.

A poll that gives way to a key's question about one port (`b`, `k`: collect.Yielded) is
not a failure: its tick passes unshown, not counted as skipped (the poll was not slow),
and the next tick polls again.

A failed collect() is reported and the loop goes on. So is anything else that goes wrong
in the loop itself (an exception whose str() raises, a post that fails): a poller that
died silently would leave the header saying "polled 02:50:01" for ever.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable

from textual.message import Message

from ..core.collect import Collector, FocusedCollector, Yielded
from ..core.model import Snapshot
from ..core.record import replace
from .rows import Prepared

JOIN_TIMEOUT = 2.0  # seconds unmount waits for a poll in flight; the thread is a daemon
SKETCH_GRACE = 0.5  # seconds the first whole poll waits for the UI to take the sketch

Prepare = Callable[[Snapshot, "Prepared | None"], Prepared]


def bare(snapshot: Snapshot, previous: Prepared | None) -> Prepared:
    """The snapshot alone, no rows (the app passes rows.prepare_rows)."""
    return Prepared(snapshot, (), {})


class SnapshotReady(Message):
    """A poll finished. `snapshot` is immutable, so the UI may keep it; `take()` hands over
    the newest result waiting (this poll's, or a later one's that replaced it), or None if
    it was already taken."""

    def __init__(
        self,
        snapshot: Snapshot,
        elapsed: float,
        skipped: int = 0,
        take: Callable[[], Prepared | None] | None = None,
    ) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.elapsed = elapsed
        self.skipped = skipped
        self._take = take

    def take(self) -> Prepared | None:
        return self._take() if self._take is not None else None


class PollFailed(Message):
    """A poll raised; the UI shows `error` (raw: the UI escapes it) and keeps the last good
    snapshot."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class Poller:
    """Calls `source.collect()` on every tick of `interval` seconds until stopped; pausable."""

    def __init__(
        self,
        source: Collector,
        interval: float,
        post: Callable[[Message], object],
        prepare: Prepare = bare,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] | None = None,
        sketch: Callable[[Snapshot], Prepared] | None = None,
    ) -> None:
        """`clock` and `wait` (Event.wait for `clock`'s seconds) exist for tests that run
        the beat on a clock of their own. `sketch`: make the sockets-only first poll ready
        (rows.sketch_rows); only a source that can narrow its poll is asked for one."""
        self._sketch = sketch if getattr(type(source), "narrows", False) else None
        self._source = source
        self._interval = interval
        self._post = post
        self._prepare = prepare
        self._clock = clock
        self._wait = wait or threading.Event.wait
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._paused = False
        self._once = False  # poll once although paused (`r`)
        self._held_until = 0.0  # time.monotonic() before which no poll starts
        self._lock = threading.Lock()
        self._waiting: Prepared | None = None  # the mailbox: the newest result not taken
        self._last: Prepared | None = None  # the last result made (its rows are reused)
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
        self._held_until = max(self._held_until, self._clock() + seconds)

    def poll_now(self, even_paused: bool = False) -> None:
        """Poll now, or right after the poll in flight finishes; the beat restarts there.
        `even_paused`: one poll although paused (`r`: a fresh look at a held table)."""
        if even_paused:
            self._once = True
        self._wake.set()

    def take(self) -> Prepared | None:
        """The newest result waiting, emptying the mailbox (the UI thread calls this)."""
        with self._lock:
            ready, self._waiting = self._waiting, None
        return ready

    def _run(self) -> None:
        if self._sketch is not None:
            self._sketch_once(self._sketch)
        anchor = self._clock()
        tick = 0  # the index of the tick the next poll belongs to
        while not self._stopped.is_set():
            due = anchor + tick * self._interval
            after: int | None = None  # the tick after the poll, as the poll counted it
            try:
                woken = self._wait(self._wake, max(0.0, due - self._clock()))
                self._wake.clear()
                if woken:  # asked for now (or resumed): the beat starts from here
                    anchor, tick = self._clock(), 0
                self._wait_hold()
                if self._stopped.is_set():
                    return
                once, self._once = self._once, False
                if not self._paused or once:
                    after = self._poll_once(anchor, tick)
            except Exception as exc:  # the loop itself failed: say so, and try again
                self._report(f"poller error: {_describe(exc)}")
            tick = after if after is not None else self._next_tick(anchor, tick, self._clock())

    def _sketch_once(self, sketch: Callable[[Snapshot], Prepared]) -> None:
        """The sockets alone, shown before the first whole poll (which starts right after).
        Not kept as `_last`: the whole poll's rows and texts are made afresh."""
        started = self._clock()
        try:
            sockets = self._sockets()
            if sockets is None:  # the whole poll will be quick: it is the first frame
                return
            ready = sketch(sockets)
        except Exception:  # the whole poll right after says what is wrong
            return
        if self._stopped.is_set():
            return
        self._deliver(replace(ready, elapsed=self._clock() - started))
        # The whole poll's fd walk holds the GIL in long stretches: let the UI take the
        # sketch and draw it first (at most SKETCH_GRACE, then the poll goes ahead anyway).
        deadline = self._clock() + SKETCH_GRACE
        while self._waiting is not None and self._clock() < deadline:
            if self._wait(self._stopped, 0.01):
                return
        self._wait(self._stopped, 0.05)  # its frame: drawn on the UI's next refresh

    def _sockets(self) -> Snapshot | None:
        """The sketch's snapshot: what the source offers for one (ProcNetCollector.sketch:
        the listeners alone, or None if no sketch is worth it), else a poll without
        owners."""
        offered = getattr(self._source, "sketch", None)
        if callable(offered):
            sketched: Snapshot | None = offered()
            return sketched
        focused: FocusedCollector = self._source  # type: ignore[assignment]  # narrows
        return focused.collect(None, owners=False)

    def _next_tick(self, anchor: float, tick: int, now: float) -> int:
        """The first tick after `now` (at least the one after `tick`): ticks that passed
        meanwhile are skipped, not made up for."""
        passed = math.floor((now - anchor) / self._interval) + 1
        return max(tick + 1, passed)

    def _wait_hold(self) -> None:
        while (left := self._held_until - self._clock()) > 0:
            if self._wait(self._stopped, left):
                return

    def _poll_once(self, anchor: float, tick: int) -> int | None:
        """Poll, and return the tick the next poll belongs to (None if it failed)."""
        started = self._clock()
        try:
            snapshot = self._source.collect()
        except Yielded:
            return None
        except Exception as exc:  # any failure is shown inline; the loop must live on
            self._post(PollFailed(_describe(exc)))
            return None
        ready = self._prepare(snapshot, self._last)
        ended = self._clock()  # the rows made ready count toward the poll's time
        after = self._next_tick(anchor, tick, ended)
        ready = self._last = replace(ready, elapsed=ended - started, skipped=after - tick - 1)
        if not self._stopped.is_set():
            self._deliver(ready)
        return after

    def _deliver(self, ready: Prepared) -> None:
        """Into the mailbox; a message only if it was empty (one is on its way otherwise,
        and its take() will find this newer result)."""
        with self._lock:
            waiting = self._waiting
            if waiting is not None:  # never shown: say so, with the ticks it skipped
                ready = replace(
                    ready, skipped=ready.skipped + waiting.skipped,
                    replaced=ready.replaced + waiting.replaced + 1,
                )
            self._waiting = ready
        if waiting is None:
            try:
                self._post(SnapshotReady(ready.snapshot, ready.elapsed, ready.skipped, self.take))
            except BaseException:  # no message went: the next result must post its own
                self.take()
                raise

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
