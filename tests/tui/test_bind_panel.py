"""The bind panel driven by Pilot: it probes at once, validates input, follows TIME_WAIT."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from textual.widgets import Input, Static

from portscope.core.diagnose.verdict import Verdict
from portscope.core.model import Proto
from portscope.core.platform_path import portable
from portscope.tui._textual_hacks import mount_screen
from portscope.tui.bind_panel import UNKNOWN_EXPIRY_RETRY, BindPanel, real_diagnose
from support import free_in_both, make_server_time_wait, tcp_listener, udp_socket
from tui.test_bind_panel_fakes import (
    FROZEN_NOW,
    FakeClock,
    Host,
    ScriptedDiagnose,
    frozen_verdict,
    until,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real binds")


def shown(panel: BindPanel, selector: str) -> str:
    return str(panel.query_one(selector, Static).render())


def current(panel: BindPanel) -> Verdict | None:
    return panel.verdict


# What the countdown says while TIME_WAIT blocks the port: its time left, or, on the portable
# path (psutil gives no timers), that it probes again every few seconds.
COUNTDOWN = "Probing again every" if portable() else "TIME_WAIT clears in"


class Counting:
    """The panel's own diagnose, counted: proves whether a probe happened (and, TIME_WAIT
    being counted only as the cause, that the panel's probe counts it then)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, Proto]] = []

    def __call__(self, port: int, address: str, proto: Proto) -> Verdict:
        self.calls.append((port, address, proto))
        return real_diagnose(port, address, proto)


@linux_only
async def test_probes_at_once_and_says_what_check_says() -> None:
    with tcp_listener("0.0.0.0") as sock:
        port = sock.getsockname()[1]
        app = Host(BindPanel(port))
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.panel.verdict is not None)
            panel = app.panel
            assert panel.verdict is not None
            sentence = shown(panel, "#bind-verdict")
            advice = shown(panel, "#bind-advice")
            attempt = shown(panel, "#bind-attempt-0")
        check = subprocess.run(
            [sys.executable, "-m", "portscope", "check", str(port), "--json"],
            capture_output=True, text=True, timeout=30,
        )
        text = subprocess.run(
            [sys.executable, "-m", "portscope", "check", str(port)],
            capture_output=True, text=True, timeout=30, env={"COLUMNS": "200", "PATH": ""},
        )
    data = json.loads(check.stdout)
    assert data["verdict"] == panel.verdict.kind == "listening"
    assert sentence == text.stdout.splitlines()[0]  # the same sentence, word for word
    assert f"pid {os.getpid()}" in sentence
    assert data["advice"] == list(panel.verdict.advice)
    for line in data["advice"]:
        assert line in advice
    assert "EADDRINUSE (errno 98)" in attempt and "10048 WSAEADDRINUSE" in attempt


@pytest.mark.parametrize(
    ("port", "address", "message"),
    [
        ("abc", "0.0.0.0", "not a port number: 'abc'"),
        ("0", "0.0.0.0", "port must be 1-65535, got 0"),
        ("-5", "0.0.0.0", "port must be 1-65535, got -5"),
        ("65536", "0.0.0.0", "port must be 1-65535, got 65536"),
        ("8080", "1.2.3", "not an IP address: '1.2.3'"),
        ("8080", "::g", "not an IP address: '::g'"),
        # Typed text is quoted escaped and never read as markup; only ASCII digits count.
        ("[/]", "0.0.0.0", "not a port number: '[/]'"),
        ("\uff18\uff10\uff18\uff10", "0.0.0.0", "not a port number: '\uff18\uff10\uff18\uff10'"),
        ("8080", "[b]x[/b]", "not an IP address: '[b]x[/b]'"),
        ("\x1b[2J", "0.0.0.0", "not a port number: '\\x1b[2J'"),
    ],
)
async def test_bad_input_is_inline_and_nothing_is_probed(
    port: str, address: str, message: str
) -> None:
    fake = ScriptedDiagnose(frozen_verdict("free"))
    app = Host(BindPanel(8080, diagnose=fake))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panel.verdict is not None)
        panel = app.panel
        assert len(fake.calls) == 1
        panel.query_one("#bind-port", Input).value = port
        panel.query_one("#bind-address", Input).value = address
        panel.query_one("#bind-port", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        error = panel.query_one("#bind-error", Static)
        assert str(error.render()).startswith(message)
        assert error.display
        assert len(fake.calls) == 1 and panel.probes == 1  # nothing probed
        # Fixing the input clears the error and probes.
        panel.query_one("#bind-port", Input).value = "8081"
        panel.query_one("#bind-address", Input).value = "127.0.0.1"
        await pilot.press("enter")
        await until(pilot, lambda: len(fake.calls) == 2)
        assert fake.calls[-1] == (8081, "127.0.0.1", "tcp")
        assert not error.display


@linux_only
async def test_udp_choice_probes_the_udp_port() -> None:
    port = free_in_both("0.0.0.0")  # a UDP-chosen port may be a TCP TIME_WAIT
    with udp_socket("0.0.0.0", port):
        app = Host(BindPanel(port))
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.panel.verdict is not None)
            assert app.panel.verdict is not None and app.panel.verdict.kind == "free"
            await pilot.click("#bind-udp")
            await until(
                pilot, lambda: app.panel.verdict is not None and app.panel.verdict.proto == "udp"
            )
            after = current(app.panel)  # read again: the worker replaced it
            assert after is not None and after.kind == "udp_bound"
            assert "UDP socket bound" in shown(app.panel, "#bind-verdict")


