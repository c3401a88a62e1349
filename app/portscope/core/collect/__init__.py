"""Sources of Snapshots: one per platform or method, all behind one Protocol."""

from __future__ import annotations

import sys
from typing import Protocol

from ..model import Snapshot


class Collector(Protocol):
    name: str

    def collect(self) -> Snapshot: ...


def default_collector() -> Collector:
    """The fastest collector this platform has; psutil everywhere else.

    Never raises, and reads nothing: a collector says what it could not read in each
    Snapshot's notes. On Linux the /proc one copes with netlink or /proc/net refused, and
    psutil reads the very same /proc files, so falling back to it would gain nothing.
    """
    if sys.platform.startswith("linux"):
        from .proc_collector import ProcNetCollector

        return ProcNetCollector()
    from .psutil_collector import PsutilCollector

    return PsutilCollector()
