"""The kill dialog in a minimal host app: Pilot presses `k`, then answers it. The processes
are real and started by the test; only the snapshot pictures use frozen data.

Update the pictures after a deliberate change with
`pytest tests/tui/test_kill_modal.py --snapshot-update`, and look at them before committing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.pilot import Pilot
from textual.widgets import Static

from portscope.core.collect import default_collector
from portscope.core.kill.after import settle_after
from portscope.core.kill.plan import KillPlan
from portscope.core.kill.session import KillSession
from portscope.core.kill.targets import holders_on
from portscope.tui.kill_modal import KillModal, KillOutcome
from support import ROOT_LISTENER, TERM_IGNORING_LISTENER, exited
from tui.kill_fakes import (
    FROZEN_PLAN,
    NOW,
    FrozenSession,
    HostileSession,
    frozen_check,
    frozen_modal,
    frozen_planner,
    hostile_plan,
)
from tui.screen_checks import assert_safe_screen
from tui.tui_fakes import HOSTILE_PIDS, static_text, until

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]
SnapCompare = Callable[..., bool]


class Host(App[None]):
    """Stands in for the main app: `k` pushes the dialog the way its row action will."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("k", "kill", "Kill")]

    def __init__(self, make: Callable[[], KillModal]) -> None:
        super().__init__()
        self._make = make
        self.modal: KillModal | None = None
        self.results: list[KillOutcome | None] = []

    def compose(self) -> ComposeResult:
        yield Static("the port table would be here")

    def action_kill(self) -> None:
        self.modal = self._make()
        self.push_screen(self.modal, callback=self.results.append)


def live_modal(port: int, **kw: Any) -> Callable[[], KillModal]:
    """A dialog for the row of `port` as the app would build it: identities captured now."""
    snap = default_collector().collect()
    holders, _ = holders_on(snap, port, "tcp")
    identities = [h.identity for h in holders]
    return lambda: KillModal(
        identities, port, snapshot=snap, check=lambda r: settle_after(r, settle=0), **kw
    )


async def open_dialog(pilot: Pilot[None]) -> KillModal:
    app = pilot.app
    assert isinstance(app, Host)
    await pilot.press("k")
    await until(pilot, lambda: app.modal is not None and app.modal.stage == "confirm")
    assert app.modal is not None
    return app.modal


def body(modal: KillModal) -> str:
    return static_text(modal.query_one("#kill-body", Static))


async def test_k_then_y_stops_the_process_and_says_the_port_is_free(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    app = Host(live_modal(port))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        assert re.search(rf"^PID +{proc.pid}$", body(modal), re.M), body(modal)
        assert f"tcp 127.0.0.1:{port}" in body(modal)
        assert proc.poll() is None  # nothing happens before the answer
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=10)
        assert exited(proc) and proc.returncode == -signal.SIGTERM
        assert f"PID {proc.pid} (python" in body(modal)
        assert f"tcp port {port} is free" in body(modal)
        await pilot.press("enter")
        await until(pilot, lambda: app.results != [])
    outcome = app.results[0]
    assert outcome is not None and outcome.after.free
    assert outcome.result.exited == (proc.pid,)


async def test_k_then_n_signals_nothing(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    sessions: list[KillPlan] = []

    def recording_session(plan: KillPlan) -> KillSession:
        sessions.append(plan)
        return KillSession(plan)

    app = Host(live_modal(int(line), session=recording_session))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dialog(pilot)
        await pilot.press("n")
        await until(pilot, lambda: app.results != [])
    assert app.results == [None]
    assert sessions == []  # no session: no handle opened, no signal sent
    assert proc.poll() is None


async def test_escape_cancels_too(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    app = Host(live_modal(int(line)))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dialog(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: app.results != [])
    assert app.results == [None] and proc.poll() is None


async def test_term_ignoring_process_asks_again_before_sigkill(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    app = Host(live_modal(int(line), timeout=0.3))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "escalate", timeout=10)
        assert f"PID {proc.pid}" in body(modal) and "Send SIGKILL?" in body(modal)
        assert proc.poll() is None  # SIGTERM ignored, SIGKILL not sent without a yes
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "done", timeout=10)
        assert "exited after SIGKILL" in body(modal)
        await pilot.press("escape")
        await until(pilot, lambda: app.results != [])
    assert exited(proc) and proc.returncode == -signal.SIGKILL
    outcome = app.results[0]
    assert outcome is not None and outcome.result.escalated


async def test_no_at_the_second_question_leaves_it_running(spawn: Spawn) -> None:
    proc, line = spawn(TERM_IGNORING_LISTENER)
    app = Host(live_modal(int(line), timeout=0.3))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "escalate", timeout=10)
        await pilot.press("n")
        await until(pilot, lambda: modal.stage == "done", timeout=10)
        assert f"PID {proc.pid} (python" in body(modal)
        assert "still running after SIGTERM" in body(modal)
        assert f"PID {proc.pid} (python" in body(modal).splitlines()[-1]  # still holds it
    assert proc.poll() is None


