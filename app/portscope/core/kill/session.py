"""Safe termination: signal the planned targets, wait, escalate on request, report.

The CLI and the TUI drive the same KillSession step by step, because only they know when a
person has said yes. Handles stay open from the first signal to the last, so an escalation
to SIGKILL goes to the very process that got SIGTERM.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import TracebackType

import psutil

from ..roles import docker_api
from . import audit
from .container import Stopper, stop_container
from .graceful import grace_period, in_flight, message
from .handles import Opener, ProcessHandle, StaleProcess, open_handle, wait_exited
from .plan import SIGNALS, KillPlan, KillResult, Refusal, signal_name
from .refusals import permission_denied, reused

DEFAULT_TIMEOUT = 3.0


class KillSession:
    """One kill of one plan. Use as a context manager so handles are always closed."""

    def __init__(self, plan: KillPlan, opener: Opener = open_handle) -> None:
        self.plan = plan
        self._open = opener
        self._handles: dict[int, ProcessHandle] = {}
        self._watch: dict[int, ProcessHandle] = {}  # followers: waited for, never signalled
        self._signals: dict[int, str] = {}
        self._refused: list[Refusal] = list(plan.refused)
        self._exited: list[int] = list(plan.gone)
        self._already: list[int] = list(plan.gone)
        self._escalated = False
        self._signalled_at: float | None = None

    def __enter__(self) -> KillSession:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def running(self) -> tuple[int, ...]:
        """Signalled targets not yet seen to exit."""
        return tuple(p for p in self._signals if p not in self._exited)

    def send(self, signum: int = signal.SIGTERM) -> None:
        """Signal every target that is neither refused nor gone; never raises for a target.
        The default SIGTERM gives way to the plan's own signal (uwsgi: SIGINT)."""
        named = self.plan.stop.signal if self.plan.stop is not None else None
        if signum == signal.SIGTERM and named is not None and named in SIGNALS:
            signum = SIGNALS[named]
        done = {r.pid for r in self._refused} | set(self._exited)
        if self._signalled_at is None:
            self._signalled_at = process_clock()
        targets = {t.pid: t for t in self.plan.targets}
        promoted = [p for p in self._handles if p not in targets]  # stop_survivors' followers
        for pid in [*targets, *promoted]:
            if pid in done:
                continue
            target = targets.get(pid)
            try:
                handle = self._handles.get(pid)
                if handle is None and target is not None:
                    handle = self._handles[pid] = self._open(pid, target.started)
                if handle is None:
                    continue
                audit.record(self.plan, f"SIG{signal_name(signum)}", pid=pid)
                handle.send(signum)
            except ProcessLookupError:
                self._gone(pid, already=pid not in self._signals)
                continue
            except PermissionError:
                user = target.user if target is not None else None
                self._refused.append(Refusal(pid, permission_denied(pid, user)))
                continue
            except StaleProcess:
                self._refused.append(Refusal(pid, reused(pid)))
                continue
            if pid in self._signals and signum == signal.SIGKILL:
                self._escalated = True
            self._signals[pid] = signal_name(signum)
        self._watch_followers()

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, ...]:
        """Wait for the signalled targets, then for their followers; return who still runs."""
        deadline = time.monotonic() + timeout
        handles = [self._handles[p] for p in self.running]
        for pid in sorted(wait_exited(handles, timeout)):
            self._gone(pid)
        # Followers are waited for once their masters are gone, and always looked at: a
        # worker that already exited must never be reported as still running.
        left = max(0.0, deadline - time.monotonic()) if not self.running else 0.0
        waiting = [h for p, h in self._watch.items() if p not in self._exited]
        for pid in sorted(wait_exited(waiting, left)):
            self._exited.append(pid)
        return self.still_running()

    def stop_survivors(self, signum: int) -> tuple[int, ...]:
        """Once every target is gone, signal the followers still alive: a server that forks
        after listen() (php -S workers) leaves its workers holding the port when its master
        exits. They hold the plan's socket, so they are the plan's to stop; their handles
        were opened (with their start times) when the master was signalled."""
        if self.running:
            return ()
        survivors = tuple(p for p in self._watch if p not in self._exited)
        for pid in survivors:
            try:
                audit.record(self.plan, f"SIG{signal_name(signum)}", pid=pid)
                self._watch[pid].send(signum)
            except ProcessLookupError:
                self._gone(pid)
                continue
            except (PermissionError, StaleProcess):
                continue  # the port check afterwards still names it
            self._signals[pid] = signal_name(signum)
            self._handles[pid] = self._watch.pop(pid)
        return survivors

    def graceful(self) -> tuple[int, float] | None:
        """(requests in flight, grace period) while the still-running targets and their
        followers finish requests after SIGTERM; None if nothing is in flight."""
        if not self.running or "KILL" in self._signals.values():
            return None
        family = [*self.running, *(p for p in self._watch if p not in self._exited)]
        requests = in_flight(family, self.plan.port)
        if not requests:
            return None
        argv = next((t.cmdline for t in self.plan.targets if t.pid in self.running), ())
        return requests, grace_period(argv)

    def still_running(self) -> tuple[int, ...]:
        followers = tuple(p for p in self._watch if p not in self._exited)
        return self.running + followers if self._signals else self.running

    def result(self) -> KillResult:
        return KillResult(
            plan=self.plan,
            signals=dict(self._signals),
            exited=tuple(self._exited),
            still_running=self.still_running(),
            refused=tuple(self._refused),
            escalated=self._escalated,
            already_exited=tuple(self._already),
            signalled_at=self._signalled_at,
        )

    def close(self) -> None:
        for handle in [*self._handles.values(), *self._watch.values()]:
            handle.close()
        self._handles.clear()
        self._watch.clear()

    def _gone(self, pid: int, already: bool = False) -> None:
        if pid not in self._exited:
            self._exited.append(pid)
            if already:
                self._already.append(pid)

    def _watch_followers(self) -> None:
        """Pre-fork workers are stopped by their master; watch them so the result can say
        whether one survived (it would still hold the port)."""
        if not self._signals:
            return
        started = {r.pid: r.started for r in self.plan.roles}
        for pid in self.plan.followers:
            if pid in self._watch:
                continue
            try:
                self._watch[pid] = self._open(pid, started.get(pid))
            except ProcessLookupError:
                self._gone(pid)
            except (PermissionError, StaleProcess):
                pass  # not ours to watch; the port check afterwards still sees it


