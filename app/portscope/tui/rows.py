"""Rows as the TUI needs them: the shared rows plus sort orders, the filter and the TCP/UDP
view, and a poll made ready for the table off the UI thread (Prepared)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from ..core.collect import LISTENERS_ONLY, NOT_LOOKED_UP
from ..core.inputs import parse_pid, parse_port, parse_port_range
from ..core.model import ClientDestination, Snapshot
from ..core.record import record, replace
from ..core.rows import RowTexts, TableRow, build_rows, listening_count, row_texts
from ..core.text import user_name
from ..core.untrusted import fit, shown

__all__ = [
    "PROTO_VIEWS",
    "SORT_CYCLE",
    "SORT_MODES",
    "FilterTerm",
    "Prepared",
    "ProtoView",
    "RowFilter",
    "RowSelection",
    "RowTexts",
    "SortMode",
    "TableRow",
    "build_rows",
    "clients_of",
    "descending",
    "listening_count",
    "parse_filter",
    "prepare_rows",
    "row_texts",
    "shown_texts",
    "sort_key",
]

SortMode = Literal[
    "port", "proto", "address", "PID", "process", "user", "TIME_WAIT", "connections"
]
SORT_MODES: tuple[SortMode, ...] = (
    "port", "proto", "address", "PID", "process", "user", "TIME_WAIT", "connections"
)
# What `s` steps through; a click on any column header sorts by that column.
SORT_CYCLE: tuple[SortMode, ...] = ("port", "process", "TIME_WAIT", "PID", "user")

ProtoView = Literal["both", "tcp", "udp"]
PROTO_VIEWS: tuple[ProtoView, ...] = ("both", "tcp", "udp")  # what `t` steps through


def _by_port(row: TableRow) -> tuple[Any, ...]:
    return (row.port, row.proto, row.family or "", row.address or "")


def _by_proto(row: TableRow) -> tuple[Any, ...]:
    return (row.proto_label, *_by_port(row))


def _by_address(row: TableRow) -> tuple[Any, ...]:
    # Numerically (10.0.0.2 before 10.0.0.10), IPv4 before IPv6, no-listener rows last.
    try:
        ip = ipaddress.ip_address(row.address or "")
        where: tuple[Any, ...] = (0, ip.version, int(ip))
    except ValueError:
        where = (1, 0, 0)
    return (*where, *_by_port(row))


def _by_pid(row: TableRow) -> tuple[Any, ...]:
    pids = [h.pid for h in row.holders]
    # Rows without a visible owner go last, as for the name and user sorts.
    return (not pids, min(pids, default=0), *_by_port(row))


def _by_process(row: TableRow) -> tuple[Any, ...]:
    names = sorted(h.name.lower() for h in row.holders)
    # Rows without a visible owner go last: they are not what a name sort is looking for.
    return (not names, names[0] if names else "", *_by_port(row))


def _by_user(row: TableRow) -> tuple[Any, ...]:
    users = sorted((h.user or "?").lower() for h in row.holders)
    return (not users, users[0] if users else "", *_by_port(row))


def _by_time_wait(row: TableRow) -> tuple[Any, ...]:
    return (-row.time_wait, *_by_port(row))


def _by_connections(row: TableRow) -> tuple[Any, ...]:
    return (-(row.stats.live if row.stats is not None else 0), *_by_port(row))


_SORT_KEYS: dict[SortMode, Callable[[TableRow], tuple[Any, ...]]] = {
    "port": _by_port,
    "proto": _by_proto,
    "address": _by_address,
    "PID": _by_pid,
    "process": _by_process,
    "user": _by_user,
    "TIME_WAIT": _by_time_wait,
    "connections": _by_connections,
}


def sort_key(mode: SortMode) -> Callable[[TableRow], tuple[Any, ...]]:
    """The order of `mode`; the table reverses the whole key for a reversed sort."""
    return _SORT_KEYS[mode]


def descending(mode: SortMode, reverse: bool) -> bool:
    """Whether `mode` (reversed or not) puts the largest first: counts sort busiest first."""
    return (mode in ("TIME_WAIT", "connections")) != reverse


# -- the filter ---------------------------------------------------------------------------

TermKind = Literal["port", "range", "prefix", "user", "pid", "name"]


@record
class FilterTerm:
    """One word of the filter: `8080` or `:8080`, `8000-8100`, `80*`, `user:NAME`, `pid:N`,
    or a piece of a process name."""

    kind: TermKind
    text: str = ""  # the prefix's digits, the user name, the name's piece (lower case)
    low: int = 0  # port, range and pid: the number(s)
    high: int = 0

    def matches(
        self, port: int, names: Iterable[str], users: Iterable[str], pids: Iterable[int]
    ) -> bool:
        kind = self.kind
        if kind == "port":
            return port == self.low
        if kind == "range":
            return self.low <= port <= self.high
        if kind == "prefix":
            return str(port).startswith(self.text)
        if kind == "pid":
            return self.low in pids
        if kind == "user":
            return any(u.lower() == self.text or shown(u).lower() == self.text for u in users)
        # A name as the process set it and as it is shown, so `\\x1b` finds what shows it.
        return any(self.text in n.lower() or self.text in shown(n).lower() for n in names)


@record
class RowFilter:
    """What `/` was given: words that must all match (see FilterTerm); empty matches all."""

    text: str = ""
    terms: tuple[FilterTerm, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.text)

    @property
    def port(self) -> int | None:
        """The port when the filter is one exact port, else None."""
        if len(self.terms) == 1 and self.terms[0].kind == "port":
            return self.terms[0].low
        return None

    def matches(self, row: TableRow) -> bool:
        if not self.terms:
            return True
        names = [h.name for h in row.holders]
        container = row.socket.container if row.socket is not None else None
        if container is not None:  # "docker web (nginx)": found by the name it shows
            names.append(container.name)
        users = [h.user or "" for h in row.holders]
        if not row.holders and row.socket is not None and row.socket.uid is not None:
            users.append(user_name(row.socket.uid))  # a hidden owner's account, as shown
        pids = [h.pid for h in row.holders]
        return all(t.matches(row.port, names, users, pids) for t in self.terms)


def parse_filter(raw: str) -> RowFilter | str:
    """The filter for `raw`, or the one-line message saying what is wrong with it (escaped:
    it quotes what was typed).

    Only ASCII digits make a port: `"²".isdigit()` is True but int() refuses it, and
    fullwidth digits are not what anyone meant to type; both are looked for as names.
    """
    value = raw.strip()
    terms = []
    for word in value.split():
        term = _term(word)
        if isinstance(term, str):
            return term
        terms.append(term)
    return RowFilter(value, tuple(terms))


def _term(word: str) -> FilterTerm | str:
    lowered = word.lower()
    if lowered.startswith("user:"):
        name = word[len("user:"):]
        return FilterTerm("user", name.lower()) if name else "user: needs a name (user:www)"
    if lowered.startswith("pid:"):
        try:
            pid = parse_pid(word[len("pid:"):])
        except ValueError as exc:
            return str(exc)
        return FilterTerm("pid", low=pid, high=pid)
    number = word[1:] if word.startswith(":") else word
    if number.isascii():
        if number.isdigit():
            try:
                port = parse_port(number)
            except ValueError as exc:
                return str(exc)
            return FilterTerm("port", low=port, high=port)
        if number.endswith("*") and number[:-1].isdigit() and len(number) <= 6:
            return FilterTerm("prefix", number[:-1].lstrip("0") or "0")
        low, dash, high = number.partition("-")
        if dash and low.isdigit() and high.isdigit():
            try:
                first, last = parse_port_range(number)
            except ValueError as exc:
                return str(exc)
            return FilterTerm("range", low=first, high=last)
    if word.startswith(":"):
        return f"not a port number: {fit(shown(word), 40)} (try :8080, :8000-8100 or :80*)"
    return FilterTerm("name", lowered)


WILDCARDS = frozenset({"0.0.0.0", "::"})


def clients_of(row: TableRow, snapshot: Snapshot | None) -> tuple[ClientDestination, ...]:
    """This host's client sockets summed per destination that reach `row`'s port (its
    address, or any for a wildcard listener or a port with no listener), busiest first."""
    if snapshot is None or row.proto != "tcp":
        return ()
    anywhere = row.address is None or row.address in WILDCARDS
    return tuple(
        d for d in snapshot.client_time_wait.destinations
        if d.port == row.port and (anywhere or d.address == row.address)
    )


def shown_texts(row: TableRow) -> RowTexts:
    """The row's cell texts, escaped for the screen."""
    return RowTexts(*map(shown, row_texts(row)))


