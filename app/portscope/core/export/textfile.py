"""The metrics as a file for node_exporter's textfile collector, replaced atomically.

Written to a temporary file in the same directory (a rename is atomic only within one file
system) whose name starts with a dot and ends in .tmp, so the collector, which reads
*.prom, never sees half a file; then renamed over PATH.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (mode 0644: node_exporter often runs as another user);
    raises OSError, leaving no temporary file behind."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            os.fchmod(out.fileno(), 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def textfile_problem(path: Path) -> str:
    """Why `path` cannot be the textfile ("" if it can): its directory must exist, and
    node_exporter reads only names ending in .prom."""
    if path.is_dir():
        return f"--textfile {path} is a directory: name the file (e.g. {path}/portscope.prom)"
    if not path.parent.is_dir():
        return f"--textfile: the directory {path.parent} does not exist"
    if path.suffix != ".prom":
        return f"--textfile {path}: node_exporter's textfile collector reads only *.prom files"
    return ""
