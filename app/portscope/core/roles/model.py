"""Who serves a port, and the one plan that stops it: plain values for every surface."""

from __future__ import annotations

from ..hints import Literal, get_args
from ..model import Container
from ..record import record
from .evidence import Fact

RoleKind = Literal[
    "server",  # opened the socket and serves it
    "master",  # holds the socket and runs workers that hold it too
    "worker",  # a master's child sharing its socket; the master respawns it
    "reloader",  # a development reloader that restarts its server
    "supervisor",  # restarts the server when it exits (a shell loop, a process manager)
    "proxy",  # listens on behalf of something else (docker-proxy, ssh -L)
    "inherited",  # kept a socket it did not open
    "connection",  # a child holding one accepted connection (socat fork, inetd)
    "service",  # run by a service manager (systemd unit, Windows service)
    "system",  # part of the OS (http.sys, AirPlay Receiver)
]
ROLE_KINDS: tuple[RoleKind, ...] = get_args(RoleKind)
How = Literal["signal", "docker", "service", "setting", "none"]


@record
class Role:
    pid: int
    kind: RoleKind
    name: str  # what a person calls the program ("uvicorn", "bash"), raw: escape to show
    holds: bool  # holds the socket itself (a reloader or a loop may not)
    ppid: int | None = None
    started: float | None = None
    note: str = ""  # "shell loop", "Werkzeug reloader", "docker-proxy for web"


@record
class StopPlan:
    """What stops the port for good, as `check` advises it and `kill` carries it out."""

    how: How
    pids: tuple[int, ...]  # signalled in this order (the loop before the server it runs)
    command: str | None  # the one command a person would type
    why: str  # one line
    container: Container | None = None
    unit: str | None = None
    # Holders that stop with the targets (workers, a reloader's child): watched, not signalled.
    followers: tuple[int, ...] = ()
    # The kernel facts each action rests on (evidence.py): why a non-holder is a target, a
    # container is stopped or a service command is printed.
    evidence: tuple[Fact, ...] = ()
    # Seconds to watch the port after the stop: the recognised controller's restart delay
    # plus a second (kill/after.py); None: the default.
    watch: float | None = None
    # Holders the plan will not signal by default, and why (a root process holding another
    # user's socket: never a privilege step up); `--allow-system` includes them.
    withheld: tuple[tuple[int, str], ...] = ()
    # The signal that stops the targets when SIGTERM does not ("INT": uwsgi takes SIGTERM
    # as "reload"); kill sends it in place of the default SIGTERM.
    signal: str | None = None


@record
class Cast:
    """The processes around one port's socket and what each one is."""

    roles: tuple[Role, ...]
    plan: StopPlan

    def role(self, pid: int) -> Role | None:
        for role in self.roles:
            if role.pid == pid:
                return role
        return None

    @property
    def holders(self) -> tuple[Role, ...]:
        return tuple(r for r in self.roles if r.holds)
