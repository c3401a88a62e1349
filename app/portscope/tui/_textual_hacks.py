"""Where portscope leans on Textual internals; kept in one place (memray does the same).

- CaptureCrash: one line and a log file instead of Textual's traceback.
- preload_css: the dialogs' CSS parsed once the first poll is shown, not on the key that
  opens one.
- mount_screen: the bind panel composed and mounted at start-up, shown only on `b`.

Textual has no public hook for an unhandled exception: `App._handle_exception` sets
`return_code` to 1 and queues a full Rich traceback, with local variables, for stderr. A
person running portscope should get one line and a log file instead (tui/crash.py), and
the locals may hold process names a hostile user chose. Tested by tests/tui/test_crash.py,
which notices if a Textual upgrade renames either name used here.
"""

from __future__ import annotations

from typing import Any, TypeVar

from textual.app import App
from textual.dom import DOMNode
from textual.screen import Screen

R = TypeVar("R")


class CaptureCrash(App[R]):
    """An App that keeps its first unhandled exception in `crash` and prints nothing.

    Textual still restores the terminal, sets `return_code` to 1 and, under `run_test`,
    re-raises the exception when the test's context exits.
    """

    crash: Exception | None = None

    def _handle_exception(self, error: Exception) -> None:
        if self.crash is None:
            self.crash = error
        super()._handle_exception(error)
        self._exit_renderables.clear()  # the traceback goes to the crash log, not stderr


def preload_css(app: App[R], *classes: type[DOMNode]) -> None:
    """Add these classes' DEFAULT_CSS to the app's stylesheet now, as Textual does when the
    first one mounts (Widget._post_register). That first mount has the whole stylesheet
    parsed again, ~100 ms on a busy machine, and it would land on the key that opens the
    bind panel or the kill dialog; done once the first poll is on screen (PortscopeApp) it
    lands on a repaint nobody waits for instead.
    Adding a source twice is a no-op, so the later mount changes nothing. Tested by
    tests/tui/test_dialog_css_after_first_poll.py."""
    for cls in classes:
        bare = cls.__new__(cls)  # no __init__: only the class's CSS is read
        for read_from, css, tie_breaker, scope in DOMNode._get_default_css(bare):
            app.stylesheet.add_source(
                css, read_from=read_from, is_default_css=True, tie_breaker=tie_breaker,
                scope=scope,
            )


def mount_screen(app: App[R], name: str, screen: Screen[Any]) -> None:
    """Install `screen` under `name` and compose and mount it now, without showing it: what
    push_screen does on a screen's first push (App._get_screen registers a screen that is
    not running), so a later push only lays it out and draws it. Tested by
    tests/tui/test_probe_head_start.py."""
    app.install_screen(screen, name=name)
    app._get_screen(screen)