async def test_escape_closes_the_panel() -> None:
    app = Host(BindPanel(8080, diagnose=ScriptedDiagnose(frozen_verdict("listening"))))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panel.verdict is not None)
        assert app.screen is app.panel
        assert app.panel.query_one("#bind-port", Input).has_focus  # Escape works from an input
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not app.panel
        assert not isinstance(app.screen, BindPanel)


@pytest.mark.parametrize("field", ["#bind-port", "#bind-address"])
async def test_q_closes_the_panel_from_either_field(field: str) -> None:
    """No port or address has a q in it: in the panel q closes, as in every dialog."""
    app = Host(BindPanel(8080, diagnose=ScriptedDiagnose(frozen_verdict("listening"))))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panel.verdict is not None)
        box = app.panel.query_one(field, Input)
        box.focus()
        await pilot.pause()
        before = box.value
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, BindPanel)
        assert box.value == before  # nothing typed


async def test_without_a_port_it_asks_and_does_not_probe() -> None:
    fake = ScriptedDiagnose(frozen_verdict("free"))
    app = Host(BindPanel(None, diagnose=fake))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert fake.calls == [] and app.panel.verdict is None
        assert "Type a port" in shown(app.panel, "#bind-verdict")
        assert app.panel.query_one("#bind-port", Input).has_focus
        await pilot.press("5", "4", "3", "2", "enter")
        await until(pilot, lambda: app.panel.verdict is not None)
        assert fake.calls == [(5432, "0.0.0.0", "tcp")]


async def test_countdown_reprobes_when_time_wait_ends_and_says_when_free() -> None:
    clock = FakeClock()
    fake = ScriptedDiagnose(frozen_verdict("time_wait", expires_in=3.0), frozen_verdict("free"))
    panel = BindPanel(8080, diagnose=fake, clock=clock, now=lambda: FROZEN_NOW)
    app = Host(panel)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: panel.verdict is not None)
        assert shown(panel, "#bind-countdown").startswith("TIME_WAIT clears in 3 s")
        clock.value += 1
        panel.tick()
        assert shown(panel, "#bind-countdown").startswith("TIME_WAIT clears in 2 s")
        assert len(fake.calls) == 1
        clock.value += 2.5  # the countdown has run out
        panel.tick()
        await until(pilot, lambda: panel.verdict is not None and panel.verdict.free)
        assert len(fake.calls) == 2
        assert shown(panel, "#bind-countdown") == (
            "Port 8080 became free at 02:51:04 after 4 s."
        )
        assert "is free" in shown(panel, "#bind-verdict")
        clock.value += 100
        panel.tick()  # free: nothing more to count down, no more probes
        await pilot.pause()
        assert len(fake.calls) == 2


async def test_unknown_expiry_reprobes_every_few_seconds() -> None:
    clock = FakeClock()
    fake = ScriptedDiagnose(frozen_verdict("time_wait", expires_in=None))
    panel = BindPanel(8080, diagnose=fake, clock=clock)
    app = Host(panel)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: panel.verdict is not None)
        assert "every 5 s" in shown(panel, "#bind-countdown")
        clock.value += 2
        panel.tick()
        await pilot.pause()
        assert len(fake.calls) == 1
        clock.value += 3
        panel.tick()
        await until(pilot, lambda: len(fake.calls) == 2)


@linux_only
async def test_real_time_wait_is_probed_again_when_the_countdown_ends() -> None:
    with tcp_listener(reuseaddr=False) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 1)
    clock = FakeClock()
    counting = Counting()
    panel = BindPanel(port, diagnose=counting, clock=clock)
    app = Host(panel)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: panel.verdict is not None)
        first = panel.verdict
        assert first is not None and first.kind == "time_wait"
        assert first.time_wait is not None
        assert COUNTDOWN in shown(panel, "#bind-countdown")
        if portable():  # no timer to count down: it probes again every few seconds
            assert first.time_wait.expires_in is None
            clock.value += UNKNOWN_EXPIRY_RETRY + 0.5
        else:
            assert first.time_wait.expires_in is not None
            clock.value += first.time_wait.expires_in + 0.5
        panel.tick()
        await until(pilot, lambda: len(counting.calls) == 2 and panel.verdict is not first)
        # The kernel still holds it (our fake clock ran ahead of it): the countdown restarts.
        assert panel.verdict is not None and panel.verdict.kind == "time_wait"
        assert COUNTDOWN in shown(panel, "#bind-countdown")


