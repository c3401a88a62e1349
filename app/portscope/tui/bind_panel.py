"""`b`: test-bind a port like a server would, and say why it fails and what to do.

The probe runs in a thread worker (it binds sockets and reads /proc, which can take a while
on a busy machine) and comes back as one message; the screen never blocks. While TIME_WAIT
alone blocks the port, a countdown runs and the port is probed again when it ends.

Everything shown is Text built from escaped strings, never markup: the verdict quotes the
holders' names and an error quotes what was typed (`[/]` in the port field).

The monitor mounts one panel once its first poll is on screen and `reopen`s it for every
`b`: composing and mounting its form took ~25 ms of the ~100 ms from the key to the answer
under load (tests/benchmarks/probe_keys.py). A panel pushed anew works as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, RadioButton, RadioSet, Static

from ..core import inputs
from ..core.collect import Collector
from ..core.diagnose import probe
from ..core.diagnose.advice import bind_sentence, endpoint, numbered_steps
from ..core.diagnose.bind_attempt import Attempt, Bind
from ..core.diagnose.verdict import Verdict
from ..core.model import Proto
from ..core.text import seconds
from ..core.untrusted import shown

Diagnose = Callable[[int, str, Proto], Verdict]

INDENT = "\u00a0"  # a no-break space: Textual's wrapping keeps it at the start of a line
UNKNOWN_EXPIRY_RETRY = 5.0  # seconds between re-probes when the platform gives no timer


def real_diagnose(
    port: int, address: str, proto: Proto, collector: Collector | None = None
) -> Verdict:
    # Left at the default address, the panel also names which of ::, 127.0.0.1, ::1 are
    # taken (a server binding localhost or :: meets those), as `check` does. `collector`:
    # the monitor's own, warm (its owner index is current): no second /proc walk. The
    # panel speaks of TIME_WAIT only when it is the cause, so it is counted only then.
    return probe.diagnose(
        port, address, proto, survey=address == "0.0.0.0", collector=collector,
        count_time_wait=False,
    )


class Field(Input):
    """A text field of the panel that leaves `q` to the panel's Close binding: no port or
    address has a q in it, and `q` closes every dialog."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key != "q" and super().check_consume_key(key, character)


