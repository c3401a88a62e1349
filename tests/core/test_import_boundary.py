"""The core must stay headless: importing every module of it must not load Textual."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import portscope.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "portscope.core.")]
for name in names:
    importlib.import_module(name)
import portscope.cli.list_cmd
print(len(names), sorted(m for m in sys.modules if m.split(".")[0] == "textual"))
"""


def test_core_and_cli_import_no_textual() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    modules, textual = int(out[0]), out[1].strip()
    assert modules >= 8  # walked the real package, not an empty one
    assert textual == "[]"