async def test_a_failing_probe_is_an_inline_error() -> None:
    fake = ScriptedDiagnose(OSError(24, "Too many open files"))
    app = Host(BindPanel(8080, diagnose=fake))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panel.query_one("#bind-error", Static).display)
        assert "probe failed" in shown(app.panel, "#bind-error")
        assert "Too many open files" in shown(app.panel, "#bind-error")
        assert app.panel.verdict is None


async def test_ctrl_r_probes_again() -> None:
    fake = ScriptedDiagnose(frozen_verdict("listening"), frozen_verdict("free"))
    app = Host(BindPanel(8080, diagnose=fake))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.panel.verdict is not None)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(fake.calls) == 2)
        await until(pilot, lambda: getattr(current(app.panel), "free", False))
        assert "is free" in shown(app.panel, "#bind-verdict")


async def test_countdown_reprobes_the_shown_port_not_a_half_typed_one() -> None:
    clock = FakeClock()
    fake = ScriptedDiagnose(frozen_verdict("time_wait", expires_in=1.0), frozen_verdict("free"))
    panel = BindPanel(8080, diagnose=fake, clock=clock, now=lambda: FROZEN_NOW)
    app = Host(panel)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: panel.verdict is not None)
        panel.query_one("#bind-port", Input).value = "80x"  # typing, not submitted
        clock.value += 2
        panel.tick()
        await until(pilot, lambda: len(fake.calls) == 2)
        assert fake.calls[-1] == (8080, "0.0.0.0", "tcp")
        assert not panel.query_one("#bind-error", Static).display


async def test_an_older_answer_never_overwrites_a_newer_one() -> None:
    import threading

    release = threading.Event()
    slow_then_fast: list[Verdict] = [frozen_verdict("listening"), frozen_verdict("free", 9090)]

    def diagnose_slow_first(port: int, address: str, proto: Proto) -> Verdict:
        if port == 8080:
            release.wait(5)  # the first probe hangs until the second has answered
            return slow_then_fast[0]
        return slow_then_fast[1]

    app = Host(BindPanel(8080, diagnose=diagnose_slow_first))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.panel.query_one("#bind-port", Input).value = "9090"
        app.panel.action_probe()
        await until(pilot, lambda: current(app.panel) is not None)
        release.set()
        await until(pilot, lambda: all(w.is_finished for w in app.workers))
        await pilot.pause()  # the stale answer was posted before its worker finished
        after = current(app.panel)
        assert after is not None and after.port == 9090 and after.free


@linux_only
async def test_wait_for_so_reuseaddr_answers_for_the_bind_the_server_does() -> None:
    """TIME_WAIT left by a server that set SO_REUSEADDR blocks a plain bind for up to 60 s,
    not a SO_REUSEADDR one: ticking the box answers for the server that sets it."""
    with tcp_listener(reuseaddr=True) as sock:
        port = sock.getsockname()[1]
        make_server_time_wait(sock, 2)
    app = Host(BindPanel(port))
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.panel.verdict is not None)
        panel = app.panel
        verdict = panel.query_one("#bind-verdict", Static)
        assert panel.verdict is not None and panel.verdict.kind == "time_wait"
        assert verdict.has_class("-waiting") and COUNTDOWN in shown(panel, "#bind-countdown")
        panel.query_one("#bind-reuse").focus()
        await pilot.press("space")
        await until(pilot, lambda: panel.bind == "reuseaddr")
        assert verdict.has_class("-free") and not verdict.has_class("-waiting")
        assert "A server that sets SO_REUSEADDR can bind 0.0.0.0:" in shown(panel, "#bind-verdict")
        assert shown(panel, "#bind-countdown") == ""
        await pilot.press("space")  # back to a plain bind: TIME_WAIT blocks it again
        await until(pilot, lambda: panel.bind == "plain")
        assert verdict.has_class("-waiting")


async def test_a_closed_panel_kept_for_the_next_b_probes_nothing() -> None:
    """The monitor keeps its panel mounted after Esc; a TIME_WAIT countdown that runs out
    meanwhile must not bind the port again behind the person's back."""
    clock = FakeClock()
    fake = ScriptedDiagnose(frozen_verdict("time_wait", expires_in=3.0), frozen_verdict("free"))
    panel = BindPanel(None, diagnose=fake, clock=clock, standby=True)
    app = Host(BindPanel(None))
    async with app.run_test(size=(80, 24)) as pilot:
        mount_screen(app, "kept", panel)
        await until(pilot, lambda: panel.ready)
        await app.pop_screen()
        panel.reopen(8080, diagnose=fake)
        app.push_screen(panel)
        await until(pilot, lambda: panel.verdict is not None)
        assert len(fake.calls) == 1
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not panel)
        clock.value += 10  # the countdown has run out
        panel.tick()
        await pilot.pause()
        assert len(fake.calls) == 1  # no probe while closed
        app.push_screen(panel)  # shown again: the countdown goes on
        await until(pilot, lambda: app.screen is panel)
        panel.tick()
        await until(pilot, lambda: panel.verdict is not None and panel.verdict.free)
        assert len(fake.calls) == 2
