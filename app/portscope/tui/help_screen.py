"""`?`: the keys, the filter's words and what the columns mean, over the main screen.

Each section is a two-column grid, so a description that wraps stays under itself rather
than under the key."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

# (key, name, what it does): what no binding of the main screen says.
EXTRA_KEYS_BEFORE = (
    ("↑ ↓", "Move", "Move between rows; a click on a column's header sorts by that column"),
    ("PgUp PgDn", "Page", "A page up or down; Home and End: the first and the last row"),
)
EXTRA_KEYS_AFTER = (
    ("ctrl+c", "Quit", "Quit, as q does"),
    ("ctrl+p", "Commands", "Every command by name, and the theme (kept for the next run)"),
)

FILTER_HELP = (
    ("8080  :8080", "that port"),
    ("8000-8100", "ports 8000 to 8100"),
    ("80*", "ports that start with 80 (80, 8080, 8000-8099, ...)"),
    ("user:NAME", "processes run by that user"),
    ("pid:N", "the rows that process holds"),
    ("text", "processes whose name contains it (any case)"),
    ("a b", "several words: every one must match (user:www 8000-8100)"),
)

COLUMNS_HELP = (
    ("PORT PROTO ADDRESS", "a listening TCP or bound UDP socket. \"(no listener)\": a port "
     "with TIME_WAIT or live sockets but nobody listening, where a restart can still fail"),
    ("PID PROCESS USER", "every process holding the socket (a pre-fork server shows its "
     "master and all workers). \"(hidden)\": another user's, run with sudo to see it"),
    ("TIME_WAIT", "closed connections the kernel keeps for up to 60 s, and when the last "
     "of them clears (TW, a bare count, on a narrow screen)"),
    ("OTHER", "live connections on the port, by state, on a wide screen (else in the "
     "details; a lists every socket of a port)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        """`keys`: (key, name, what it does) of the main screen's bindings."""
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._keys_text(), id="help-keys")
            yield Static(_filter_text(), id="help-filter")
            yield Static(_columns_text(), id="help-columns")
            yield Static(Text("Esc, ? or q closes this.", style="dim"))
        yield Footer()  # over the main screen's, whose keys do nothing while help is open

    def _keys_text(self) -> RenderableType:
        grid = _grid()
        for key, name, what in (*EXTRA_KEYS_BEFORE, *self._keys, *EXTRA_KEYS_AFTER):
            grid.add_row(Text(key), Text(what or name))  # the footer has the short names
        return Group(Text("Keys", style="bold"), grid, Text())


def _filter_text() -> RenderableType:
    grid = _grid()
    for words, meaning in FILTER_HELP:
        grid.add_row(Text(words), Text(meaning))
    title = Text("Filter", style="bold")
    title.append(" (/ opens it, Enter applies, Esc clears)", style="dim")
    return Group(title, grid, Text())


def _columns_text() -> RenderableType:
    out = Text("Columns\n", style="bold")
    for column, meaning in COLUMNS_HELP:
        out.append(f"  {column}\n", style="bold cyan")
        out.append(f"    {meaning}\n")
    return out


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")  # wraps between words; folds only a word too long
    # Indented under its section's title, as the columns' entries are.
    grid.padding = (0, 2)
    grid.pad_edge = True
    return grid
