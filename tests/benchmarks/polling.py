"""Collectors made as the long-running commands make theirs (the monitor, watch, export,
wait): polling, so each holder's /proc/PID/schedstat stays open between polls
(kept_files.py). A tree from before that option (36d26a4) is measured with what its monitor
made then: a plain collector."""

from __future__ import annotations

from typing import Any


def monitor_collector() -> Any:
    """default_collector() as the monitor asks for it."""
    from portscope.core.collect import default_collector

    try:
        return default_collector(polling=True)
    except TypeError:  # a tree before 36d26a4
        return default_collector()


def proc_collector() -> Any:
    """A ProcNetCollector polled for as long as it runs (no owner store)."""
    from portscope.core.collect.proc_collector import ProcNetCollector

    try:
        return ProcNetCollector(keep_files=True)
    except TypeError:  # a tree before 36d26a4
        return ProcNetCollector()
