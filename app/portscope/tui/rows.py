"""Rows as the TUI needs them: the shared rows plus sort orders and the filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..core.rows import TableRow, build_rows, row_texts

__all__ = [
    "SORT_MODES",
    "RowFilter",
    "SortMode",
    "TableRow",
    "build_rows",
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


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A port number (exact) or a piece of a process name (case-insensitive)."""

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
        return any(needle in h.name.lower() for h in row.holders)


def parse_filter(raw: str) -> RowFilter | str:
    """The filter for `raw`, or the one-line message saying what is wrong with it."""
    value = raw.strip()
    number = value[1:] if value.startswith(":") else value
    if number.isdigit():
        port = int(number)
        if not 1 <= port <= 65535:
            return f"port must be 1-65535, got {number}"
        return RowFilter(value, port)
    if value.startswith(":"):
        return f"not a port number: {value}"
    return RowFilter(value)
