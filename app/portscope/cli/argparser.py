"""One ArgumentParser for the program and every subcommand: a usage error is one line.

argparse's own error() prints the whole usage and then `prog: error: message`, three or more
lines a script has to pick apart, with the bad argument echoed raw. Here every error is
`portscope: <message>` on stderr, escaped and cut to one line, and exit 2 (httpie's
cli/argparser.py overrides error() the same way).

Values are checked by the strict parsers of core/inputs while argparse parses, so a bad
--timeout stops `kill` before anything is collected or signalled. Their ValueError travels
as BadValue, which argparse does not catch (it handles only ArgumentTypeError, TypeError
and ValueError), so the person reads the parser's own sentence rather than argparse's
"argument --timeout: invalid value" wrapping of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..core.inputs import quoted
from ..core.untrusted import fit, shown
from .terminal import Formatter

BAD_INPUT = 2
# An error line stays readable even when argparse echoes a huge argument back (its
# "invalid choice" quotes the whole thing).
MESSAGE_CELLS = 300

TYPE_CHECKING = False  # typing's own flag would import typing (~3 ms) at run time
if TYPE_CHECKING:
    from typing import Any, NoReturn, TypeVar

    T = TypeVar("T")


class BadValue(Exception):
    """A value a strict parser refused; the message is the one line to print."""


def strict(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type=` from a core/inputs parser."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise BadValue(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors; subparsers made by add_subparsers are Parsers too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)  # subparsers too: no shutil import
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = "" if "(choose from" in message else f" (try '{self.prog} --help')"
        self.die(message + hint)

    def die(self, message: str) -> NoReturn:
        print(f"portscope: {fit(shown(message), MESSAGE_CELLS)}", file=sys.stderr)
        sys.exit(BAD_INPUT)

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """parse_args, with a strict parser's message as is and unknown arguments quoted."""
        try:
            args, extras = self.parse_known_args(argv)
        except BadValue as exc:
            self.die(str(exc))
        if extras:
            command = getattr(args, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            more = f" and {len(extras) - 1} more" if len(extras) > 1 else ""
            self.die(f"unrecognized argument {quoted(extras[0])}{more} (try '{prog} --help')")
        return args
