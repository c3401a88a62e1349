"""Plain values of a kill: what was planned, what was refused, what happened, what holds
the port afterwards. Frozen, so a worker thread can hand them to the UI."""

from __future__ import annotations

import signal
from collections.abc import Mapping

from ..diagnose.verdict import Verdict
from ..model import Proto
from ..record import record
from ..roles.model import How, Role, StopPlan
from ..untrusted import shown, shown_argv

# The signals a person may choose, by the names `kill -s` uses.
SIGNALS: Mapping[str, int] = {
    "TERM": signal.SIGTERM,
    "INT": signal.SIGINT,
    "KILL": signal.SIGKILL,
}
Identity = tuple[int, float | None]  # (PID, start time) as captured when the row was picked


def signal_name(signum: int) -> str:
    for name, value in SIGNALS.items():
        if value == signum:
            return name
    return signal.Signals(signum).name.removeprefix("SIG")


@record
class Target:
    """A process we may signal, described as the confirmation shows it."""

    pid: int
    started: float
    name: str
    user: str | None
    cmdline: tuple[str, ...]
    ppid: int | None = None
    children: tuple[int, ...] = ()
    ports: tuple[str, ...] = ()  # "tcp 127.0.0.1:8000": every socket it listens on or binds
    # Kernel facts, shown where they differ from the name and the real user: the binary the
    # kernel runs (an impersonating name is told apart by it) and the effective user (a
    # setuid-root program run by alice is root's to signal).
    exe: str | None = None
    euser: str | None = None

    @property
    def command(self) -> str:
        """The command line for display, escaped (the raw argv is `cmdline`)."""
        return shown_argv(self.cmdline) if self.cmdline else f"[{shown(self.name)}]"


@record
class Refusal:
    """A process we will not signal, and why. pid is None for a socket with no visible owner."""

    pid: int | None
    reason: str


@record
class KillPlan:
    port: int
    proto: Proto
    targets: tuple[Target, ...]
    refused: tuple[Refusal, ...] = ()
    gone: tuple[int, ...] = ()  # picked, but exited before we looked again
    # Holders that share the socket with a target but are not signalled (pre-fork workers):
    # their master stops them, and the outcome checks that it did.
    followers: tuple[int, ...] = ()
    stop: StopPlan | None = None  # the plan `check` advises; targets carry out its pids
    roles: tuple[Role, ...] = ()
    hosts: tuple[str, ...] | None = None  # `kill --host`: the addresses asked, watched after

    @property
    def how(self) -> How:
        return self.stop.how if self.stop is not None else "signal"


@record
class KillResult:
    """What the signals did. `signals` maps each target PID to the last signal it was sent."""

    plan: KillPlan
    signals: Mapping[int, str]
    exited: tuple[int, ...]
    still_running: tuple[int, ...]
    refused: tuple[Refusal, ...]
    escalated: bool = False
    already_exited: tuple[int, ...] = ()  # gone before a signal reached them: not a failure
    signalled_at: float | None = None  # process clock at the first signal (see kill.session)
    container_stopped: bool = False  # a `docker` plan: the Engine API stopped the container

    @property
    def ok(self) -> bool:
        """Exit 0 material: every target gone and nothing refused. A plan that only names a
        command (a service, a setting) is not done until the person runs it."""
        if self.still_running or self.refused:
            return False
        how = self.plan.how
        return how in ("signal", "none") or (how == "docker" and self.container_stopped)


@record
class After:
    """The port once the dust settled: the check verdict plus who holds it, in words."""

    summary: str  # "free", "TIME_WAIT for 58 s more", "held by PID 42 (python3): restarted?"
    free: bool
    holders: tuple[int, ...] = ()
    verdict: Verdict | None = None  # the check verdict (issue 3) it is based on
    restarted_by: tuple[int, str] | None = None  # (PID, name) that started it again

    @property
    def released(self) -> bool:
        """No process listens on the port or holds a socket on it once the watch ended.
        TIME_WAIT and connections the kernel is still closing belong to no process: they
        are reported, not held against the kill (`wait --reuseaddr` handles them)."""
        if self.holders:
            return False
        if self.verdict is None:
            return self.free
        return self.verdict.kind in RELEASED


# Verdicts that leave no process on the port (address_not_available cannot follow a kill).
RELEASED = frozenset({"free", "time_wait", "kernel_held"})
