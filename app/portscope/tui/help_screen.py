"""`?`: the keys and what the columns mean, over the main screen."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

COLUMNS_HELP = (
    ("PORT PROTO ADDRESS", "a listening TCP or bound UDP socket. \"(no listener)\": a port "
     "with TIME_WAIT or live sockets but nobody listening, where a restart can still fail"),
    ("PID PROCESS USER", "every process holding the socket (a pre-fork server shows its "
     "master and all workers). \"(hidden)\": another user's, run with sudo to see it"),
    ("TIME_WAIT", "closed connections the kernel keeps for up to 60 s, and when the last "
     "of them clears"),
    ("OTHER", "live connections on the port, by state"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._keys_text(), id="help-keys")
            yield Static(self._columns_text(), id="help-columns")
            yield Static(Text("Esc, ? or q closes this.", style="dim"))
        yield Footer()  # over the main screen's, whose keys do nothing while help is open

    def _keys_text(self) -> Text:
        out = Text("Keys\n", style="bold")
        keys = [("↑ ↓", "move between rows"), *self._keys, ("ctrl+p", "every command by name")]
        width = max(len(key) for key, _ in keys) + 2
        for key, description in keys:
            out.append(f"  {key:<{width}}", style="bold cyan")
            out.append(f"{description}\n")
        return out

    @staticmethod
    def _columns_text() -> Text:
        out = Text("Columns\n", style="bold")
        for column, meaning in COLUMNS_HELP:
            out.append(f"  {column}\n", style="bold cyan")
            out.append(f"    {meaning}\n")
        return out
