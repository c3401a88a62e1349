"""`k`: the kill dialog. Confirm -> SIGTERM -> wait -> (ask again) SIGKILL -> what holds the
port now. Every step that touches processes runs in a thread worker, so the UI never blocks.

The host pushes it with the targets captured from the selected row (PID, start time), never
a row index; the planner re-checks each one, so a PID reused meanwhile is refused.

Names, users and command lines are the target's own choice: each is escaped and set as plain
Text. A command line longer than two lines is cut with "…" so the PID, user, uptime, what it
holds and the answer keys stay in sight; the details pane has it in full. The keys are
bound per stage (check_action), so the footer lists exactly the keys that do something now.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from ..core.kill import wording
from ..core.kill.after import settle_after
from ..core.kill.container import stop_container
from ..core.kill.graceful import message
from ..core.kill.plan import SIGNALS, After, Identity, KillPlan, KillResult
from ..core.kill.session import DEFAULT_TIMEOUT, KillSession
from ..core.kill.targets import plan_kill
from ..core.model import Proto, Snapshot
from ..core.record import record
from ..core.untrusted import fit, shown

_NOTE_STYLES = {"command": "bold cyan", "refused": "red"}
NOTE_LINES = 3  # at most this many lines of the dialog's width per note
Stage = Literal["planning", "confirm", "signalling", "escalate", "done", "closed"]
Planner = Callable[..., KillPlan]

FIELD_LINES = 2  # a value (a command line, the ports held) takes at most this many lines
LABEL_CELLS = 8 + 2  # the widest label ("children") and the grid's padding
FALLBACK_VALUE_CELLS = 68  # value width before the dialog has been laid out (84 wide)
# `K`: what SIGKILL as the first signal means, said before y sends it.
FORCE_WORDING = (
    "Force-kill: SIGKILL cannot be caught; the process gets no chance to clean up "
    "(temporary files, locks, unsaved data, requests in flight)."
)


@record
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

    # One key may mean different things by stage; check_action enables one action per key.
    # key_display: the footer shows one key per action, whichever was bound first otherwise.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "confirm", "Yes", key_display="y", id="kill.confirm"),
        Binding("n,escape,q", "cancel", "No", key_display="n", id="kill.cancel"),
        Binding("escape,enter,q,y", "close", "Close", key_display="esc", id="kill.close"),
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
        owner_hidden: bool | None = None,
        snapshot: Snapshot | None = None,
        planner: Planner = plan_kill,
        plan: KillPlan | None = None,
        session: Callable[[KillPlan], KillSession] = KillSession,
        check: Callable[[KillResult], After] = settle_after,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`targets`: the row's `Holder.identity` pairs; no targets means the row's owner is
        hidden. `snapshot` (the one the row came from) lets the dialog list each target's
        ports without a slow psutil scan. `plan`: the plan for these targets, already made
        (the main screen starts it on the key), shown as the dialog mounts.
        planner/session/check/clock are for tests."""
        super().__init__()
        self.identities = tuple(targets)
        self.port = port
        self.proto: Proto = proto
        self.signal_name = signal_name
        self.timeout = timeout
        self.all_holders = all_holders
        # None: no targets means a hidden owner (how the dialog was first used); the main
        # screen says which, since a TIME_WAIT-only port has no targets and no owner either.
        self.owner_hidden = not self.identities if owner_hidden is None else owner_hidden
        self._snapshot = snapshot
        self._planner = planner
        self._new_session = session
        self._check = check
        self._clock = clock
        self.stage: Stage = "planning"
        self.plan: KillPlan | None = None
        self.outcome: KillOutcome | None = None
        self._session: KillSession | None = None
        self._given = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Static(Text(self._title()), id="kill-title")
            yield Static(Text(), id="kill-keys")  # docked: the answer keys stay in sight
            with VerticalScroll(id="kill-scroll"):
                yield Static(Text("Looking at the processes…"), id="kill-body")
        yield Footer()

    @property
    def force(self) -> bool:
        """SIGKILL first (`K`): no SIGTERM, no grace period, nothing to escalate to."""
        return self.signal_name == "KILL"

    def _title(self, plan: KillPlan | None = None) -> str:
        docker = plan is not None and plan.how == "docker"
        verb = "Force-kill" if self.force and not docker else "Stop"
        return f"{verb} what holds {self.proto} port {self.port}?"

    def on_mount(self) -> None:
        if self._given is not None:
            self._show_plan(self._given)
        else:
            self._in_thread(self._make_plan)

    # -- keys ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which of confirm/cancel/close a key means now. While signals are in flight there
        is nothing to answer: no key does anything, and the footer shows none."""
        if action not in ("confirm", "cancel", "close"):
            return True  # scrolling the body
        return action in self._answers()

    def _answers(self) -> tuple[str, ...]:
        if self.stage == "planning":
            return ("cancel",)
        if self.stage == "confirm":
            actionable = self.plan is not None and wording.needs_confirmation(self.plan)
            return ("confirm", "cancel") if actionable else ("close",)
        if self.stage == "escalate":
            return ("confirm", "cancel")
        if self.stage == "done":
            return ("close",)
        return ()

    def _set_stage(self, stage: Stage) -> None:
        self.stage = stage
        self.refresh_bindings()  # the footer follows the stage

    def action_confirm(self) -> None:
        if self.stage == "confirm" and self.plan is not None and self.plan.how == "docker":
            if wording.needs_confirmation(self.plan):
                self._show_busy("Stopping the container…")
                self._in_thread(self._stop_container)
        elif self.stage == "confirm" and self.plan is not None and self.plan.targets:
            self._session = self._new_session(self.plan)
            self._show_busy(f"Sending SIG{self.signal_name}…")
            self._in_thread(self._first_signal)
        elif self.stage == "escalate":
            self._show_busy("Sending SIGKILL…")
            self._in_thread(self._escalate)

    def action_cancel(self) -> None:
        if self.stage in ("planning", "confirm"):
            self._set_stage("closed")
            self.dismiss(None)  # nothing was signalled
        elif self.stage == "escalate":
            self._show_busy("Checking the port…")
            self._in_thread(self._finish)

    def action_close(self) -> None:
        if self.stage == "confirm":  # nothing could be signalled
            self._set_stage("closed")
            self.dismiss(None)
        elif self.stage == "done":
            self._set_stage("closed")
            self.dismiss(self.outcome)

    # -- thread side: never touches widgets, hands results back with call_from_thread ----

    def _make_plan(self) -> None:
        plan = self._planner(
            self.identities, self.port, self.proto,
            all_holders=self.all_holders, owner_hidden=self.owner_hidden,
            snapshot=self._snapshot,
        )
        self.app.call_from_thread(self._show_plan, plan)

    def _first_signal(self) -> None:
        session = self._require_session()
        signum = SIGNALS[self.signal_name]
        session.send(signum)
        session.wait(self.timeout)
        draining = session.graceful()
        if draining is not None:  # workers finishing requests: wait, do not offer SIGKILL
            self.app.call_from_thread(self._keys, message(*draining).capitalize() + "…")
            session.wait(draining[1])
        if session.stop_survivors(signum):  # workers that outlived their master
            session.wait(self.timeout)
        survivors = session.running
        if survivors and signum != signal.SIGKILL:
            self.app.call_from_thread(self._ask_escalation, survivors)
        else:
            self._finish()

    def _stop_container(self) -> None:
        assert self.plan is not None
        result = stop_container(self.plan)
        after = self._check(result)
        self.app.call_from_thread(self._show_outcome, KillOutcome(result, after))

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
        self.query_one("#kill-title", Static).update(Text(self._title(plan)))
        self._set("confirm", self._plan_text(plan))
        if plan.how == "docker" and wording.needs_confirmation(plan):
            self._keys("y/Enter: stop the container    n/Esc/q: cancel")
        elif plan.targets:
            sig = f"SIG{self.signal_name}"
            self._keys(f"y/Enter: send {sig}    n/Esc/q: cancel")
        else:
            self._keys("Nothing here can be signalled.    Enter/Esc/q: close")

    def _ask_escalation(self, survivors: tuple[int, ...]) -> None:
        assert self.plan is not None
        names = {t.pid: shown(t.name) for t in self.plan.targets}
        who = ", ".join(f"PID {p} ({names.get(p, '?')})" for p in survivors)
        body = Text()
        body.append(f"Still running {self.timeout:g} s after SIG{self.signal_name}: ")
        body.append(who, style="bold")
        body.append(
            "\n\nSend SIGKILL? It cannot be caught or ignored: the process gets no chance "
            "to clean up (temporary files, locks, unsaved data)."
        )
        self._set("escalate", body)
        self._keys("y/Enter: send SIGKILL    n/Esc/q: leave it running")

    def _show_outcome(self, outcome: KillOutcome) -> None:
        self.outcome = outcome
        lines = wording.outcome_lines(outcome.result)
        body = Text("\n".join(shown(line) for line in lines))
        body.append("\n\n")
        style = "bold green" if outcome.after.free else "bold"
        body.append(shown(outcome.after.summary), style=style)
        self.query_one("#kill-title", Static).update(Text(f"{self.proto} port {self.port}"))
        self._set("done", body)
        self._keys("Enter/Esc/q: close")

    def _show_error(self, exc: Exception) -> None:
        message = shown(str(exc) or type(exc).__name__)
        self._set("done", Text(f"kill failed: {message}", style="bold red"))
        self._keys("Enter/Esc/q: close")

    def _show_busy(self, message: str) -> None:
        self._set_stage("signalling")
        self._keys(message)

    def _plan_text(self, plan: KillPlan) -> RenderableType:
        """One label/value grid per target (long command lines wrap under their value),
        then notes, refusals and the signal that y sends."""
        now = self._clock()
        width = self._value_cells()
        parts: list[RenderableType] = []
        for target in plan.targets:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold cyan", no_wrap=True)
            grid.add_column(overflow="fold")
            for label, value in wording.target_fields(target, now):
                # Text, not str: a Rich table parses a str cell as markup.
                grid.add_row(Text(label), self._field(shown(value), width))
            parts += [grid, Text()]
        notes = Text()
        for kind, line in wording.plan_notes(plan):  # what the CLI prompt says, word for word
            # A note quoting a huge argv is cut to a few lines: the targets stay on screen.
            text = shown(line) if kind == "command" else fit(shown(line), NOTE_LINES * width)
            notes.append(f"{text}\n", style=_NOTE_STYLES.get(kind, ""))
        if plan.how == "docker" and wording.needs_confirmation(plan):
            notes.append("\n" + shown(wording.question(plan, self.signal_name)))
        if plan.targets and self.force and plan.how != "docker":
            gap = "\n" if notes.plain else ""
            notes.append(f"{gap}{FORCE_WORDING}", style="bold yellow")
        elif plan.targets:
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

    def _field(self, value: str, width: int) -> Text:
        """`value` wrapped as the grid would wrap it, kept to FIELD_LINES lines; the last
        one ends in "…" when there was more."""
        head = fit(value, (FIELD_LINES + 1) * width)  # wrap a bounded piece of 100 kB argv
        lines = [line.plain for line in Text(head).wrap(self.app.console, width)]
        if len(lines) <= FIELD_LINES:
            return Text(value)
        kept = [*lines[: FIELD_LINES - 1], fit(lines[FIELD_LINES - 1].rstrip() + "…", width)]
        return Text("\n".join(kept), no_wrap=True, overflow="ellipsis")

    def _value_cells(self) -> int:
        """Cells a value column gets in the dialog as laid out now."""
        width = self.query_one("#kill-body", Static).content_region.width
        return width - LABEL_CELLS if width > LABEL_CELLS + 10 else FALLBACK_VALUE_CELLS

    def _set(self, stage: Stage, body: RenderableType) -> None:
        self._set_stage(stage)
        self.query_one("#kill-body", Static).update(body)

    def _keys(self, hint: str) -> None:
        self.query_one("#kill-keys", Static).update(Text(hint))

    def on_unmount(self) -> None:
        if self._session is not None:
            self._session.close()
