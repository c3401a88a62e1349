"""What keeps `b` and `k` quick on a busy machine: their first answer is started on the key
(not once the dialog has mounted), and the details pane describes at most FULL_HOLDERS
holders in full (a pre-fork server's 300 workers in full kept the UI thread busy for half a
second each poll, and a key pressed meanwhile waited)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import portscope.core.diagnose.probe as probe
import portscope.tui.main_screen as main_screen
from portscope.core.collect import default_collector
from portscope.core.roles.published import WithContainers
from portscope.tui.app import PortscopeApp
from portscope.tui.bind_panel import BindPanel
from portscope.tui.details import FULL_HOLDERS, render_details
from portscope.tui.kill_modal import KillModal
from portscope.tui.rows import build_rows
from support import tcp_listener
from tui.tui_fakes import T0, holder, open_dialog, select_key, snap, sock, until


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
    release = threading.Event()
    real = main_screen.real_diagnose

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(main_screen, "real_diagnose", slow)
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
