"""Times as the TUI shows them, in one time zone the app is given (tests freeze it)."""

from __future__ import annotations

from datetime import datetime, tzinfo


def clock_time(moment: datetime, tz: tzinfo | None) -> str:
    """HH:MM:SS in `tz` (None: the machine's local zone)."""
    return moment.astimezone(tz).strftime("%H:%M:%S")


def start_time(started: float, now: datetime, tz: tzinfo | None) -> str:
    """"2026-11-22 01:02:03 (1 h 48 min ago)", where "ago" is relative to `now` (the poll
    time, not the wall clock, so a frozen snapshot renders the same every time)."""
    moment = datetime.fromtimestamp(started, tz=now.tzinfo).astimezone(tz)
    return f"{moment:%Y-%m-%d %H:%M:%S} ({duration(now.timestamp() - started)} ago)"


def duration(seconds: float) -> str:
    """Whole minutes at least: the time before it has the seconds, and an age that changed
    every second re-wrapped the whole details pane every poll (30-50 ms of the UI thread
    for a just-restarted server's 32 workers) while a person was pressing keys."""
    s = max(0, int(seconds))
    if s < 60:
        return "under 1 min"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400:,} d {s % 86400 // 3600} h"
