"""The bounded event log: oldest dropped, filtered by port, read incrementally."""

from __future__ import annotations

import pytest

from history.built import at, holder
from portscope.core.history.events import ListenerEvent
from portscope.core.history.log import EventLog


def event(i: int, port: int) -> ListenerEvent:
    return ListenerEvent(at(i), "listen", "tcp", "ipv4", "127.0.0.1", port, (holder(i),))


def test_keeps_the_newest_and_counts_the_dropped() -> None:
    log = EventLog(capacity=3)
    assert log.add(event(i, 8080) for i in range(5)) == 5
    assert [e.pids for e in log] == [(2,), (3,), (4,)]
    assert (len(log), log.added, log.dropped) == (3, 5, 2)
    with pytest.raises(ValueError):
        EventLog(capacity=0)


def test_select_by_port_predicate_and_limit() -> None:
    log = EventLog()
    log.add([event(1, 8080), event(2, 9000), event(3, 8080), event(4, 8080)])
    assert [e.pids[0] for e in log.select(port=8080)] == [1, 3, 4]
    assert [e.pids[0] for e in log.select(port=8080, limit=2)] == [3, 4]
    assert [e.pids[0] for e in log.select(where=lambda e: e.pids[0] % 2 == 0)] == [2, 4]
    assert log.select(port=1) == ()


def test_since_returns_only_what_is_new() -> None:
    log = EventLog(capacity=4)
    log.add([event(1, 1), event(2, 2)])
    mark = log.added
    assert log.since(mark) == ()
    log.add([event(3, 3)])
    assert [e.port for e in log.since(mark)] == [3]
    log.add(event(i, i) for i in range(10, 20))  # more than the log holds
    assert [e.port for e in log.since(mark)] == [16, 17, 18, 19]
