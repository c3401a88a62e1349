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
file) the text is compact: one C encoder pass with no spaces, ~2x faster than laying out
(24 ms against 55 ms for the 6.2 MB of `list --json` with 5,000 listeners), written by the
same writev loop.

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


def _encoder() -> Callable[[Any], str]:
    """One C encoder for every record: JSONEncoder.encode would build a new one per call,
    a third of the time for small records. Acyclic data (no markers), ASCII, ", " and ": "
    separators, NaN allowed: what JSONEncoder(separators=(", ", ": ")) writes."""
    from json import encoder

    plain = json.JSONEncoder(separators=(", ", ": "))
    make = getattr(encoder, "c_make_encoder", None)  # undocumented, so not in the stubs
    if make is None:  # an interpreter without the C accelerator
        return plain.encode
    chunks = make(
        None, plain.default, encoder.encode_basestring_ascii, None, ": ", ", ", False, False,
        True,
    )
    return lambda value: "".join(chunks(value, 0))


_encode = _encoder()


def dumps(value: Any) -> str:
    return b"".join(pieces(value)).decode("ascii")


def compact(value: Any) -> str:
    """`value` on one line with no spaces: the C encoder, no cycle check (the contracts are
    trees; a record shared by many sockets is met again, never inside itself)."""
    return json.JSONEncoder(separators=(",", ":"), check_circular=False).encode(value)


def pieces(value: Any) -> list[bytes]:
    """The JSON text of `value` in pieces, in order; a record met twice is one bytes
    object twice, not two copies."""
    parts: list[bytes] = []
    _lay(value, 0, parts, {}, {})
    return parts


def write(value: Any, out: TextIO | None = None, *, pretty: bool = True) -> None:
    """`value` and a newline on `out` (stdout), laid out (`pretty`) or compact. Where `out`
    is a file descriptor the pieces go out with writev, 1,024 at a time: 60 MB are never
    joined into one (the join alone, page faults and all, cost more than the encoding)."""
    out = sys.stdout if out is None else out
    parts = pieces(value) if pretty else [compact(value).encode("ascii")]
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


_Laid = dict[tuple[int, int], "tuple[int, int] | bytes"]


def _lay(value: Any, depth: int, parts: list[bytes], memo: dict[int, bytes], laid: _Laid) -> None:
    """Append `value`'s text at `depth`. `memo`: records by id; `laid`: containers by (id,
    depth), first where their pieces are in `parts`, joined once met again (a list of 300
    processes shared by 200 listeners is laid out once). Ids stay unique: `value` lives as
    long as both."""
    text = memo.get(id(value))
    if text is not None:
        parts.append(text)
        return
    key = (id(value), depth)
    seen = laid.get(key)
    if isinstance(seen, bytes):
        parts.append(seen)
        return
    if seen is not None:
        joined = laid[key] = b"".join(parts[seen[0] : seen[1]])
        parts.append(joined)
        return
    start = len(parts)
    _lay_new(value, depth, parts, memo, laid)
    if isinstance(value, (dict, list)) and len(parts) - start > 1:
        laid[key] = (start, len(parts))


def _lay_new(
    value: Any, depth: int, parts: list[bytes], memo: dict[int, bytes], laid: _Laid
) -> None:
    if _inline(value):
        text = _encode(value).encode("ascii")
        if isinstance(value, dict):
            memo[id(value)] = text
        parts.append(text)
        return
    pad = b"\n" + b"  " * (depth + 1)
    if isinstance(value, dict):
        sep = b"{" + pad
        for key, item in value.items():
            parts.append(sep + _encode(key).encode("ascii") + b": ")
            _lay(item, depth + 1, parts, memo, laid)
            sep = b"," + pad
        parts.append(b"\n" + b"  " * depth + b"}")
        return
    sep, later = b"[" + pad, b"," + pad
    for item in value:
        parts.append(sep)
        sep = later
        known = memo.get(id(item))  # the common case, without a call
        if known is None:
            _lay(item, depth + 1, parts, memo, laid)
        else:
            parts.append(known)
    parts.append(b"\n" + b"  " * depth + b"]")


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
