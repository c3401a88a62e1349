"""The monitor's event log: the newest events, bounded (the oldest are dropped)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .events import ListenerEvent

CAPACITY = 1000  # events kept: hours of ordinary churn, a few kB each at most


class EventLog:
    """Append-only, oldest first, at most `capacity` events.

    `added` counts every event ever added, so a reader that remembers the value it last saw
    can ask only for what is new (`since`) and redraw nothing else.
    """

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("an event log holds at least one event")
        self._events: deque[ListenerEvent] = deque(maxlen=capacity)
        self.capacity = capacity
        self.added = 0

    def add(self, events: Iterable[ListenerEvent]) -> int:
        """Append `events` in order; returns how many."""
        before = self.added
        for event in events:
            self._events.append(event)
            self.added += 1
        return self.added - before

    @property
    def dropped(self) -> int:
        """Events that were pushed out by newer ones."""
        return self.added - len(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[ListenerEvent]:
        return iter(tuple(self._events))

    def select(
        self,
        port: int | None = None,
        where: Callable[[ListenerEvent], bool] | None = None,
        limit: int | None = None,
    ) -> tuple[ListenerEvent, ...]:
        """Events on `port` (all ports: None) for which `where` holds, oldest first; with
        `limit`, only the newest `limit` of them."""
        found = [
            e for e in self._events
            if (port is None or e.port == port) and (where is None or where(e))
        ]
        return tuple(found if limit is None else found[max(0, len(found) - limit) :])

    def since(self, mark: int) -> tuple[ListenerEvent, ...]:
        """Events added after `added` was `mark`, oldest first (those already dropped are
        gone: at most `capacity`)."""
        new = min(len(self._events), max(0, self.added - mark))
        if not new:
            return ()
        return tuple(self._events)[-new:]
