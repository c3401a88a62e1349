"""How wide the terminal is, without shutil.

shutil.get_terminal_size() would answer too, but importing shutil pulls in bz2, lzma and
fnmatch (~2.5 ms) that a one-shot command never uses, and argparse imports it for every
parser it builds unless it is handed a width (Formatter below)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

FALLBACK = 80


def columns(stream: TextIO | None = None) -> int:
    """$COLUMNS when set (as in shutil), else the width of the terminal `stream` is on (the
    prompt goes to stderr, and stdout may be a pipe), else stdout's, else 80. A pty nobody
    sized says 0: that is unknown too."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    for candidate in (stream, sys.__stdout__):
        try:
            width = os.get_terminal_size(candidate.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            continue
        if width > 0:
            return width
    return FALLBACK


class Formatter(argparse.HelpFormatter):
    """argparse's help formatter with the width from columns(), not shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = columns() - 2  # what HelpFormatter subtracts from shutil's answer
        super().__init__(prog, indent_increment, max_help_position, width)
