"""Process managers and restarters above a socket's holders: recognised by their binary
and the kernel's parent chain (domain.md 7 and 9). What each one means for the stop plan
is in service_managers.py (pm2, supervisord, runit, s6: their own stop command) and
restarters.py (watchers, Procfile managers, masters that hold no socket: signals).

A manager is looked for in the whole chain above each topmost holder, through the wrappers
that usually sit between (`sh -c`, `bash -c`, npm, make, env), not just one level up:
supervisord runs `bash -c` wrappers, nodemon runs `sh -c 'sh -c ...'`, honcho forks itself
and then `sh -c`. Its argv and environment only name it (claims); portscope acts on it
only when kernel facts back the claim:

- it is a kernel ancestor of the holder (or, for pm2's cluster mode, the holder itself);
- the kernel runs the binary the claim implies (`/proc/PID/exe`: node for pm2 and nodemon,
  python for supervisord, honcho and watchfiles, the entr or watchexec binary itself);
- it runs as the holder's own user, or as root from a root-owned binary (a watcher: the
  holder's user only);
- where the manager has an interface, it confirms the program (service_managers.py).

Every such decision records the facts it rests on (`StopPlan.evidence`), and the plan's
`watch` covers the manager's restart delay plus a second.
"""

from __future__ import annotations

import os
import re

from ..hints import Literal, Protocol
from ..record import record
from . import evidence, interfaces
from . import signatures as sig
from .evidence import Fact, Kernel
from .procs import LiveProcesses, ProcessView, ProcInfo

Kind = Literal[
    "pm2", "supervisord", "runit", "s6",  # service managers: stop through them
    "honcho", "foreman", "overmind",  # Procfile managers: stopping one stops all
    "entr", "watchexec", "nodemon", "watchfiles",  # watchers: restart on a file change
]
SERVICE: frozenset[str] = frozenset({"pm2", "supervisord", "runit", "s6"})
PROCFILE: frozenset[str] = frozenset({"honcho", "foreman", "overmind"})
WATCHER: frozenset[str] = frozenset({"entr", "watchexec", "nodemon", "watchfiles"})
# Seconds each manager waits before it starts a program again (pm2: 0.1 s plus the app's
# restart_delay, read from pm2 jlist); the watch after a stop lasts this plus a second.
RESTART_DELAY = {
    "pm2": 0.1, "supervisord": 1.0, "runit": 1.0, "s6": 1.0, "entr": 0.0,
    "watchexec": 0.1, "nodemon": 1.0, "watchfiles": 1.6,
}
# Role notes the advice words its first step by.
PROCFILE_NOTE = "Procfile manager"
WATCHER_NOTE = "restarts the server on a file change"
_CHAIN_LIMIT = 16  # wrappers between a manager and its server are few
# Programs that run a command and wait for it without being the server: a manager above
# them still runs the server. Anything else ends the walk (a test runner, an editor, a
# person's terminal): a watcher above those restarts them, not the server.
_WRAPPERS = frozenset({
    *sig.SHELLS, "env", "nice", "nohup", "timeout", "stdbuf", "setsid", "chpst", "make",
    "gmake", "tini", "dumb-init", "uv", "poetry", "pipenv", "dotenv", "su-exec", "gosu",
})
_NODE_WRAPPERS = frozenset({"npm", "npm-cli.js", "npx", "npx-cli.js", "yarn", "yarn.js",
                            "yarn.cjs", "pnpm", "pnpm.cjs", "pnpm.js"})
_PYTHON = re.compile(r"python[0-9.]*")
_RUBY = re.compile(r"ruby[0-9.]*")
_NODE = frozenset({"node", "nodejs"})


class KernelFacts(Protocol):
    """The kernel facts and manager interfaces the recognisers use. Live: /proc and
    subprocesses; a recorded view supplies its own (`kernel_facts`)."""

    def kernel(self, pid: int) -> Kernel | None: ...

    def ancestors(self, pid: int) -> list[int]: ...

    def unix_listening(self, pid: int) -> frozenset[str]:
        """Paths of the listening unix sockets `pid` holds."""
        ...

    def tool(self, name: str, near: str | None, path: str | None, uid: int) -> str | None: ...

    def ask(self, argv: list[str], uid: int, gid: int, env: dict[str, str]) -> str | None: ...


