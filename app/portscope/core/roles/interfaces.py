"""Asking a process manager about itself, through its own command-line interface.

`pm2 jlist` and `supervisorctl status` confirm what a manager's argv and environment only
claim: that it runs the program holding the port, and under which name. Each question runs
as the manager's own user (root drops to it: user, group, no supplementary groups), so a
user's manager is only ever asked with that user's rights; a tool run as root must be a
root-owned file in root-owned directories. Every question has a deadline and a size limit:
a hung or chatty manager makes the answer "unknown", never a hang.
"""

from __future__ import annotations

import contextlib
import os
import stat

from .evidence import trusted_dir

TIMEOUT = 3.0  # seconds for one question
LIMIT = 4 * 1024 * 1024  # bytes of answer; more is "unknown" (pm2 jlist: ~6 KB per app)
# The PATH a question runs with as root: directories only root can write to.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def trusted_file(path: str) -> bool:
    """A regular file owned by root that only root can change, in root-only directories
    (the file a symlink names, too)."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == 0
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and trusted_dir(os.path.dirname(real))
    )


def find_tool(name: str, near: str | None, path: str | None, uid: int) -> str | None:
    """The tool `name` to run as `uid`: next to the manager's own script first (`near`: a
    venv's bin, where supervisorctl sits beside supervisord), then on `path`. As root only
    a trusted file (and its script interpreter) qualifies: root never runs a user's file."""
    import shutil

    candidates = []
    if near and os.path.isabs(near):
        candidates.append(os.path.join(os.path.dirname(near), name))
    found = shutil.which(name, path=path or SAFE_PATH)
    if found:
        candidates.append(found)
    for candidate in candidates:
        if not os.path.isfile(candidate) or not os.access(candidate, os.X_OK):
            continue
        if uid != 0 or (trusted_file(candidate) and _trusted_interpreter(candidate)):
            return candidate
    return None


def _trusted_interpreter(script: str) -> bool:
    """A script's `#!` interpreter is trusted too (`/usr/bin/env node` searches SAFE_PATH)."""
    try:
        with open(os.path.realpath(script), "rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return True  # a binary
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return False
    interpreter = os.fsdecode(words[0])
    if os.path.basename(interpreter) == "env" and len(words) > 1:
        import shutil

        found = shutil.which(os.fsdecode(words[-1]), path=SAFE_PATH)
        return bool(found) and trusted_file(interpreter) and trusted_file(str(found))
    return trusted_file(interpreter)


def ask(argv: list[str], uid: int, gid: int, env: dict[str, str]) -> str | None:
    """`argv`'s standard output, run as `uid`:`gid` with `env` (plus HOME and a PATH),
    or None: not allowed (another user's manager and we are not root), failed to start,
    too slow or too long."""
    import pwd
    import selectors
    import subprocess
    import time

    me = os.geteuid()
    if me != 0 and uid != me:
        return None  # only root may ask as another user
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        home = "/"
    full = {"PATH": SAFE_PATH, "HOME": home, "LANG": "C.UTF-8", **env}
    drop = me == 0 and uid != 0  # root asks as the manager's user, with no other groups
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/", env=full, start_new_session=True, close_fds=True,
            user=uid if drop else None, group=gid if drop else None,
            extra_groups=[] if drop else None,
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    assert proc.stdout is not None
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + TIMEOUT
    complete = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while size <= LIMIT:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
    proc.stdout.close()
    if not complete:  # its own session: the group is the tool and whatever it started
        _kill_group(proc.pid)
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        return None
    if not complete:
        return None
    return b"".join(chunks).decode("utf-8", "replace")


def _kill_group(pgid: int) -> None:
    import signal

    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
