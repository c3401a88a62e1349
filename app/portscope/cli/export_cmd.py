"""`portscope export`: this host's listeners, TIME_WAIT per port and ephemeral-port pressure
per destination as Prometheus metrics, over HTTP or as a node_exporter textfile.

One warm collector polls every --interval in a background thread; a scrape is answered
from the last poll, never by a poll of its own (core/export/exporter.py). The endpoint
only reads: GET /metrics, nothing that acts on a process. It binds loopback unless
--listen names another address.

Built on prometheus_client (`pip install 'portscope[export]'`), imported only here.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.inputs import parse_count, parse_host, parse_port, quoted
from ..core.untrusted import shown
from .argparser import strict
from .common import duration_arg, fail

if TYPE_CHECKING:
    import ssl

    from ..core.export.exporter import Exporter

DEFAULT_LISTEN = "127.0.0.1:9977"
MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
RULES = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "dashboard.json"
ERROR = 1  # the address is taken, the textfile cannot be written


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT`, or `PORT` alone (loopback). Port 0 takes any free one."""
    raw = text.strip()
    host, colon, port_text = raw.rpartition(":")
    if not colon:
        host = "127.0.0.1"
    elif not host:
        raise ValueError(
            f"--listen {quoted(raw)} names no address: give one, e.g. 127.0.0.1:9977, "
            "or 0.0.0.0:9977 for every IPv4 address"
        )
    elif host.count(":") and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"--listen: put an IPv6 address in brackets: [::1]:{port_text}")
    port = 0 if port_text.strip() == "0" else parse_port(port_text)
    address = parse_host(host)[0]  # localhost: 127.0.0.1
    return address, port


def _count(name: str, high: int) -> Any:
    def parse(text: str) -> int:
        return parse_count(text, name=name, high=high)

    return strict(parse)


LINE = "serve Prometheus metrics: listeners, TIME_WAIT, ephemeral-port pressure"
# Laid out by hand (the help prints a text with line breaks as it is).
DESCRIPTION = f"""{LINE[0].upper()}{LINE[1:]}.

One poll every --interval feeds every scrape: a scrape never polls. The metrics:
  portscope_listeners;
  portscope_listener_processes{{proto, family, address, port}};
  portscope_listener_info{{proto, family, address, port, process, user, role, container}};
  portscope_time_wait_sockets{{port}};
  portscope_time_wait_clears_seconds{{port}};
  portscope_client_time_wait_sockets{{destination}};
  portscope_ephemeral_ports_used{{destination}};
  portscope_ephemeral_port_range_size;
  portscope_listener_events_total{{event}} (listen, unlisten, restart);
  portscope_listener_restarts_total{{proto, port}};
  portscope_hidden_sockets; portscope_collect_errors_total;
  portscope_collect_duration_seconds (a histogram);
  portscope_last_poll_timestamp_seconds.
The series are bounded: --max-ports per port-labelled metric (the rest summed in
port="other"), --top-destinations per destination (the rest in destination="other"):
with the defaults about 2,600 series at most, however many sockets the host has.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help=LINE, description=DESCRIPTION)
    p.add_argument(
        "--listen", type=strict(parse_listen), default=None, metavar="ADDR:PORT",
        help=f"where to serve /metrics (default {DEFAULT_LISTEN}: this host only); another "
        "address exposes this host's listeners and process names to whoever reaches it, "
        "so add --tls-cert/--tls-key and a firewall; port 0: any free port (printed)",
    )
    p.add_argument(
        "--interval", type=duration_arg(0.1, 3600, "--interval"), default=5.0, metavar="S",
        help="seconds between polls, 0.1 to 3600 (default 5); scrapes between two polls get "
        "the last one",
    )
    p.add_argument(
        "--max-ports", type=_count("--max-ports", 65535), default=500, metavar="N",
        help="series per port-labelled metric, 1 to 65535 (default 500): the N lowest "
        "listeners, the N ports with the most TIME_WAIT (the rest summed in port=\"other\"), "
        "restart counters for N ports",
    )
    p.add_argument(
        "--top-destinations", type=_count("--top-destinations", 1000), default=20, metavar="N",
        help="client destinations with their own series, 1 to 1000 (default 20): the busiest; "
        "the rest summed in destination=\"other\"",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    p.add_argument(
        "--textfile", type=Path, metavar="PATH",
        help="no server: write the metrics to PATH (*.prom) every interval, replaced "
        "atomically, for node_exporter's textfile collector",
    )
    p.add_argument(
        "--once", action="store_true",
        help="poll once, write the metrics (to --textfile, else to stdout) and exit",
    )
    p.add_argument("--print-rules", action="store_true",
                   help="print the Prometheus alerting rules for these metrics and exit")
    p.add_argument("--print-dashboard", action="store_true",
                   help="print the Grafana dashboard (JSON) for these metrics and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.print_rules or args.print_dashboard:
        if args.print_rules and args.print_dashboard:
            return fail("--print-rules and --print-dashboard: give one")
        sys.stdout.write((RULES if args.print_rules else DASHBOARD).read_text(encoding="utf-8"))
        return 0
    problem = _conflict(args)
    if problem:
        return fail(problem)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return fail("portscope export needs prometheus_client: pip install 'portscope[export]'")
    from ..core.collect import default_collector
    from ..core.export.exporter import Exporter
    from ..core.export.families import Limits
    from ..core.roles.published import WithContainers

    tls = None
    if args.tls_cert:
        import ssl

        from ..core.export.http import tls_context

        try:
            tls = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            return fail(f"--tls-cert/--tls-key: {getattr(exc, 'strerror', None) or exc}")
    exporter = Exporter(
        WithContainers(default_collector(polling=True)),
        Limits(args.max_ports, args.top_destinations),
    )
    said: set[str] = set()
    stopped = _stop_on_sigterm()  # from here: a stop during the first poll is heard too
    if args.textfile is not None:
        return _textfile(exporter, args, said, stopped)
    if args.once:
        _report(exporter, exporter.poll(), said)
        text = exporter.text()
        out = getattr(sys.stdout, "buffer", None)
        if out is not None:
            out.write(text)
        else:  # a StringIO in place of stdout (tests)
            sys.stdout.write(text.decode())
        return 0
    return _serve(exporter, args, tls, said, stopped)


def _conflict(args: argparse.Namespace) -> str:
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together: give both"
    if args.textfile is not None:
        if args.listen is not None or args.tls_cert:
            return "--textfile writes a file and serves nothing: drop --listen and --tls-*"
        from ..core.export.textfile import textfile_problem

        return textfile_problem(args.textfile)
    if args.once and (args.listen is not None or args.tls_cert):
        return "--once writes the metrics to stdout (or --textfile) and serves nothing"
    return ""


def _report(exporter: Exporter, error: str | None, said: set[str]) -> None:
    """A poll's failure, and what the last good poll could not see (its notes)."""
    _say(error, said)
    if exporter.snapshot is not None:
        for note in exporter.snapshot.notes:
            _say(note, said)


