"""Where portscope leans on Textual internals; kept in one place (memray does the same).

Textual has no public hook for an unhandled exception: `App._handle_exception` sets
`return_code` to 1 and queues a full Rich traceback, with local variables, for stderr. A
person running portscope should get one line and a log file instead (tui/crash.py), and
the locals may hold process names a hostile user chose. Tested by tests/tui/test_crash.py,
which notices if a Textual upgrade renames either name used here.
"""

from __future__ import annotations

from typing import TypeVar

from textual.app import App

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
