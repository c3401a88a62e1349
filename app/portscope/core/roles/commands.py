"""Commands portscope prints for a person to run: built only from checked names, quoted.

A name that comes from a process (a supervisor program, a runsv directory, a pm2 app) or
from a daemon's answer is pasted into a command a person may copy as root. So every part
goes through `shlex.quote`, and a name must also pass its manager's own rules: a name with
shell syntax, a newline or a control character is refused, and the caller prints no
command at all rather than a wrong or dangerous one.
"""

from __future__ import annotations

import re
import shlex

# What the managers themselves accept (supervisor program names, pm2 app names, Docker
# container names, systemd unit names, compose projects and services), kept to the
# characters that need no quoting in any shell; paths may also hold "/" and "~".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,199}")
_PATH = re.compile(r"/[A-Za-z0-9_.:@+=/~-]{0,4095}")


def safe_name(value: str | None) -> str | None:
    """`value` if it is a plain name a manager accepts, else None."""
    if value and _NAME.fullmatch(value):
        return value
    return None


def safe_path(value: str | None) -> str | None:
    """`value` if it is an absolute path made of plain characters, else None."""
    if value and _PATH.fullmatch(value) and "/../" not in value + "/":
        return value
    return None


def command(*parts: str | None) -> str | None:
    """The command line of `parts`, each quoted; None if any part is missing (a name that
    failed its check), so no half-built command is ever printed."""
    if any(p is None or p == "" for p in parts):
        return None
    return " ".join(shlex.quote(p) for p in parts if p is not None)


def with_env(name: str, value: str | None, cmd: str | None) -> str | None:
    """`NAME=value cmd`, the value quoted; None if either is missing."""
    if value is None or cmd is None:
        return None
    return f"{name}={shlex.quote(value)} {cmd}"
