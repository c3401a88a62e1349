"""The app driven by Pilot with a scripted snapshot source: real widgets, real poll thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import timedelta, timezone

import pytest
from textual import events
from textual.command import CommandList
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from portscope.core.model import ClientTimeWait, PortStats, Snapshot
from portscope.core.record import replace
from portscope.tui.app import PortscopeApp
from portscope.tui.help_screen import HelpScreen
from portscope.tui.port_table import PortTable
from portscope.tui.status_bar import StatusBar
from portscope.tui.stops import from_holders
from tui.screen_checks import screen_text
from tui.tui_fakes import T0, FakeSource, demo_snapshot, fake_relatives, holder, snap, sock, until


def make_app(*snapshots: Snapshot, error: Exception | None = None) -> PortscopeApp:
    # A long interval: polls happen only when a test asks (poll_now), never on a timer.
    source = FakeSource(snapshots, error=error)
    return PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=fake_relatives, stops=from_holders
    )


async def started(app: PortscopeApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: app.latest_snapshot is not None or _status(app) != "")
    await pilot.pause()


async def refresh(app: PortscopeApp, pilot: Pilot[None], new: Snapshot) -> None:
    """Make the next poll return `new`, poll now, and wait until the app has it."""
    source = app.source
    assert isinstance(source, FakeSource)
    source.set(new)
    app.poll_now()
    await until(pilot, lambda: app.latest_snapshot is new)
    await pilot.pause()


def table(app: PortscopeApp) -> PortTable:
    return app.main.query_one(PortTable)


def ports_in_order(app: PortscopeApp) -> list[int]:
    t = table(app)
    return [t.rows_shown[key].port for key in t.ordered_keys]


def _status(app: PortscopeApp) -> str:
    return str(app.main.query_one(StatusBar).render())


def _details(app: PortscopeApp) -> str:
    return str(app.main.query_one("#details-body", Static).render())


@pytest.fixture
async def demo() -> AsyncIterator[tuple[PortscopeApp, Pilot[None]]]:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        yield app, pilot


async def test_first_poll_fills_table_header_and_details(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    assert ports_in_order(app) == [22, 5173, 5353, 5432, 8000, 8080, 9000]
    status = _status(app)
    assert "polled 02:50:01 │" in status
    assert "11,990 of them to :5432" in status  # the client TIME_WAIT aggregate, one line
    assert "1 socket has a hidden owner: run with sudo" in status
    row = app.selected_row()
    assert row is not None and row.port == 22
    await pilot.press("down", "down", "down", "down", "down")
    row = app.selected_row()
    assert row is not None and row.port == 8080
    details = _details(app)
    assert "gunicorn -w 3 -b 0.0.0.0:8080 shop.wsgi" in details  # the full command line
    assert "cwd  /srv/shop" in details
    assert all(f"PID {pid}" in details for pid in (4180, 4187, 4188, 4189))  # every holder
    assert "parent 4180 parent" in details  # the workers' parent, from the lookup


async def test_footer_keys_are_bound(demo: tuple[PortscopeApp, Pilot[None]]) -> None:
    app, _ = demo
    keys = {key for key in app.main.active_bindings}
    assert {"slash", "s", "p", "b", "k", "question_mark", "q"} <= keys


async def test_filter_by_port_name_escape_and_bad_input(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("slash")
    field = app.main.query_one("#filter-input", Input)
    assert field.has_focus
    await pilot.press(*"8080", "enter")
    assert ports_in_order(app) == [8080]
    assert table(app).has_focus  # Enter gives focus back to the table
    assert "filter '8080': 1 of 7 rows" in _status(app)

    await pilot.press("slash", "ctrl+u", *"POST", "enter")  # process names: any case
    assert ports_in_order(app) == [5432]

    await pilot.press("slash", "ctrl+u", *"99999", "enter")
    error = app.main.query_one("#filter-error", Static)
    assert error.display and "port must be 1-65535, got 99999" in str(error.render())
    assert ports_in_order(app) == [5432]  # the bad filter was not applied
    assert field.has_focus

    await pilot.press("escape")  # Escape in the input clears the filter
    assert ports_in_order(app) == [22, 5173, 5353, 5432, 8000, 8080, 9000]
    assert table(app).has_focus and "filter" not in _status(app)


async def test_escape_on_table_clears_an_applied_filter(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("slash", *"node", "enter")
    assert ports_in_order(app) == [5173]
    await pilot.press("escape")
    assert len(ports_in_order(app)) == 7


async def test_sort_cycles_and_keeps_the_cursor_on_its_row(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("down", "down", "down", "down")  # :8000, python3
    picked = app.selected_row()
    assert picked is not None and picked.port == 8000
    await pilot.press("s")
    assert "sort process" in _status(app)
    assert ports_in_order(app) == [5353, 8080, 5173, 5432, 8000, 22, 9000]
    assert app.selected_row() == picked
    await pilot.press("s")
    assert "sort TIME_WAIT" in _status(app)
    assert ports_in_order(app)[:3] == [8080, 9000, 8000]
    assert app.selected_row() == picked
    await pilot.press("s")
    assert "sort PID" in _status(app)  # by the lowest PID; no visible owner: last
    assert ports_in_order(app) == [5353, 5432, 8080, 5173, 8000, 22, 9000]
    assert app.selected_row() == picked
    await pilot.press("s")
    assert "sort user" in _status(app)  # avahi, dev, dev, postgres, www
    assert ports_in_order(app) == [5353, 5173, 8000, 5432, 8080, 22, 9000]
    assert app.selected_row() == picked
    await pilot.press("s")
    assert ports_in_order(app) == [22, 5173, 5353, 5432, 8000, 8080, 9000]
    assert app.selected_row() == picked


async def test_cursor_stays_on_its_socket_when_a_refresh_reorders_rows(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("s", "s")  # TIME_WAIT order: 8080 (214), 9000 (37), 8000 (3), ...
    table(app).move_cursor(row=2)
    await pilot.pause()
    picked = app.selected_row()
    assert picked is not None and picked.port == 8000
    old = demo_snapshot()
    ports = tuple(
        replace(p, time_wait=900, time_wait_last=59.0) if p.port == 8000 else p
        for p in old.ports
    )
    new_listener = sock(3000, holder(555, "rails"))
    newer = replace(
        old, sockets=(new_listener, *old.sockets), ports=ports, taken_at=T0 + timedelta(seconds=1)
    )
    await refresh(app, pilot, newer)
    assert ports_in_order(app)[:2] == [8000, 8080]  # 8000 moved to the top ...
    row = app.selected_row()
    assert row is not None and row.key == picked.key  # ... and the cursor moved with it
    assert row.stats is not None and row.stats.time_wait == 900
    assert 3000 in ports_in_order(app)
    assert "polled 02:50:02" in _status(app)


async def test_a_refresh_updates_only_the_cells_that_changed(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    t = table(app)
    await pilot.pause()
    before = t.ops.copy()
    old = demo_snapshot()
    # 20,000 client ports in TIME_WAIT and one port's countdown ticking down.
    client_ports = tuple(
        PortStats(30000 + i, time_wait=1, time_wait_last=50.0, client_side=True, remote_port=5432)
        for i in range(20_000)
    )
    ticked = tuple(replace(p, time_wait_last=40.2) if p.port == 9000 else p for p in old.ports)
    newer = replace(
        old,
        ports=(*ticked, *client_ports),
        client_time_wait=ClientTimeWait(20_000, 20_000, ((5432, 20_000),), 50.0),
        taken_at=T0 + timedelta(seconds=1),
    )
    await refresh(app, pilot, newer)
    assert t.row_count == 7  # the 20,000 client ports are one header line, not rows
    await pilot.pause()
    done = t.ops - before
    assert done["made"] == 1 and done["lines"] == 1  # 9000's cells made again and drawn
    assert done["order"] == 0  # its sort key did not move: no row moved
    assert "clears in 40 s" in t.get_cell("tcp:port:9000", "time_wait")
    assert "20,000 client TIME_WAIT on 20,000 ephemeral ports" in _status(app)


async def test_pause_holds_the_table_and_resume_polls_at_once(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    source = app.source
    assert isinstance(source, FakeSource)
    await pilot.press("p")
    assert "PAUSED" in _status(app)
    calls = source.calls
    gone = snap([sock(7000, holder(70, "other"))], at=T0 + timedelta(seconds=5))
    source.set(gone)
    app.poll_now()
    await pilot.pause(0.2)
    assert source.calls == calls  # paused: no polling at all
    assert len(ports_in_order(app)) == 7
    await pilot.press("p")
    await until(pilot, lambda: ports_in_order(app) == [7000])
    assert "PAUSED" not in _status(app) and "polled 02:50:06" in _status(app)


async def test_help_lists_the_keys_and_closes(demo: tuple[PortscopeApp, Pilot[None]]) -> None:
    app, pilot = demo
    await pilot.press("question_mark")
    assert isinstance(app.screen, HelpScreen)
    text = screen_text(app)
    for key, what in (("/", "Show only the rows that match"), ("s", "Sort by"), ("p", "Pause"),
                      ("q", "Quit")):
        assert f"{key}  " in text and what in text
    await pilot.press("escape")
    assert app.screen is app.main


class _Dialog(ModalScreen[None]):
    """Stands in for the kill dialog: any modal must hold the table still."""


async def test_rows_hold_still_under_a_modal_and_catch_up_after(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("down", "down", "down", "down", "down")
    picked = app.selected_row()
    assert picked is not None and picked.port == 8080
    app.push_screen(_Dialog())
    await pilot.pause()
    without_8080 = replace(
        demo_snapshot(),
        sockets=tuple(s for s in demo_snapshot().sockets if s.port != 8080),
        taken_at=T0 + timedelta(seconds=1),
    )
    await refresh(app, pilot, without_8080)
    assert app.latest_snapshot is without_8080  # polling went on ...
    assert 8080 in ports_in_order(app)  # ... but the table did not change under the dialog
    assert app.selected_row() == picked
    app.pop_screen()
    await until(pilot, lambda: picked.key not in table(app).rows_shown)
    # The listener is gone; its port's TIME_WAIT now shows as a port with no listener.
    assert "tcp:port:8080" in table(app).rows_shown
    assert "polled 02:50:02" in _status(app)


async def test_poll_error_is_shown_inline_and_polling_recovers() -> None:
    app = make_app(demo_snapshot(), error=PermissionError(13, "Permission denied"))
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: "last poll failed" in _status(app))
        assert "permission denied" in _status(app)
        assert app.latest_snapshot is None and table(app).row_count == 0
        await refresh(app, pilot, demo_snapshot())
        assert "failed" not in _status(app) and table(app).row_count == 7


async def test_narrow_terminal_drops_columns_and_keeps_the_cursor() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(140, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("down", "down")
        picked = app.selected_row()
        labels = [label for _, label, _ in table(app).column_labels()]
        assert labels[-3:] == ["TIME_WAIT", "TREND", "OTHER"]
        await pilot.resize_terminal(120, 36)  # no room for OTHER: in the details instead
        await until(pilot, lambda: "other" not in table(app).column_keys)
        assert not table(app).show_horizontal_scrollbar
        assert app.selected_row() == picked
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: table(app).narrow)
        labels = [label for _, label, _ in table(app).column_labels()]
        assert labels == ["PORT", "PROTO", "ADDRESS", "PID", "PROCESS", "TIME_WAIT"]
        assert app.selected_row() == picked
        assert table(app).row_count == 7


async def test_command_palette_runs_the_same_actions(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    app, pilot = demo
    await pilot.press("ctrl+p")
    await pilot.press(*"Sort")
    # The palette searches its providers asynchronously: wait for the hit.
    await until(pilot, lambda: _first_hit(app).startswith("Sort"))
    await pilot.press("enter")
    await until(pilot, lambda: app.main.sort_mode == "process")
    assert app.screen is app.main and "sort process" in _status(app)


def _first_hit(app: PortscopeApp) -> str:
    hits = app.screen.query(CommandList)
    if not hits or not hits.first().option_count:
        return ""
    return str(hits.first().get_option_at_index(0).prompt)


async def test_keys_typed_faster_than_a_refresh_all_land_in_the_filter(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    """A paste or a fast typist: "/8080/x" arrives in one read, before "/" has been acted on."""
    app, pilot = demo
    for char in "/gun/":
        key = "slash" if char == "/" else char
        app.post_message(events.Key(key, char))  # all queued at once, no pause between
    await pilot.pause()
    assert app.main.query_one("#filter-input", Input).value == "gun/"  # later "/" is text


async def test_q_quits(demo: tuple[PortscopeApp, Pilot[None]]) -> None:
    app, pilot = demo
    await pilot.press("q")
    await until(pilot, lambda: app.return_code is not None or not app.is_running)


async def test_the_poll_thread_ends_with_the_app() -> None:
    app = PortscopeApp(FakeSource([demo_snapshot()]), interval=0.01)
    async with app.run_test() as pilot:
        await until(pilot, lambda: _poll_threads() == 1 and app.latest_snapshot is not None)
    assert _poll_threads() == 0  # joined on unmount, not left to finish in the background


def _poll_threads() -> int:
    return sum(t.name == "portscope-poller" and t.is_alive() for t in threading.enumerate())


async def test_the_palette_over_a_dialog_offers_no_main_screen_actions(
    demo: tuple[PortscopeApp, Pilot[None]],
) -> None:
    """A kill started from the palette over the bind panel would stack dialogs."""
    app, pilot = demo
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen))
    await pilot.press("ctrl+p", "e")  # Textual's "Theme" and "Keys", and "Filter", "Pause"
    await until(pilot, lambda: {"Theme", "Keys"} <= set(_hits(app)))
    assert not {"Filter", "Pause", "Bind test"} & set(_hits(app))
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen))
    await pilot.press("escape")
    await pilot.press("ctrl+p", "e")  # over the main screen they are there
    await until(pilot, lambda: {"Filter", "Pause", "Bind test"} <= set(_hits(app)))


def _hits(app: PortscopeApp) -> list[str]:
    hits = app.screen.query(CommandList)
    if not hits:
        return []
    options = hits.first()
    prompts = (options.get_option_at_index(i).prompt for i in range(options.option_count))
    return [str(prompt).split("\n")[0] for prompt in prompts]
