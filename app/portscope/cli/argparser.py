"""One ArgumentParser for the program and every subcommand: a usage error is one line.

argparse's own error() prints the whole usage and then `prog: error: message`, three or more
lines a script has to pick apart, with the bad argument echoed raw. Here every error is
`portscope: <message>` on stderr, escaped and cut to one line, and exit 2 (httpie's
cli/argparser.py overrides error() the same way). A mistyped command, option or choice gets
"did you mean" (difflib, imported only then); options are never abbreviated (allow_abbrev
off): `--sig` is a typo to point out, not `--signal`, and a script stays valid when a later
release adds an option that shares its prefix.

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


class HelpFormatter(Formatter):
    """Wraps a one-paragraph text to the terminal; a text with line breaks (the examples
    and exit codes of an epilog) is laid out by hand and printed as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors; subparsers made by add_subparsers are Parsers too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)  # subparsers too: no shutil import
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = "" if "choose from" in message or "did you mean" in message else (
            f" (try '{self.prog} --help')"
        )
        self.die(message + hint)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside `choices` (a command, --format): the nearest one, if any is near."""
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        what = "command" if isinstance(action, argparse._SubParsersAction) else (
            f"value for {'/'.join(action.option_strings) or action.metavar or action.dest}"
        )
        near = nearest(str(value), names)
        tail = f"did you mean {quoted(near)}?" if near else f"choose from {', '.join(names)}"
        raise argparse.ArgumentError(None, f"unknown {what} {quoted(str(value))}: {tail}")

    def die(self, message: str) -> NoReturn:
        print(f"portscope: {fit(shown(message), MESSAGE_CELLS)}", file=sys.stderr)
        sys.exit(BAD_INPUT)

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """parse_args, with a strict parser's message as is and unknown arguments quoted."""
        try:
            args, extras = self.parse_known_args(argv)
        except BadValue as exc:
            # `kill --sig KILL 80`: KILL was read as the port because --sig is unknown; the
            # typo is the mistake to name.
            typo = self.unknown_option(list(argv or ()))
            if typo is None:
                self.die(str(exc))
            extras = [typo]
            args = argparse.Namespace(command=self.command_in(list(argv or ())))
        if extras:
            command = getattr(args, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            more = f" and {len(extras) - 1} more" if len(extras) > 1 else ""
            word = extras[0]
            near = nearest(word.partition("=")[0], self.options_of(command)) if (
                word.startswith("-")
            ) else None
            hint = f"did you mean {quoted(near)}?" if near else f"try '{prog} --help'"
            self.die(f"unrecognized argument {quoted(word)}{more} ({hint})")
        return args

    def command_in(self, argv: list[str]) -> str | None:
        """The first word of `argv` that names a command."""
        names = self.subcommand_names()
        return next((w for w in argv if w in names), None)

    def unknown_option(self, argv: list[str]) -> str | None:
        """The first word before `--` that looks like an option none of the parsers has."""
        known = set(self.options_of(self.command_in(argv)))
        for word in argv:
            if word == "--":
                return None
            if word.startswith("-") and word != "-" and not word[1:2].isdigit() and (
                word.partition("=")[0] not in known
            ):
                return word
        return None

    def subcommand_names(self) -> set[str]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return set(action.choices)
        return set()

    def subcommand(self, name: str | None) -> argparse.ArgumentParser | None:
        """The parser of command `name` (None: this one)."""
        if name is None:
            return self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                found: argparse.ArgumentParser | None = action.choices.get(name)
                return found
        return None

    def options_of(self, command: str | None) -> list[str]:
        """Every option string `command` takes, and the program's own."""
        chosen = self.subcommand(command)
        parsers = [self] if chosen is None or chosen is self else [chosen, self]
        return [o for p in parsers for a in p._actions for o in a.option_strings]


def nearest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate `word` most likely meant: the only one it begins (`--sig` for
    `--signal`), else the closest spelling (`lsit` for `list`), else None."""
    starting = [c for c in candidates if c.startswith(word) and len(word) > 2]
    if len(starting) == 1:
        return starting[0]
    import difflib  # only for a mistake: a correct command line never pays for it

    close = difflib.get_close_matches(word, starting or candidates, n=1, cutoff=0.7)
    return close[0] if close else None
