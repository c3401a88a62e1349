"""A setuid-root program run by another user: the kill prompt shows the binary the kernel
runs and the effective user beside the real one, so an impersonating name is told apart by
more than USER."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from cli.terminal import assert_safe, on_terminal
from support import NOBODY, reap

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes a setuid-root binary")

LISTENER = """
import ctypes, socket, time
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b"sshd"), 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def setuid_listener() -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    where = tempfile.mkdtemp(prefix="portscope-setuid-")
    binary = os.path.join(where, "python3-setuid")
    shutil.copy2("/usr/bin/python3.11", binary)
    os.chmod(binary, 0o4755)
    os.chmod(where, 0o755)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         binary, "-c", LISTENER],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield proc, port, binary
    finally:
        reap(proc)
        shutil.rmtree(where, ignore_errors=True)


def test_the_prompt_shows_the_binary_and_the_effective_user(
    setuid_listener: tuple[subprocess.Popen[str], int, str],
) -> None:
    proc, port, binary = setuid_listener
    seen, result = on_terminal(["kill", str(port)], answer="n\n", columns=100)
    prompt = assert_safe(seen)
    assert result.returncode == 1 and proc.poll() is None  # "n": nothing signalled
    fields = {line.split()[0]: line for line in prompt.splitlines() if line.startswith("  ")}
    assert fields["name"].split() == ["name", "sshd"]
    assert fields["exe"].split() == ["exe", binary]  # not sshd's binary
    assert fields["user"].split() == ["user", "nobody", "(effective:", "root)"]
