"""Full garbage collections when no key waits on them, and none at all before the first poll.

The monitor's start (launch.py, before Textual is imported) turns the collector off
(off_until_started): Textual's import and the first frames make ~60,000 objects that it
tracks and that all stay, and CPython's collections walked them again and again: ~50 ms of
the ~0.55 s of CPU the monitor spends before the frame that names the processes at 2,000 of
them. start() turns it back on, or tick() does if no first poll came within LONGEST.

CPython starts a full (generation 2) collection by itself whenever enough objects have
survived the young ones. Under load (300 holders' roles, Textual's strips and styles) the
monitor's heap made each take 40-160 ms on a 2-core machine, every few seconds, and one
landing on `b` or `k` doubled the time to the answer (tests/benchmarks/probe_keys.py).

So, once the first poll is on screen:
- everything alive then (modules, classes, the stylesheet, the main screen's widgets) is
  frozen: a full collection never walks it again; and once more after the second poll,
  whose collector state is the first of its own when a forked child took the first;
- CPython's own full collections are off; young collections run as before, and they free
  most garbage;
- the app ticks every second and runs a full collection itself when PERIOD has passed and
  no key came in the last QUIET seconds, and never while a dialog's answer is on its way;
  after LONGEST without one it runs even if keys keep coming, so the heap stays bounded.

stop() puts CPython's settings back (tests run many apps in one process).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

PERIOD = 5.0  # seconds between full collections, at least
QUIET = 1.0  # seconds since the last key before one may run
LONGEST = 60.0  # seconds after which one runs even while keys keep coming
NEVER = 1_000_000_000  # a generation-2 threshold no process reaches

_off = False  # turned off by off_until_started(), not yet back on


def off_until_started() -> None:
    """No collections at all until a FullCollections starts (or gives up waiting)."""
    global _off
    gc.disable()
    _off = True


def _back_on() -> None:
    global _off
    if _off:
        gc.enable()
        _off = False


class FullCollections:
    """Paces the full collections of one running app; see the module's docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._saved: tuple[int, int, int] | None = None
        self._made = clock()
        self._last_full = 0.0
        self.last_key = float("-inf")  # time.monotonic() of the last key the app heard
        self.runs = 0  # full collections run by tick(); for tests and the benchmark

    @property
    def started(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        """Freeze what is alive now and take full collections over from CPython."""
        if self._saved is not None:
            return
        gc.collect()  # what is garbage now is not frozen with the rest
        gc.freeze()
        young, middle, _ = self._saved = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER)
        _back_on()
        self._last_full = self._clock()

    def freeze_more(self) -> None:
        """Freeze what is alive now too (once started): state built after the first poll
        that stays for the app's life."""
        if self._saved is None:
            return
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        """CPython's own settings back; the frozen objects are ordinary ones again."""
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        gc.unfreeze()
        self._saved = None

    def key_pressed(self) -> None:
        self.last_key = self._clock()

    def tick(self, busy: bool = False) -> bool:
        """Run a full collection if it is time and no key is waiting (`busy`: a dialog's
        answer is on its way). True if one ran."""
        now = self._clock()
        if self._saved is None and now - self._made >= LONGEST:
            _back_on()  # no first poll yet: CPython's own collections meanwhile
        if self._saved is None or busy:
            return False
        since_full = now - self._last_full
        if since_full < PERIOD:
            return False
        if now - self.last_key < QUIET and since_full < LONGEST:
            return False
        gc.collect()
        self._last_full = self._clock()
        self.runs += 1
        return True
