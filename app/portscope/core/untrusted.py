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

# The fast path: C0 controls, DEL and C1 controls, and everything outside ASCII that may be
# invisible or steer a terminal is decided by _hidden() below; plain ASCII never is.
_ASCII_UNSAFE = re.compile("[\x00-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Unicode categories shown as escapes: controls (Cc), format characters (Cf: bidi controls,
# zero-width joiners, tags...), private use (Co), lone surrogates (Cs: argv bytes that were
# not UTF-8), unassigned (Cn), line and paragraph separators (Zl, Zp) and every space but
# U+0020 (Zs: U+2000-200A, U+3000 and the like look like a space and are not one).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})
# Default_Ignorable_Code_Point, which unicodedata does not expose: Unicode 15.1's
# DerivedCoreProperties.txt (https://www.unicode.org/Public/15.1.0/ucd/DerivedCoreProperties.txt),
# the ranges whose category is not already above (Mn variation selectors, Lo fillers), and
# U+2800 BRAILLE PATTERN BLANK, which renders as nothing in most fonts.
_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def _hidden(char: str) -> bool:
    if char == " ":
        return False
    import unicodedata  # a C module: only text outside ASCII pays for it

    if unicodedata.category(char) in _HIDDEN_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE)


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): the byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(value: str | None) -> str:
    """`value` as a terminal may safely show it; None is "" (nothing to show)."""
    if not value:
        return ""
    if value.isascii():
        if _ASCII_UNSAFE.search(value) is None:
            return value
        return _ASCII_UNSAFE.sub(lambda m: _escape(m.group()), value)
    return "".join(_escape(c) if (c < " " or c == "\x7f" or (c > "~" and _hidden(c))) else c
                   for c in value)


def shown_argv(argv: tuple[str, ...] | list[str]) -> str:
    """A command line on one line: each argument escaped, joined by spaces."""
    return " ".join(shown(arg) for arg in argv)


def cells(text: str) -> int:
    """Terminal cells `text` takes (escape it first: controls have no width)."""
    if text.isascii() and text.isprintable():  # one cell each
        return len(text)
    return sum(_width(c) for c in text)


def _width(char: str) -> int:
    """A character's cells as terminals draw it (wcwidth's rules, from unicodedata rather
    than rich, which `list` and `check` would otherwise import for one non-ASCII name):
    wide and fullwidth East Asian characters 2, combining marks and zero-width ones 0."""
    if " " <= char <= "~":
        return 1
    import unicodedata

    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


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
    kept, used = [], 0
    for char in text:
        used += _width(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept).rstrip() + "…"
