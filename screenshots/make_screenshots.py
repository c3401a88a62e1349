"""Render the README's screenshots from the real app: real widgets, frozen demo data.

    .venv/bin/python screenshots/make_screenshots.py

Writes main.svg (120x36) and main-80x24.svg next to this file, and a PNG of each when
`rsvg-convert` (librsvg2-bin) is installed. The data is the demo machine in
tests/tui/tui_fakes.py: a python http.server on 8000, a pre-fork gunicorn on 8080,
postgres on 5432 with 11,990 client TIME_WAIT to it, port 9000 with nobody listening
but 37 TIME_WAIT, a UDP 5353, an IPv6 listener, and one socket whose owner is hidden.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from datetime import timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from portscope.tui.app import PortscopeApp  # noqa: E402
from tui.tui_fakes import FakeSource, demo_relatives, demo_snapshot, until  # noqa: E402

SHOTS = (("main.svg", (120, 36)), ("main-80x24.svg", (80, 24)))
SELECT_PORT = 8080  # the pre-fork row: its details pane shows every holder


async def shoot(name: str, size: tuple[int, int]) -> Path:
    app = PortscopeApp(
        FakeSource([demo_snapshot()]), interval=3600, tz=timezone.utc, relatives=demo_relatives
    )
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        for _ in range(20):
            row = app.selected_row()
            if row is not None and row.port == SELECT_PORT:
                break
            await pilot.press("down")
        await until(pilot, lambda: not app.main.looking_up)
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
    for name, size in SHOTS:
        svg = asyncio.run(shoot(name, size))
        png = to_png(svg)
        print(svg.relative_to(HERE.parent), png.relative_to(HERE.parent) if png else "(no PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