def _say(message: str | None, said: set[str]) -> None:
    """Each distinct problem once on stderr, not once a poll."""
    if message and message not in said:
        said.add(message)
        if len(said) > 100:  # a message that changes every poll must not grow this forever
            said.clear()
        print(f"portscope: {shown(message)}", file=sys.stderr, flush=True)


def _textfile(
    exporter: Exporter, args: argparse.Namespace, said: set[str], stopped: threading.Event
) -> int:
    from ..core.export.textfile import write_atomically

    path: Path = args.textfile
    _report(exporter, exporter.poll(), said)
    try:
        write_atomically(path, exporter.text())
    except OSError as exc:
        return fail(f"cannot write {path}: {exc.strerror or exc}", ERROR)
    if args.once:
        return 0

    def after(error: str | None) -> None:
        _report(exporter, error, said)
        try:
            write_atomically(path, exporter.text())
        except OSError as exc:  # a full disk may empty again: say it, keep polling
            _say(f"cannot write {path}: {exc.strerror or exc}", said)

    _progress(f"writing {path} every {args.interval:g} s")
    exporter.start(args.interval, after)
    try:
        _until(stopped)
    finally:
        exporter.stop()
    return 0


def _serve(
    exporter: Exporter, args: argparse.Namespace, tls: ssl.SSLContext | None, said: set[str],
    stopped: threading.Event,
) -> int:
    from ..core.export.http import MetricsServer

    host, port = args.listen or parse_listen(DEFAULT_LISTEN)
    try:
        server = MetricsServer(host, port, exporter, tls)
    except OSError as exc:
        taken = exc.errno == errno.EADDRINUSE
        hint = f" (portscope check {port} says who holds it)" if taken else ""
        return fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}", ERROR)
    _report(exporter, exporter.poll(), said)  # the first poll before any scrape: no empty answer
    if not _loopback(host):
        _progress(
            f"warning: {host} is not a loopback address: whoever reaches it reads this "
            "host's listeners and process names" + ("" if tls else " in clear text")
        )
    _progress(f"serving {server.url} (a poll every {args.interval:g} s; Ctrl-C to stop)")
    exporter.start(args.interval, lambda error: _report(exporter, error, said))
    serving = threading.Thread(target=server.serve_forever, name="portscope-http", daemon=True)
    serving.start()
    try:
        _until(stopped)
    finally:
        server.shutdown()
        server.server_close()
        exporter.stop()
    return 0


def _stop_on_sigterm() -> threading.Event:
    """An event SIGTERM sets: a service manager's stop ends the exporter with exit 0."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    return stopped


def _until(stopped: threading.Event) -> None:
    """Block until SIGTERM, or Ctrl-C (KeyboardInterrupt: exit 130, as every command)."""
    while not stopped.wait(1.0):  # a timeout: the main thread must wake for Ctrl-C
        pass


def _loopback(host: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(host).is_loopback


def _progress(line: str) -> None:
    print(f"portscope export: {line}", file=sys.stderr, flush=True)
