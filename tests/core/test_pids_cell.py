"""The PID column as the README describes it: up to three PIDs, else the first two and +N."""

from __future__ import annotations

from portscope.core.model import Holder
from portscope.core.text import pids_cell


def holders(n: int) -> tuple[Holder, ...]:
    return tuple(Holder(100 + i, "srv", "me", ("srv",), 1.0) for i in range(n))


def test_three_are_listed_and_more_are_counted() -> None:
    assert pids_cell(()) == "-"
    assert pids_cell(holders(3)) == "100,101,102"
    assert pids_cell(holders(4)) == "100,101,+2"
    assert pids_cell(holders(300)) == "100,101,+298"
