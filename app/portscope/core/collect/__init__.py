"""Sources of Snapshots: one per platform or method, all behind one Protocol."""

from __future__ import annotations

import sys

from ..hints import Protocol
from ..model import Snapshot

# The note of a snapshot taken with owners=False (both collectors say it alike).
NOT_LOOKED_UP = "processes were not looked up: the question did not need them"
# The note of a snapshot of the listening sockets alone (ProcNetCollector.sketch).
LISTENERS_ONLY = "only listening sockets were read: no TIME_WAIT or connection counted"
# The note of a question about one port asked with time_wait=False, when they were left out.
TIME_WAIT_LEFT_OUT = "TIME_WAIT on the port was not counted: the question did not need it"


class Yielded(Exception):
    """A whole poll gave way to a question about one port waiting for the collector (`b`
    and `k` in the monitor): the question answers sooner, and the next tick polls again."""


class Collector(Protocol):
    name: str

    def collect(self) -> Snapshot: ...


class FocusedCollector(Collector, Protocol):
    """A collector that can answer a narrower question for less (both real ones can, and
    say so with `narrows = True`)."""

    narrows: bool

    def collect(
        self, port: int | None = None, *, owners: bool | None = True, time_wait: bool = True
    ) -> Snapshot: ...


def snapshot_for(
    collector: Collector, port: int | None = None, *, owners: bool | None = True,
    time_wait: bool = True,
) -> Snapshot:
    """What a question about `port` needs, from a collector that can narrow its poll; a
    whole snapshot from one that cannot (a test's fake), which answers the same question.

    `owners`: True, look processes up; False, none; None, only if `port` has a socket a
    process can hold (a listener or a live connection; TIME_WAIT belongs to nobody), so a
    free port costs no /proc walk. `time_wait=False`: the port's TIME_WAIT may be left out
    (a note says so; the monitor's `b` counts them only when they can be the cause).
    """
    # Asked of the class: a wrapper that forwards attributes (tui's WithContainers) but
    # not collect's arguments must get the plain call.
    if getattr(type(collector), "narrows", False):
        focused: FocusedCollector = collector  # type: ignore[assignment]
        return focused.collect(port, owners=owners, time_wait=time_wait)
    return collector.collect()


def default_collector(polling: bool = False) -> Collector:
    """The fastest collector this platform has; psutil everywhere else. `polling`: the
    caller polls it for as long as it runs (the monitor, watch, export, wait), which
    keeps files open between polls where that makes a poll cheaper (kept_files.py).

    Never raises, and reads nothing: a collector says what it could not read in each
    Snapshot's notes. On Linux the /proc one copes with netlink or /proc/net refused, and
    psutil reads the very same /proc files, so falling back to it would gain nothing. It
    keeps what it learns about owners in the user's owner store (owner_store.py), so the
    next command, or the monitor, starts warm. The portable path (platform_path.py) is
    the psutil one on Linux too.
    """
    from .. import platform_path

    if sys.platform.startswith("linux") and not platform_path.portable():
        from .owner_store import OwnerStore
        from .proc_collector import ProcNetCollector

        return ProcNetCollector(store=OwnerStore(), keep_files=polling)
    from .psutil_collector import PsutilCollector

    return PsutilCollector()