class BindPanel(ModalScreen[None]):
    """Port, address and TCP/UDP in; both attempts, the verdict and the advice out."""

    # q closes too, except in a text field, where Textual lets it type a "q". No footer: the
    # hint line names the keys, and a footer cost ~5 ms of every `b` under load.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", id="bind.close"),
        # Before the focused field sees it (a priority binding): q is never part of a port
        # or an address, and Field leaves it to this binding (check_consume_key).
        Binding("q", "dismiss", "Close", id="bind.close-q", show=False, priority=True),
        Binding("ctrl+r", "probe", "Probe again", id="bind.probe"),
    ]

    DEFAULT_CSS = """
    BindPanel { align: center middle; background: $background; }
    #bind-box {
        width: 96%; max-width: 118; height: 96%; max-height: 40;
        border: round $primary; border-title-style: bold; background: $surface;
        padding: 0 1;
    }
    #bind-form { height: 1; margin: 0 0 1 0; }
    #bind-form Label { padding: 0 1 0 0; }
    #bind-form Input { margin-right: 2; background: $boost; }
    #bind-port { width: 8; }
    #bind-address { width: 1fr; max-width: 28; }
    #bind-reuse { width: auto; margin-left: 1; }
    #bind-proto { layout: horizontal; width: auto; height: 1; }
    #bind-proto RadioButton { width: auto; margin-right: 1; }
    #bind-error { color: $error; height: auto; display: none; }
    #bind-error.-shown { display: block; }
    #bind-attempts { height: auto; }
    .bind-attempt {
        width: 1fr; height: auto; min-height: 4; border: round $panel-lighten-2; padding: 0 1;
    }
    #bind-attempt-1 { margin-left: 1; }
    .bind-attempt.-ok { border: round $success; }
    .bind-attempt.-failed { border: round $error; }
    #bind-verdict { height: auto; padding: 0 1; text-style: bold; }
    #bind-verdict.-free { color: $success; }
    #bind-verdict.-blocked { color: $error; }
    #bind-verdict.-waiting { color: $warning; }
    #bind-countdown { height: auto; padding: 0 1; color: $warning; }
    #bind-countdown.-empty { display: none; }
    #bind-why { margin-top: 1; }
    #bind-body { height: 1fr; }
    #bind-hint { height: 1; color: $text-muted; }
    """

    class Probed(Message):
        """A probe finished (in a worker thread); `generation` drops stale answers."""

        def __init__(self, generation: int, verdict: Verdict | None, error: str | None) -> None:
            super().__init__()
            self.generation = generation
            self.verdict = verdict
            self.error = error

    def __init__(
        self,
        port: int | None,
        proto: Proto = "tcp",
        address: str = "0.0.0.0",
        *,
        diagnose: Diagnose = real_diagnose,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        verdict: Verdict | None = None,
        standby: bool = False,
    ) -> None:
        """`verdict`: the answer for `port`, already probed (the main screen starts the
        probe on the key): shown as the panel mounts, so its first frame has it.
        `standby`: mounted ahead, it shows nothing until `reopen`."""
        super().__init__()
        self.standby = standby
        self._clock = clock
        self._now = now
        self._generation = 0
        self.probes = 0  # how many probes started: tests read it
        self.ready = False
        self._aim(port, proto, address, diagnose, verdict)

    def _aim(
        self, port: int | None, proto: Proto, address: str, diagnose: Diagnose,
        verdict: Verdict | None,
    ) -> None:
        """What this opening probes, and nothing of an earlier one's answer."""
        self._port = port
        self._proto: Proto = proto
        self._address = address
        self._diagnose = diagnose
        self._given = verdict
        self._probing = False
        self.verdict: Verdict | None = None
        self._received_at = 0.0
        self._blocked_since: float | None = None
        self._bind: Bind = "plain"

    def compose(self) -> ComposeResult:
        box = Vertical(id="bind-box")
        box.border_title = Text("Bind test: would a server's bind() succeed?")
        with box:
            with Horizontal(id="bind-form"):
                yield Label(Text("Port"))
                yield Field(
                    "" if self._port is None else str(self._port), id="bind-port",
                    placeholder="8080", compact=True,
                )
                yield Label(Text("Address"))
                yield Field(
                    self._address, id="bind-address", placeholder="0.0.0.0", compact=True
                )
                with RadioSet(id="bind-proto", compact=True):
                    yield RadioButton(
                        "TCP", value=self._proto == "tcp", id="bind-tcp", compact=True
                    )
                    yield RadioButton(
                        "UDP", value=self._proto == "udp", id="bind-udp", compact=True
                    )
                # Which bind to wait for: most frameworks set SO_REUSEADDR, and for them
                # TIME_WAIT left by an old copy that set it too is no obstacle.
                yield Checkbox("SO_REUSEADDR", id="bind-reuse", compact=True)
            yield Static(Text(), id="bind-error")
            with Horizontal(id="bind-attempts"):
                yield Static(Text(), id="bind-attempt-0", classes="bind-attempt")
                yield Static(Text(), id="bind-attempt-1", classes="bind-attempt")
            yield Static(Text(), id="bind-verdict")
            yield Static(Text(), id="bind-countdown")
            with VerticalScroll(id="bind-body"):  # what to do first: it is what users came for
                yield Static(Text(), id="bind-advice")
                yield Static(Text(), id="bind-why")
            yield Static(Text("Enter probes · Ctrl+R probes again · Tab moves · Esc closes"),
                         id="bind-hint")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)
        if not self.standby:
            self._begin()
        self.ready = True  # composed and mounted: `reopen` may be called

    def reopen(
        self,
        port: int,
        proto: Proto = "tcp",
        address: str = "0.0.0.0",
        *,
        diagnose: Diagnose = real_diagnose,
        verdict: Verdict | None = None,
    ) -> None:
        """Make this mounted panel, closed, the one `BindPanel(port, ...)` would be, before
        it is pushed again: the form, the probe and every line shown start afresh."""
        self._aim(port, proto, address, diagnose, verdict)
        self._generation += 1  # an answer still on its way from the last opening is dropped
        with self.prevent(Input.Changed, RadioSet.Changed, Checkbox.Changed):
            self.query_one("#bind-port", Input).value = str(port)
            self.query_one("#bind-address", Input).value = address
            self.query_one("#bind-tcp", RadioButton).value = proto == "tcp"
            self.query_one("#bind-udp", RadioButton).value = proto == "udp"
            self.query_one("#bind-reuse", Checkbox).value = False
        self.query_one("#bind-error", Static).remove_class("-shown")
        if verdict is None:  # else _begin shows it at once and sets every line and class:
            self._clear_answer()  # cleared first, each would be restyled twice (~10 ms)
        self.query_one("#bind-body", VerticalScroll).scroll_home(animate=False)
        self.set_focus(None)  # pushed, the screen focuses its first field, as a new one does
        self._begin()

    def _clear_answer(self) -> None:
        for box in self.query(".bind-attempt").results(Static):
            box.border_title = None
            box.update(Text())
            box.remove_class("-ok", "-failed")
        verdict_line = self.query_one("#bind-verdict", Static)
        verdict_line.remove_class("-free", "-blocked", "-waiting")
        for selector in ("#bind-verdict", "#bind-why", "#bind-advice", "#bind-countdown"):
            self._set_text(selector, "")

    def _begin(self) -> None:
        """Show the answer given, or start the first probe (or ask for a port)."""
        if self._port is None:
            self._set_text("#bind-verdict", "Type a port and press Enter.")
            self.query_one("#bind-port", Input).focus()
        elif self._given is not None:
            self.probes += 1
            self._generation += 1
            self.on_bind_panel_probed(self.Probed(self._generation, self._given, None))
        else:
            self.action_probe()

    # -- input ---------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_probe()

    @property
    def bind(self) -> Bind:
        """The bind the verdict and the countdown are about (the form's choice)."""
        return self._bind

    @on(Checkbox.Changed, "#bind-reuse")
    def _bind_changed(self, event: Checkbox.Changed) -> None:
        self._bind = "reuseaddr" if event.value else "plain"
        if self.verdict is not None:  # the same answer, read for the other bind
            self._show(self.verdict, self.verdict)

    @on(RadioSet.Changed)
    def _proto_changed(self, event: RadioSet.Changed) -> None:
        self._proto = "udp" if event.pressed.id == "bind-udp" else "tcp"
        self.action_probe()

    def action_probe(self) -> None:
        """Validate the form; probe only when it is valid, else show why inline."""
        form = self._read_form()
        error = self.query_one("#bind-error", Static)
        if isinstance(form, str):
            error.update(Text(shown(form)))
            error.add_class("-shown")
            return
        error.remove_class("-shown")
        port, address = form
        self._set_text("#bind-countdown", f"Probing {endpoint(address, port)}/{self._proto}...")
        self._start_probe(port, address, self._proto)

    def _read_form(self) -> tuple[int, str] | str:
        """(port, address), or the one-line message saying what is wrong (escaped by the
        parsers: it quotes what was typed). Strict: ASCII digits only, so fullwidth digits
        are an error rather than port 8080; "localhost" probes 127.0.0.1, where a server that
        binds "localhost" lands first."""
        try:
            port = inputs.parse_port(self.query_one("#bind-port", Input).value)
            address = inputs.parse_host(self.query_one("#bind-address", Input).value)[0]
        except ValueError as exc:
            return str(exc)
        return port, address

    def _start_probe(self, port: int, address: str, proto: Proto) -> None:
        self._generation += 1
        generation = self._generation
        self._probing = True
        self.probes += 1

        def work() -> None:
            try:
                verdict, failure = self._diagnose(port, address, proto), None
            except Exception as exc:  # shown inline: a probe must never take the app down
                verdict, failure = None, str(exc) or type(exc).__name__
            self.post_message(self.Probed(generation, verdict, failure))

        self.run_worker(work, thread=True, group="bind-probe", exit_on_error=False)

    # -- results -------------------------------------------------------------------------

    def on_bind_panel_probed(self, message: BindPanel.Probed) -> None:
        if message.generation != self._generation:
            return  # the form changed since: an older answer must not overwrite a newer one
        self._probing = False
        if message.verdict is None:
            error = self.query_one("#bind-error", Static)
            error.update(Text(f"probe failed: {shown(message.error)}"))
            error.add_class("-shown")
            return
        previous = self.verdict
        self.verdict = message.verdict
        self._received_at = self._clock()
        self._show(message.verdict, previous)

    def _show(self, v: Verdict, previous: Verdict | None) -> None:
        for index, box in enumerate(self.query(".bind-attempt").results(Static)):
            attempt = v.attempts[index] if index < len(v.attempts) else None
            box.border_title = None if attempt is None else self._title(attempt, v)
            box.update(self._attempt_text(attempt))
            box.set_class(attempt is not None and attempt.ok, "-ok")
            box.set_class(attempt is not None and not attempt.ok, "-failed")
        verdict = self.query_one("#bind-verdict", Static)
        ok = v.can_bind(self._bind)
        words = v.sentence if self._bind == "plain" else (
            f"{bind_sentence(v, self._bind)}\n{v.sentence}"
        )
        verdict.update(Text(shown(words)))  # it names the holders: never markup
        verdict.set_class(False, "-empty")
        verdict.set_class(ok, "-free")
        verdict.set_class(not ok and v.kind == "time_wait", "-waiting")
        verdict.set_class(not ok and v.kind != "time_wait", "-blocked")
        self._set_text("#bind-countdown", self._freed_note(v, previous) or self._countdown_text())
        self.query_one("#bind-why", Static).update(self._why_text(v))
        self.query_one("#bind-advice", Static).update(self._advice_text(v))

    def _freed_note(self, v: Verdict, previous: Verdict | None) -> str:
        """"Port 8080 became free at 02:51:04 after 61 s." when a blocked port just freed."""
        same = previous is not None and (previous.port, previous.address, previous.proto) == (
            v.port, v.address, v.proto
        )
        if not v.free:
            if not same or self._blocked_since is None:
                self._blocked_since = self._clock()
            return ""
        since, self._blocked_since = self._blocked_since, None
        if not same or previous is None or previous.free:
            return ""
        waited = "" if since is None else f" after {seconds(self._clock() - since)}"
        return f"Port {v.port} became free at {self._now():%H:%M:%S}{waited}."

    @staticmethod
    def _title(a: Attempt, v: Verdict) -> Text:
        steps = "bind + listen" if v.proto == "tcp" else "bind"
        return Text(f"{shown(a.option)} {steps}")

    @staticmethod
    def _attempt_text(a: Attempt | None) -> Text:
        if a is None:
            return Text("")
        if a.ok:
            return Text("ok: a server would start", style="bold green")
        text = Text(f"{shown(a.error) or 'error'} (errno {a.errno})", style="bold red")
        text.append(f"\n{shown(a.message)}" if a.message else "")
        if a.windows_code:
            code, name = a.windows_code
            text.append(f"\nWindows: {code} {shown(name)}", style="dim")
        if a.step == "listen":
            text.append("\nfailed at listen()", style="dim")
        return text

    @staticmethod
    def _why_text(v: Verdict) -> Text:
        text = Text()
        text.append("Why", style="bold")
        for para in v.explanation:
            text.append(f"\n• {shown(para)}")
        return text

    @staticmethod
    def _advice_text(v: Verdict) -> Text:
        text = Text()
        if not v.advice:
            return text
        text.append("What to do", style="bold")
        for step, line in numbered_steps(v.advice):  # numbered as `check` numbers them
            if step is None:
                text.append(f"\n{INDENT * 4}{shown(line)}", style="cyan")
            else:
                text.append(f"\n{INDENT}{step}. {shown(line)}")
        return text

    # -- countdown -----------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: update the TIME_WAIT countdown; re-probe when it has run out.
        Only while the panel is shown: closed, it stays mounted for the next `b`, and must
        not go on binding the last port it showed."""
        if not self.is_current:
            return
        v = self.verdict
        if v is None or v.kind != "time_wait" or self._probing or v.can_bind(self._bind):
            return
        left = self._time_left()
        if left is None:
            if self._clock() - self._received_at >= UNKNOWN_EXPIRY_RETRY:
                self._start_probe(v.port, v.address, v.proto)
            return
        if left <= 0:
            # The verdict's own target, not whatever is half-typed in the form right now.
            self._start_probe(v.port, v.address, v.proto)
            self._set_text("#bind-countdown", "TIME_WAIT has expired: probing again...")
            return
        self._set_text("#bind-countdown", self._countdown_text())

    def _time_left(self) -> float | None:
        v = self.verdict
        if v is None or v.time_wait is None or v.time_wait.expires_in is None:
            return None
        return v.time_wait.expires_in - (self._clock() - self._received_at)

    def _countdown_text(self) -> str:
        v = self.verdict
        if v is None or v.kind != "time_wait" or v.can_bind(self._bind):
            return ""
        left = self._time_left()
        if left is None:
            return f"Probing again every {UNKNOWN_EXPIRY_RETRY:g} s until the port is free."
        return f"TIME_WAIT clears in {seconds(left)}; the port is probed again then."

    def _set_text(self, selector: str, value: str) -> None:
        widget = self.query_one(selector, Static)
        widget.update(Text(shown(value)))
        widget.set_class(not value, "-empty")
