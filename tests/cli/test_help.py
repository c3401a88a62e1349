"""Help that teaches: each command's --help has its one-line description, two examples and
its exit codes; a typo gets "did you mean"; no option is ever abbreviated."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Callable

import pytest

from portscope.cli import COMMANDS, build_parser
from support import ROOT_LISTENER, exited

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def portscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help_has_a_line_two_examples_and_exit_codes(command: str) -> None:
    result = portscope(command, "--help")
    assert result.returncode == 0, result.stderr
    page = result.stdout
    line = COMMANDS[command][1]
    assert f"\n{line[0].upper()}{line[1:]}." in page  # the line `portscope --help` shows
    examples = page.split("\nexamples:\n", 1)[1].split("\n\nexit codes:\n", 1)
    shown = [ex for ex in examples[0].splitlines() if ex.startswith("  portscope ")]
    assert sum(f"portscope {command} " in f"{ex} " for ex in shown) >= 2, shown
    codes = [ln.split()[0] for ln in examples[1].splitlines() if ln.strip()]
    assert "2" in codes and len(codes) >= 2
    assert all(ln.startswith("  ") for ln in examples[1].splitlines() if ln.strip())


def test_run_help_says_a_free_port_can_still_be_taken() -> None:
    page = " ".join(portscope("run", "--help").stdout.split())
    assert "A port found free can still be taken by another process before COMMAND binds it" in (
        page
    )
    assert "PORT=P" in page and "{port}" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lsit"], "unknown command 'lsit': did you mean 'list'?"),
        (["chekc", "80"], "unknown command 'chekc': did you mean 'check'?"),
        (["list", "--jsno"], "unrecognized argument '--jsno' (did you mean '--json'?)"),
        (["wait", "80", "--tiemout", "1"],
         "unrecognized argument '--tiemout' and 1 more (did you mean '--timeout'?)"),
        (["list", "--format", "jsno"], "unknown value for --format 'jsno': did you mean 'json'?"),
        (["--verison"], "unrecognized argument '--verison' (did you mean '--version'?)"),
    ],
)
def test_typos_get_did_you_mean(args: list[str], message: str) -> None:
    result = portscope(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"portscope: {message}\n"


def test_sig_is_not_signal_and_nothing_is_killed(spawn: Spawn) -> None:
    proc, port = spawn(ROOT_LISTENER)
    result = portscope("kill", port, "--yes", "--sig", "KILL")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "portscope: unrecognized argument '--sig' and 1 more (did you mean '--signal'?)\n"
    )
    assert not exited(proc, timeout=0.3)


def _long_options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(command, option) for every long option of every command."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(name, o) for a in sub._actions for o in a.option_strings
                          if o.startswith("--")]
    return found


# What each command needs besides the option tried, so only the option can be wrong.
REQUIRED = {
    "check": ["80"], "wait": ["80"], "kill": ["80"], "completion": ["bash"],
    "run": ["--port", "80", "--", "true"],
}


def test_no_option_is_ever_abbreviated() -> None:
    """Every proper prefix of every long option that is not an option itself is refused."""
    parser = build_parser(every=True)
    checked = 0
    for command, option in _long_options(parser):
        options = {o for c, o in _long_options(parser) if c == command}
        for end in range(3, len(option)):
            prefix = option[:end]
            if prefix in options:
                continue
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
                build_parser(command).parse([command, prefix, *REQUIRED.get(command, [])])
            assert exit_.value.code == 2, (command, prefix)
            assert f"unrecognized argument '{prefix}'" in err.getvalue(), (command, prefix)
            checked += 1
    assert checked > 50