@record
class Prepared:
    """A poll made ready for the table in the poller's thread, so the UI thread does only
    the final diff: the rows, their escaped texts, the counts the header shows.

    A row equal to the previous poll's row of the same key *is* that row (the same object),
    so the table tells unchanged rows by identity, whichever earlier poll it last showed
    (polls the UI was too busy to show are simply skipped)."""

    snapshot: Snapshot
    rows: Sequence[TableRow]
    texts: Mapping[str, RowTexts]
    listening: int = 0
    elapsed: float = 0.0  # seconds the poll took
    skipped: int = 0  # poll ticks this poll's overrun skipped (poller.py)
    replaced: int = 0  # polls made ready but never shown: a newer one replaced them
    sketch: bool = False  # sockets only, processes still being looked up (sketch_rows)


LOOKING_UP = "looking up processes…"
LOOKING_UP_ALL = "looking up processes and TIME_WAIT…"
UNKNOWN = "…"  # a sketch's cell whose value the whole poll brings


def sketch_rows(snapshot: Snapshot) -> Prepared:
    """The first frame's rows, from a poll of the sockets alone (owners=False), or of the
    listeners alone (LISTENERS_ONLY: no TIME_WAIT read, 100,000 of which take ~0.5 s):
    what listens where, at once, while the first whole poll reads every process's fd
    table (a second and more at 2,000 processes). A row without holders says they are
    being looked up, not that they are hidden, and so does the header; so do the counts
    of a listeners-only sketch."""
    listeners_only = LISTENERS_ONLY in snapshot.notes
    notes = tuple(n for n in snapshot.notes if n not in (NOT_LOOKED_UP, LISTENERS_ONLY))
    looking = LOOKING_UP_ALL if listeners_only else LOOKING_UP
    snapshot = replace(snapshot, notes=(looking, *notes), hidden_owners=0)
    ready = prepare_rows(snapshot)
    texts: dict[str, RowTexts] = {}
    for row in ready.rows:
        text = ready.texts[row.key]
        if row.socket is not None and not row.holders:
            text = text._replace(pids="", process=UNKNOWN, user="")
        if listeners_only and row.proto == "tcp":
            text = text._replace(time_wait=UNKNOWN, other=UNKNOWN)
        texts[row.key] = text
    return replace(ready, texts=texts, sketch=True)


