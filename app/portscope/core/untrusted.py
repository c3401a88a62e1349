"""The one boundary for text that a process or a person chose.

Any local user picks their process's name (`comm`), argv and cwd, and portscope often runs
as root: printed raw, `\\e]0;pwned\\a` sets root's terminal title, `\\e[2J` clears it, a
newline in argv forges a field, a bidi override reverses what follows. So every such string
goes through `shown()` before a surface prints it: the characters that steer a terminal or
hide text become visible escapes (`\\x1b`, `\\n`, `\\u202e`), and nothing else changes.
`--json` keeps the raw strings (JSON escapes them itself).

Widths are measured in terminal cells (a CJK character takes two), never with len().
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; bidi controls and marks; zero-width and invisible
# characters; line and paragraph separators (a renderer breaks lines on them); lone
# surrogates (argv bytes that are not UTF-8, which would crash a print).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069"
    "\ufeff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: str | None) -> str:
    """`value` as a terminal may safely show it; None is "" (nothing to show)."""
    if not value:
        return ""
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(_escape, value)


def shown_argv(argv: tuple[str, ...] | list[str]) -> str:
    """A command line on one line: each argument escaped, joined by spaces."""
    return " ".join(shown(arg) for arg in argv)


def cells(text: str) -> int:
    """Terminal cells `text` takes (escape it first: controls have no width)."""
    if text.isascii() and text.isprintable():  # one cell each, as rich counts them
        return len(text)
    from rich.cells import cell_len  # ~3 ms to import: only text outside ASCII pays it

    return cell_len(text)


def pad(text: str, width: int) -> str:
    """Left-justify to `width` cells (str.ljust counts characters, not cells)."""
    return text + " " * max(0, width - cells(text))


def fit(text: str, width: int) -> str:
    """At most `width` cells; a longer text ends in "…"."""
    if cells(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if text.isascii() and text.isprintable():
        return text[: width - 1].rstrip() + "…"
    from rich.cells import set_cell_size

    return set_cell_size(text, width - 1).rstrip() + "…"
