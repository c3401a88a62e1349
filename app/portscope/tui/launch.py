"""`portscope` with no command, up to the import of Textual: the monitor's collector is made
first, and its first whole poll started in a forked child (ProcNetCollector.poll_ahead), so
that poll runs on the other core while this process imports Textual (~0.3 s) and draws.
Nothing here imports Textual."""

from __future__ import annotations

from ..core.collect import default_collector
from .gc_pacing import off_until_started


def run_monitor(interval: float = 1.0) -> int:
    off_until_started()  # the forked child's poll too: it ends with its process
    collector = default_collector(polling=True)
    poll_ahead = getattr(collector, "poll_ahead", None)
    if callable(poll_ahead):
        poll_ahead()
    from .app import run_tui

    return run_tui(interval=interval, collector=collector)
