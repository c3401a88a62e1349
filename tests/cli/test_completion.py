"""`portscope completion SHELL`: generated from the parser by shtab; tested in real bash by
sourcing the script and calling its completion function as bash does on TAB."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portscope.cli import COMMANDS
from real_servers import missing
from support import tcp_listener

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bash, /proc")

VENV_BIN = Path(sys.executable).parent  # where the `portscope` console script is


def script(shell: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "portscope", "completion", shell],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "portscope.bash"
    path.write_text(script("bash"))
    return path


def complete(bash_script: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` (the word under the cursor)."""
    bash = shutil.which("bash")
    if bash is None:
        missing("bash is not installed")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (
        f"source '{bash_script}'\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        "_shtab_portscope\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", code], capture_output=True, text=True,
        timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_a_command_completes_from_its_prefix(bash_script: Path) -> None:
    assert complete(bash_script, "portscope", "li") == ["list"]
    assert set(complete(bash_script, "portscope", "")) >= set(COMMANDS)


def test_options_and_choices_complete(bash_script: Path) -> None:
    assert complete(bash_script, "portscope", "kill", "--si") == ["--signal"]
    assert complete(bash_script, "portscope", "list", "--format", "") == [
        "table", "plain", "csv", "json",
    ]
    assert complete(bash_script, "portscope", "completion", "") == ["bash", "zsh", "fish"]


def test_a_port_argument_offers_the_ports_in_use(bash_script: Path) -> None:
    with tcp_listener() as listener:
        port = str(listener.getsockname()[1])
        offered = complete(bash_script, "portscope", "check", "")
        narrowed = complete(bash_script, "portscope", "list", "--port", port[:-1])
    assert port in offered and all(p.isdigit() for p in offered)
    assert port in narrowed and all(p.startswith(port[:-1]) for p in narrowed)


def test_every_command_and_option_is_in_each_script() -> None:
    """Generated from the parser: nothing it parses is missing from a script."""
    from portscope.cli import build_parser
    from portscope.cli.argparser import Parser

    parser = build_parser(every=True)
    for shell in ("bash", "zsh", "fish"):
        text = script(shell)
        assert "portscope list --format plain" in text, shell  # the ports in use
        for name in COMMANDS:
            sub = parser.subcommand(name)
            assert isinstance(sub, Parser)
            for action in sub._actions:
                for option in action.option_strings:
                    bare = option.lstrip("-")
                    assert bare in text, (shell, name, option)
