"""Run portscope as a real subprocess, on pipes or on a pseudo-terminal, and check what it
wrote for anything that would steer the terminal."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

# What must never reach a terminal raw: C0 controls but newline (tab too: it forges
# columns), DEL and C1 controls, bidi controls and marks, zero-width and other invisible
# characters (default-ignorables, fillers, variation selectors, tags, braille blank), Unicode
# spaces, line/paragraph separators, private use. Written out here, independently of the
# code under test.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\xa0\u00ad\u034f\u061c\u115f\u1160\u1680\u180b-\u180f"
    "\u2000-\u200f\u2028-\u202f\u205f-\u206f\u2800\u3000\u3164\ue000-\uf8ff"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000e0000-\U000e0fff]"
)


def portscope(
    *args: str, stdin: int | None = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`python -m portscope ARGS` on pipes; bytes, so a raw ESC cannot hide in decoding."""
    return subprocess.run(
        [sys.executable, "-m", "portscope", *args],
        capture_output=True, timeout=60, stdin=stdin, env=env,
    )


def assert_safe(output: bytes) -> str:
    """The output decoded, after asserting it holds nothing that steers a terminal."""
    assert b"\x1b" not in output, output
    text = output.decode("utf-8").replace("\r\n", "\n")  # a pty turns \n into \r\n
    bad = UNSAFE.search(text)
    assert bad is None, (bad.group(), text)
    return text


def on_terminal(
    args: list[str],
    *,
    answer: str | None = None,
    stdout_too: bool = False,
    env: dict[str, str] | None = None,
    columns: int = 80,
) -> tuple[bytes, subprocess.CompletedProcess[bytes]]:
    """Run portscope with a pseudo-terminal of `columns` x 24 on stdin and stderr (and
    stdout with `stdout_too`); answer the [y/N] question with `answer`. Returns every byte
    the terminal received and the finished process (its stdout when that was a pipe)."""
    primary, secondary = os.openpty()
    fcntl.ioctl(primary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "portscope", *args],
        stdin=secondary, stderr=secondary,
        stdout=secondary if stdout_too else subprocess.PIPE,
        env=env,
    )
    os.close(secondary)
    deadline = time.monotonic() + 60
    seen = b""
    try:
        if answer is not None:
            seen = _read(primary, deadline, until=b"[y/N]")
            assert b"[y/N]" in seen, seen
            os.write(primary, answer.encode())
        seen += _read(primary, deadline)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return seen, subprocess.CompletedProcess(proc.args, proc.returncode, out or b"", b"")


def _read(fd: int, deadline: float, until: bytes | None = None) -> bytes:
    """Read the terminal until `until` shows up, or until the other side closed it."""
    seen = b""
    while until is None or until not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"terminal stayed silent; so far: {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every copy of the secondary side is closed
            break
        if not chunk:
            break
        seen += chunk
    return seen
