"""Rows, sort orders and the filter, on frozen snapshots (no Textual running)."""

from __future__ import annotations

from portscope.core.model import PortStats
from portscope.core.rows import (
    NO_LISTENER,
    build_rows,
    listening_count,
    no_listener_key,
    row_texts,
)
from portscope.tui.rows import RowFilter, parse_filter, sort_key
from tui.tui_fakes import demo_snapshot, holder, snap, sock


def test_one_row_per_socket_plus_ports_without_listener_and_no_client_ports() -> None:
    client_port = PortStats(40000, time_wait=1, client_side=True, remote_port=5432)
    data = demo_snapshot()
    rows = build_rows(snap(data.sockets, (*data.ports, client_port)))
    assert [r.key for r in rows] == [s.key for s in data.sockets] + [no_listener_key(9000)]
    blocked = rows[-1]
    assert blocked.address is None and blocked.socket is None
    assert row_texts(blocked).address == NO_LISTENER
    assert row_texts(blocked).time_wait == "37, clears in 41 s"
    # Asked for by number, a client port is shown after all.
    assert [r.port for r in build_rows(snap(data.sockets, (client_port,)), port=40000)] == [40000]


def test_udp_socket_does_not_take_tcp_stats_of_its_port() -> None:
    udp = sock(9000, holder(7, "dns"), proto="udp")
    rows = build_rows(snap([udp], [PortStats(9000, time_wait=2, time_wait_last=30.0)]))
    assert [(r.proto, r.stats is not None) for r in rows] == [("udp", False), ("tcp", True)]


def test_sort_orders() -> None:
    rows = build_rows(demo_snapshot())
    by_process = sorted(rows, key=sort_key("process"))
    assert [r.port for r in by_process][:3] == [5353, 8080, 5173]  # avahi, gunicorn, node
    assert by_process[-1].port in (22, 9000)  # no visible owner: last
    by_tw = sorted(rows, key=sort_key("TIME_WAIT"))
    assert [r.port for r in by_tw][:3] == [8080, 9000, 8000]


def test_filter_by_port_or_name_and_bad_ports() -> None:
    rows = build_rows(demo_snapshot())
    port_filter = parse_filter(":8080")
    assert isinstance(port_filter, RowFilter)
    assert [r.port for r in rows if port_filter.matches(r)] == [8080]
    name_filter = parse_filter("GUNI")
    assert isinstance(name_filter, RowFilter)
    assert [r.port for r in rows if name_filter.matches(r)] == [8080]
    assert parse_filter("70000") == "port must be 1-65535, got 70000"
    assert parse_filter(":http") == "not a port number: :http (try :8080, :8000-8100 or :80*)"
    assert not parse_filter("  ")  # empty: no filter, every row matches


def test_filter_ports_are_ascii_digits_only_and_errors_quote_escaped() -> None:
    superscript = parse_filter("²")  # "²".isdigit() is True, int("²") raises
    assert isinstance(superscript, RowFilter) and superscript.port is None
    fullwidth = parse_filter("\uff18\uff10\uff18\uff10")  # int() would read 8080
    assert isinstance(fullwidth, RowFilter) and fullwidth.port is None
    assert parse_filter(":²").startswith("not a port number: :² (")  # type: ignore[union-attr]
    assert parse_filter(":[/]").startswith("not a port number: :[/] (")  # type: ignore[union-attr]
    assert parse_filter(":\x1b[2J").startswith(  # type: ignore[union-attr]
        "not a port number: :\\x1b[2J ("
    )
    huge = parse_filter("9" * 5000)  # past int()'s digit limit: still one clear line
    assert isinstance(huge, str) and huge.startswith("port must be 1-65535")
    markup = parse_filter("[b]x")
    assert isinstance(markup, RowFilter) and markup.text == "[b]x" and markup.port is None


def test_reuseport_siblings_are_one_row_with_every_holder_by_pid() -> None:
    """Same key, two sockets (two processes with SO_REUSEPORT): one row, both holders."""
    late, early = holder(900, "worker"), holder(300, "worker")
    both = build_rows(snap([sock(8080, late), sock(8080, early), sock(8080, late)]))
    assert len(both) == 1
    assert [h.pid for h in both[0].holders] == [300, 900]  # each process once
    assert listening_count(both) == 1


def test_a_row_of_the_very_same_socket_and_stats_is_the_last_polls_row() -> None:
    """The collector hands an unchanged listener's Socket over again: its row is the last
    poll's object, made again only when the socket or the port's counts are new."""
    web, db = sock(8080, holder(7, "web")), sock(5432, holder(8, "postgres"))
    counts = PortStats(8080, time_wait=3)
    first = {r.key: r for r in build_rows(snap([web, db], [counts]))}
    again = build_rows(snap([web, db], [counts]), reuse=first)
    assert all(row is first[row.key] for row in again)
    moved = build_rows(snap([web, db], [PortStats(8080, time_wait=4)]), reuse=first)
    assert moved[0] is not first[web.key] and moved[0].stats.time_wait == 4  # type: ignore[union-attr]
    assert moved[1] is first[db.key]
    fresh = sock(5432, holder(8, "postgres"))  # equal, another object: made again
    assert build_rows(snap([web, fresh], [counts]), reuse=first)[1] is not first[db.key]
