"""The `/` filter's words: a port, a range, a prefix, `:PORT`, `user:NAME`, `pid:N` and a
piece of a process name, together (every word must match); on frozen rows, then through
the app, its help screen and its event log."""

from __future__ import annotations

import pytest

from portscope.core.rows import build_rows
from portscope.tui.event_log import EventLogScreen
from portscope.tui.help_screen import HelpScreen
from portscope.tui.rows import RowFilter, parse_filter
from tui.screen_checks import screen_text
from tui.test_app import _status, make_app, ports_in_order, started
from tui.test_snapshots import demo_app
from tui.tui_fakes import demo_snapshot, until

ALL = [22, 5173, 5353, 5432, 8000, 8080, 9000]


def ports(text: str) -> list[int]:
    row_filter = parse_filter(text)
    assert isinstance(row_filter, RowFilter), row_filter
    return [r.port for r in build_rows(demo_snapshot()) if row_filter.matches(r)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", [8080]),
        (":8080", [8080]),
        ("5000-8000", [5173, 5353, 5432, 8000]),  # both ends included
        (":8000-8080", [8000, 8080]),
        ("80*", [8000, 8080]),
        (":5*", [5173, 5353, 5432]),
        ("2*", [22]),
        ("user:dev", [5173, 8000]),
        ("USER:WWW", [8080]),  # any case
        ("user:nobody", []),
        ("pid:4188", [8080]),  # a worker of the pre-fork server: its row
        ("pid:812", [5432]),
        ("gun", [8080]),
        ("user:dev 8000-9000", [8000]),  # every word must match
        ("user:dev python", [8000]),
        ("80* gunicorn", [8080]),
        ("", ALL),
    ],
)
def test_each_kind_of_word(text: str, expected: list[int]) -> None:
    assert ports(text) == expected


def test_a_prefix_is_not_a_substring() -> None:
    assert ports("73*") == []  # 5173 ends in 73: a prefix matches the start only
    assert ports("17*") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("70000", "port must be 1-65535, got 70000"),
        ("8100-8000", "a port range goes up: '8100-8000' (write 8000-8100)"),
        ("1-70000", "not a port range: '1-70000' (port must be 1-65535, got 70000)"),
        ("pid:abc", "not a PID: 'abc' (expected a number such as 1234)"),
        ("pid:0", "not a PID: '0' (expected 1 to 4194304)"),
        ("user:", "user: needs a name (user:www)"),
        (":http", "not a port number: :http (try :8080, :8000-8100 or :80*)"),
        ("gun 99999", "port must be 1-65535, got 99999"),  # one bad word: no filter at all
    ],
)
def test_bad_words_say_what_is_wrong(text: str, message: str) -> None:
    assert parse_filter(text) == message


def test_a_hostile_word_is_quoted_escaped() -> None:
    message = parse_filter("pid:\x1b[2J")
    assert isinstance(message, str) and "\x1b" not in message and "\\x1b[2J" in message


async def test_ranges_prefixes_users_and_pids_through_the_app() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        for typed, expected in (
            ("8000-8100", [8000, 8080]),
            ("80*", [8000, 8080]),
            (":5432", [5432]),
            ("user:dev", [5173, 8000]),
            ("pid:4187", [8080]),
            ("avahi", [5353]),
        ):
            await pilot.press("slash", "ctrl+u", *typed, "enter")
            assert ports_in_order(app) == expected, typed
            assert f"filter '{typed}': {len(expected)} of 7 rows" in _status(app)
        await pilot.press("slash", "ctrl+u", *"9000-8000", "enter")
        error = app.main.query_one("#filter-error")
        assert error.display and "a port range goes up" in str(error.render())
        assert ports_in_order(app) == [5353]  # the last good filter stays
        await pilot.press("escape")
        assert ports_in_order(app) == ALL


async def test_the_help_screen_documents_the_words() -> None:
    app = make_app(demo_snapshot())
    async with app.run_test(size=(100, 60)) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        text = screen_text(app)
        for words in ("8000-8100", "80*", "user:NAME", "pid:N", "8080  :8080",
                      "every one must match"):
            assert words in text, words


async def test_the_event_log_is_filtered_by_the_same_words() -> None:
    """The demo's history: a stray server on 9000 came and went, 8000 restarted."""
    app = demo_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.latest_snapshot is not None)
        await pilot.press("slash", *"9000-9999", "enter")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventLogScreen))
        await pilot.pause()
        table = app.screen.query_one("#events-table")
        rows = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert rows and all(":9000" in where for where in rows)
