"""Render the README's screenshots from the real app: real widgets, frozen demo data.

    .venv/bin/python screenshots/make_screenshots.py

Writes main.svg (120x36), main-80x24.svg, main-60x20.svg, bind-panel.svg (`b` on a port
held only by TIME_WAIT), kill-dialog.svg (`k` on the pre-fork server), force-kill.svg
(`K`, the same dialog with SIGKILL), events.svg (`e`) and help.svg (`?`, every key) next to
this file, and a PNG of each when `rsvg-convert` (librsvg2-bin) is installed. The data
is the demo machine in tests/tui/tui_fakes.py: a python http.server on 8000, a pre-fork
gunicorn on 8080, postgres on 5432 with 11,990 client TIME_WAIT to it, port 9000 with
nobody listening but 37 TIME_WAIT, a UDP 5353, an IPv6 listener, and one socket whose
owner is hidden.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timezone
from pathlib import Path
from typing import Any

from textual.screen import Screen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from portscope.tui.app import PortscopeApp  # noqa: E402
from portscope.tui.bind_panel import BindPanel  # noqa: E402
from portscope.tui.event_log import EventLogScreen  # noqa: E402
from portscope.tui.help_screen import HelpScreen  # noqa: E402
from portscope.tui.kill_modal import KillModal  # noqa: E402
from portscope.tui.rows import RowFilter  # noqa: E402
from portscope.tui.stops import from_holders  # noqa: E402
from tui.kill_fakes import frozen_modal  # noqa: E402
from tui.test_bind_panel_fakes import (  # noqa: E402
    FROZEN_NOW,
    FakeClock,
    ScriptedDiagnose,
    frozen_verdict,
)
from tui.tui_fakes import (  # noqa: E402
    FakeSource,
    demo_history,
    demo_relatives,
    demo_snapshot,
    until,
)

Dialog = Callable[[PortscopeApp], Screen[Any]]


def events(app: PortscopeApp) -> EventLogScreen:
    """`e`: the last ten minutes' listener events (a stray server, a restart)."""
    return EventLogScreen(app.history.events, RowFilter(), timezone.utc)


def kill_dialog(app: PortscopeApp) -> Screen[Any]:
    return frozen_modal()


def force_kill_dialog(app: PortscopeApp) -> Screen[Any]:
    """`K`: the kill dialog with SIGKILL as the signal, and its warning."""
    return frozen_modal("KILL")


def help_screen(app: PortscopeApp) -> Screen[Any]:
    """`?`: every key, the filter's words, the columns."""
    return HelpScreen(app.main.app_keys())


def bind_panel(app: PortscopeApp) -> BindPanel:
    """`b` on port 9000: nobody listens, 37 TIME_WAIT left by a server without SO_REUSEADDR."""
    verdict = frozen_verdict("time_wait", 9000, expires_in=41.2, count=37)
    return BindPanel(
        9000, diagnose=ScriptedDiagnose(verdict), clock=FakeClock(), now=lambda: FROZEN_NOW
    )


# (file, terminal size, port whose row is selected, the dialog opened over it)
SHOTS: tuple[tuple[str, tuple[int, int], int, Dialog | None], ...] = (
    ("main.svg", (120, 36), 8080, None),  # the pre-fork row: details show every holder
    ("main-80x24.svg", (80, 24), 8080, None),
    ("main-60x20.svg", (60, 20), 8080, None),
    ("bind-panel.svg", (120, 36), 9000, bind_panel),
    ("kill-dialog.svg", (120, 36), 8080, kill_dialog),
    ("force-kill.svg", (120, 36), 8080, force_kill_dialog),
    ("events.svg", (120, 36), 8080, events),
    ("help.svg", (100, 50), 8080, help_screen),
)


def settled(screen: Screen[Any]) -> bool:
    if isinstance(screen, BindPanel):
        return screen.verdict is not None
    if isinstance(screen, KillModal):
        return screen.stage == "confirm"
    return True


async def shoot(name: str, size: tuple[int, int], port: int, dialog: Dialog | None) -> Path:
    app = PortscopeApp(
        FakeSource([demo_snapshot()]), interval=3600, tz=timezone.utc, relatives=demo_relatives,
        stops=from_holders, history=demo_history(),
    )
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        for _ in range(20):
            row = app.selected_row()
            if row is not None and row.port == port:
                break
            await pilot.press("down")
        await until(pilot, lambda: not app.main.looking_up)
        if dialog is not None:
            app.push_screen(dialog(app))
            await until(pilot, lambda: settled(app.screen))
        await pilot.pause()
        path = HERE / name
        path.write_text(app.export_screenshot(title="portscope"), encoding="utf-8")
    return path


def to_png(svg: Path) -> Path | None:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        return None
    png = svg.with_suffix(".png")
    # librsvg collapses the runs of spaces Textual's SVG relies on unless told to keep them.
    text = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
    subprocess.run([tool, "-o", str(png)], input=text.encode(), check=True)
    return png


def main() -> int:
    for name, size, port, dialog in SHOTS:
        svg = asyncio.run(shoot(name, size, port, dialog))
        png = to_png(svg)
        print(svg.relative_to(HERE.parent), png.relative_to(HERE.parent) if png else "(no PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