def prepare_rows(snapshot: Snapshot, previous: Prepared | None = None) -> Prepared:
    """The rows of `snapshot`, rows and texts unchanged since `previous` reused as they were
    (the deep comparisons run here, off the UI thread)."""
    before: Mapping[str, TableRow] = (
        {row.key: row for row in previous.rows} if previous is not None else {}
    )
    old_texts = previous.texts if previous is not None else {}
    rows: list[TableRow] = []
    texts: dict[str, RowTexts] = {}
    for row in build_rows(snapshot, reuse=before):
        key = row.key
        last = before.get(key)
        if last is not None and (last is row or last == row):
            row = last
            texts[key] = old_texts.get(key) or shown_texts(row)
        else:
            texts[key] = shown_texts(row)
        rows.append(row)
    return Prepared(snapshot, rows, texts, listening_count(rows))


class RowSelection:
    """The rows the filter and the TCP/UDP view let through, remembered per row: a row
    unchanged since the last poll (the same object, see Prepared) is not matched again."""

    def __init__(self) -> None:
        self._filter: tuple[RowFilter, ProtoView] = (RowFilter(), "both")
        self._seen: dict[str, tuple[TableRow, bool]] = {}

    def visible(
        self, rows: Sequence[TableRow], row_filter: RowFilter, proto: ProtoView = "both"
    ) -> list[TableRow]:
        if not row_filter and proto == "both":
            self._seen = {}
            return list(rows)
        wanted = (row_filter, proto)
        if wanted != self._filter:
            self._filter, self._seen = wanted, {}
        seen, now = self._seen, {}
        out = []
        for row in rows:
            hit = seen.get(row.key)
            if hit is not None and hit[0] is row:
                ok = hit[1]
            else:
                ok = (proto == "both" or row.proto == proto) and row_filter.matches(row)
            now[row.key] = (row, ok)
            if ok:
                out.append(row)
        self._seen = now
        return out