async def test_escape_while_the_targets_are_looked_up_closes_cleanly() -> None:
    release = threading.Event()
    planned: list[KillPlan] = []

    def slow_planner(*args: Any, **kw: Any) -> KillPlan:
        release.wait(5)
        planned.append(FROZEN_PLAN)
        return FROZEN_PLAN

    app = Host(lambda: KillModal([(4242, 1.0)], 8000, planner=slow_planner))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("k")
        await until(pilot, lambda: app.modal is not None and app.modal.stage == "planning")
        await pilot.press("y")  # nothing to answer yet: ignored
        await pilot.press("escape")
        await until(pilot, lambda: app.results != [])
        release.set()
        await until(pilot, lambda: planned != [])
        await pilot.pause()
        assert app.modal is not None and app.modal.stage == "closed"
    assert app.results == [None]


async def test_row_without_visible_owner_is_refused_with_a_sudo_hint() -> None:
    app = Host(lambda: KillModal([], 8000))
    async with app.run_test(size=(100, 40)) as pilot:
        modal = await open_dialog(pilot)
        assert "sudo" in body(modal)
        await pilot.press("y")  # nothing to confirm: y just closes
        await until(pilot, lambda: app.results != [])
    assert app.results == [None]


# -- pictures, with frozen data and a frozen clock ----------------------------------------

def at_stage(*keys: str, stage: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, Host)
        await pilot.press("k", *keys)
        await until(pilot, lambda: app.modal is not None and app.modal.stage == stage)
        await pilot.pause()

    return run_before


def test_confirmation_picture(snap_compare: SnapCompare) -> None:
    assert snap_compare(
        Host(frozen_modal), terminal_size=(100, 32), run_before=at_stage(stage="confirm")
    )


def test_force_kill_confirmation_picture(snap_compare: SnapCompare) -> None:
    """`K`: the same dialog, its own title and the SIGKILL wording in place of the grace."""
    assert snap_compare(
        Host(partial(frozen_modal, "KILL")), terminal_size=(100, 32),
        run_before=at_stage(stage="confirm"),
    )


def test_outcome_picture(snap_compare: SnapCompare) -> None:
    assert snap_compare(
        Host(frozen_modal), terminal_size=(100, 32), run_before=at_stage("y", stage="done")
    )


# -- keys: q and Escape close at every answer, and the footer promises only working keys --

def answer_keys(modal: KillModal) -> dict[str, str]:
    """key -> action of what the footer would show now (Textual's own active bindings)."""
    return {
        key: active.binding.action
        for key, active in modal.active_bindings.items()
        if active.enabled and active.binding.action in ("confirm", "cancel", "close")
    }


class BlockingSession(FrozenSession):
    """Holds the first signal until released: the dialog is busy meanwhile."""

    release = threading.Event()

    def send(self, signum: int = signal.SIGTERM) -> None:
        BlockingSession.release.wait(10)


async def test_keys_by_stage_and_none_while_busy() -> None:
    BlockingSession.release = threading.Event()
    app = Host(lambda: KillModal(
        [(4180, 1.0)], 8080, planner=frozen_planner, session=BlockingSession,
        check=frozen_check, clock=lambda: NOW,
    ))
    async with app.run_test(size=(100, 32)) as pilot:
        modal = await open_dialog(pilot)
        assert answer_keys(modal) == {
            "y": "confirm", "enter": "confirm", "n": "cancel", "escape": "cancel", "q": "cancel",
        }
        await pilot.press("y")
        await until(pilot, lambda: modal.stage == "signalling")
        assert answer_keys(modal) == {}  # busy: the footer offers nothing ...
        footer = static_text(modal.query_one("#kill-keys", Static))
        assert footer.startswith("Sending SIGTERM")
        await pilot.press("q", "escape", "n")  # ... and no key does anything
        assert modal.stage == "signalling" and app.results == []
        BlockingSession.release.set()
        await until(pilot, lambda: modal.stage == "done")
        closing = {"escape": "close", "enter": "close", "q": "close", "y": "close"}
        assert answer_keys(modal) == closing
        await pilot.press("q")
        await until(pilot, lambda: app.results != [])
    outcome = app.results[0]
    assert outcome is not None and outcome.result.exited[0] == 4180


async def test_q_cancels_at_the_confirmation(spawn: Spawn) -> None:
    proc, line = spawn(ROOT_LISTENER)
    app = Host(live_modal(int(line)))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dialog(pilot)
        await pilot.press("q")
        await until(pilot, lambda: app.results != [])
    assert app.results == [None] and proc.poll() is None


async def test_a_very_long_command_line_is_cut_and_the_other_fields_stay() -> None:
    app = Host(lambda: KillModal(
        [(HOSTILE_PIDS[1], 1.0)], 4445, planner=hostile_plan, session=HostileSession,
        check=frozen_check, clock=lambda: NOW,
    ))
    async with app.run_test(size=(60, 20)) as pilot:
        modal = await open_dialog(pilot)
        await pilot.pause()
        lines = assert_safe_screen(app)
        command = [i for i, line in enumerate(lines) if "command " in line]
        assert command, lines
        uptime = next(i for i, line in enumerate(lines) if "uptime " in line)
        assert uptime - command[0] <= 2 and "…" in lines[uptime - 1]  # two lines, then "…"
        for field in ("PID ", "user ", "holds ", "y/Enter: send SIGTERM", "y Yes", "n No"):
            assert any(field in line for line in lines), (field, lines)
        assert modal.stage == "confirm"
