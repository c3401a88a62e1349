"""Everything the monitor remembers between polls, fed by one call per snapshot."""

from __future__ import annotations

from ..model import Snapshot
from .events import FindRestarter, ListenerEvent, ListenerWatch
from .log import CAPACITY, EventLog
from .trends import WINDOW, TrendBook


class History:
    """The event log and the per-port trends of one monitor: `update` with every Snapshot,
    in order, from the thread that reads them (none of it is thread-safe)."""

    def __init__(
        self,
        *,
        interval: float = 1.0,
        window: float = WINDOW,
        log_capacity: int = CAPACITY,
        find_restarter: FindRestarter | None = None,
    ) -> None:
        self.events = EventLog(log_capacity)
        self.trends = TrendBook(interval=interval, window=window)
        # The listeners of the first poll are the present, not news: no events for them.
        self._watch = ListenerWatch(find_restarter=find_restarter, start_events=False)

    def update(self, snap: Snapshot) -> tuple[ListenerEvent, ...]:
        """Record one poll; the events it brought (already in `events`)."""
        self.trends.update(snap)
        new = tuple(self._watch.update(snap))
        self.events.add(new)
        return new