class LiveFacts:
    """Facts read from /proc, and managers asked through interfaces.py."""

    def __init__(self) -> None:
        self._kernel: dict[int, Kernel | None] = {}

    def kernel(self, pid: int) -> Kernel | None:
        if pid not in self._kernel:
            self._kernel[pid] = evidence.kernel(pid)
        return self._kernel[pid]

    def ancestors(self, pid: int) -> list[int]:
        return evidence.ancestors(pid)

    def unix_listening(self, pid: int) -> frozenset[str]:
        return _unix_listening(pid)

    def tool(self, name: str, near: str | None, path: str | None, uid: int) -> str | None:
        return interfaces.find_tool(name, near, path, uid)

    def ask(self, argv: list[str], uid: int, gid: int, env: dict[str, str]) -> str | None:
        return interfaces.ask(argv, uid, gid, env)


def facts_of(view: ProcessView) -> KernelFacts | None:
    """The view's kernel facts: live ones for the live view, a recording's own, or None
    (nothing is confirmed, so nothing but holders is acted on)."""
    found: KernelFacts | None = getattr(view, "kernel_facts", None)
    if found is None and isinstance(view, LiveProcesses):
        found = LiveFacts()
        view.kernel_facts = found  # type: ignore[attr-defined]  # one per question
    return found


@record
class Manager:
    """A recognised manager in a holder's chain, with what the kernel says about it."""

    kind: Kind
    pid: int
    info: ProcInfo
    kernel: Kernel | None
    below: tuple[int, ...]  # the chain from the holder up to (not including) the manager


# ---------------------------------------------------------------------------------------
# Recognising (claims: argv and name shape the guess; kernel facts confirm it)


def recognise(p: ProcInfo) -> Kind | None:
    """Which manager `p` claims to be, from its argv (confirmed later by its exe)."""
    argv = [a for a in p.argv if a] or [p.name]
    first = sig.base(argv[0])
    # node retitles the daemon over its old argv: one string, or split at the old NULs and
    # cut to their length ("PM2", "v5.4.2:", "God", "Daemon", "(/home/a/.p").
    if " ".join(argv).startswith("PM2 v") and "God Daemon" in " ".join(argv):
        return "pm2"
    if first in ("entr", "watchexec", "overmind"):
        return first  # type: ignore[return-value]
    if first == "runsv":
        return "runit"
    if first == "s6-supervise":
        return "s6"
    module, script = script_of(argv)
    name = module or (sig.base(script) if script else "")
    if _PYTHON.fullmatch(first):
        if name in ("supervisord", "supervisor.supervisord"):
            return "supervisord"
        if name in ("honcho", "honcho.__main__"):
            return "honcho"
        if name in ("watchfiles", "watchfiles.__main__"):
            return "watchfiles"
    if first in _NODE and (name in ("nodemon", "nodemon.js") or "/nodemon/bin/" in script):
        return "nodemon"
    if _RUBY.fullmatch(first) and name == "foreman":
        return "foreman"
    # A console script run by its #! line: argv[0] is the script itself.
    by_script = {"supervisord": "supervisord", "honcho": "honcho", "watchfiles": "watchfiles",
                 "nodemon": "nodemon", "foreman": "foreman"}
    found = by_script.get(first)
    return found  # type: ignore[return-value]


