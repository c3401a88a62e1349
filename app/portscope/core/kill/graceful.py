"""Graceful shutdown: a master that got SIGTERM waits for its workers to finish the requests
in flight (gunicorn's --graceful-timeout, 30 s by default) before it exits. That is not a
process that ignores SIGTERM: say so, and wait for it rather than offer SIGKILL."""

from __future__ import annotations

from collections.abc import Iterable

import psutil

DEFAULT_GRACE = 30.0  # gunicorn's and uvicorn's default graceful timeout, in seconds
MAX_GRACE = 120.0  # never wait longer than this on a server's word


def in_flight(pids: Iterable[int], port: int) -> int:
    """Connections accepted on `port` that these processes still hold open."""
    count = 0
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections("tcp")
        except psutil.Error:
            continue
        count += sum(
            1 for c in conns
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return count


def grace_period(argv: Iterable[str]) -> float:
    """The server's own graceful timeout from its command line, else the usual default."""
    args = list(argv)
    for i, arg in enumerate(args):
        for flag in ("--graceful-timeout", "--timeout-graceful-shutdown"):
            value = None
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
            if value is not None:
                try:
                    return min(MAX_GRACE, max(0.0, float(value)))
                except ValueError:
                    return DEFAULT_GRACE
    return DEFAULT_GRACE


def message(requests: int, grace: float) -> str:
    noun = "request" if requests == 1 else "requests"
    return (
        f"shutting down gracefully: its workers finish {requests} {noun} in flight first "
        f"(up to {grace:g} s)"
    )
