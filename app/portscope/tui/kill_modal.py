"""`k`: the kill dialog. Confirm -> SIGTERM -> wait -> (ask again) SIGKILL -> what holds the
port now. Every step that touches processes runs in a thread worker, so the UI never blocks.

The host pushes it with the targets captured from the selected row (PID, start time), never
a row index; the planner re-checks each one, so a PID reused meanwhile is refused.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..core.kill import wording
from ..core.kill.after import settle_after
from ..core.kill.plan import SIGNALS, After, Identity, KillPlan, KillResult
from ..core.kill.session import DEFAULT_TIMEOUT, KillSession
from ..core.kill.targets import plan_kill
from ..core.model import Proto, Snapshot

Stage = Literal["planning", "confirm", "signalling", "escalate", "done", "closed"]
Planner = Callable[..., KillPlan]


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """What the dialog dismisses with once something was signalled (None: cancelled)."""

    result: KillResult
    after: After


class KillModal(ModalScreen[KillOutcome | None]):
    # DEFAULT_CSS, not portscope.tcss: the dialog must look the same in any host app that
    # pushes it (the main app, the tests' minimal host).
    DEFAULT_CSS = """
    KillModal {
        align: center middle;
    }
    KillModal > #kill-box {
        width: 84;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: round $error;
        background: $surface;
        padding: 0 1;
    }
    KillModal #kill-title {
        text-style: bold;
        margin-bottom: 1;
    }
    KillModal #kill-scroll {
        height: auto;
    }
    KillModal #kill-keys {
        dock: bottom;
        margin-top: 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "confirm", "Yes", id="kill.confirm"),
        Binding("n,escape", "cancel", "No", id="kill.cancel"),
    ]

    def __init__(
        self,
        targets: Sequence[Identity],
        port: int,
        proto: Proto = "tcp",
        *,
        signal_name: str = "TERM",
        timeout: float = DEFAULT_TIMEOUT,
        all_holders: bool = False,
        snapshot: Snapshot | None = None,
        planner: Planner = plan_kill,
        session: Callable[[KillPlan], KillSession] = KillSession,
        check: Callable[[KillResult], After] = settle_after,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`targets`: the row's `Holder.identity` pairs; no targets means the row's owner is
        hidden. `snapshot` (the one the row came from) lets the dialog list each target's
        ports without a slow psutil scan. planner/session/check/clock are for tests."""
        super().__init__()
        self.identities = tuple(targets)
        self.port = port
        self.proto: Proto = proto
        self.signal_name = signal_name
        self.timeout = timeout
        self.all_holders = all_holders
        self._snapshot = snapshot
        self._planner = planner
        self._new_session = session
        self._check = check
        self._clock = clock
        self.stage: Stage = "planning"
        self.plan: KillPlan | None = None
        self.outcome: KillOutcome | None = None
        self._session: KillSession | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Static(f"Stop what holds {self.proto} port {self.port}?", id="kill-title")
            yield Static("", id="kill-keys")  # docked: the answer keys stay in sight
            with VerticalScroll(id="kill-scroll"):
                yield Static(Text("Looking at the processes…"), id="kill-body")

    def on_mount(self) -> None:
        self._in_thread(self._make_plan)

    # -- keys ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While signals are in flight there is nothing to answer: the keys do nothing.
        if self.stage == "planning":
            return action == "cancel"
        return self.stage in ("confirm", "escalate", "done")

    def action_confirm(self) -> None:
        if self.stage == "confirm":
            if self.plan is None or not self.plan.targets:
                self.dismiss(None)
                return
            self._session = self._new_session(self.plan)
            self._show_busy(f"Sending SIG{self.signal_name}…")
            self._in_thread(self._first_signal)
        elif self.stage == "escalate":
            self._show_busy("Sending SIGKILL…")
            self._in_thread(self._escalate)
        elif self.stage == "done":
            self.dismiss(self.outcome)

    def action_cancel(self) -> None:
        if self.stage in ("planning", "confirm"):
            self.stage = "closed"
            self.dismiss(None)  # nothing was signalled
        elif self.stage == "escalate":
            self._show_busy("Checking the port…")
            self._in_thread(self._finish)
        elif self.stage == "done":
            self.dismiss(self.outcome)

    # -- thread side: never touches widgets, hands results back with call_from_thread ----

    def _make_plan(self) -> None:
        plan = self._planner(
            self.identities, self.port, self.proto,
            all_holders=self.all_holders, owner_hidden=not self.identities,
            snapshot=self._snapshot,
        )
        self.app.call_from_thread(self._show_plan, plan)

    def _first_signal(self) -> None:
        session = self._require_session()
        signum = SIGNALS[self.signal_name]
        session.send(signum)
        session.wait(self.timeout)
        survivors = session.running
        if survivors and signum != signal.SIGKILL:
            self.app.call_from_thread(self._ask_escalation, survivors)
        else:
            self._finish()

    def _escalate(self) -> None:
        session = self._require_session()
        session.send(signal.SIGKILL)
        session.wait(self.timeout)
        self._finish()

    def _finish(self) -> None:
        session = self._require_session()
        result = session.result()
        session.close()
        after = self._check(result)
        self.app.call_from_thread(self._show_outcome, KillOutcome(result, after))

    def _require_session(self) -> KillSession:
        assert self._session is not None, "a signal step ran before confirmation"
        return self._session

    def _in_thread(self, step: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                step()
            except Exception as exc:  # shown inline: a dialog must never crash the app
                self.app.call_from_thread(self._show_error, exc)

        self.run_worker(guarded, thread=True, group="kill", exit_on_error=False)

    # -- UI side -----------------------------------------------------------------------

    def _show_plan(self, plan: KillPlan) -> None:
        if self.stage == "closed":  # cancelled while the plan was being made
            return
        self.plan = plan
        self._set("confirm", self._plan_text(plan))
        if plan.targets:
            sig = f"SIG{self.signal_name}"
            self._keys(f"y/Enter: send {sig}    n/Esc: cancel")
        else:
            self._keys("Nothing here can be signalled.    Enter/Esc: close")

    def _ask_escalation(self, survivors: tuple[int, ...]) -> None:
        assert self.plan is not None
        names = {t.pid: t.name for t in self.plan.targets}
        who = ", ".join(f"PID {p} ({names.get(p, '?')})" for p in survivors)
        body = Text()
        body.append(f"Still running {self.timeout:g} s after SIG{self.signal_name}: ")
        body.append(who, style="bold")
        body.append(
            "\n\nSend SIGKILL? It cannot be caught or ignored: the process gets no chance "
            "to clean up (temporary files, locks, unsaved data)."
        )
        self._set("escalate", body)
        self._keys("y/Enter: send SIGKILL    n/Esc: leave it running")

    def _show_outcome(self, outcome: KillOutcome) -> None:
        self.outcome = outcome
        body = Text("\n".join(wording.outcome_lines(outcome.result)))
        body.append("\n\n")
        body.append(outcome.after.summary, style="bold green" if outcome.after.free else "bold")
        self.query_one("#kill-title", Static).update(f"{self.proto} port {self.port}")
        self._set("done", body)
        self._keys("Enter/Esc: close")

    def _show_error(self, exc: Exception) -> None:
        self._set("done", Text(f"kill failed: {exc}", style="bold red"))
        self._keys("Enter/Esc: close")

    def _show_busy(self, message: str) -> None:
        self.stage = "signalling"
        self._keys(message)

    def _plan_text(self, plan: KillPlan) -> RenderableType:
        """One label/value grid per target (long command lines wrap under their value),
        then notes, refusals and the signal that y sends."""
        now = self._clock()
        parts: list[RenderableType] = []
        for target in plan.targets:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold cyan", no_wrap=True)
            grid.add_column(overflow="fold")
            for label, value in wording.target_fields(target, now):
                grid.add_row(label, value)
            parts += [grid, Text()]
        notes = Text()
        for pid in plan.gone:
            notes.append(f"PID {pid} has already exited\n")
        note = wording.plan_note(plan)
        if note:
            notes.append(f"{note}\n")
        for refusal in plan.refused:
            notes.append("not signalled: ", style="bold red")
            notes.append(f"{refusal.reason}\n")
        if plan.targets:
            gap = "\n" if notes.plain else ""
            notes.append(
                f"{gap}Signal: SIG{self.signal_name}, then up to {self.timeout:g} s to exit; "
                "if it is still running you are asked before SIGKILL."
            )
        notes.rstrip()
        if notes.plain:
            parts.append(notes)
        elif not parts:
            parts.append(Text("Nothing holds the port any more."))
        return Group(*parts)

    def _set(self, stage: Stage, body: RenderableType) -> None:
        self.stage = stage
        self.query_one("#kill-body", Static).update(body)

    def _keys(self, hint: str) -> None:
        self.query_one("#kill-keys", Static).update(hint)

    def on_unmount(self) -> None:
        if self._session is not None:
            self._session.close()
