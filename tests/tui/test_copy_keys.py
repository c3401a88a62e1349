"""`c` and `C`: the selected row's PIDs and command line to the clipboard (App.clipboard
holds what copy_to_clipboard sent as OSC 52), and a notification that says what."""

from __future__ import annotations

import shlex

from textual.pilot import Pilot

from portscope.core.model import Snapshot
from portscope.tui.app import PortscopeApp
from tui.screen_checks import assert_safe_screen, toasts
from tui.test_app import make_app, started
from tui.tui_fakes import (
    DEMO_MASTER,
    HOSTILE_PIDS,
    demo_snapshot,
    hostile_holder,
    select_key,
    snap,
    sock,
    until,
)


async def on_row(app: PortscopeApp, pilot: Pilot[None], port: int) -> None:
    row = next(r for r in app.main.table.rows_shown.values() if r.port == port)
    await select_key(app, pilot, row.key)


async def toast(app: PortscopeApp, pilot: Pilot[None], words: str) -> str:
    await until(pilot, lambda: words in toasts(app))
    return toasts(app)


async def test_c_copies_every_pid_of_the_row_and_says_so() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await on_row(app, pilot, 8080)  # gunicorn's master and three workers
        await pilot.press("c")
        assert app.clipboard == "4180 4187 4188 4189"  # ready for `kill` or `ps -p`
        await toast(app, pilot, "Copied PIDs 4180 4187 4188 4189")

        await on_row(app, pilot, 5432)
        await pilot.press("c")
        assert app.clipboard == "812"
        await toast(app, pilot, "Copied PID 812")


async def test_shift_c_copies_the_command_line_shell_quoted() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await on_row(app, pilot, 8080)
        await pilot.press("C")
        assert app.clipboard == shlex.join(DEMO_MASTER.cmdline)
        assert shlex.split(app.clipboard) == list(DEMO_MASTER.cmdline)
        await toast(app, pilot, "Copied the command line of PID 4180")


async def test_a_row_without_a_visible_process_copies_nothing_and_says_why() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await on_row(app, pilot, 22)  # sshd: root's, hidden
        await pilot.press("c")
        await toast(app, pilot, "Nothing to copy")
        await pilot.press("C")
        assert app.clipboard == ""


def hostile() -> Snapshot:
    return snap([sock(4444, hostile_holder(HOSTILE_PIDS[0]), address="127.0.0.1")])


async def test_a_hostile_command_line_is_copied_escaped_and_shown_escaped() -> None:
    """A process picks its own argv: control characters never reach the clipboard (nor a
    shell it is pasted into) raw, and the notification is no markup."""
    app = make_app(hostile())
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await pilot.press("C")
        copied = app.clipboard
        assert copied and copied.isprintable() and "\x1b" not in copied
        assert "\\x1b" in copied or "\\u" in copied  # shown as escapes
        said = await toast(app, pilot, "Copied the command line of PID")
        assert f"PID {HOSTILE_PIDS[0]} (control characters escaped)" in said
        assert "'[@click=app.quit]x[/]'" in said  # the argv quoted as text, not markup
        assert_safe_screen(app)
        await pilot.press("c")
        assert app.clipboard == str(HOSTILE_PIDS[0])
