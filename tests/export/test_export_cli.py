"""`portscope export` as a process: the endpoint only reads (GET and HEAD of /metrics and /;
405 for every other method, 404 for every other path), negotiates OpenMetrics, serves
HTTPS with a certificate made here, writes a node_exporter textfile atomically, stops
cleanly on SIGTERM, refuses bad input in one line, and stays out of other commands."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from export.exporting import Exporter, fetch, promtool, until
from real_servers import missing
from support import ROOT_LISTENER, tcp_listener

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="Linux: the exporter's warm collector"
)

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def portscope(run_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    return subprocess.run(
        [sys.executable, "-m", "portscope", "export", *args], capture_output=True, text=True,
        timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export") / "run"
    base.mkdir(mode=0o700)
    return base


@pytest.fixture(scope="module")
def exporter(run_dir: Path) -> Iterator[Exporter]:
    running = Exporter(run_dir, "--interval", "0.2")
    yield running
    assert running.stop() == 0, running.errors()  # SIGTERM: a clean stop, exit 0


def test_get_metrics_and_head(exporter: Exporter, spawn: Spawn) -> None:
    _, line = spawn(ROOT_LISTENER)
    series = f'family="ipv4",port="{line}",proto="tcp"}} 1.0'.encode()

    def with_it() -> bytes:
        body = fetch(exporter.url)[2]
        return body if series in body else b""

    body = until(with_it)
    assert promtool("check", "metrics", stdin=body).returncode == 0
    status, headers, head = fetch(exporter.url, method="HEAD")
    assert status == 200 and head == b"" and int(headers["Content-Length"]) > 1000
    status, headers, index = fetch(exporter.url.removesuffix("metrics"))
    assert status == 200 and b'href="/metrics"' in index
    status, _, _ = fetch(exporter.url + "?name[]=portscope_listeners")  # query ignored
    assert status == 200


def test_openmetrics_by_negotiation(exporter: Exporter) -> None:
    status, headers, body = fetch(
        exporter.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n") and b"# TYPE portscope_listener info" in body
    _, headers, plain = fetch(exporter.url, headers={"Accept": "*/*"})
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in plain
    _, headers, _ = fetch(exporter.url, headers={"Accept": "application/openmetrics-text; "
                                                 "version=junk"})
    assert headers["Content-Type"].startswith("text/plain")  # never a 500


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "KILL"])
def test_nothing_but_reads(exporter: Exporter, method: str) -> None:
    status, headers, _ = fetch(exporter.url, method=method, data=b"pid=1&signal=KILL")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/kill", "/metrics/", "/api/v1/query", "/../etc/passwd"])
def test_other_paths_are_not_found(exporter: Exporter, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=10)
    conn.request("GET", path)
    assert conn.getresponse().status == 404
    conn.close()


def test_a_default_exporter_binds_loopback_only(run_dir: Path) -> None:
    from portscope.cli.export_cmd import DEFAULT_LISTEN, parse_listen

    host, _ = parse_listen(DEFAULT_LISTEN)
    assert host == "127.0.0.1"
    assert parse_listen("9977") == ("127.0.0.1", 9977)
    assert parse_listen("[::1]:0") == ("::1", 0)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    served = Exporter(run, "--interval", "0.5", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert served.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        status, _, body = fetch(served.url, context=trusted)
        assert status == 200 and b"portscope_listeners " in body
        status, _, _ = fetch(served.url, method="POST", context=trusted)
        assert status == 405
        with pytest.raises(urllib.error.URLError) as refused:  # a client that does not trust it
            fetch(served.url, context=ssl.create_default_context())
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        # plain HTTP to the TLS port gets no metrics, and the exporter serves on
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as plain:
            plain.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert b"portscope_" not in _read_all(plain)
        assert fetch(served.url, context=trusted)[0] == 200
    finally:
        assert served.stop() == 0, served.errors()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:  # reset: also no metrics
        pass
    return b"".join(chunks)


def test_textfile_once_and_every_interval(tmp_path: Path, run_dir: Path) -> None:
    target = tmp_path / "portscope.prom"
    once = portscope(run_dir, "--textfile", str(target), "--once")
    assert once.returncode == 0, once.stderr
    first = target.read_bytes()
    assert b"portscope_listeners " in first and target.stat().st_mode & 0o777 == 0o644
    checked = promtool("check", "metrics", stdin=first)
    assert checked.returncode == 0, checked
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
    with (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portscope", "export", "--textfile", str(target),
             "--interval", "0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, env=env,
        )
    try:
        stamp = _stamp(first)
        until(lambda: _stamp(target.read_bytes()) > stamp + 0.25)  # rewritten, whole
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, (tmp_path / "err").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err", "portscope.prom"]


def _stamp(body: bytes) -> float:
    [line] = [ln for ln in body.splitlines() if ln.startswith(b"portscope_last_poll_timestamp")]
    return float(line.split()[1])


def test_once_prints_the_text_format(run_dir: Path) -> None:
    done = portscope(run_dir, "--once")
    assert done.returncode == 0, done.stderr
    assert "# TYPE portscope_ephemeral_ports_used gauge" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", ":9977"], "names no address"),
        (["--listen", "example.org:9977"], "not an IP address"),
        (["--listen", "::1:9977"], "put an IPv6 address in brackets"),
        (["--listen", "127.0.0.1:99999"], "port must be 1-65535"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"], "--tls-cert"),
        (["--textfile", "/nonexistent/dir/x.prom"], "does not exist"),
        (["--textfile", "/tmp"], "is a directory"),
        (["--textfile", "/tmp/portscope.txt"], "reads only *.prom"),
        (["--max-ports", "0"], "--max-ports takes a number from 1"),
        (["--top-destinations", "5000"], "--top-destinations takes a number from 1 to 1000"),
        (["--interval", "0"], "--interval"),
        (["--print-rules", "--print-dashboard"], "give one"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_dir: Path, args: list[str], message: str) -> None:
    done = portscope(run_dir, *args)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_taken_address_is_exit_1_and_says_who_to_ask(run_dir: Path) -> None:
    with tcp_listener() as taken:
        port = taken.getsockname()[1]
        done = portscope(run_dir, "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert f"portscope check {port}" in done.stderr


def test_without_prometheus_client_one_line_and_exit_2(run_dir: Path) -> None:
    probe = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if not installed
        from portscope.cli import main
        sys.exit(main(["export", "--once"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr == ("portscope: portscope export needs prometheus_client: "
                           "pip install 'portscope[export]'\n")


def imported(args: list[str]) -> set[str]:
    probe = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from portscope.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main({args!r})
        print("\\n".join(sorted(sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    return set(done.stdout.split())


def test_only_export_imports_prometheus_client() -> None:
    for args in (["list", "--json"], ["check", "1", "--json"], ["export", "--print-rules"]):
        loaded = imported(args)
        assert not {m for m in loaded if m.startswith(("prometheus_client",
                                                       "portscope.core.export"))}, args
    assert "prometheus_client" in imported(["export", "--once"])
