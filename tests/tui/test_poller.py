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
