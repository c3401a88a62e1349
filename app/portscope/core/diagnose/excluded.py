"""Windows excluded port ranges: ports Hyper-V, WSL 2 and Docker Desktop reserve through the
WinNAT driver (or an administrator excludes), where every bind() fails with WSAEACCES
(10013) although no process holds the port.

`netsh interface ipv4 show excludedportrange protocol=tcp` lists them:

    Start Port    End Port
    ----------    --------
         50000       50059     *

A `*` marks an administered exclusion. Windows translates the headings, so the parser reads
only rows of two numbers. netsh exists only on Windows: elsewhere nothing is run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence

from ..model import Proto
from ..record import record

Runner = Callable[[Sequence[str]], str]
_ROW = re.compile(r"^\s*(\d{1,5})\s+(\d{1,5})\s*(\*)?\s*$")
NETSH_TIMEOUT = 5.0  # seconds: netsh answers at once; a hung one must not hang `check`


@record
class PortRange:
    start: int
    end: int
    administered: bool = False  # `*`: an administrator's exclusion, not WinNAT's

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def label(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


def netsh_argv(proto: Proto, version: int = 4) -> list[str]:
    return [
        "netsh", "interface", f"ipv{version}", "show", "excludedportrange", f"protocol={proto}",
    ]


def parse(text: str) -> tuple[PortRange, ...]:
    """Every "start end [*]" row; anything else (headings in any language, the legend) is
    skipped."""
    found: list[PortRange] = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        start, end = int(m.group(1)), int(m.group(2))
        if 0 < start <= end <= 65535:
            found.append(PortRange(start, end, m.group(3) is not None))
    return tuple(found)


def read_ranges(
    proto: Proto,
    version: int = 4,
    run: Runner | None = None,
    platform: str = sys.platform,
) -> tuple[PortRange, ...]:
    """The excluded ranges for `proto` over IPv`version`; () off Windows or when netsh
    fails. `run` takes argv and returns stdout (tests feed recorded output)."""
    if run is None:
        if platform != "win32":
            return ()
        run = _netsh
    import subprocess  # here: only Windows asks netsh, and the import costs ~3 ms

    try:
        return parse(run(netsh_argv(proto, version)))
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return ()


def containing(port: int, ranges: Sequence[PortRange]) -> PortRange | None:
    return next((r for r in ranges if port in r), None)


def _netsh(argv: Sequence[str]) -> str:
    import subprocess

    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=NETSH_TIMEOUT, check=True
    )
    return done.stdout
