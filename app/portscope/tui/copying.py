"""`c` and `C`: what goes to the clipboard for a row, and the notification that says so.

The command line is copied shell-quoted (shlex.join), so pasting it runs that argv and
nothing else. A process chooses its own argv: one holding control characters is copied
escaped, as the screen shows it (`\\x1b`), never raw into a terminal or a shell. The
notification quotes what was copied escaped and cut to a line or two.
"""

from __future__ import annotations

import shlex

from ..core.record import record
from ..core.untrusted import fit, shown
from .rows import TableRow

QUOTED = 160  # cells of the copied text the notification quotes


@record
class Copy:
    """`text` for the clipboard and `message` for the notification; or, with no text, a
    `message` saying why there is nothing to copy."""

    text: str
    message: str


def pids_copy(row: TableRow | None) -> Copy:
    if row is None:
        return Copy("", "Select a row first.")
    if not row.holders:
        return Copy("", "Nothing to copy: no process on this row is visible to this user.")
    text = " ".join(str(h.pid) for h in row.holders)
    noun = "PID" if len(row.holders) == 1 else "PIDs"
    return Copy(text, f"Copied {noun} {fit(text, QUOTED)}")


def command_copy(row: TableRow | None) -> Copy:
    if row is None:
        return Copy("", "Select a row first.")
    if not row.holders:
        return Copy("", "Nothing to copy: no process on this row is visible to this user.")
    holder = row.holders[0]
    if not holder.cmdline:
        return Copy("", f"PID {holder.pid} has no command line (a kernel thread or a zombie).")
    text = shlex.join(holder.cmdline)
    escaped = shown(text)
    note = ""
    if escaped != text:  # control characters: never into a terminal or a shell as they are
        text, note = escaped, " (control characters escaped)"
    others = len({h.cmdline for h in row.holders}) - 1
    if others:
        note += f" (the first of {len(row.holders):,} processes)"
    return Copy(text, f"Copied the command line of PID {holder.pid}{note}: {fit(escaped, QUOTED)}")
