"""Which path portscope reads the machine by: the one place that decides.

On Linux portscope takes its fast path: socket tables over netlink, processes read from
/proc itself, pidfd handles. macOS and Windows take the portable path: psutil for sockets
and processes, psutil's PID-reuse guard (PID + start time) for signals, and no socket
creator uid, no IPV6_V6ONLY, no TIME_WAIT timers (shown as unknown, never guessed).

`PORTSCOPE_PORTABLE=1` (or `--portable`) makes Linux take the portable path, so that path
is tested end to end where the suite runs; `PORTSCOPE_PORTABLE=macos-nonroot` also refuses
the system-wide socket list, as macOS does without root, so the per-process fallback runs.

Read on every call (a dictionary lookup): tests switch it per test, and the CLI's
`--portable` sets it before anything is collected.
"""

from __future__ import annotations

import os

ENV = "PORTSCOPE_PORTABLE"
PORTABLE = "portable"
MACOS_NONROOT = "macos-nonroot"
_ON = frozenset({"1", "true", "yes", "on", PORTABLE})
_OFF = frozenset({"", "0", "false", "no", "off"})
# Linux's /proc, which the fast path reads itself.
PROC_READABLE = os.path.exists("/proc/self/stat")

_chosen: str | None = None  # set by --portable: wins over the environment


def parse(value: str) -> str | None:
    """The mode a PORTSCOPE_PORTABLE value names: None (the platform's own path),
    PORTABLE or MACOS_NONROOT. ValueError, with a sentence to print, for anything else."""
    word = value.strip().lower()
    if word in _OFF:
        return None
    if word in _ON:
        return PORTABLE
    if word == MACOS_NONROOT:
        return MACOS_NONROOT
    raise ValueError(
        f"{ENV} must be 1 (the portable path) or {MACOS_NONROOT} (also as macOS without "
        f"root), or 0; got {value.strip()[:40]!r}"
    )


def choose(mode: str | None) -> None:
    """Take this mode for the rest of the process (`--portable`); None: the environment's."""
    global _chosen
    _chosen = mode


def mode() -> str | None:
    """None on the platform's own path, else PORTABLE or MACOS_NONROOT. A value parse()
    refuses counts as PORTABLE here (the CLI refuses it before anything runs)."""
    if _chosen is not None:
        return _chosen
    value = os.environ.get(ENV)
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError:
        return PORTABLE


def portable() -> bool:
    """Is the portable path forced (on a platform that has a faster one)?"""
    return mode() is not None


def system_table_denied() -> bool:
    """Act as macOS without root: psutil.net_connections() raises AccessDenied."""
    return mode() == MACOS_NONROOT


def linux_proc() -> bool:
    """May portscope read /proc itself (Linux's fast path)? False elsewhere, and on the
    portable path, where every process fact comes through psutil."""
    return PROC_READABLE and mode() is None


def source_name(collector: str) -> str:
    """A collector's name as Snapshot.source, the header and `list --json` say it:
    "psutil (portable)" when Linux was made to take the portable path."""
    found = mode()
    if found is None or not PROC_READABLE:
        return collector
    if found == MACOS_NONROOT:
        return f"{collector} (portable, as macOS without root)"
    return f"{collector} ({PORTABLE})"