def process_clock() -> float:
    """Now, on the clock process start times are read on (psutil: boot time + ticks since
    boot), so "started after the signal" compares like with like; time.time() can be a
    second off it, since the boot time is whole seconds."""
    try:
        with open("/proc/uptime") as fh:
            return psutil.boot_time() + float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return time.time()


def run_kill(
    plan: KillPlan,
    signum: int = signal.SIGTERM,
    timeout: float | None = None,
    *,
    force: bool = False,
    opener: Opener = open_handle,
    on_escalate: Callable[[tuple[int, ...]], bool] | None = None,
    on_graceful: Callable[[str], object] | None = None,
    stopper: Stopper = docker_api.stop,
) -> KillResult:
    """The whole plan without a person in the loop, whatever its kind. Signals: signal,
    wait (longer while workers finish requests in flight, which `on_graceful` is told), and
    SIGKILL the survivors if `force` (or `on_escalate(survivors)` says yes). A container:
    stopped through the Docker API (`stopper`). A service or a setting: nothing is done,
    and the result says what to run instead. `timeout`: the person's --timeout, or None:
    DEFAULT_TIMEOUT for signals, the container's own StopTimeout for a container."""
    if plan.how == "docker":
        return stop_container(plan, stopper, timeout)
    if plan.how in ("service", "setting"):
        return KillResult(plan, {}, (), (), plan.refused)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    with KillSession(plan, opener) as session:
        session.send(signum)
        session.wait(timeout)
        draining = session.graceful()
        if draining is not None and not force:  # --force: the person chose not to wait
            if on_graceful is not None:
                on_graceful(message(*draining))
            session.wait(draining[1])
        if session.stop_survivors(signum):  # workers that outlived their master
            session.wait(timeout)
        survivors = session.running
        if survivors and signum != signal.SIGKILL and (
            force or (on_escalate is not None and on_escalate(survivors))
        ):
            session.send(signal.SIGKILL)
            session.wait(timeout)
        return session.result()
