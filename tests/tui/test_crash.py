"""A crash of the TUI: one escaped line on stderr, the traceback in a 0600 log file, exit 1.

The app runs for real in a child interpreter (Textual's headless driver), through the same
run_app() that `portscope` uses, with an error injected into a widget's render: the path a
MarkupError from data in a markup string used to take (it exited 0 with a full traceback).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portscope.tui import _textual_hacks

TESTS = Path(__file__).resolve().parent.parent

CRASHING_APP = """
import sys
sys.path.insert(0, {tests!r})
from datetime import timezone
from rich.text import Text
from textual.widgets import Static
from portscope.tui.app import PortscopeApp, run_app
from tui.tui_fakes import FakeSource, demo_snapshot

class Broken(Static):
    def render(self):
        {body}

class Crashing(PortscopeApp):
    def on_ready(self) -> None:
        self.main.mount(Broken(Text("")))

app = Crashing(FakeSource([demo_snapshot()]), interval=3600, tz=timezone.utc)
sys.exit(run_app(app, headless=True))
"""

CASES = {
    # What a name in a markup string did before: Textual's own MarkupError.
    "markup": ('return Static("x[/]y").render()', "MarkupError: "),
    # An error whose message quotes hostile text: escaped on stderr and in the log.
    "hostile": (
        'raise RuntimeError("\\x1b]0;pwned\\x07 boom\\nsecond line")',
        "RuntimeError: \\x1b]0;pwned\\x07 boom\\nsecond line",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crash_prints_one_line_and_logs_the_traceback(case: str, tmp_path: Path) -> None:
    body, expected = CASES[case]
    code = textwrap.dedent(CRASHING_APP).format(tests=str(TESTS), body=body)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # no traceback on the terminal
    assert "\x1b" not in done.stderr
    assert lines[0].startswith(f"portscope crashed ({expected}")
    logs = list((tmp_path / "state" / "portscope").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    log = logs[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last):" in log and "in render" in log
    # In the log a newline in the message may break the line; every control is escaped.
    assert expected.split("\\n")[0] in log and "\x1b" not in log


def test_the_textual_internals_used_for_it_still_exist() -> None:
    """_textual_hacks overrides App._handle_exception and empties App._exit_renderables; an
    upgrade that renames either would bring back the full traceback on stderr."""
    from textual.app import App

    assert callable(getattr(App, "_handle_exception", None))
    app = _textual_hacks.CaptureCrash[None]()
    assert isinstance(getattr(app, "_exit_renderables", None), list)
