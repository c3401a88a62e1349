"""A frozen kill of the demo machine's pre-fork gunicorn (tui_fakes.demo_snapshot), for the
kill dialog's snapshot tests and the README screenshots. Nothing here signals anything: a
real kill is tested with real processes in test_kill_modal.py."""

from __future__ import annotations

import signal

from portscope.core.diagnose.verdict import TimeWaitInfo, Verdict
from portscope.core.kill.after import describe
from portscope.core.kill.plan import After, KillPlan, KillResult, Refusal, Target
from portscope.core.kill.session import KillSession
from portscope.tui.kill_modal import KillModal
from tui.tui_fakes import DEMO_MASTER, DEMO_WORKERS, HOSTILE_PIDS, T0

NOW = T0.timestamp()
WORKER_PIDS = tuple(w.pid for w in DEMO_WORKERS)
MASTER = Target(
    pid=DEMO_MASTER.pid, started=DEMO_MASTER.started, name=DEMO_MASTER.name,
    user=DEMO_MASTER.user, cmdline=DEMO_MASTER.cmdline, ppid=1, children=WORKER_PIDS,
    ports=("tcp 0.0.0.0:8080",),
)
FROZEN_PLAN = KillPlan(
    port=8080, proto="tcp", targets=(MASTER,), followers=WORKER_PIDS,
    refused=(Refusal(1, "PID 1 is the init system; if it holds the socket (socket "
                        "activation), stop the unit with your service manager instead"),),
)


def frozen_planner(*_: object, **__: object) -> KillPlan:
    return FROZEN_PLAN


class FrozenSession(KillSession):
    """Pretends the master and its workers exited after SIGTERM; signals nothing."""

    def send(self, signum: int = signal.SIGTERM) -> None:
        pass

    def wait(self, timeout: float = 0) -> tuple[int, ...]:
        return ()

    @property
    def running(self) -> tuple[int, ...]:
        return ()

    def result(self) -> KillResult:
        return KillResult(
            plan=self.plan, signals={MASTER.pid: "TERM"},
            exited=(MASTER.pid, *WORKER_PIDS), still_running=(), refused=self.plan.refused,
        )


def frozen_check(result: KillResult) -> After:
    """The port as the probe would find it after a busy server died: TIME_WAIT left."""
    verdict = Verdict(
        port=8080, address="0.0.0.0", proto="tcp", kind="time_wait", attempts=(),
        time_wait=TimeWaitInfo(count=214, expires_in=58.0, reuseaddr_fixes=False),
    )
    return After(summary=describe(verdict, result), free=False, verdict=verdict)


def frozen_modal(signal_name: str = "TERM") -> KillModal:
    return KillModal(
        [DEMO_MASTER.identity], 8080, planner=frozen_planner, session=FrozenSession,
        check=frozen_check, clock=lambda: NOW, signal_name=signal_name,
    )


def hostile_target(pid: int = HOSTILE_PIDS[1]) -> Target:
    """A target whose name, user and 13,000-cell command line a hostile user chose."""
    from tui.tui_fakes import hostile_holder

    h = hostile_holder(pid, long=True)
    assert h.started is not None
    return Target(
        pid=h.pid, started=h.started, name=h.name, user=h.user, cmdline=h.cmdline, ppid=1,
        ports=("tcp 127.0.0.1:4445",),
    )


def hostile_plan(*_: object, **__: object) -> KillPlan:
    return KillPlan(port=4445, proto="tcp", targets=(hostile_target(),))


class HostileSession(FrozenSession):
    """Pretends the hostile target exited; signals nothing."""

    def result(self) -> KillResult:
        pid = self.plan.targets[0].pid
        return KillResult(
            plan=self.plan, signals={pid: "TERM"}, exited=(pid,), still_running=(), refused=(),
        )
