"""The poll thread: never two polls at once, errors reported and survived, pause honoured."""

from __future__ import annotations

import threading
import time

from textual.message import Message

from portscope.core.model import Snapshot
from portscope.tui.poller import Poller, PollFailed, SnapshotReady
from support import wait_for
from tui.tui_fakes import demo_snapshot


class SlowSource:
    """Takes longer than the interval; records how many polls ever ran at once."""

    name = "slow"

    def __init__(self, seconds: float, fail_every: int = 0) -> None:
        self.seconds = seconds
        self.fail_every = fail_every
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def collect(self) -> Snapshot:
        with self._lock:
            self.calls += 1
            call = self.calls
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        if self.fail_every and call % self.fail_every == 0:
            raise PermissionError(13, "Permission denied", "/proc/net/tcp")
        return demo_snapshot()


def test_polls_never_overlap_and_errors_do_not_stop_the_loop() -> None:
    source = SlowSource(0.03, fail_every=2)
    posted: list[Message] = []
    poller = Poller(source, interval=0.001, post=posted.append)
    poller.start()
    for _ in range(10):
        poller.poll_now()  # impatient asks must not start a second poll
        time.sleep(0.005)
    wait_for(lambda: source.calls >= 6)
    poller.stop()
    assert source.most_at_once == 1
    failures = [m for m in posted if isinstance(m, PollFailed)]
    assert failures and "permission denied" in failures[0].error
    assert any(isinstance(m, SnapshotReady) for m in posted[posted.index(failures[0]) :])


def test_paused_poller_does_not_poll_until_resumed() -> None:
    source = SlowSource(0.0)
    posted: list[Message] = []
    poller = Poller(source, interval=0.01, post=posted.append)
    poller.start()
    wait_for(lambda: source.calls >= 1)
    poller.set_paused(True)
    time.sleep(0.05)  # let a poll in flight finish
    calls = source.calls
    time.sleep(0.1)  # ten intervals
    assert source.calls == calls
    poller.set_paused(False)
    wait_for(lambda: source.calls > calls)
    poller.stop()


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("__str__ is broken too")


class _FailingOnce:
    """A source whose first collect raises an exception that cannot even be printed."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Snapshot:
        self.calls += 1
        if self.calls == 1:
            raise _Unprintable()
        return demo_snapshot()


def test_an_error_that_cannot_be_printed_is_still_reported() -> None:
    posted: list[Message] = []
    poller = Poller(_FailingOnce(), interval=0.001, post=posted.append)
    poller.start()
    wait_for(lambda: any(isinstance(m, SnapshotReady) for m in posted))
    poller.stop()
    assert isinstance(posted[0], PollFailed) and posted[0].error == "_Unprintable"


def test_an_error_outside_collect_is_shown_and_the_loop_keeps_polling() -> None:
    """The loop itself fails (here: delivering the first snapshot): the thread must not die
    silently, leaving a header that never changes again."""
    posted: list[Message] = []
    failures = [RuntimeError("\x1b[2J message queue closed")]

    def post(message: Message) -> None:
        if isinstance(message, SnapshotReady) and failures:
            raise failures.pop()
        posted.append(message)

    poller = Poller(SlowSource(0.0), interval=0.001, post=post)
    poller.start()
    wait_for(lambda: any(isinstance(m, SnapshotReady) for m in posted))
    assert poller.alive
    errors = [m.error for m in posted if isinstance(m, PollFailed)]
    assert errors == ["poller error: RuntimeError: \x1b[2J message queue closed"]  # raw: the
    poller.stop()  # header escapes it (test_hostile_tui shows it escaped on screen)
    assert not poller.alive  # stop() joins the thread


class _Blocking:
    """collect() blocks until released: a poll stuck on a slow /proc read."""

    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Snapshot:
        self.entered.set()
        self.release.wait(10)
        return demo_snapshot()


def test_stop_waits_for_a_poll_in_flight_only_up_to_its_timeout() -> None:
    source = _Blocking()
    poller = Poller(source, interval=3600, post=lambda m: None)
    poller.start()
    assert source.entered.wait(5)
    poller.stop(timeout=0.05)  # returns although the poll is still blocked ...
    assert poller.alive and not source.release.is_set()
    source.release.set()
    wait_for(lambda: not poller.alive)  # ... and the thread ends once the poll returns


def test_a_hold_delays_the_next_poll_and_stop_ends_it() -> None:
    """`b` and `k` hold polls while their answer is worked out: none starts meanwhile, the
    next starts once the hold is over, and stop() does not wait the hold out."""
    source = SlowSource(0.0)
    starts: list[float] = []
    real_collect = source.collect

    def collect() -> Snapshot:
        starts.append(time.monotonic())
        return real_collect()

    source.collect = collect  # type: ignore[method-assign]
    poller = Poller(source, interval=0.02, post=lambda m: None)
    poller.start()
    wait_for(lambda: source.calls >= 1)
    held_at = time.monotonic()
    poller.hold(0.3)
    wait_for(lambda: any(t > held_at + 0.3 for t in starts), timeout=5)
    # A poll already under way when the hold began may finish; none starts inside it.
    assert not [t for t in starts if held_at + 0.001 < t < held_at + 0.3]
    poller.hold(30)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 1 and not poller.alive
