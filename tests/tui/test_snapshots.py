"""SVG snapshots of the main screen with frozen data, a fixed time zone and no wall clock.

Update after a deliberate change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the SVGs in __snapshots__ before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timezone

from textual.pilot import Pilot

from portscope.tui.app import PortscopeApp
from portscope.tui.stops import from_holders
from tui.tui_fakes import FakeSource, demo_history, demo_relatives, demo_snapshot, until

SnapCompare = Callable[..., bool]


def demo_app() -> PortscopeApp:
    """The demo machine, with ten minutes of frozen history behind it (trends, events)."""
    source = FakeSource([demo_snapshot()])
    return PortscopeApp(
        source, interval=3600, tz=timezone.utc, relatives=demo_relatives, stops=from_holders,
        history=demo_history(),
    )


def settled(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait for the first poll and the details lookup, so the picture never races them."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PortscopeApp)
        await until(pilot, lambda: app.latest_snapshot is not None)
        await pilot.press(*keys)
        await until(pilot, lambda: not app.main.looking_up)
        await pilot.pause()

    return run_before


def test_main_screen_120x36(snap_compare: SnapCompare) -> None:
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=settled())


def test_main_screen_80x24_prefork_row_selected(snap_compare: SnapCompare) -> None:
    run_before = settled("down", "down", "down", "down", "down")
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=run_before)


def test_filtered_and_sorted_120x36(snap_compare: SnapCompare) -> None:
    run_before = settled("s", "s", "slash", "g", "u", "n", "enter")
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=run_before)


def test_help_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=settled("question_mark"))


def test_event_log_120x36(snap_compare: SnapCompare) -> None:
    """`e`: a stray server on 9000 came and went, 8000 was restarted by its shell loop."""
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=settled("e"))


def test_trend_of_8080_in_the_details_120x36(snap_compare: SnapCompare) -> None:
    """8080's TIME_WAIT climbed under a load test; 9000's climbed and drained."""
    run_before = settled("down", "down", "down", "down", "down")
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=run_before)


def test_main_screen_60x20(snap_compare: SnapCompare) -> None:
    """Compact columns (TW: the TIME_WAIT count), the header broken between its parts, the
    footer's keys that fit, whole."""
    assert snap_compare(demo_app(), terminal_size=(60, 20), run_before=settled())


def test_paused_with_every_socket_of_8080_120x36(snap_compare: SnapCompare) -> None:
    """`a` on the pre-fork row: its listener, its connections by state, TIME_WAIT; `p`: the
    footer says Resume."""
    run_before = settled("down", "down", "down", "down", "down", "a", "p")
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=run_before)


def test_udp_only_sorted_by_user_reversed_120x36(snap_compare: SnapCompare) -> None:
    """`t` twice (UDP only), `s` four times (user), `S`: the header says all three."""
    run_before = settled("t", "t", "s", "s", "s", "s", "S")
    assert snap_compare(demo_app(), terminal_size=(120, 36), run_before=run_before)
