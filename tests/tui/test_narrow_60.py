"""A 60x20 terminal (a split tmux pane, a phone): no horizontal scrollbar, and every word
on screen is a whole word of what the app meant to show (the header, the cells, the
details, the footer's keys, the help), never a piece of one cut at an edge. Then the
header's grammar and its one number format."""

from __future__ import annotations

from datetime import timezone

from textual.pilot import Pilot
from textual.widgets import Footer, Static

from portscope.core import text
from portscope.core.model import ClientTimeWait
from portscope.core.record import replace
from portscope.tui.app import PortscopeApp
from portscope.tui.footer import FittingFooter
from portscope.tui.help_screen import HelpScreen
from portscope.tui.keys import ACTION_HELP, MAIN_BINDINGS
from portscope.tui.port_table import PortTable
from portscope.tui.rows import RowFilter
from portscope.tui.status_bar import Status, StatusBar, render_status
from tui.screen_checks import assert_safe_screen
from tui.test_snapshots import demo_app
from tui.tui_fakes import demo_snapshot, snap, sock, static_text, until

SIZE = (60, 20)
# Drawn, not written: borders, scrollbars, the footer's separator.
DRAWING = "".join(chr(c) for c in range(0x2500, 0x25A0))


def words(*texts: str) -> set[str]:
    return {w for t in texts for w in t.split()}


def cut_words(lines: list[str], vocabulary: set[str]) -> list[str]:
    """Tokens on screen that are not whole words of what was shown."""
    tokens = (token.strip(DRAWING) for line in lines for token in line.split())
    return [token for token in tokens if token and token not in vocabulary]


def footer_words(app: PortscopeApp) -> set[str]:
    found = {"^p", "palette", "Sort", "Copy", "Kill"}  # the palette key, the group labels
    for binding in [*MAIN_BINDINGS, *app.BINDINGS]:
        found |= {app.get_key_display(binding), binding.key_display or "", binding.key}
        found |= words(binding.description)
    return found


def table_words(table: PortTable) -> set[str]:
    found = words(*(label for _, label, _ in table.column_labels()))
    for key in table.rows_shown:
        found |= words(*(str(cell) for cell in table.get_row(key)))
    return found


async def settled(app: PortscopeApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: app.latest_snapshot is not None)
    await until(pilot, lambda: not app.main.looking_up)
    await pilot.pause()
    await pilot.pause()  # the footer fits its keys after the refresh that lays them out


async def test_60x20_main_screen_has_no_horizontal_scrollbar_and_no_cut_words() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(app, pilot)
        table = app.main.table
        for _ in range(6):  # every row of the demo machine selected in turn
            assert not table.show_horizontal_scrollbar
            assert table.virtual_size.width <= table.scrollable_content_region.width
            vocabulary = (
                words(static_text(app.main.query_one(StatusBar)))
                | table_words(table)
                | words(static_text(app.main.query_one("#details-body", Static)))
                | footer_words(app)
            )
            lines = assert_safe_screen(app)
            assert cut_words(lines, vocabulary) == []
            await pilot.press("down")
            await until(pilot, lambda: not app.main.looking_up)
            await pilot.pause()
        footer = app.main.query_one(FittingFooter)
        shown = footer.shown_actions()
        assert shown[-2:] == ["help", "quit"] and "filter" in shown  # the rest: `?`
        assert "? Help" in lines[-1] and "q Quit" in lines[-1]


async def test_60x20_help_has_no_cut_words() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(app, pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        help_words = words(*(static_text(s) for s in app.screen.query(Static)))
        help_words |= words(*ACTION_HELP.values()) | {"esc", "Close", "help"}
        for _ in range(8):  # page through it all
            lines = assert_safe_screen(app)
            # The box's lines, between its borders (the main screen shows beside it).
            inside = [line.split("│")[1] for line in lines if line.count("│") >= 2]
            assert len(inside) > 10 and cut_words(inside, help_words) == []
            await pilot.press("pagedown")
            await pilot.pause()
        box = app.screen.query_one("#help-box")
        assert box.scroll_y > 0 and box.scroll_y == box.max_scroll_y  # read to the end
        assert app.screen.query_one(Footer)


async def test_the_footer_shows_every_key_on_a_wide_terminal() -> None:
    app = demo_app()
    async with app.run_test(size=(170, 40)) as pilot:
        await settled(app, pilot)
        shown = app.main.query_one(FittingFooter).shown_actions()
        assert shown == [
            "filter", "cycle_sort", "cycle_proto", "all_sockets", "copy_pids", "pause",
            "refresh", "bind_test", "kill", "events", "help", "quit",
        ]  # "s S Sort", "c C Copy" and "k K Kill" are one item each


# -- the header's words and numbers -----------------------------------------------------


def test_one_client_time_wait_on_one_ephemeral_port() -> None:
    one = ClientTimeWait(count=1, ports=1, by_remote_port=((5432, 1),), last_expiry=30.0)
    assert text.client_summary(one) == (
        "1 client TIME_WAIT on 1 ephemeral port, 1 of them to :5432; all clear in 30 s"
    )
    many = replace(one, count=12_345, ports=12_345, by_remote_port=((5432, 12_000),))
    assert "on 12,345 ephemeral ports, 12,000 of them" in text.client_summary(many)
    spread = replace(one, by_destination=(("127.0.0.1", 5432, 1),), ephemeral=(40000, 40000))
    assert text.client_pressure(spread) == (
        "1 client TIME_WAIT on 1 ephemeral port, 1 of 1 port to 127.0.0.1:5432; "
        "all clear in 30 s"
    )
    assert text.count(1, "row") == "1 row" and text.count(12_345, "row") == "12,345 rows"


def test_every_count_in_the_header_has_thousands_separators() -> None:
    status = Status(
        snapshot=replace(snap([sock(80)]), hidden_owners=1_234),
        rows_total=23_456, rows_shown=1_234, listening=12_345, skipped=1_500,
        row_filter=RowFilter("x"),
    )
    header = render_status(status, timezone.utc).plain
    assert "12,345 listening, 11,111 with no listener" in header
    assert "skipped 1,500 polls" in header
    assert "1,234 of 23,456 rows" in header
    assert "1,234 sockets have a hidden owner" in header
    one = render_status(replace(status, rows_total=1, rows_shown=1, listening=1, skipped=1),
                        timezone.utc).plain
    assert "1 of 1 row " in one and "skipped 1 poll)" in one


async def test_the_header_of_a_one_socket_client_through_the_app() -> None:
    one = ClientTimeWait(count=1, ports=1, by_remote_port=((5432, 1),), last_expiry=30.0)
    app = demo_app()
    source = app.source
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        single = replace(demo_snapshot(), client_time_wait=one, hidden_owners=1)
        source.set(single)  # type: ignore[attr-defined]
        app.poll_now()
        await until(pilot, lambda: app.latest_snapshot is single)
        await pilot.pause()
        header = static_text(app.main.query_one(StatusBar))
        assert "1 client TIME_WAIT on 1 ephemeral port, 1 of them to :5432" in header
        assert "1 socket has a hidden owner" in header
