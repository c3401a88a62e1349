"""JSON for --json: the C encoder, in a layout a person can still read, written at once.

`json.dump(indent=2)` runs the pure-Python encoder, one write per token: 3.7 s and 2.3 M
writes for `list --json` with 300 processes sharing 200 listeners (60,000 process objects).
Here a *record* (an object whose values are plain values, or lists or objects of plain
values: a process, a bind attempt, a stop plan) is encoded by the C encoder on one line;
containers above records are laid out one item per line, indented by two spaces; a list
of numbers stays on one line. The same record object met again (a worker holding 200
listeners) is encoded once (serialize hands out one dict per process), and the pieces are
written as they are (writev), never joined: time and memory follow what is printed.

That layout is for a person (a terminal, or `--pretty`). For a program (stdout a pipe or a
file) the text is compact: no spaces or line breaks, built and written the same way.

The text is ASCII (ensure_ascii, as json.dump did): a lone surrogate in an argv (bytes that
are not UTF-8) is written as its escape, not a crash.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)  # exact types: a set lookup, where isinstance is a call
_NUMBERS = (int, float, bool, type(None))
_IOV_MAX = 1024  # buffers per writev: Linux's IOV_MAX


def _encoder(item: str = ", ", key: str = ": ") -> Callable[[Any], str]:
    """One C encoder for every record: JSONEncoder.encode would build a new one per call,
    a third of the time for small records. Acyclic data (no markers), ASCII, `item` and
    `key` separators, NaN allowed: what JSONEncoder(separators=(item, key)) writes."""
    from json import encoder

    plain = json.JSONEncoder(separators=(item, key))
    make = getattr(encoder, "c_make_encoder", None)  # undocumented, so not in the stubs
    if make is None:  # an interpreter without the C accelerator
        return plain.encode
    chunks = make(
        None, plain.default, encoder.encode_basestring_ascii, None, key, item, False, False,
        True,
    )
    return lambda value: "".join(chunks(value, 0))


_encode = _encoder()
_encode_compact = _encoder(",", ":")


def dumps(value: Any) -> str:
    return b"".join(pieces(value)).decode("ascii")


def compact(value: Any, *, shared: bool = False) -> str:
    """`value` on one line with no spaces. One C encoder pass, unless records are `shared`
    many times over (2,000 processes holding each of 20 listeners: 40,000 records in the
    text, 2,000 distinct): then each is encoded once and its text repeated (14 ms against
    86 ms; with nothing shared, 114 ms against 20 ms the other way round)."""
    if shared:
        return b"".join(pieces(value, pretty=False)).decode("ascii")
    # No cycle check: the contracts are trees (a shared record is never inside itself).
    return json.JSONEncoder(separators=(",", ":"), check_circular=False).encode(value)


def pieces(value: Any, *, pretty: bool = True) -> list[bytes]:
    """The JSON text of `value` in pieces, in order; a record met twice is one bytes
    object twice, not two copies. `pretty`: laid out; else compact."""
    layout = _Layout(pretty)
    layout.lay(value, 0)
    return layout.parts


def write(
    value: Any, out: TextIO | None = None, *, pretty: bool = True, shared: bool = False
) -> None:
    """`value` and a newline on `out` (stdout), laid out (`pretty`) or compact (`shared`:
    see `compact`). Where `out` is a file descriptor the pieces go out with writev, 1,024
    at a time: 60 MB are never joined into one (the join alone, page faults and all, cost
    more than the encoding)."""
    out = sys.stdout if out is None else out
    whole = pretty or shared  # else one C encoder pass makes the whole text at once
    parts = pieces(value, pretty=pretty) if whole else [compact(value).encode("ascii")]
    parts.append(b"\n")
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # a StringIO, a test's capture
        out.write(b"".join(parts).decode("ascii"))
        return
    out.flush()  # whatever was printed before goes first
    for start in range(0, len(parts), _IOV_MAX):
        batch = parts[start : start + _IOV_MAX]
        done = os.writev(fd, batch)
        total = sum(map(len, batch))
        if done < total:  # a pipe or terminal took part of it: the rest, plainly
            rest = memoryview(b"".join(batch))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]


class _Layout:
    """The pieces of one text. `memo`: records by id; `laid`: containers by (id, depth),
    first where their pieces are in `parts`, joined once met again (a list of 300
    processes shared by 200 listeners is laid out once). Ids stay unique: the value lives
    as long as the layout. Compact text is built the same way: encoding 2,000 processes
    once each beats one encoder pass that meets each 20 times (20 listeners)."""

    def __init__(self, pretty: bool) -> None:
        self.parts: list[bytes] = []
        self._memo: dict[int, bytes] = {}
        self._laid: dict[tuple[int, int], tuple[int, int] | bytes] = {}
        self._pretty = pretty
        self._encode = _encode if pretty else _encode_compact
        self._key = b": " if pretty else b":"

    def lay(self, value: Any, depth: int) -> None:
        parts = self.parts
        text = self._memo.get(id(value))
        if text is not None:
            parts.append(text)
            return
        key = (id(value), depth)
        seen = self._laid.get(key)
        if isinstance(seen, bytes):
            parts.append(seen)
            return
        if seen is not None:
            joined = self._laid[key] = b"".join(parts[seen[0] : seen[1]])
            parts.append(joined)
            return
        start = len(parts)
        self._lay_new(value, depth)
        if isinstance(value, (dict, list)) and len(parts) - start > 1:
            self._laid[key] = (start, len(parts))

    def _pad(self, depth: int) -> bytes:
        return b"\n" + b"  " * depth if self._pretty else b""

    def _lay_new(self, value: Any, depth: int) -> None:
        parts, encode = self.parts, self._encode
        if _inline(value):
            text = encode(value).encode("ascii")
            if isinstance(value, dict):
                self._memo[id(value)] = text
            parts.append(text)
            return
        pad = self._pad(depth + 1)
        if isinstance(value, dict):
            sep = b"{" + pad
            for key, item in value.items():
                parts.append(sep + encode(key).encode("ascii") + self._key)
                self.lay(item, depth + 1)
                sep = b"," + pad
            parts.append(self._pad(depth) + b"}")
            return
        sep, later = b"[" + pad, b"," + pad
        memo = self._memo
        for item in value:
            parts.append(sep)
            sep = later
            known = memo.get(id(item))  # the common case, without a call
            if known is None:
                self.lay(item, depth + 1)
            else:
                parts.append(known)
        parts.append(self._pad(depth) + b"]")


def _inline(value: Any) -> bool:
    """Scalars, empty containers, records, and lists of numbers go on one line."""
    if type(value) in _SCALAR_TYPES or isinstance(value, _SCALARS) or not value:
        return True
    if isinstance(value, dict):
        for item in value.values():
            if type(item) not in _SCALAR_TYPES and not _plain(item):
                return False
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, _NUMBERS) for v in value)
    return True  # not JSON at all: the encoder says so


def _plain(value: Any) -> bool:
    """A scalar, or a list or object of scalars: what a record may hold."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return False
    for item in value:  # a loop, not all(genexpr): argv lists are long
        if type(item) not in _SCALAR_TYPES and not isinstance(item, _SCALARS):
            return False
    return True
