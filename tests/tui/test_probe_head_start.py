"""What keeps `b` and `k` quick on a busy machine: their first answer is started on the key
(not once the dialog has mounted), and the details pane describes at most FULL_HOLDERS
holders in full (a pre-fork server's 300 workers in full kept the UI thread busy for half a
second each poll, and a key pressed meanwhile waited)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import Checkbox, Input, Static

import portscope.core.diagnose.probe as probe
import portscope.tui.bind_panel as bind_panel
import portscope.tui.main_screen as main_screen
from portscope.core.collect import default_collector
from portscope.core.roles.published import WithContainers
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.details import FULL_HOLDERS, MORE_PIDS, render_details
from portscope.tui.kill_modal import KillModal
from portscope.tui.rows import build_rows
from support import tcp_listener
from tui.tui_fakes import (
    T0,
    holder,
    open_dialog,
    select_key,
    snap,
    sock,
    static_text,
    until,
)


def _recording(fn: Any, threads: list[str]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return fn(*args, **kwargs)

    return wrapper


async def test_b_and_k_start_their_first_answer_on_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probes: list[str] = []
    plans: list[str] = []
    monkeypatch.setattr(probe, "diagnose", _recording(probe.diagnose, probes))
    monkeypatch.setattr(main_screen, "plan_kill", _recording(main_screen.plan_kill, plans))
    app = PortscopeApp(WithContainers(default_collector()), interval=0.3)
    with tcp_listener() as listener:
        async with app.run_test(size=(140, 40)) as pilot:
            await select_key(app, pilot, row_key(listener.getsockname()[1]))
            panel = await open_dialog(app, pilot, "b", BindPanel)
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            assert panel.verdict is not None and panel.verdict.kind == "listening"
            # One probe so far, run by the key's head start: the panel took its answer.
            assert probes == ["portscope-head-start"]
            first = panel.verdict
            await pilot.press("ctrl+r")  # probing again is a fresh probe, never the early one
            await until(pilot, lambda: panel.verdict is not first, timeout=10)
            assert len(probes) == 2 and probes[1] != "portscope-head-start"
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, BindPanel))
            modal = await open_dialog(app, pilot, "k", KillModal)
            await until(pilot, lambda: modal.stage == "confirm", timeout=10)
            assert plans == ["portscope-head-start"]
            assert modal.plan is not None and modal.plan.port == listener.getsockname()[1]
            await pilot.press("escape")


def test_details_describe_the_first_holders_in_full_and_count_the_rest() -> None:
    master = holder(1000, "gunicorn", "gunicorn -w 40 app:wsgi")
    workers = [
        holder(pid, "gunicorn", "gunicorn -w 40 app:wsgi", ppid=1000)
        for pid in range(1001, 1041)
    ]
    (row,) = build_rows(snap([sock(8080, master, *workers)]))
    text = render_details(row, T0, {}, None).plain
    shown_in_full = [h.pid for h in row.holders if f"PID {h.pid} " in text]
    assert shown_in_full == [h.pid for h in row.holders[:FULL_HOLDERS]]
    rest = row.holders[FULL_HOLDERS:]
    assert f"+{len(rest)} more: {len(rest)} gunicorn" in text
    assert ", ".join(str(h.pid) for h in rest) in text
    many = [holder(pid, "gunicorn", ppid=1000) for pid in range(1001, 1101)]
    (row,) = build_rows(snap([sock(8080, master, *many)]))
    text = render_details(row, T0, {}, None).plain
    rest = row.holders[FULL_HOLDERS:]
    listed = ", ".join(str(h.pid) for h in rest[:MORE_PIDS])
    assert f"PIDs {listed}, +{len(rest) - MORE_PIDS} more" in text
    assert str(rest[MORE_PIDS].pid) not in text


def test_a_just_restarted_servers_details_do_not_change_every_second() -> None:
    """Ages in whole minutes (the start time beside them has the seconds): the pane of 32
    workers started 5 s ago reads the same a second later, so a poll does not re-wrap it."""
    workers = [holder(pid, "gunicorn", ppid=1000, age=5.0) for pid in range(1000, 1033)]
    (row,) = build_rows(snap([sock(8080, *workers)]))
    first = render_details(row, T0, {}, None).plain
    assert "(under 1 min ago)" in first
    assert render_details(row, T0 + timedelta(seconds=1), {}, None).plain == first
    later = render_details(row, T0 + timedelta(seconds=55), {}, None).plain
    assert "(1 min ago)" in later and later != first


def slow_probes(monkeypatch: pytest.MonkeyPatch, ports: set[int] | None = None) -> threading.Event:
    """`b`'s probe of these ports (all, if None) waits until the returned event is set."""
    release = threading.Event()
    real = bind_panel.real_diagnose

    def slow(port: int, *args: Any, **kwargs: Any) -> Any:
        if ports is None or port in ports:
            release.wait(10)
        return real(port, *args, **kwargs)

    monkeypatch.setattr(bind_panel, "real_diagnose", slow)  # main_screen imports it at `b`
    return release


def row_key(port: int) -> str:
    return f"tcp:ipv4:[127.0.0.1]:{port}"


