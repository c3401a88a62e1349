"""The `/` filter: a one-line input with its error shown inline beneath it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from ..core.untrusted import shown
from .rows import RowFilter, parse_filter


class FilterBar(Vertical):
    """Hidden until `/`; Enter posts Applied (or shows what is wrong), Escape posts Cleared."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter", id="filter.clear"),
    ]

    class Applied(Message):
        def __init__(self, row_filter: RowFilter) -> None:
            super().__init__()
            self.row_filter = row_filter

    class Cleared(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.input = Input(
            placeholder="8080, 8000-8100, 80*, user:NAME, pid:N or a name; Enter applies",
            id="filter-input",
        )
        self._error = Static(Text(), id="filter-error")

    def compose(self) -> ComposeResult:
        yield self.input
        yield self._error

    def open(self, current: str) -> None:
        self.display = True
        self._set_error("")
        field = self.input
        field.value = current
        field.cursor_position = len(current)
        # Focus now, not on the next idle (what .focus() does): keys typed right after "/"
        # (or pasted with it) must land in the input, not in the table.
        self.screen.set_focus(field)

    def close(self) -> None:
        self.display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        result = parse_filter(event.value)
        if isinstance(result, str):
            self._set_error(result)
            return
        self.post_message(self.Applied(result))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._set_error("")  # an old complaint about text that is gone would mislead

    def action_clear(self) -> None:
        self.input.value = ""
        self.post_message(self.Cleared())

    def _set_error(self, message: str) -> None:
        # Text, never markup: the message quotes what was typed (":[/]" would not parse).
        self._error.update(Text(shown(message)))
        self._error.display = bool(message)
