"""What the exporter remembers between polls: listener events, restarts per port, how long
polls take and how many failed. Fed from the polling thread only (nothing here is locked).

Counters only ever grow, and their label sets are bounded: restarts are kept for at most
`max_ports` (proto, port) pairs; a restart of any other port counts in port="other".
A listening port's counter exists at 0 before its first restart, so Prometheus's increase()
sees that restart too (a series born at 1 would hide it), and it outlives the listener by
QUIET_KEEP seconds, so the gap of a restart does not reset it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..history.events import ListenerWatch
from ..model import Holder, Snapshot

EVENTS = ("listen", "unlisten", "restart")  # portscope_listener_events_total{event}
# Upper bounds (seconds) of portscope_collect_duration_seconds: a quiet host polls in a few
# milliseconds, 100,000 TIME_WAIT in ~80 ms, a host with thousands of processes in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUIET_KEEP = 600.0  # seconds a port's restart counter stays at 0 after it stopped listening

RestartKey = tuple[str, int]  # (proto, port)


def _no_restarter(_: Holder) -> None:
    """Who restarted a server is not exported: no process is read for it."""


class Tally:
    def __init__(self, max_ports: int) -> None:
        self.max_ports = max_ports
        self.events = dict.fromkeys(EVENTS, 0)
        self.restarts: dict[RestartKey, int] = {}
        self.other_restarts = 0  # restarts of ports beyond max_ports
        self.errors = 0
        self.buckets = [0] * len(BUCKETS)  # per bucket, not cumulative
        self.polls = 0
        self.seconds = 0.0
        self._last_listening: dict[RestartKey, datetime] = {}
        # The first poll's listeners are the present, not news: no events for them.
        self._watch = ListenerWatch(find_restarter=_no_restarter, start_events=False)

    def polled(self, snap: Snapshot, seconds: float, listening: Iterable[RestartKey]) -> None:
        """One poll that took `seconds`; `listening`: the (proto, port) of the listeners
        exported, whose restart counters start at 0."""
        self._observe(seconds)
        for event in self._watch.update(snap):
            if event.kind in self.events:
                self.events[event.kind] += 1
            if event.kind == "restart":
                self._restarted((event.proto, event.port))
        now = snap.taken_at
        for key in listening:
            if key in self.restarts or len(self.restarts) < self.max_ports:
                self.restarts.setdefault(key, 0)
                self._last_listening[key] = now
        for key, count in list(self.restarts.items()):
            seen = self._last_listening.get(key)
            if count == 0 and (seen is None or (now - seen).total_seconds() > QUIET_KEEP):
                del self.restarts[key]
                self._last_listening.pop(key, None)

    def failed(self) -> None:
        self.errors += 1

    def _restarted(self, key: RestartKey) -> None:
        if key in self.restarts:
            self.restarts[key] += 1
        elif len(self.restarts) < self.max_ports:
            self.restarts[key] = 1
        else:
            self.other_restarts += 1

    def _observe(self, seconds: float) -> None:
        self.polls += 1
        self.seconds += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
                return

    def cumulative(self) -> list[tuple[str, int]]:
        """The histogram's buckets as Prometheus has them: (le, polls at most that long)."""
        out: list[tuple[str, int]] = []
        total = 0
        for bound, n in zip(BUCKETS, self.buckets, strict=True):
            total += n
            out.append((repr(bound), total))
        out.append(("+Inf", self.polls))
        return out