def script_of(argv: list[str]) -> tuple[str | None, str]:
    """(module of `-m`, first script argument) of an interpreter's argv."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1], ""
        if arg in ("-X", "-W", "-r", "--require", "-I", "--import"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return None, arg
    return None, ""


def binary_agrees(kind: Kind, k: Kernel) -> bool:
    """The kernel runs the binary the claim implies (never argv[0])."""
    program = (k.program or "").removesuffix(" (deleted)")
    if kind == "pm2" or kind == "nodemon":
        return program in _NODE
    if kind in ("supervisord", "honcho", "watchfiles"):
        return bool(_PYTHON.fullmatch(program))
    if kind == "foreman":
        return bool(_RUBY.fullmatch(program))
    return program == {"runit": "runsv", "s6": "s6-supervise"}.get(kind, kind)


def may_control(m: Kernel | None, holder: Kernel | None, *, same_user: bool = False) -> bool:
    """The manager runs as the holder's user, or (unless `same_user`) as root from a
    root-owned binary."""
    if m is None or holder is None or m.euid is None:
        return False
    if m.euid == holder.euid:
        return True
    return not same_user and m.euid == 0 and m.exe_trusted


def _wrapper(p: ProcInfo, k: Kernel | None) -> bool:
    program = (k.program if k is not None and k.program else p.program) or ""
    if program.rstrip("0123456789.") in _WRAPPERS or sig.is_shell(p):
        return True
    if program in _NODE:
        _, script = script_of(list(p.argv))
        return sig.base(script) in _NODE_WRAPPERS
    return False


def chain_manager(start: int, view: ProcessView, facts: KernelFacts) -> Manager | None:
    """The nearest manager above `start`, through wrappers only (see _WRAPPERS)."""
    below: list[int] = [start]
    for pid in facts.ancestors(start)[:_CHAIN_LIMIT]:
        if pid <= 1:
            return None
        p = view.get(pid)
        if p is None:
            return None
        kind = recognise(p)
        if kind is not None:
            return Manager(kind, pid, p, facts.kernel(pid), tuple(below))
        if not _wrapper(p, facts.kernel(pid)):
            return None
        below.append(pid)
    return None


def manager_facts(m: Manager, holder: int) -> list[Fact]:
    """The kernel facts a manager above `holder` is acted on by."""
    out = [m.kernel.exe_fact(), m.kernel.euid_fact()] if m.kernel else []
    return [*out, Fact(m.pid, "ancestor", f"of PID {holder}")]


def master_above(
    top: ProcInfo, infos: dict[int, ProcInfo], view: ProcessView, facts: KernelFacts
) -> int | None:
    """The parent that runs the same binary and argv as the holder `top` (a fork) but holds
    no socket: the master of workers that alone listen (granian, haproxy -W). Not Django's
    or Werkzeug's reloader, which holds nothing either but exits with its child."""
    if top.ppid is None or top.ppid <= 1 or top.ppid in infos:
        return None
    parent = view.get(top.ppid)
    if parent is None or not parent.argv or parent.argv != top.argv:
        return None
    if sig.reloader(parent, top, view) == "exit_code_3":
        return None
    k_parent, k_top = facts.kernel(parent.pid), facts.kernel(top.pid)
    if k_parent is None or k_top is None or k_parent.exe is None or k_parent.exe != k_top.exe:
        return None
    return parent.pid if may_control(k_parent, k_top) else None


def tops(infos: dict[int, ProcInfo]) -> list[ProcInfo]:
    """The holders whose parent holds nothing, by PID."""
    return sorted((p for p in infos.values() if p.ppid not in infos), key=lambda p: p.pid)


def option(argv: list[str], short: str, long: str) -> str | None:
    """The value of an option in argv: `-c X`, `--configuration X`, `--configuration=X`,
    `-cX`."""
    for i, arg in enumerate(argv):
        if arg in (short, long) and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(long + "="):
            return arg.partition("=")[2]
        if arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            return arg[len(short) :]
    return None


# ---------------------------------------------------------------------------------------
# /proc helpers


def _unix_listening(pid: int) -> frozenset[str]:
    """Paths of listening unix sockets that `pid` holds (/proc/net/unix and its fds)."""
    from .. import platform_path

    if not platform_path.linux_proc():
        return _unix_bound(pid)
    paths: dict[str, str] = {}
    try:
        with open("/proc/net/unix", "rb") as fh:
            next(fh, None)
            for raw in fh:
                cols = raw.split(None, 7)
                # Flags 00010000: __SO_ACCEPTCON, a listening socket.
                if len(cols) == 8 and int(cols[3], 16) & 0x10000:
                    paths[f"socket:[{int(cols[6])}]"] = os.fsdecode(cols[7].rstrip(b"\n"))
    except (OSError, ValueError):
        return frozenset()
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return frozenset()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link in paths:
            found.add(paths[link])
    return frozenset(found)


def _unix_bound(pid: int) -> frozenset[str]:
    """The portable path: paths of the unix sockets `pid` holds, from psutil, which does
    not say which ones listen. A socket showing a path is the bound (server) end or a
    connection it accepted, so its holder is that path's server all the same."""
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="unix")
    except (psutil.Error, OSError):
        return frozenset()
    paths: set[str] = set()
    for conn in conns:
        path: object = conn.laddr  # a unix socket's: its path, "" when unbound
        if isinstance(path, str) and path:
            paths.add(path)
    return frozenset(paths)


def user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
