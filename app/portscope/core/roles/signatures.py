"""Well-known processes around a listener, recognised by what they run.

Each test reads one process's argv, name or environment; the role model combines them
with the process tree. Checked against the real servers (domain.md 7, tests/real_servers.py):
the argv forms below are what /proc/PID/cmdline shows for them.
"""

from __future__ import annotations

import os
import re

from ..hints import Literal
from .procs import ProcessView, ProcInfo

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox"})
# A shell running one of these loops restarts what it runs.
_LOOP = re.compile(r"\b(while|until)\b|\bfor\s*\(\(")

ReloaderKind = Literal["any_exit", "exit_code_3"]


def base(arg: str) -> str:
    return os.path.basename(arg)


def words(p: ProcInfo) -> tuple[str, ...]:
    """argv with the interpreter's path and options made comparable: basenames of paths."""
    return tuple(base(a) if "/" in a else a for a in p.argv)


def is_shell(p: ProcInfo) -> bool:
    return p.name in SHELLS or (bool(p.argv) and base(p.argv[0]).lstrip("-") in SHELLS)


def shell_loop(p: ProcInfo) -> bool:
    """A shell that runs a loop: `bash -c 'while true; do server; done'` or a script file
    with one. An interactive shell (no -c, no script) is not a supervisor."""
    if not is_shell(p):
        return False
    args = list(p.argv[1:])
    if "-c" in args:
        i = args.index("-c")
        return i + 1 < len(args) and bool(_LOOP.search(args[i + 1]))
    scripts = [a for a in args if not a.startswith("-")]
    if not scripts:
        return False
    path = scripts[0]
    if p.cwd and not os.path.isabs(path):
        path = os.path.join(p.cwd, path)
    try:
        with open(path, errors="replace") as fh:
            return bool(_LOOP.search(fh.read(65536)))
    except OSError:
        return False


def docker_proxy(p: ProcInfo) -> bool:
    return p.name == "docker-proxy" or (bool(p.argv) and base(p.argv[0]) == "docker-proxy")


def proxy_args(p: ProcInfo) -> dict[str, str]:
    """docker-proxy's `-proto tcp -host-ip 127.0.0.1 -host-port 8080 -container-ip
    172.17.0.2 -container-port 80` as a dict without the dashes."""
    out: dict[str, str] = {}
    argv = list(p.argv[1:])
    for i, arg in enumerate(argv):
        if arg.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out[arg.lstrip("-")] = argv[i + 1]
        elif arg.startswith("-") and "=" in arg:
            key, _, value = arg.lstrip("-").partition("=")
            out[key] = value
    return out


def podman_proxy(p: ProcInfo) -> bool:
    return p.name in ("rootlessport", "rootlessport-child", "conmon") or (
        bool(p.argv) and base(p.argv[0]) in ("rootlessport", "rootlesskit", "conmon")
    )


def tunnel(p: ProcInfo) -> str | None:
    """"ssh -L" or "kubectl port-forward": a listener that forwards elsewhere."""
    w = words(p)
    if not w:
        return None
    if w[0] == "ssh" and any(a.startswith("-L") for a in w[1:]):
        return "an ssh tunnel (ssh -L)"
    if w[0] == "kubectl" and "port-forward" in w:
        return "kubectl port-forward"
    return None


def reloader(p: ProcInfo, child: ProcInfo | None, view: ProcessView) -> ReloaderKind | None:
    """Is `p` a development reloader for `child`? And does it restart the child whenever it
    exits ("any_exit": uvicorn/watchfiles, nodemon, dotnet watch) or only on exit code 3
    (Werkzeug, Django's autoreloader), in which case stopping the child stops both?"""
    w = words(p)
    if not w:
        return None
    text = " ".join(w)
    if child is not None and child.ppid == p.pid:
        if view.environ(child.pid, "WERKZEUG_RUN_MAIN") == "true":
            return "exit_code_3"
        if view.environ(child.pid, "RUN_MAIN") == "true":
            return "exit_code_3"
    if _werkzeug_or_django(w):
        return "exit_code_3"
    if "nodemon" in text or ("dotnet" in w[0] and "watch" in w):
        return "any_exit"
    if "--reload" in w or any(a.startswith("--reload=") for a in w) or "watchfiles" in text:
        return "any_exit"
    return None


def _werkzeug_or_django(w: tuple[str, ...]) -> bool:
    """`flask --debug run` and `manage.py runserver` reload by default (their child runs the
    same argv); each restarts its child only when it exits with code 3."""
    if "flask" in w and "run" in w:
        return ("--debug" in w or "--reload" in w) and "--no-reload" not in w
    return "runserver" in w and "--noreload" not in w


def server_name(p: ProcInfo) -> str:
    """What a person calls the program: "uvicorn" for `python3 -m uvicorn` or
    `/venv/bin/uvicorn`, "flask", "gunicorn", "node", else the process name."""
    w = words(p)
    if not w:
        return p.name
    program = w[0]
    if program.startswith("python") and len(w) > 1:
        rest = list(w[1:])
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            rest.pop(0)  # interpreter flags (-B, -s, -X dev) before -m, -c or the script
        if not rest or rest[0] == "-c":
            return p.name
        if rest[0] == "-m" and len(rest) > 1:
            return rest[1].removesuffix(".__main__")
        scripts = [a for a in rest if not a.startswith("-")]
        if scripts:
            return base(scripts[0])
    if program in ("node", "nodejs") and len(w) > 1:
        return "node"
    return program.split(":")[0] if ":" in program else program


def is_worker_argv(p: ProcInfo) -> bool:
    """argv that only a worker has: multiprocessing's spawn/forkserver children, nginx's
    and postgres's retitled workers."""
    text = " ".join(p.argv)
    return (
        "multiprocessing.spawn" in text
        or "multiprocessing.forkserver" in text
        or "worker process" in text
    )


def supervisor_daemon(p: ProcInfo) -> str | None:
    """A process manager that restarts its children: stop through it, not with a signal."""
    w = words(p)
    text = " ".join(w)
    name = p.name
    if "supervisord" in text:
        return "supervisord"
    if name.startswith("PM2") or "PM2" in text:
        return "pm2"
    if name == "runsv" or (w and w[0] == "runsv"):
        return "runit"
    if name == "s6-supervise" or (w and w[0] == "s6-supervise"):
        return "s6"
    return None
