"""The cgroup of a process, and of many processes at once (Linux).

A unit or a container is named from /proc/PID/cgroup, a kernel fact. A pre-fork server of
2,000 processes costs 2,000 reads of it, a quarter of `b`'s answer under load; the kernel
also lists each cgroup's members in its `cgroup.procs`, so one read of that file answers for
every holder it lists, and only the others are read one by one.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable

# Below this many PIDs a read each costs less than finding the member lists.
MEMBERS_FROM = 64
# Distinct cgroups whose member lists are read for one question; the rest one by one.
MEMBER_LISTS = 8
MEMBERS_MAX_BYTES = 1 << 22  # ~400,000 PIDs: a longer list is not read (one by one instead)


def read_cgroup(pid: int, proc: str = "/proc") -> str | None:
    """The cgroup v2 path ("/system.slice/nginx.service"), else v1's name=systemd one."""
    data = _read(f"{proc}/{pid}/cgroup", 1 << 16)
    return None if data is None else _parsed(data)[0]


def cgroups_of(
    pids: Iterable[int],
    *,
    members_from: int = MEMBERS_FROM,
    mount: str | None = None,
    proc: str = "/proc",
) -> dict[int, str | None]:
    """read_cgroup of each PID; for many PIDs, from the member lists of their cgroups.
    `mount` (the cgroup2 file system's directory; default: from /proc/self/mountinfo) and
    `proc`: for tests."""
    left = list(dict.fromkeys(pids))
    found: dict[int, str | None] = {}
    refused: set[str] = set()  # cgroups whose list is not to be used: asked once
    base = mount or (_unified() if len(left) >= members_from else None)
    for _ in range(MEMBER_LISTS):
        if base is None or len(left) < members_from:
            break
        first = left[0]
        data = _read(f"{proc}/{first}/cgroup", 1 << 16)
        path, unified = (None, False) if data is None else _parsed(data)
        found[first] = path
        members = None
        if unified and path is not None and path not in refused:
            members = _members(base, path)
            if members is None:
                refused.add(path)
        if members:
            for pid in left:
                if pid in members:
                    found[pid] = path
        left = [pid for pid in left if pid not in found]
    for pid in left:
        found[pid] = read_cgroup(pid, proc)
    return found


def cgroup_path(lines: list[str]) -> str | None:
    return _path(lines)[0]


def _path(lines: list[str]) -> tuple[str | None, bool]:
    """The v2 path and True, else v1's name=systemd path and False."""
    fallback = None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return path, True
        if controllers == "name=systemd":
            fallback = path
    return fallback, False


@functools.lru_cache(maxsize=256)
def _parsed(data: bytes) -> tuple[str | None, bool]:
    """_path of a file's bytes, once per distinct file: a pre-fork server's processes
    share one (the bytes are the kernel's; a cgroup path is at most 4 KB)."""
    return _path(data.decode("utf-8", "surrogateescape").splitlines())


def _members(base: str, path: str) -> frozenset[int] | None:
    """The PIDs the kernel lists in the v2 cgroup `path`, or None when that list would not
    be the cgroup /proc/PID/cgroup names: a path outside our view ("/../x", another cgroup
    namespace's), or a threaded cgroup (whose processes' threads may sit elsewhere)."""
    if not path.startswith("/") or "/../" in f"{path}/" or "\n" in path:
        return None
    directory = base.rstrip("/") + (path if path != "/" else "")
    if path != "/":  # the root has no cgroup.type and is always a domain
        kind = _read(f"{directory}/cgroup.type", 64)
        if kind is None or kind.strip() != b"domain":
            return None
    listed = _read(f"{directory}/cgroup.procs", MEMBERS_MAX_BYTES + 1)
    if listed is None or len(listed) > MEMBERS_MAX_BYTES:
        return None
    try:
        return frozenset(int(word) for word in listed.split())
    except ValueError:
        return None


@functools.lru_cache(maxsize=1)
def _unified() -> str | None:
    """Where the cgroup2 file system is mounted with its root at our namespace's root
    (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system), or None."""
    data = _read("/proc/self/mountinfo", 1 << 20)
    return None if data is None else unified_mount(data.decode("utf-8", "surrogateescape"))


def unified_mount(mountinfo: str) -> str | None:
    """The mount point of the first cgroup2 mount of `mountinfo` whose root is "/"."""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) >= 5 and rest.split(" ", 1)[0] == "cgroup2" and parts[3] == "/":
            # mountinfo escapes space, tab, newline and backslash as \ooo
            return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4])
    return None


def _read(path: str, limit: int) -> bytes | None:
    """Up to `limit` bytes, read to the end (a seq_file may return less than asked before
    its end); os.read, not open(): half the cost, for 2,000 workers' files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        data = b""
        while len(data) < limit and (chunk := os.read(fd, min(65536, limit - len(data)))):
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    return data
