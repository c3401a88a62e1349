"""The exporter's one warm collector, polled on a fixed beat in a background thread, and the
metrics of its last poll, which every scrape is answered from.

A scrape never polls: it encodes the families the last poll built, and the encoded bytes
are kept per format until the next poll, so Prometheus, a person's curl and a second
Prometheus cost one encoding per poll between them. A poll that fails is counted
(portscope_collect_errors_total) and the last good poll is served meanwhile, its
portscope_last_poll_timestamp_seconds showing its age.
"""

from __future__ import annotations

import gzip
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.exposition import generate_latest as text_format
from prometheus_client.metrics_core import Metric

from ..collect import Collector
from ..model import Snapshot, Socket
from ..rows import merged_sockets
from .families import Limits, build, kept_listeners
from .tally import Tally

CACHED = 4  # encodings kept per poll: the formats clients really ask for, not every variant

Encoded = tuple[bytes, str]  # (body, Content-Type)


def _heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0), or a no-op where there is none.

    A warm poll under 20,000 TIME_WAIT and 300 processes allocates ~22 MB for a moment
    (the socket tables, the fd index's updates) and frees it; glibc keeps the freed pages,
    so a long-running exporter would sit at its peak (~57 MB there) rather than its ~37 MB
    of live data. Trimming after each poll hands them back, for ~2 ms a poll."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError):  # no glibc (musl has a no-op): nothing to trim
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class _Fixed:
    """One poll's families, as a prometheus_client Collector for its encoders."""

    def __init__(self, families: tuple[Metric, ...]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class Exporter:
    def __init__(
        self, collector: Collector, limits: Limits | None = None, *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.limits = limits or Limits()
        self.tally = Tally(self.limits.max_ports)
        self._collector = collector
        self._clock = clock
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None  # the last good poll, and its listeners
        self._listeners: list[Socket] = []
        self._kept: list[Socket] = []
        self._families: tuple[Metric, ...] = tuple(
            build(None, (), (), self.tally, self.limits)
        )
        self._generation = 0
        self._encoded: dict[tuple[str, bool], Encoded] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trim = _heap_trimmer()

    def poll(self) -> str | None:
        """Poll once and publish the result; what went wrong, or None. One thread at a
        time: the caller's first poll, then the beat's thread."""
        started = self._clock()
        error = None
        try:
            snap = self._collector.collect()
        except Exception as exc:  # counted and said; the exporter lives on
            self.tally.failed()
            error = f"a poll failed: {type(exc).__name__}: {exc}"
        else:
            self._snap = snap
            self._listeners = merged_sockets(snap.sockets)
            self._kept = kept_listeners(self._listeners, self.limits.max_ports)
            self.tally.polled(
                snap, self._clock() - started, {(s.proto, s.port) for s in self._kept}
            )
        families = tuple(build(self._snap, self._listeners, self._kept, self.tally, self.limits))
        with self._lock:
            self._families = families
            self._generation += 1
            self._encoded = {}
        self._trim()
        return error

    @property
    def snapshot(self) -> Snapshot | None:
        """The last good poll (None before the first)."""
        return self._snap

    def collect(self) -> Iterable[Metric]:
        """The last poll's families (prometheus_client's Collector protocol)."""
        return self._families

    def text(self) -> bytes:
        """The last poll in the Prometheus text format (what node_exporter's textfile
        collector reads)."""
        return text_format(_Fixed(self._families))

    def exposition(self, accept: str, gzipped: bool = False) -> Encoded:
        """The body and Content-Type a scrape asking for `accept` gets: OpenMetrics or the
        text format, as prometheus_client negotiates it; gzip-compressed if `gzipped`."""
        try:
            encoder, content_type = choose_encoder(accept)
        except Exception:  # a version it cannot parse: the format every scraper reads
            encoder, content_type = text_format, CONTENT_TYPE_PLAIN_0_0_4
        key = (content_type, gzipped)
        with self._lock:
            found = self._encoded.get(key)
            families, generation = self._families, self._generation
        if found is not None:
            return found
        body = encoder(_Fixed(families))
        if gzipped:
            body = gzip.compress(body, compresslevel=6)
        with self._lock:
            if self._generation == generation and len(self._encoded) < CACHED:
                self._encoded[key] = (body, content_type)
        return body, content_type

    def start(self, interval: float, after: Callable[[str | None], None]) -> None:
        """Poll every `interval` seconds from now on, in a daemon thread; `after` gets
        each poll's error (None when it succeeded) on that thread."""
        self._thread = threading.Thread(
            target=self._beat, args=(interval, after), name="portscope-export", daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the beat and wait (up to `timeout`) for a poll in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _beat(self, interval: float, after: Callable[[str | None], None]) -> None:
        """Fixed rate, as the monitor's poller: poll k starts at anchor + k * interval; a
        poll that overruns skips the ticks it ran over instead of running them back to
        back."""
        anchor = time.monotonic()
        tick = 1  # the caller made poll 0
        while not self._stop.wait(max(0.0, anchor + tick * interval - time.monotonic())):
            try:
                error = self.poll()
            except Exception as exc:  # a bug in building the metrics: say it, poll on
                error = f"exporter error: {type(exc).__name__}: {exc}"
            after(error)
            passed = math.floor((time.monotonic() - anchor) / interval) + 1
            tick = max(tick + 1, passed)
