"""The poll thread: never two polls at once, errors reported and survived, pause honoured;
polls on a fixed beat, an overrun skipping ticks; the newest result replacing one the UI has
not taken (no queue)."""

from __future__ import annotations

import threading
import time

from textual.message import Message

from portscope.core.collect import Yielded
from portscope.core.model import Snapshot
from portscope.tui.poller import Poller, PollFailed, SnapshotReady
from portscope.tui.rows import Prepared, prepare_rows
from support import wait_for
from tui.tui_fakes import T0, demo_snapshot, holder, snap, sock


class Inbox(list[Message]):
    """What the app does with the poller's messages: keeps them, and takes each result
    as its message arrives (the mailbox posts again only once emptied)."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[Prepared] = []

    def __call__(self, message: Message) -> None:
        self.append(message)
        if isinstance(message, SnapshotReady):
            ready = message.take()
            if ready is not None:
                self.taken.append(ready)


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
    posted = Inbox()
    poller = Poller(source, interval=0.001, post=posted)
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
    posted = Inbox()
    poller = Poller(_FailingOnce(), interval=0.001, post=posted)
    poller.start()
    wait_for(lambda: any(isinstance(m, SnapshotReady) for m in posted))
    poller.stop()
    assert isinstance(posted[0], PollFailed) and posted[0].error == "_Unprintable"


def test_an_error_outside_collect_is_shown_and_the_loop_keeps_polling() -> None:
    """The loop itself fails (here: delivering the first snapshot): the thread must not die
    silently, leaving a header that never changes again."""
    posted = Inbox()
    failures = [RuntimeError("\x1b[2J message queue closed")]

    def post(message: Message) -> None:
        if isinstance(message, SnapshotReady) and failures:
            raise failures.pop()
        posted(message)

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


class FakeBeat:
    """A clock of the test's own for the poller's beat: waiting moves it on at once (to the
    deadline, unless the event is set), and so does a collect that `costs` time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        self.advance(timeout)
        return event.is_set()


class CostlySource:
    """Each collect costs the fake clock `costs[i]` seconds (negative: that many, then it
    gives way, Yielded); records when each started and blocks once the script is done, so
    the beat stops where the test looks."""

    name = "costly"

    def __init__(self, beat: FakeBeat, costs: list[float]) -> None:
        self.beat = beat
        self.costs = costs
        self.starts: list[float] = []
        self.done = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Snapshot:
        if len(self.starts) == len(self.costs):
            self.done.set()
            self.release.wait(10)
            return demo_snapshot()
        self.starts.append(self.beat.clock())
        cost = self.costs[len(self.starts) - 1]
        self.beat.advance(abs(cost))
        if cost < 0:  # gave way to a question about one port after -cost seconds
            raise Yielded
        return demo_snapshot()


def run_beat(costs: list[float], interval: float = 1.0) -> tuple[CostlySource, Inbox]:
    beat = FakeBeat()
    source = CostlySource(beat, costs)
    posted = Inbox()
    poller = Poller(source, interval, posted, clock=beat.clock, wait=beat.wait)
    poller.start()
    assert source.done.wait(10)
    poller.stop(timeout=0)
    source.release.set()
    wait_for(lambda: not poller.alive)
    return source, posted


def test_polls_start_on_the_beat_and_an_overrun_skips_ticks_rather_than_queueing() -> None:
    """Ticks every second from the first poll. The second poll takes 2.5 s: the ticks at 2
    and 3 s pass while it runs and are skipped (the next poll starts on the tick at 4 s, not
    at once at 3.5 s to catch up, nor 1 s after the slow one ended at 4.5 s), and the header
    is told (skipped=2). Quick polls never drift: 0.3 s each still start on whole seconds."""
    source, posted = run_beat([0.3, 2.5, 0.3, 0.3])
    assert source.starts == [0.0, 1.0, 4.0, 5.0]
    ready = [m for m in posted if isinstance(m, SnapshotReady)]
    assert [m.skipped for m in ready] == [0, 2, 0, 0]
    assert [r.skipped for r in posted.taken] == [0, 2, 0, 0]


