"""The exporter's HTTP endpoint: GET (or HEAD) of /metrics, and / to say where they are.

Read-only by construction: the handler has no path to anything but the last poll's
encoded metrics. Every other method is 405, every other path 404; query strings are
ignored. Plain HTTP unless a certificate and key are given (TLS is set up per connection,
on the connection's own thread, so a client that stalls its handshake holds up nobody).
The host name is never looked up (HTTPServer's server_bind would ask DNS for it).
"""

from __future__ import annotations

import socket
import socketserver
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client.exposition import gzip_accepted

from .exporter import Exporter

TIMEOUT = 10.0  # seconds a connection may take to send its request (and its TLS handshake)
INDEX = (
    b"<html><head><title>portscope exporter</title></head><body>"
    b'<h1>portscope exporter</h1><p><a href="/metrics">/metrics</a></p></body></html>\n'
)


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, host: str, port: int, exporter: Exporter, tls: ssl.SSLContext | None = None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.exporter = exporter
        self.tls = tls
        super().__init__((host, port), MetricsHandler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        host = self.server_name
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{self.server_port}/metrics"

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TIMEOUT)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError):  # a failed handshake, plain HTTP on the TLS port
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-answer is no news worth a traceback."""


class MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer
    server_version = "portscope-exporter"
    sys_version = ""
    timeout = TIMEOUT

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def __getattr__(self, name: str) -> object:
        """Any other method (POST, PUT, DELETE ...): 405. http.server looks for do_<METHOD>
        and would otherwise answer 501."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._reply(405, b"only GET and HEAD\n", "text/plain; charset=utf-8",
                    extra=(("Allow", "GET, HEAD"),))

    def _answer(self, body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            gzipped = gzip_accepted(self.headers.get("Accept-Encoding", ""))
            data, content_type = self.server.exporter.exposition(
                self.headers.get("Accept", ""), gzipped
            )
            extra = (("Content-Encoding", "gzip"),) if gzipped else ()
            self._reply(200, data, content_type, extra=extra, body=body)
        elif path == "/":
            self._reply(200, INDEX, "text/html; charset=utf-8", body=body)
        else:
            self._reply(404, b"not found: the metrics are at /metrics\n",
                        "text/plain; charset=utf-8", body=body)

    def _reply(
        self, code: int, data: bytes, content_type: str, *,
        extra: tuple[tuple[str, str], ...] = (), body: bool = True,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a scrape every few seconds is not worth a log line."""


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context from a PEM certificate (chain) and its key; raises OSError or
    ssl.SSLError with what is wrong."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
