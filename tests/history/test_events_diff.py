"""The diff of consecutive Snapshots, on hand-built ones (frozen clock, chosen holders)."""

from __future__ import annotations

import json

from history.built import holder, snap, sock
from hostile import COMM, SHOWN_COMM
from portscope.core.history.events import ListenerWatch, Restarter
from portscope.core.history.wording import event_json, event_line, event_texts
from portscope.core.model import Holder


def no_parent(h: Holder) -> Restarter | None:
    return None


def watch(**kw: object) -> ListenerWatch:
    kw.setdefault("find_restarter", no_parent)
    return ListenerWatch(**kw)  # type: ignore[arg-type]


def test_first_poll_reports_the_present_as_at_start() -> None:
    w = watch()
    [event] = w.update(snap(0, sock(8080, holder(10))))
    assert (event.kind, event.at_start, event.pids) == ("listen", True, (10,))
    assert w.update(snap(1, sock(8080, holder(10)))) == []


def test_without_start_events_the_present_is_silent_and_what_follows_is_not() -> None:
    w = watch(start_events=False)
    assert w.update(snap(0, sock(8080, holder(10)))) == []
    [gone] = w.update(snap(1))  # it was there at the start, all the same
    assert (gone.kind, gone.at_start) == ("unlisten", True)
    [back] = w.update(snap(2, sock(8080, holder(11, "other"))))
    assert back.kind == "listen" and not back.at_start


def test_a_listener_whose_second_holder_changes_is_a_holders_change() -> None:
    """Holders compared by PID, in any order: one of two replaced is news, a reordering is
    not; one holder replaced by another running its command is a restart."""
    w = watch()
    w.update(snap(0, sock(8080, holder(10), holder(11))))
    assert w.update(snap(1, sock(8080, holder(11), holder(10)))) == []
    [changed] = w.update(snap(2, sock(8080, holder(10), holder(12))))
    assert changed.kind == "holders" and changed.pids == (10, 12)
    [single] = w.update(snap(3, sock(8080, holder(10))))
    assert single.kind == "holders"
    [other] = w.update(snap(4, sock(8080, holder(13))))
    assert other.kind == "restart" and other.pids == (13,)  # the same command, a new PID


def test_listen_then_unlisten_with_its_pid_and_how_long() -> None:
    w = watch()
    w.update(snap(0))
    [listen] = w.update(snap(1, sock(8080, holder(10))))
    assert (listen.kind, listen.port, listen.pids) == ("listen", 8080, (10,))
    assert not listen.at_start
    assert listen.key == "tcp:ipv4:[127.0.0.1]:8080"
    assert w.update(snap(2, sock(8080, holder(10)))) == []
    [gone] = w.update(snap(13.5))
    assert (gone.kind, gone.pids, gone.listened_for) == ("unlisten", (10,), 12.5)
    assert not gone.at_start
    assert "stopped listening after 12 s" in event_texts(gone).what


def test_unlisten_of_a_listener_there_at_start_is_a_lower_bound() -> None:
    w = watch()
    w.update(snap(0, sock(8080, holder(10))))
    [gone] = w.update(snap(125))
    assert gone.at_start and gone.listened_for == 125
    assert "after at least 2 min 5 s" in event_texts(gone).what
    assert event_json(gone)["at_start"] is True


def test_reuseport_siblings_are_one_listener() -> None:
    w = watch()
    w.update(snap(0))
    [listen] = w.update(snap(1, sock(9000, holder(10)), sock(9000, holder(11))))
    assert listen.pids == (10, 11)
    # One of the two processes exits: the group keeps listening, its holders changed.
    [change] = w.update(snap(2, sock(9000, holder(11))))
    assert (change.kind, change.pids, change.previous_pids) == ("holders", (11,), (10, 11))


def test_a_new_worker_is_a_holders_change_not_a_restart() -> None:
    w = watch()
    master, w1, w2 = holder(10, "gunicorn"), holder(11, "gunicorn"), holder(12, "gunicorn")
    w.update(snap(0, sock(8000, master, w1)))
    [change] = w.update(snap(1, sock(8000, master, w2)))  # the master respawned a worker
    assert (change.kind, change.pids, change.previous_pids) == ("holders", (10, 12), (10, 11))
    assert "now PIDs 10,12" in event_texts(change).what


def test_same_command_back_after_unlisten_is_a_restart() -> None:
    loop = Restarter(500, "bash", "shell loop")
    w = watch(find_restarter=lambda h: loop if h.ppid == 500 else None)
    w.update(snap(0, sock(8080, holder(10, ppid=500))))
    [gone] = w.update(snap(1))
    assert gone.kind == "unlisten"
    [back] = w.update(snap(2, sock(8080, holder(20, ppid=500))))
    assert (back.kind, back.pids, back.previous_pids) == ("restart", (20,), (10,))
    assert back.restarted_by == loop
    assert event_json(back)["restarted_by"] == {"pid": 500, "name": "bash"}
    assert "restarted by PID 500 (bash, shell loop)" in event_texts(back).what
    # Listening time starts again with the new server.
    [gone_again] = w.update(snap(5))
    assert gone_again.listened_for == 3 and not gone_again.at_start


