"""Every screen of the TUI with text a hostile local user chose (domain.md 8).

Once with a frozen snapshot built from hostile holders, once with a real hostile process
seen through the real collector. Each step asserts that the text is on screen in its
escaped form, that nothing became markup (no `@click` action, no MarkupError, the app
still running), that no control or bidi character reached the screen, and that the
hostile process is signalled only after a yes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timezone

from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, Static

from hostile import SHOWN_ARGV0, SHOWN_COMM, spawn_hostile
from portscope.core.collect import default_collector
from portscope.core.untrusted import shown
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.details import DetailsPane
from portscope.tui.help_screen import HelpScreen
from portscope.tui.kill_modal import KillModal, KillOutcome
from portscope.tui.status_bar import StatusBar
from portscope.tui.stops import from_holders
from support import pid_alive, reap
from tui.kill_fakes import NOW, HostileSession, frozen_check, hostile_plan
from tui.screen_checks import assert_safe_screen
from tui.test_bind_panel_fakes import ScriptedDiagnose, hostile_verdict
from tui.tui_fakes import (
    HOSTILE_NOTE,
    HOSTILE_PIDS,
    HOSTILE_USER,
    FakeSource,
    hostile_relatives,
    hostile_snapshot,
    static_text,
    until,
)

SHOWN_CWD = "\\x1b]0;cwd\\x07[b]dir\\n"
SHOWN_ARGS = (
    "[@click=app.quit]x[/]",
    "x[/]y",
    "line1\\nPID 1 name init\\tuser root",
    "\\u202eevil\\u202c",
    "zero\\u200bwidth",
    "\\x9b31m",
    "a\\u034fb\\u115f\\u3164\\ufe0f\\u2800c",
    "sp\\u2003ace\\u3000\\ufff9",
    "\\U000e0073\\U000e0073hd\\ue000",
)
FULLWIDTH_8080 = "\uff18\uff10\uff18\uff10"  # int() reads it as 8080; a person did not mean it
POLL_ERROR = "\x1b]0;err\x07 [@click=app.quit]q[/] x[/]y"


def on_screen(lines: list[str], *needles: str) -> None:
    text = "\n".join(lines)
    for needle in needles:
        assert needle in text, f"{needle!r} not on screen:\n{text}"


def status(app: PortscopeApp) -> str:
    return static_text(app.main.query_one(StatusBar))


async def press_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


def at_stage(modal: KillModal, stage: str) -> Callable[[], bool]:
    return lambda: modal.stage == stage


async def top(pilot: Pilot[None], kind: type[object]) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind))
    await pilot.pause()


async def test_every_screen_with_a_frozen_hostile_snapshot() -> None:
    source = FakeSource([hostile_snapshot()])
    app = PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=hostile_relatives, stops=from_holders
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        await until(pilot, lambda: not app.main.looking_up)
        await pilot.pause()

        # Table, details, header note.
        lines = assert_safe_screen(app)
        on_screen(lines, SHOWN_COMM, HOSTILE_USER, shown(HOSTILE_NOTE))
        on_screen(lines, SHOWN_ARGV0, *SHOWN_ARGS, SHOWN_CWD)
        on_screen(lines, f"parent 1 {SHOWN_COMM}", "[@click=app.quit]c[/]")

        # A 13,000-cell command line (and a 3,000-cell word) wraps inside the details pane.
        await pilot.press("down")
        await until(pilot, lambda: not app.main.looking_up)
        await pilot.pause()
        row = app.selected_row()
        assert row is not None and row.holders[0].pid == HOSTILE_PIDS[1]
        lines = assert_safe_screen(app)
        on_screen(lines, "--option-0=[b]", "--option-1=[b]")
        pane = app.main.query_one(DetailsPane)
        assert pane.max_scroll_x == 0 and pane.max_scroll_y > 0  # wraps down, not sideways
        body = pane.query_one("#details-body", Static)
        width = pane.scrollable_content_region.width
        body_lines = [strip.text for strip in body.render_lines(body.size.region)]
        assert body.size.width <= width and max(map(len, body_lines)) <= width
        folded = [line for line in body_lines if line.strip() and set(line.strip()) == {"y"}]
        assert len(folded) >= 3000 // width  # the 3,000-cell word, folded at the pane's edge

        # Typed filters: markup, a superscript digit, an unbalanced tag.
        await pilot.press("slash")
        await press_text(pilot, "[b]x")
        await pilot.press("enter")
        assert "filter '[b]x': 0 of 3 rows" in status(app)
        source.error = RuntimeError(POLL_ERROR)  # and a poll that fails with hostile words
        app.poll_now()
        await until(pilot, lambda: "last poll failed" in status(app))
        lines = assert_safe_screen(app)
        on_screen(lines, "filter '[b]x'", shown(POLL_ERROR))
        source.set(hostile_snapshot())
        await pilot.press("escape")  # clears the filter

        error = app.main.query_one("#filter-error", Static)
        await pilot.press("slash")
        await press_text(pilot, ":[/]")
        await pilot.press("enter")
        assert error.display and "not a port number: :[/]" in static_text(error)
        assert_safe_screen(app)
        await pilot.press("ctrl+u")
        await press_text(pilot, "²")
        await pilot.press("enter")  # not a port: a name nobody has
        assert not error.display and "filter '²': 0 of 3 rows" in status(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.main.table.row_count == 3)

        # The kill dialog, confirm then cancel (Escape), confirm then yes, outcome then q.
        outcomes: list[KillOutcome | None] = []

        def hostile_dialog() -> KillModal:
            return KillModal(
                [(HOSTILE_PIDS[1], 1.0)], 4445, planner=hostile_plan, session=HostileSession,
                check=frozen_check, clock=lambda: NOW,
            )

        for answer in ("escape", "y"):
            app.push_screen(hostile_dialog(), callback=outcomes.append)
            await top(pilot, KillModal)
            modal = app.screen
            assert isinstance(modal, KillModal)
            await until(pilot, at_stage(modal, "confirm"))
            await pilot.pause()
            lines = assert_safe_screen(app)
            on_screen(lines, SHOWN_COMM, HOSTILE_USER, SHOWN_ARGV0, "…", "uptime", "holds")
            on_screen(lines, "uptime    1 min 0 s", "y/Enter: send SIGTERM")
            assert any(re.search(rf"PID +{HOSTILE_PIDS[1]}\b", line) for line in lines)
            await pilot.press(answer)
            if answer == "y":
                await until(pilot, at_stage(modal, "done"))
                await pilot.pause()
                lines = assert_safe_screen(app)
                on_screen(lines, f"PID {HOSTILE_PIDS[1]} ({SHOWN_COMM}) exited after SIGTERM")
                await pilot.press("q")
            await until(pilot, lambda: app.screen is app.main)
        assert outcomes[0] is None and outcomes[1] is not None

        # The bind panel: a verdict quoting hostile names, then hostile typing.
        panel = BindPanel(4444, diagnose=ScriptedDiagnose(hostile_verdict()))
        app.push_screen(panel)
        await until(pilot, lambda: panel.verdict is not None)
        await pilot.pause()
        lines = assert_safe_screen(app)
        on_screen(lines, f"{SHOWN_COMM} [@click=app.quit]x[/] is listening", "x[/]y holds it")
        on_screen(lines, "[b]python: sock.close()[/b]")
        port_field = panel.query_one("#bind-port", Input)
        bind_error = panel.query_one("#bind-error", Static)
        for typed in ("[/]", FULLWIDTH_8080):
            port_field.focus()
            await pilot.press("ctrl+u")
            await press_text(pilot, typed)
            await pilot.press("enter")
            await pilot.pause()
            assert bind_error.display
            assert static_text(bind_error).startswith(f"not a port number: '{typed}'")
            assert_safe_screen(app)
        assert panel.probes == 1  # nothing was probed for bad input
        typed_before = port_field.value
        await pilot.press("q")  # no port has a q in it: even from the port field, q closes
        await until(pilot, lambda: app.screen is app.main)
        assert port_field.value == typed_before

        # Help, then the command palette with markup typed into its search.
        await pilot.press("question_mark")
        await top(pilot, HelpScreen)
        assert_safe_screen(app)
        await pilot.press("q")
        await until(pilot, lambda: app.screen is app.main)
        await pilot.press("ctrl+p")
        await top(pilot, CommandPalette)
        await press_text(pilot, "[/]x[b]")
        await pilot.pause(0.3)  # the palette searches asynchronously
        assert_safe_screen(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        assert_safe_screen(app)


async def test_a_real_hostile_process_through_the_real_collector() -> None:
    proc, port = spawn_hostile()
    try:
        app = PortscopeApp(default_collector(), interval=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.latest_snapshot is not None)
            await pilot.press("slash", *str(port), "enter")
            await until(pilot, lambda: app.main.table.row_count == 2)  # its TCP and UDP
            await until(pilot, lambda: not app.main.looking_up)
            await pilot.pause()
            row = app.selected_row()
            assert row is not None and [h.pid for h in row.holders] == [proc.pid]
            lines = assert_safe_screen(app)
            on_screen(lines, SHOWN_COMM, SHOWN_ARGV0, *SHOWN_ARGS, SHOWN_CWD)

            # k, then each way of saying no: nothing is signalled.
            for answer in ("n", "escape", "q"):
                await pilot.press("k")
                await top(pilot, KillModal)
                modal = app.screen
                assert isinstance(modal, KillModal)
                await until(pilot, at_stage(modal, "confirm"))
                await pilot.pause()
                lines = assert_safe_screen(app)
                on_screen(lines, SHOWN_COMM, SHOWN_ARGV0)
                assert any(re.search(rf"PID +{proc.pid}\b", line) for line in lines)
                await pilot.press(answer)
                await until(pilot, lambda: app.screen is app.main)
                assert proc.poll() is None and pid_alive(proc.pid)

            # b: the real probe names the hostile holder; shown escaped.
            await pilot.press("b")
            await top(pilot, BindPanel)
            panel = app.screen
            assert isinstance(panel, BindPanel)
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            await pilot.pause()
            lines = assert_safe_screen(app)
            on_screen(lines, f"{SHOWN_COMM} (pid {proc.pid}")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
            assert proc.poll() is None

            # Only a yes signals it; the outcome names it escaped.
            await pilot.press("k")
            await top(pilot, KillModal)
            modal = app.screen
            assert isinstance(modal, KillModal)
            await until(pilot, lambda: modal.stage == "confirm")
            await pilot.press("y")
            await until(pilot, lambda: modal.stage == "done", timeout=15)
            await pilot.pause()
            lines = assert_safe_screen(app)
            on_screen(lines, f"PID {proc.pid} ({SHOWN_COMM}) exited after SIGTERM")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
        assert proc.wait(timeout=5) is not None
    finally:
        reap(proc)


async def test_a_filter_finds_a_name_by_its_escaped_form() -> None:
    """Typing what the screen shows ("\\x1b]0;pwned") finds the process that set it."""
    source = FakeSource([hostile_snapshot()])
    app = PortscopeApp(source, interval=3600, tz=timezone.utc, relatives=hostile_relatives)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        await pilot.press("slash")
        await press_text(pilot, "\\x1b]0;pwn")
        await pilot.press("enter")
        assert app.main.table.row_count == 2
        names = [h.name for r in app.main.table.rows_shown.values() for h in r.holders]
        assert names and all(shown(name) == SHOWN_COMM for name in names)
        assert_safe_screen(app)
