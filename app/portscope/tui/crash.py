"""What a crash of the TUI leaves behind: one line on stderr and a log with the traceback.

The log goes in portscope's private directory (core/private_dir.py: $XDG_STATE_HOME only
when it is the effective user's, else ~/.local/state; 0700, no symlink followed on the
way), created 0600: a traceback can quote other users' command lines, and portscope often
runs as root. Every line is escaped, so `cat` on the log cannot steer the terminal either.
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

from ..core import private_dir
from ..core.untrusted import fit, shown

MESSAGE_CELLS = 160  # the exception's message on the one stderr line, cut with "…"


def write_log(
    error: BaseException, private: bool, now: datetime, env: Mapping[str, str] = os.environ
) -> Path:
    """The traceback of `error`, escaped line by line, in a new file only we can read: in
    the private directory, or with `private` False a fresh file in the temp directory
    (mkstemp: 0600, random name)."""
    from .. import __version__

    stamp = f"{now:%Y%m%d-%H%M%S}"
    if not private:
        fd, name = tempfile.mkstemp(prefix=f"portscope-crash-{stamp}-", suffix=".log")
        path = Path(name)
    else:
        directory = private_dir.open_dir(env)
        file = f"crash-{stamp}-{os.getpid()}.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(file, flags, 0o600, dir_fd=directory)
        finally:
            os.close(directory)
        path = Path(private_dir.base(env) or "", private_dir.NAME, file)
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
    for private in (True, False):
        try:
            path = write_log(error, private, when, env)
            break
        except OSError:
            continue
    where = f"traceback in {shown(str(path))}" if path else "no log could be written"
    print(f"portscope crashed ({describe(error)}); {where}", file=stream or sys.stderr)
    return path
