"""What a crash of the TUI leaves behind: one line on stderr and a log with the traceback.

The log goes under $XDG_STATE_HOME/portscope/ (~/.local/state/portscope/ without it),
created 0600: a traceback can quote other users' command lines, and portscope often runs
as root. Every line is escaped, so `cat` on the log cannot steer the terminal either.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..core.untrusted import fit, shown

MESSAGE_CELLS = 160  # the exception's message on the one stderr line, cut with "…"


def log_dir(env: Mapping[str, str] = os.environ) -> Path:
    state = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "portscope"


def write_log(error: BaseException, directory: Path | None, now: datetime) -> Path:
    """The traceback of `error`, escaped line by line, in a new file only we can read;
    `directory` None: a fresh file in the temp directory (mkstemp: 0600, random name)."""
    from .. import __version__

    stamp = f"{now:%Y%m%d-%H%M%S}"
    if directory is None:
        fd, name = tempfile.mkstemp(prefix=f"portscope-crash-{stamp}-", suffix=".log")
        path = Path(name)
    else:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"crash-{stamp}-{os.getpid()}.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"portscope {__version__} crashed at {now.isoformat(timespec='seconds')}\n")
        out.write(f"python {sys.version.split()[0]} on {sys.platform}\n\n")
        for line in "".join(traceback.format_exception(error)).splitlines():
            out.write(shown(line) + "\n")
    return path


def describe(error: BaseException) -> str:
    """"RuntimeError: boom", escaped and cut to one line."""
    name = type(error).__name__
    try:
        text = str(error)
    except Exception:
        text = ""
    return fit(shown(f"{name}: {text}" if text else name), MESSAGE_CELLS)


def report(
    error: BaseException,
    stream: TextIO | None = None,
    env: Mapping[str, str] = os.environ,
    now: datetime | None = None,
) -> Path | None:
    """Write the log (in the state directory, else the temp directory) and print one line."""
    when = now or datetime.now().astimezone()
    path: Path | None = None
    for in_state_dir in (True, False):
        try:  # Path.home() raises RuntimeError when there is no home to find
            path = write_log(error, log_dir(env) if in_state_dir else None, when)
            break
        except (OSError, RuntimeError):
            continue
    where = f"traceback in {shown(str(path))}" if path else "no log could be written"
    print(f"portscope crashed ({describe(error)}); {where}", file=stream or sys.stderr)
    return path
