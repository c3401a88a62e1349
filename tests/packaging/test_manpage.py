"""portscope(1): the committed man/portscope.1 is what the parser generates today, it covers
every command, option, example and exit code, and groff reads it without a warning."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portscope import __version__, manpage
from portscope.cli import COMMANDS, build_parser
from portscope.cli.help_text import HELP
from real_servers import missing

COMMITTED = manpage.PAGE.read_text(encoding="utf-8")
STALE = "man/portscope.1 is stale: run `.venv/bin/python -m portscope.manpage` and commit it"


def roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def test_committed_page_is_the_generated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # A narrow terminal must not change it: the page is the same wherever it is made.
    monkeypatch.setenv("COLUMNS", "40")
    date = manpage.dated(COMMITTED)
    assert len(date) == 10, COMMITTED[:200]
    assert manpage.render(date) == COMMITTED, STALE


def test_generator_writes_the_page(tmp_path: Path) -> None:
    """`python -m portscope.manpage PATH`, the command that makes it: a new page carries
    today's date, and a second run leaves an unchanged page (and its date) alone."""
    path = tmp_path / "man" / "portscope.1"
    for expected in ("wrote", "is up to date"):
        done = subprocess.run(
            [sys.executable, "-m", "portscope.manpage", str(path)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    written = path.read_text(encoding="utf-8")
    assert written == manpage.render(manpage.dated(written))
    # Apart from its date it is the committed page.
    assert written.replace(manpage.dated(written).replace("-", "\\-"), "DATE") == (
        COMMITTED.replace(manpage.dated(COMMITTED).replace("-", "\\-"), "DATE")
    ), STALE


def test_generator_refuses_bad_arguments(tmp_path: Path) -> None:
    def generate(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portscope.manpage", *argv],
            capture_output=True, text=True, timeout=120,
        )

    done = generate("--bogus")
    assert done.returncode == 2
    assert done.stderr == "usage: python -m portscope.manpage [PATH]\n"
    done = generate(str(tmp_path))  # a directory: one line, no traceback
    assert done.returncode == 1
    assert done.stderr == f"portscope.manpage: {tmp_path}: Is a directory\n"


def test_page_covers_every_command_option_example_and_exit_code() -> None:
    assert f'"portscope {__version__}"' in COMMITTED.splitlines()[0]
    parser = build_parser(every=True)
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == set(COMMANDS)
    for name, sub in subs.choices.items():
        assert f".SS \\fBportscope {name}\\fR" in COMMITTED, name
        section = COMMITTED.split(f".SS \\fBportscope {name}\\fR", 1)[1].split(".SS", 1)[0]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:  # `list --portable`: documented once, above
                continue
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"\\fB{roff(option)}\\fR" in section, (name, option)
    for option in ("--version", "--interval", "--portable"):
        assert f"\\fB{roff(option)}\\fR" in COMMITTED
    assert set(HELP) == set(COMMANDS)
    for samples, codes in HELP.values():
        for line, what in samples:
            assert f"\\fB{roff(line)}\\fR" in COMMITTED
            assert roff(what) in COMMITTED
        for code, meaning in codes:
            assert f".TP\n\\fB{roff(code)}\\fR\n{roff(meaning)}\n" in COMMITTED


def test_no_text_line_reads_as_a_request() -> None:
    """A help text that starts a line with a dot ("...") would vanish from the page."""
    requests = {".TH", ".SH", ".SS", ".TP", ".B", ".RS", ".RE"}
    for line in COMMITTED.splitlines():
        if line.startswith((".", "'")):
            assert line.split(" ", 1)[0] in requests, line
    assert manpage.roff("...and more") == "\\&...and more"


def test_groff_reads_it_without_warnings() -> None:
    groff = shutil.which("groff")
    if groff is None:
        missing("groff is not installed (apt-get install groff-base)")
    done = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", str(manpage.PAGE)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    shown = subprocess.run(
        [groff, "-man", "-Tascii", "-P-cbou", "-rLL=100n", str(manpage.PAGE)],
        capture_output=True, text=True, timeout=60,
    ).stdout
    # Options print as typed (plain hyphens a shell accepts), every command has its part.
    assert "portscope [-h] [--version] [--interval S] [--portable] COMMAND ..." in shown
    for name in COMMANDS:
        assert f"portscope {name}\n" in shown
