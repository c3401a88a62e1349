"""portscope(1), generated from the parser: `python -m portscope.manpage` rewrites man/portscope.1.

The page is committed (man/portscope.1, package data, installed as share/man/man1/portscope.1)
so that building or installing portscope needs no argparse-manpage; a test regenerates it and
compares, so it cannot fall behind the parser. Every command's options come from
build_parser(every=True), its examples and exit codes from cli/help_text.py.

The page keeps its date while only the date would change: regenerating an unchanged page is a
no-op, and the committed page is reproducible from the code.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from . import __version__

PAGE = Path(__file__).parent / "man" / "portscope.1"
# argparse wraps help to the terminal's width; man fills the text to the reader's. Unwrapped,
# the page is the same wherever it is made, and no wrapped line starts with a dot ("...") that
# roff would read as a request and drop.
WIDTH = 100_000
# The requests the page is made of; any other line that starts with a dot is text.
REQUESTS = re.compile(r"\.(TH|SH|SS|TP|B|RS|RE|nf|fi|UR|UE|PP)( |$)")
NAME_LINE = "who holds a port, why bind() fails, and when the port frees itself"
DATE = re.compile(r'^\.TH \S+ "1" "([^"]*)"', re.MULTILINE)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def render(date: str) -> str:
    """The page's roff text, dated `date` (YYYY-MM-DD)."""
    try:
        from argparse_manpage.manpage import Manpage  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit(
            "portscope.manpage: argparse-manpage is missing; "
            "pip install -e '.[test]' installs it"
        ) from None
    from .cli import build_parser
    from .cli.argparser import HelpFormatter

    class Fixed(HelpFormatter):
        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=WIDTH)

    parser = build_parser(every=True)
    for each in parsers(parser):
        each.formatter_class = Fixed
        # Python 3.10 says "optional arguments", 3.11+ "options": one page for both.
        each._optionals.title = "options"
    parser._positionals.title = "commands"  # the top level's only positional is COMMAND
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = None  # each command's description says it again, escaped

    page = Manpage(parser, format="single-commands-section")
    page.date = date
    page.source = f"portscope {__version__}"
    page.manual = "portscope manual"
    page.description = NAME_LINE
    # argparse-manpage leaves the synopsis's hyphens raw: roff would print them as hyphens
    # (U+2010), which a reader cannot paste into a shell.
    usage = parser.format_usage().removeprefix("usage: ").removeprefix("portscope")
    page.add_section("synopsis", "=", f".B portscope\n{roff(usage.strip())}")
    page.add_section("EXAMPLES", ">", examples())
    page.add_section("EXIT STATUS", ">", exit_status())
    page.add_section("SEE ALSO", ">", "portscope \\-\\-help, portscope COMMAND \\-\\-help")
    return "\n".join(line if fits(line) else "\\&" + line for line in str(page).split("\n"))


def fits(line: str) -> bool:
    """A line roff reads as it is meant: a request of ours, or text that is not one."""
    return bool(REQUESTS.match(line)) or not line.startswith((".", "'"))


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and every subcommand's parser."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from parsers(sub)


def examples() -> str:
    """Each command's examples (cli/help_text.py): the command line, then what it does."""
    from .cli.help_text import HELP

    lines: list[str] = []
    for command, (samples, _) in HELP.items():
        lines.append(f".SS {roff(command)}")
        for line, what in samples:
            lines += [".TP", f"\\fB{roff(line)}\\fR"]
            if what:
                lines.append(roff(what))
    return "\n".join(lines)


def exit_status() -> str:
    """Each command's exit codes (cli/help_text.py)."""
    from .cli.help_text import HELP

    lines: list[str] = []
    for command, (_, codes) in HELP.items():
        lines.append(f".SS {roff(command)}")
        for code, meaning in codes:
            lines += [".TP", f"\\fB{roff(code)}\\fR", roff(meaning)]
    return "\n".join(lines)


def roff(text: str) -> str:
    """`text` as roff prints it: backslashes and hyphens escaped, and a leading dot or quote
    kept from reading as a request."""
    text = text.replace("\\", "\\\\").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def dated(text: str) -> str:
    """The date in a page's .TH line ("" if none)."""
    found = DATE.search(text)
    return found.group(1).replace("\\-", "-") if found else ""


def main(argv: list[str] | None = None) -> int:
    """Write the page to PATH (default: the package's man/portscope.1)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m portscope.manpage [PATH]", file=sys.stderr)
        return 2
    path = Path(args[0]) if args else PAGE
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old and render(dated(old)) == old:
            print(f"{path} is up to date")
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(time.strftime("%Y-%m-%d", time.gmtime())), encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"portscope.manpage: {path}: {exc.strerror if isinstance(exc, OSError) else exc}",
              file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