async def test_a_quick_answer_opens_its_dialog_already_answered() -> None:
    """Answer first, then the dialog: the panel mounts with its verdict (no probe of its
    own, no "Probing…" frame) and the kill dialog on its confirmation."""
    app = PortscopeApp(WithContainers(default_collector()), interval=3600)
    with tcp_listener() as listener:
        async with app.run_test(size=(140, 40)) as pilot:
            await select_key(app, pilot, row_key(listener.getsockname()[1]))
            panel = await open_dialog(app, pilot, "b", BindPanel)
            assert panel.verdict is not None and panel.verdict.kind == "listening"
            assert panel.probes == 1 and not panel._probing
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
            modal = await open_dialog(app, pilot, "k", KillModal)
            assert modal.stage == "confirm" and modal.plan is not None
            await pilot.press("escape")  # the holder is this test: nothing to signal
            await until(pilot, lambda: app.screen is app.main)


async def test_a_slow_answer_opens_its_dialog_first_and_a_second_key_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer slower than HEAD_START_WAIT: the panel opens without it and shows it when
    it comes; `b` pressed again meanwhile opens no second panel."""
    release = slow_probes(monkeypatch)
    app = PortscopeApp(WithContainers(default_collector()), interval=3600)
    with tcp_listener() as listener:
        async with app.run_test(size=(140, 40)) as pilot:
            await select_key(app, pilot, row_key(listener.getsockname()[1]))
            depth = len(app.screen_stack)
            await pilot.press("b")  # and again below, while its answer is still to come
            panel = await open_dialog(app, pilot, "b", BindPanel)
            assert panel.verdict is None  # opened on time, the answer still to come
            release.set()
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            assert panel.probes == 1
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
            assert len(app.screen_stack) == depth  # the second `b` opened nothing


async def test_b_reopens_one_mounted_panel_afresh_for_each_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The panel is mounted once the first poll is shown and every `b` reopens it: nothing
    of the last opening stays (the form, the checkbox, an error, the verdict), and an
    answer still on its way from the last opening never lands in the new one."""
    slow_ports: set[int] = set()
    release = slow_probes(monkeypatch, slow_ports)
    app = PortscopeApp(WithContainers(default_collector()), interval=3600)
    with tcp_listener() as first, tcp_listener() as second, tcp_listener() as third:
        ports = [s.getsockname()[1] for s in (first, second, third)]
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: app.main._bind_panel is not None)
            prepared = app.main._bind_panel
            await until(pilot, lambda: prepared is not None and prepared.ready)
            await select_key(app, pilot, row_key(ports[0]))
            panel = await open_dialog(app, pilot, "b", BindPanel)
            assert panel is prepared
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            assert panel.verdict is not None and panel.verdict.port == ports[0]
            # Leave things behind: SO_REUSEADDR ticked, a bad port typed and submitted.
            panel.query_one("#bind-reuse", Checkbox).value = True
            await until(pilot, lambda: panel.bind == "reuseaddr")
            panel.query_one("#bind-port", Input).value = "99999"
            panel.action_probe()
            assert panel.query_one("#bind-error", Static).has_class("-shown")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)

            await select_key(app, pilot, row_key(ports[1]))
            again = await open_dialog(app, pilot, "b", BindPanel)
            assert again is panel
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            assert panel.verdict is not None and panel.verdict.port == ports[1]
            assert panel.query_one("#bind-port", Input).value == str(ports[1])
            assert not panel.query_one("#bind-reuse", Checkbox).value
            assert panel.bind == "plain"
            assert not panel.query_one("#bind-error", Static).has_class("-shown")
            assert str(ports[1]) in static_text(panel.query_one("#bind-verdict", Static))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)

            # An opening whose answer is slow, closed before it came; then another port.
            slow_ports.add(ports[2])
            await select_key(app, pilot, row_key(ports[2]))
            late = await open_dialog(app, pilot, "b", BindPanel)
            assert late is panel and panel.verdict is None  # opened on time, answer to come
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
            await select_key(app, pilot, row_key(ports[0]))
            await open_dialog(app, pilot, "b", BindPanel)
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            release.set()  # the slow answer for ports[2] arrives now, into the new opening
            await pilot.pause(0.3)
            assert panel.verdict is not None and panel.verdict.port == ports[0]
            await pilot.press("escape")


async def test_a_poll_that_comes_while_a_dialog_opens_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between `b` and its panel no poll starts, and one that arrives is shown only once
    the panel has opened and closed: redrawing the table would delay the answer."""
    release = slow_probes(monkeypatch)
    app = PortscopeApp(WithContainers(default_collector()), interval=3600)
    with tcp_listener() as listener:
        port = listener.getsockname()[1]
        async with app.run_test(size=(140, 40)) as pilot:
            await select_key(app, pilot, row_key(port))
            # What follows the first poll (the dialogs loaded, the bind panel mounted) is
            # done: under load it could keep the UI thread past the hold timed below.
            await until(pilot, lambda: app.main._bind_panel is not None, timeout=10)
            shown = app.latest_snapshot
            await pilot.press("b")
            assert app.main.opening
            app.poll_now()  # held: no poll starts for HOLD_POLLS
            # A name no process on the machine has: the table shows the real collector's
            # rows, and another person's server may be called anything.
            newcomer = f"newcomer-{uuid.uuid4().hex}"
            arrived = snap([sock(port, holder(4242, newcomer))])
            app.main.receive(arrived)  # as if a poll in flight had just finished
            assert newcomer not in _table_text(app)
            await pilot.pause(main_screen.HOLD_POLLS * 0.6)
            assert app.latest_snapshot is shown
            panel = await open_dialog(app, pilot, "b", BindPanel)  # the second b: ignored
            release.set()
            await until(pilot, lambda: panel.verdict is not None, timeout=10)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main)
            await until(pilot, lambda: app.latest_snapshot is not shown, timeout=5)


def _table_text(app: PortscopeApp) -> str:
    return " ".join(str(cell) for row in app.main.table.rows_shown.values() for cell in row.holders)
