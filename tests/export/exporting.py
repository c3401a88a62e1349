"""Helpers for the exporter's tests: a real `portscope export` process, a real Prometheus
server (Debian's `prometheus` package; .ci/services installs it) scraping it on loopback,
and promtool. Not a test module."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from real_servers import missing

STARTUP = 30.0  # seconds an exporter or Prometheus may take to answer (a loaded CI machine)


def tool(name: str) -> str:
    """A Prometheus binary; skip locally, fail under CI, when it is not installed."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed (apt-get install prometheus)")
    return found


class Exporter:
    """`portscope export` on a free loopback port, until stop()."""

    def __init__(self, run_dir: Path, *args: str) -> None:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
        self.log = run_dir / f"export-{time.monotonic_ns()}.log"  # a file: a pipe could fill
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "portscope", "export", "--listen", "127.0.0.1:0", *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
                start_new_session=True,
            )
        self.url = until(self._serving, STARTUP, 0.05)
        self.port = int(urllib.parse.urlsplit(self.url).port or 0)

    def _serving(self) -> str:
        """The URL from "portscope export: serving URL (...)"; fails if it exited."""
        text = self.log.read_text(errors="replace")
        if "serving " in text:
            return text.split("serving ", 1)[1].split()[0]
        if self.proc.poll() is not None:
            raise AssertionError(f"the exporter exited {self.proc.returncode}: {text}")
        return ""

    def errors(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it as a service manager does; its exit code."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=5)
        return code


def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None, data: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A Prometheus server of our own: its own config, storage and port, scraping
    `target` every second and evaluating `rules` every second."""

    def __init__(self, base: Path, target: str, rules: Path | None = None) -> None:
        binary = tool("prometheus")
        self.base = base
        config = base / "prometheus.yml"
        rule_files = f"rule_files: [{json.dumps(str(rules))}]\n" if rules else ""
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            + rule_files
            + "scrape_configs:\n"
            f"  - job_name: portscope\n    static_configs: [{{targets: [{json.dumps(target)}]}}]\n"
        )
        for _ in range(5):  # a free port can be taken before Prometheus binds it: try another
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={base / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=(base / "prometheus.log").open("wb"), cwd=base, start_new_session=True,
            )
            if self._ready():
                return
            self.stop()
        raise AssertionError("prometheus did not start: " + self.log())

    def _ready(self) -> bool:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                if fetch(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200:
                    return True
            time.sleep(0.1)
        return False

    def log(self) -> str:
        return (self.base / "prometheus.log").read_text(errors="replace")[-2000:]

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, _, body = fetch(f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query: each series's labels (sorted, without __name__) and value."""
        data = self.api("query", query=expr)
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")):
                float(r["value"][1])
            for r in data["result"]
        }

    def value(self, expr: str) -> float | None:
        """The one value `expr` gives now (None: no series yet)."""
        found = self.query(expr)
        assert len(found) <= 1, found
        return next(iter(found.values()), None)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def until(
    check: Callable[[], Any], timeout: float = 30.0, step: float = 0.2,
    describe: Callable[[], Any] | None = None,
) -> Any:
    """Poll `check` until it returns something true, and return that; at the deadline fail
    with what `describe` says (Prometheus scrapes every second, and its first scrape waits
    for target discovery, ~5 s: values arrive within seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            said = describe() if describe is not None else got
            raise AssertionError(f"not within {timeout} s; last: {said!r}")
        time.sleep(step)


def portscope_json(run_dir: Path, *args: str, code: int = 0) -> Any:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "portscope", *args, "--json"], capture_output=True, text=True,
        timeout=60, env=env,
    )
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([tool("promtool"), *args], input=stdin, capture_output=True,
                          timeout=60)
