"""Rows as the TUI needs them: the shared rows plus sort orders and the filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..core.inputs import parse_port
from ..core.record import record
from ..core.rows import TableRow, build_rows, listening_count, row_texts
from ..core.untrusted import fit, shown

__all__ = [
    "SORT_MODES",
    "RowFilter",
    "SortMode",
    "TableRow",
    "build_rows",
    "listening_count",
    "parse_filter",
    "row_texts",
    "sort_key",
]

SortMode = Literal["port", "process", "TIME_WAIT"]
SORT_MODES: tuple[SortMode, ...] = ("port", "process", "TIME_WAIT")


def _by_port(row: TableRow) -> tuple[Any, ...]:
    return (row.port, row.proto, row.family or "", row.address or "")


def _by_process(row: TableRow) -> tuple[Any, ...]:
    names = sorted(h.name.lower() for h in row.holders)
    # Rows without a visible owner go last: they are not what a name sort is looking for.
    return (not names, names[0] if names else "", *_by_port(row))


def _by_time_wait(row: TableRow) -> tuple[Any, ...]:
    return (-row.time_wait, *_by_port(row))


_SORT_KEYS: dict[SortMode, Callable[[TableRow], tuple[Any, ...]]] = {
    "port": _by_port,
    "process": _by_process,
    "TIME_WAIT": _by_time_wait,
}


def sort_key(mode: SortMode) -> Callable[[TableRow], tuple[Any, ...]]:
    return _SORT_KEYS[mode]


@record
class RowFilter:
    """A port number (exact) or a piece of a process name (case-insensitive). The name is
    matched as the process set it and as it is shown, so `\\x1b` finds what shows `\\x1b`."""

    text: str = ""
    port: int | None = None

    def __bool__(self) -> bool:
        return bool(self.text)

    def matches(self, row: TableRow) -> bool:
        if not self.text:
            return True
        if self.port is not None:
            return row.port == self.port
        needle = self.text.lower()
        return any(
            needle in h.name.lower() or needle in shown(h.name).lower() for h in row.holders
        )


def parse_filter(raw: str) -> RowFilter | str:
    """The filter for `raw`, or the one-line message saying what is wrong with it (escaped:
    it quotes what was typed).

    Only ASCII digits make a port: `"²".isdigit()` is True but int() refuses it, and
    fullwidth digits are not what anyone meant to type; both are looked for as names.
    """
    value = raw.strip()
    number = value[1:] if value.startswith(":") else value
    if number.isascii() and number.isdigit():
        try:
            return RowFilter(value, parse_port(number))
        except ValueError as exc:
            return str(exc)
    if value.startswith(":"):
        return f"not a port number: {fit(shown(value), 40)}"
    return RowFilter(value)