def test_an_overrun_just_past_its_tick_skips_that_tick() -> None:
    """1.05 s at a 1 s beat: the tick at 2 s is skipped (no back-to-back poll at 2.05 s)."""
    source, posted = run_beat([1.05, 0.1])
    assert source.starts == [0.0, 2.0]
    assert [m.skipped for m in posted if isinstance(m, SnapshotReady)] == [1, 0]


def test_a_poll_that_gave_way_is_no_failure_and_the_next_tick_polls_again() -> None:
    """A poll gives way to `b` (proc_collector.py): nothing is reported, the next poll starts
    on the next tick, and no skip is counted (the poll was not slow)."""
    source, posted = run_beat([0.3, -0.05, 0.3])
    assert source.starts == [0.0, 1.0, 2.0]
    assert not [m for m in posted if isinstance(m, PollFailed)]
    assert [m.skipped for m in posted if isinstance(m, SnapshotReady)] == [0, 0]


def test_a_result_not_taken_is_replaced_by_the_newest_not_queued() -> None:
    """The UI is busy (takes nothing): one message goes out, later results replace the one
    waiting, and the UI's take() then gets the newest poll, saying how many it replaced."""
    beat = FakeBeat()
    source = CostlySource(beat, [0.1] * 5)
    posted: list[Message] = []
    poller = Poller(source, 1.0, posted.append, prepare_rows, clock=beat.clock, wait=beat.wait)
    poller.start()
    assert source.done.wait(10)
    [message] = posted
    assert isinstance(message, SnapshotReady)
    ready = message.take()
    assert ready is not None and ready.replaced == 4
    assert message.take() is None  # taken: nothing waits
    poller.stop(timeout=0)
    source.release.set()
    wait_for(lambda: not poller.alive)


def test_unchanged_rows_are_the_same_objects_from_poll_to_poll() -> None:
    """The poller's thread does the deep comparisons: a row equal to the last poll's is that
    very object (and keeps its texts), so the UI thread tells changes by identity."""
    first = prepare_rows(snap([sock(9_000, holder(1, "a")), sock(9_001, holder(2, "b"))]))
    second = prepare_rows(
        snap([sock(9_000, holder(1, "a")), sock(9_001, holder(3, "c"))], at=T0), first
    )
    assert second.rows[0] is first.rows[0]
    assert second.texts[second.rows[0].key] is first.texts[first.rows[0].key]
    assert second.rows[1] is not first.rows[1] and second.texts[second.rows[1].key].process == "c"


async def test_the_header_says_when_polls_were_skipped() -> None:
    """A collect slower than the interval: the header says how many polls its overrun
    skipped (real time here, so at least 2 for 0.25 s at 0.1 s; more on a busy machine)."""
    from datetime import timezone

    from portscope.tui.app import PortscopeApp
    from portscope.tui.status_bar import Status, render_status
    from portscope.tui.stops import from_holders
    from tui.tui_fakes import fake_relatives, static_text, until

    class Slow:
        name = "slow"

        def collect(self) -> Snapshot:
            time.sleep(0.25)  # the collect's own cost, not the test waiting
            return demo_snapshot()

    app = PortscopeApp(
        Slow(), interval=0.1, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )
    async with app.run_test(size=(120, 36)) as pilot:
        bar = app.main.query_one("#status")
        await until(pilot, lambda: "skipped" in static_text(bar), timeout=10)
        text = static_text(bar)
    said = text.split("(slow: ", 1)[1]
    assert said.startswith("skipped ") and int(said.split()[1]) >= 2
    quiet = render_status(Status(snapshot=demo_snapshot()), timezone.utc)
    assert "skipped" not in quiet.plain
    one = render_status(Status(snapshot=demo_snapshot(), skipped=1), timezone.utc)
    assert "polled 02:50:01 (slow: skipped 1 poll)" in one.plain
