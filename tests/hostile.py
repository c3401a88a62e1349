"""Processes whose name, argv and cwd are what an attacker would choose (domain.md 8).

Each is a real process started by the test, in its own process group, listening on a free
loopback port. Its `comm` is set with prctl(PR_SET_NAME), its argv[0] through exec, and it
runs in a directory whose name is hostile too. Nothing it prints may reach a terminal raw.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

# What a hostile local user would put in each field.
# Sets the terminal title if printed raw, and ends in an invisible tag character (15 bytes,
# comm's limit): "sshd" + a tag reads as "sshd" wherever it is not escaped.
COMM = "\x1b]0;pwned\x07\U000e0041"
ARGV0 = "\x1b[2J\x1b[H"  # clears the screen
ARGS = (
    "[@click=app.quit]x[/]",  # Textual markup: a clickable action
    "x[/]y",  # unbalanced markup: MarkupError
    "line1\nPID 1 name init\tuser root",  # a forged field
    "\u202eevil\u202c",  # bidi override
    "zero\u200bwidth",
    "\x9b31m",  # C1 CSI
    # Invisible: default-ignorables, fillers, variation selectors, tags, braille blank,
    # Unicode spaces, an annotation character, private use.
    "a\u034fb\u115f\u3164\ufe0f\u2800c",
    "sp\u2003ace\u3000\ufff9",
    "\U000e0073\U000e0073hd\ue000",
    "日本語",  # wide characters (legitimate: shown as they are)
)
CWD_NAME = "\x1b]0;cwd\x07[b]dir\n"
# What each field must look like on screen: escaped, nothing else changed.
SHOWN_COMM = "\\x1b]0;pwned\\x07\\U000e0041"
SHOWN_ARGV0 = "\\x1b[2J\\x1b[H"

LISTENER = """
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, ctypes.c_char_p(sys.argv[1].encode()[:15]), 0, 0, 0)  # PR_SET_NAME
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", s.getsockname()[1]))
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


def hostile_dir() -> str:
    """A fresh directory with a hostile name (no "/" or NUL: the kernel forbids those)."""
    parent = tempfile.mkdtemp(prefix="portscope-hostile-")
    atexit.register(shutil.rmtree, parent, True)  # the run leaves no directory behind
    path = os.path.join(parent, CWD_NAME)
    os.mkdir(path)
    return path


def spawn_hostile() -> tuple[subprocess.Popen[str], int]:
    """Start the hostile listener; return it and its TCP (and UDP) port."""
    proc = subprocess.Popen(
        [ARGV0, "-c", textwrap.dedent(LISTENER), COMM, *ARGS],
        executable=sys.executable,
        cwd=hostile_dir(),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise AssertionError("hostile listener exited before it was ready")
    return proc, int(line)
