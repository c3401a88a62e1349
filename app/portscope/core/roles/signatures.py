"""Well-known processes around a listener, recognised by what they run.

Each test reads one process's argv, name or environment (a shell's script file only
through evidence.read_script); the role model combines them with the process tree. Checked
against the real servers (domain.md 7, tests/real_servers.py): the argv forms below are
what /proc/PID/cmdline shows for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..hints import Literal
from . import evidence
from .procs import ProcessView, ProcInfo

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox"})

ReloaderKind = Literal["any_exit", "exit_code_3"]


def base(arg: str) -> str:
    return os.path.basename(arg)


def words(p: ProcInfo) -> tuple[str, ...]:
    """argv with the interpreter's path and options made comparable: basenames of paths."""
    return tuple(base(a) if "/" in a else a for a in p.argv)


def is_shell(p: ProcInfo) -> bool:
    return p.name in SHELLS or (bool(p.argv) and base(p.argv[0]).lstrip("-") in SHELLS)


def shell_loop(p: ProcInfo, child: ProcInfo, *, live: bool = True) -> bool:
    """Does the shell `p` run `child`'s program inside a loop, so that it starts it again
    when it exits (`while true; do server; done`)? Read from the structure of its `-c` text
    or script (shell_script.py): a loop keyword in a comment or a string, a readiness loop
    (`while ! curl ...; do sleep 1; done`) or a loop around other programs is no restarter.

    `live`: `p` runs on this machine now, and this is not the TUI's UI thread: its script
    file may be read (evidence.read_script: a small regular file its own user may read, so
    never a FIFO, a device or root's secret) and the kernel must agree that it runs a shell
    (its exe, not its argv). Otherwise only a `-c` text is read.
    """
    if not is_shell(p):
        return False
    how = shell_invocation(p.argv)
    if how is None:
        return False
    text, script, positional = how
    if live:
        kernel = evidence.kernel(p.pid)
        if kernel is not None and kernel.program is not None and not _shell_binary(kernel):
            return False  # `exec -a bash python3 ...`: a claim the kernel does not back
        if text is None and script is not None:
            text = evidence.read_script(script, kernel, p.pid)
    if text is None:
        return False
    from . import shell_script  # only `check`, `kill` and `watch` parse scripts

    def runs(words: Sequence[str | None]) -> bool:
        return runs_program(words, child)

    return bool(shell_script.loop_runs(text, runs, positional))


def shell_invocation(
    argv: Sequence[str],
) -> tuple[str | None, str | None, tuple[str, ...]] | None:
    """(the -c text, the script path, the positional parameters from $0) of a shell's
    argv; None for an interactive shell or one reading its commands from stdin."""
    args = list(argv[1:])
    if argv and base(argv[0]) == "busybox" and args:
        args = args[1:]  # `busybox sh -c ...`: past the applet's name
    command = stdin = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--", "-"):
            i += 1
            break
        if arg.startswith("--"):
            i += 2 if arg in ("--rcfile", "--init-file") else 1
            continue
        if len(arg) < 2 or arg[0] not in "-+":
            break
        command = command or (arg[0] == "-" and "c" in arg)
        stdin = stdin or "s" in arg[1:]
        i += 1 + sum(arg[1:].count(o) for o in "oO")  # `-o pipefail`: its name follows
    rest = args[i:]
    if not rest or (stdin and not command):
        return None
    if command:
        return rest[0], None, tuple(rest[1:]) or (argv[0] if argv else "sh",)
    return None, rest[0], tuple(rest)


def runs_program(words: Sequence[str | None], p: ProcInfo) -> bool:
    """Would a command of these words (None: unknown) start the process `p`? Its program
    name must be `p`'s (argv[0], or the script its #! interpreter runs), and the literal
    arguments that follow must be `p`'s own: `python3 -c probe` does not start
    `python3 -m http.server`. An unknown program counts only if some literal arguments
    match and none differs."""
    argv = list(p.argv)
    if len(argv) == 1 and " " in argv[0]:
        argv = argv[0].split()  # a retitled process: "nginx: master process ..."
    if not words:
        return False
    first = words[0]
    if first is None:
        agreed = 0
        for word, arg in zip(words[1:], argv[1:], strict=False):
            if word is None:
                break
            if word != arg:
                return False
            agreed += 1
        return agreed > 0
    name = base(first)
    if not name:
        return False
    if argv and base(argv[0]) == name:
        return _agree(words[1:], argv[1:])
    if len(argv) > 1 and base(argv[1]) == name:  # a script run by its #! interpreter
        return _agree(words[1:], argv[2:])
    exe = base(p.exe) if p.exe else ""
    return name in (exe, p.name, server_name(p)) or (len(p.name) == 15 and name[:15] == p.name)


def _agree(words: Sequence[str | None], argv: Sequence[str]) -> bool:
    """Every literal word up to the first unknown one is the argument at its place."""
    for word, arg in zip(words, argv, strict=False):
        if word is None:
            return True
        if word != arg:
            return False
    return True


def _shell_binary(kernel: evidence.Kernel) -> bool:
    name = (kernel.program or "").removesuffix(" (deleted)")
    return name.rstrip("0123456789.") in SHELLS


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
    key = (p.name, p.argv)
    found = _NAMED.get(key)
    if found is None:
        found = _server_name(*key)
        if sum(map(len, p.argv)) <= NAMED_ARGV:  # a hostile 2 MB argv is not kept
            if len(_NAMED) >= NAMED_MAX:
                _NAMED.clear()
            _NAMED[key] = found
    return found


# server_name once per distinct command (a pre-fork server's 2,000 workers share one),
# however many roles, plans and panels ask: ~20 ms of each `b` and `k` on such a port.
_NAMED: dict[tuple[str, tuple[str, ...]], str] = {}
NAMED_MAX = 512
NAMED_ARGV = 4096  # characters of argv past which a name is not kept


def _server_name(name: str, argv: tuple[str, ...]) -> str:
    w = tuple(base(a) if "/" in a else a for a in argv)
    if not w:
        return name
    program = w[0]
    if program.startswith("python") and len(w) > 1:
        rest = list(w[1:])
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            rest.pop(0)  # interpreter flags (-B, -s, -X dev) before -m, -c or the script
        if not rest or rest[0] == "-c":
            return name
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
