"""The dialogs' stylesheets join the app's once the first poll is on screen (preload_css in
PortscopeApp._after_first_poll): not before, where parsing them would take the CPU from the
first poll, and not on the key that opens one, where it would make `b` and `k` wait. Leans
on Textual's Stylesheet.source, so an upgrade that moves it fails here."""

from __future__ import annotations

import threading

from textual.dom import DOMNode

from portscope.core.model import Snapshot
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.kill_modal import KillModal
from tui.tui_fakes import snap, sock, until


class HeldFirstPoll:
    """A source whose polls wait until `go` is set."""

    name = "held"

    def __init__(self) -> None:
        self.go = threading.Event()

    def collect(self) -> Snapshot:
        self.go.wait(30)
        return snap([sock(8080)])


def _loaded(app: PortscopeApp, cls: type[DOMNode]) -> bool:
    bare = cls.__new__(cls)
    wanted = {css for _, css, _, _ in DOMNode._get_default_css(bare)}
    return bool(wanted) and wanted <= {s.content for s in app.stylesheet.source.values()}


async def test_the_dialogs_css_is_parsed_once_the_first_poll_is_shown() -> None:
    source = HeldFirstPoll()
    app = PortscopeApp(source, interval=0.5)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            assert not _loaded(app, KillModal) and not _loaded(app, BindPanel)
            source.go.set()
            await until(pilot, lambda: app.latest_snapshot is not None, timeout=10)
            await until(pilot, lambda: _loaded(app, KillModal) and _loaded(app, BindPanel))
    finally:
        source.go.set()
