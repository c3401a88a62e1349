"""portscope's private directory: where the audit log (and other files only its user may
read) live, made without trusting anything another user could have put in the way.

The base is `$XDG_STATE_HOME` only when that directory is owned by the effective uid (under
`sudo -E` the variable is the invoking user's, and root must not write where a user's
environment points); else the password database's home of the effective uid, then
`.local/state`. Every component is opened with O_NOFOLLOW from `/` down (openat walking),
so a symlink anywhere on the way is refused rather than followed, and the last level,
`portscope`, is created 0700 and must belong to the effective uid.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

NAME = "portscope"
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


class Unsafe(OSError):
    """The directory cannot be made or trusted (a symlink on the way, another owner)."""


def base(env: Mapping[str, str] = os.environ) -> str | None:
    """The state directory to put `portscope/` in, or None (no usable home)."""
    uid = os.geteuid()
    state = env.get("XDG_STATE_HOME", "")
    if os.path.isabs(state) and _owned(state, uid):  # the XDG spec: ignore a relative one
        return state
    import pwd

    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        return None
    return os.path.join(home, ".local", "state") if os.path.isabs(home) else None


def _owned(path: str, uid: int) -> bool:
    """`path`, or the nearest of its parents that exists (the rest is made 0700), is a
    directory of `uid`'s, not a symlink."""
    path = os.path.normpath(path)
    while True:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent
            continue
        except OSError:
            return False
        return stat.S_ISDIR(info.st_mode) and info.st_uid == uid


def open_dir(env: Mapping[str, str] = os.environ) -> int:
    """A file descriptor of the private directory (the caller closes it); Unsafe if it
    cannot be made safely. Missing levels are created 0700."""
    where = base(env)
    if where is None:
        raise Unsafe("no home directory for the effective user")
    parts = [p for p in os.path.normpath(where).split("/") if p] + [NAME]
    fd = os.open("/", _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:  # ELOOP/ENOTDIR: a symlink or a file on the way
                raise Unsafe(f"cannot use {'/' + '/'.join(parts[: i + 1])}: {exc}") from None
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise Unsafe(f"{where}/{NAME} belongs to uid {info.st_uid}, not to us")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o700)
        return fd
    except BaseException:
        os.close(fd)
        raise


def append(name: str, line: str, env: Mapping[str, str] = os.environ) -> str:
    """Append one line to the private file `name` (created 0600); returns its path."""
    fd = open_dir(env)
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        out = os.open(name, flags, 0o600, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        os.write(out, line.encode("utf-8", "backslashreplace"))
    finally:
        os.close(out)
    return os.path.join(base(env) or "", NAME, name)