def test_holders_replaced_between_polls_is_a_restart() -> None:
    w = watch()
    w.update(snap(0, sock(8080, holder(10))))
    [back] = w.update(snap(1, sock(8080, holder(20))))  # faster than a poll sees the gap
    assert (back.kind, back.pids, back.previous_pids) == ("restart", (20,), (10,))


def test_other_command_or_late_return_is_a_listen() -> None:
    w = watch(restart_window=5.0)
    w.update(snap(0, sock(8080, holder(10))))
    w.update(snap(1))
    [other] = w.update(snap(2, sock(8080, holder(20, "other"))))
    assert other.kind == "listen"
    w.update(snap(3))
    [late] = w.update(snap(9, sock(8080, holder(30, "other"))))  # 6 s after: not a restart
    assert late.kind == "listen"


def test_a_socket_listed_once_without_holders_is_not_a_change() -> None:
    w = watch()
    w.update(snap(0, sock(8080, holder(10))))
    assert w.update(snap(1, sock(8080))) == []  # closing: the table still lists it
    [gone] = w.update(snap(2))
    assert (gone.kind, gone.pids) == ("unlisten", (10,))
    # Without holders for two polls it is a change (handed to a process we cannot see).
    w.update(snap(3, sock(8081, holder(11))))
    assert w.update(snap(4, sock(8081))) == []
    [hidden] = w.update(snap(5, sock(8081)))
    assert (hidden.kind, hidden.pids, hidden.previous_pids) == ("holders", (), (11,))


def test_events_of_one_poll_come_unlisten_first_and_port_filter() -> None:
    w = watch()
    w.update(snap(0, sock(8080, holder(10))))
    events = w.update(snap(1, sock(7000, holder(11)), sock(9000, holder(12))))
    assert [(e.kind, e.port) for e in events] == [
        ("unlisten", 8080), ("listen", 7000), ("listen", 9000)
    ]
    only = watch(port=9000)
    first = only.update(snap(0, sock(8080, holder(10)), sock(9000, holder(12))))
    assert [e.port for e in first] == [9000]
    assert [e.port for e in only.update(snap(1))] == [9000]


def test_udp_and_ipv6_are_their_own_keys() -> None:
    w = watch()
    w.update(snap(0, sock(53, holder(10), proto="udp")))
    [listen] = w.update(snap(1, sock(53, holder(10), proto="udp"),
                             sock(53, holder(10), address="::1", family="ipv6")))
    assert (listen.proto, listen.family, listen.address) == ("tcp", "ipv6", "::1")
    assert event_texts(listen).where == "tcp6 [::1]:53"


def test_text_escapes_process_text_and_json_keeps_it_raw() -> None:
    w = watch()
    w.update(snap(0))
    evil = holder(10, COMM, (COMM, "x\ny"))
    [listen] = w.update(snap(1, sock(8080, evil)))
    line = event_line(listen, "01:02:04")
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line
    assert SHOWN_COMM in line and "x\\ny" in line
    assert line.startswith("01:02:04  listen    tcp 127.0.0.1:8080  PID 10 (")
    data = json.loads(json.dumps(event_json(listen)))
    assert data["names"] == [COMM]
    assert set(data) == {"schema", "at", "event", "proto", "family", "address", "port", "pids",
                         "names", "at_start"}
    assert data["at"] == "2026-11-22T01:02:04.000+00:00"


def test_a_new_socket_listed_without_holders_waits_one_poll() -> None:
    w = watch()
    w.update(snap(0))
    assert w.update(snap(1, sock(8080))) == []  # the fd scan has not found its process yet
    [listen] = w.update(snap(2, sock(8080, holder(10))))
    assert (listen.kind, listen.pids) == ("listen", (10,))
    [gone] = w.update(snap(4))
    assert gone.listened_for == 3  # from when it was first listed
    # Listed without holders, then gone: nothing to report.
    assert w.update(snap(10, sock(9000))) == []
    assert w.update(snap(11)) == []
    # Still without holders after HOLD seconds: a listener whose process we cannot see.
    assert w.update(snap(12, sock(7000))) == []
    assert w.update(snap(13, sock(7000))) == []
    [hidden] = w.update(snap(14, sock(7000)))
    assert (hidden.kind, hidden.pids) == ("listen", ())
    assert "a process portscope cannot see" in event_texts(hidden).what


def test_a_restart_is_recognised_when_its_holders_show_late() -> None:
    w = watch()
    w.update(snap(0, sock(8080, holder(10))))
    w.update(snap(1))  # unlisten
    assert w.update(snap(2, sock(8080))) == []
    [back] = w.update(snap(3, sock(8080, holder(20))))
    assert (back.kind, back.previous_pids) == ("restart", (10,))
    # Hidden for longer than HOLD: a listen without PIDs, then the restart once they show.
    w.update(snap(4))
    w.update(snap(5, sock(8080)))
    [hidden] = w.update(snap(7, sock(8080)))
    assert (hidden.kind, hidden.pids) == ("listen", ())
    [late] = w.update(snap(8, sock(8080, holder(30))))
    assert (late.kind, late.pids, late.previous_pids) == ("restart", (30,), (20,))
