"""A fake Docker daemon on a real unix socket, for the tests of the bounded Docker reader:
it answers every request the way a test tells it to (a malformed list, a drip of one byte
every 1.5 s, a 100 MB body), so what portscope does with a hostile answer is tested over
the same socket calls it makes to a real daemon."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator

# (connection, the daemon's stop event, the request line) -> writes the answer
Answer = Callable[[socket.socket, threading.Event, str], None]


def json_answer(body: object, status: int = 200, *, keep_open: bool = False) -> Answer:
    """An HTTP answer with a JSON body (`body` is bytes as they are, else json.dumps)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.0 {status} OK\r\nContent-Type: application/json\r\n"
    raw = f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data

    def answer(conn: socket.socket, stop: threading.Event, request: str) -> None:
        conn.sendall(raw)
        if keep_open:  # a daemon that does not close after a complete answer
            stop.wait(30)

    return answer


def drip(every: float = 1.5) -> Answer:
    """One byte of a never-ending answer every `every` seconds: each read gets something,
    so only an overall deadline can end the wait."""
    payload = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b" " * 10_000

    def answer(conn: socket.socket, stop: threading.Event, request: str) -> None:
        for byte in payload:
            conn.sendall(bytes([byte]))
            if stop.wait(every):
                return

    return answer


def huge(size: int = 100_000_000, *, declared: bool) -> Answer:
    """A `size`-byte JSON list, its length declared in Content-Length or not (then it ends
    when the connection closes); sent in 64 KiB blocks until the reader hangs up."""
    block = b"0," * 32768

    def answer(conn: socket.socket, stop: threading.Event, request: str) -> None:
        length = f"Content-Length: {size}\r\n" if declared else ""
        conn.sendall(f"HTTP/1.0 200 OK\r\n{length}\r\n[".encode())
        sent = 1
        while sent < size and not stop.is_set():
            conn.sendall(block)
            sent += len(block)

    return answer


def routes(table: dict[str, Answer]) -> Answer:
    """The answer of the first `table` key the request line starts with ("POST /c")."""

    def answer(conn: socket.socket, stop: threading.Event, request: str) -> None:
        for start, then in table.items():
            if request.startswith(start):
                then(conn, stop, request)
                return
        json_answer({"message": "not found"}, 404)(conn, stop, request)

    return answer


def delayed(seconds: float, then: Answer) -> Answer:
    """`then`, after `seconds` (a daemon waiting out a container's stop timeout)."""

    def answer(conn: socket.socket, stop: threading.Event, request: str) -> None:
        if not stop.wait(seconds):
            then(conn, stop, request)

    return answer


class FakeDaemon:
    """Serves `answer` to every connection on a unix socket in a temp dir of its own."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[str] = []  # each request line, "GET /containers/json HTTP/1.0"
        self.dir = tempfile.mkdtemp(prefix="portscope-docker-")
        self.path = os.path.join(self.dir, "docker.sock")
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._server.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].decode()
            self.requests.append(line)
            self.answer(conn, self._stop, line)

    def close(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def fake_docker(answer: Answer) -> Iterator[FakeDaemon]:
    """A FakeDaemon that DOCKER_HOST points at while the block runs."""
    daemon = FakeDaemon(answer)
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = f"unix://{daemon.path}"
    try:
        yield daemon
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
        daemon.close()


# A fake daemon as a program of its own, run by another user (the socket-owner tests): it
# makes its socket at argv[1], prints "ready", and answers every request with an empty list.
SERVE_EMPTY_LIST = r"""
import os, socket, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
os.chmod(path, 0o666)
server.listen(8)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]")
"""
