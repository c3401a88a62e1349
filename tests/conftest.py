from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from real_servers import real_server  # noqa: F401  (the fixture, for every test file)
from support import reap, spawn_python


@pytest.fixture
def spawn() -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start Python children; every one is killed and reaped when the test ends."""
    started: list[subprocess.Popen[str]] = []

    def _spawn(code: str, **kwargs: object) -> tuple[subprocess.Popen[str], str]:
        proc, line = spawn_python(code, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc, line

    yield _spawn
    for proc in started:
        reap(proc)
