"""The theme picked in the command palette is kept between runs, in an XDG config file
(XDG_CONFIG_HOME points at this test's temporary directory); the palette describes every
main-screen command as Textual describes its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot

from portscope.tui.app import PortscopeApp
from portscope.tui.keys import ACTION_HELP
from portscope.tui.settings import Settings, SettingsError, config_file
from portscope.tui.stops import from_holders
from tui.screen_checks import toasts
from tui.test_app import started
from tui.tui_fakes import FakeSource, demo_snapshot, fake_relatives, until

THEME = "nord"  # one of Textual's own themes, not its default


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path


def app_with(settings: Settings) -> PortscopeApp:
    return PortscopeApp(
        FakeSource([demo_snapshot()]), interval=3600, relatives=fake_relatives,
        stops=from_holders, settings=settings,
    )


async def pick_theme(app: PortscopeApp, pilot: Pilot[None], name: str) -> None:
    """As a person does: ctrl+p, "Theme", then the theme's name."""
    await pilot.press("ctrl+p", *"theme")
    await until(pilot, lambda: first_hit(app).startswith("Theme"))
    await pilot.press("enter")
    await until(pilot, lambda: bool(app.screen.query(CommandList)))
    await pilot.press(*name)
    await until(pilot, lambda: first_hit(app) == name)
    await pilot.press("enter")
    await until(pilot, lambda: app.theme == name)


def first_hit(app: PortscopeApp) -> str:
    hits = app.screen.query(CommandList)
    if not hits or not hits.first().option_count:
        return ""
    return str(hits.first().get_option_at_index(0).prompt).split("\n")[0]


def test_the_file_is_under_xdg_config_home_else_home_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_file() == tmp_path / "xdg" / "portscope" / "config.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_file() == tmp_path / ".config" / "portscope" / "config.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the spec: ignored
    assert config_file() == tmp_path / ".config" / "portscope" / "config.json"


async def test_the_palette_theme_is_kept_for_the_next_run(config_home: Path) -> None:
    path = config_file()
    assert path is not None and path.is_relative_to(config_home)
    first = app_with(Settings(path))
    async with first.run_test(size=(120, 36)) as pilot:
        await started(first, pilot)
        default = first.theme
        assert default != THEME and not path.exists()  # nothing written at start
        await pick_theme(first, pilot, THEME)
        await until(pilot, path.exists)
    assert json.loads(path.read_text()) == {"theme": THEME}
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)

    second = app_with(Settings(config_file()))
    async with second.run_test(size=(120, 36)) as pilot:
        await started(second, pilot)
        assert second.theme == THEME  # read at start
        written = path.stat().st_mtime_ns
        await pilot.press("p", "p")  # anything but a theme change writes nothing
    assert path.stat().st_mtime_ns == written


async def test_nothing_is_written_when_the_theme_does_not_change(config_home: Path) -> None:
    app = app_with(Settings(config_file()))
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+c")
    assert list(config_home.iterdir()) == []


async def test_other_keys_in_the_file_are_kept(config_home: Path) -> None:
    path = config_home / "portscope" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"theme": "dracula", "future": [1, 2]}))
    app = app_with(Settings(config_file()))
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        assert app.theme == "dracula"
        await pick_theme(app, pilot, THEME)
        await until(pilot, lambda: json.loads(path.read_text())["theme"] == THEME)
    assert json.loads(path.read_text()) == {"theme": THEME, "future": [1, 2]}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "is not valid JSON"),
        ('["nord"]', "is not a JSON object"),
    ],
)
async def test_an_unreadable_file_is_reported_and_never_overwritten(
    config_home: Path, content: str, said: str,
) -> None:
    path = config_home / "portscope" / "config.json"
    path.parent.mkdir()
    path.write_text(content)
    app = app_with(Settings(config_file()))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await until(pilot, lambda: said in toasts(app))
        assert app.theme == "textual-dark" and app.is_running
        await pick_theme(app, pilot, THEME)  # it is someone's file: not clobbered
        await until(pilot, lambda: "The theme is not kept" in toasts(app))
    assert path.read_text() == content


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"theme": 7}', "is not a string; the default theme is used"),
        ('{"theme": "no-such-theme"}', "is not one this version knows"),
    ],
)
async def test_a_bad_theme_is_reported_and_the_next_pick_replaces_it(
    config_home: Path, content: str, said: str,
) -> None:
    path = config_home / "portscope" / "config.json"
    path.parent.mkdir()
    path.write_text(content)
    app = app_with(Settings(config_file()))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await started(app, pilot)
        await until(pilot, lambda: said in toasts(app))
        assert app.theme == "textual-dark" and app.is_running
        await pick_theme(app, pilot, THEME)
        await until(pilot, lambda: json.loads(path.read_text()) == {"theme": THEME})


def test_save_reports_what_it_cannot_read_or_write(tmp_path: Path) -> None:
    """Errors root meets too: a file where a directory should be; a directory in the way of
    the file written first (then renamed over the real one)."""
    blocker = tmp_path / "config"
    blocker.write_text("a file where the directory would go")
    with pytest.raises(SettingsError, match=r"cannot read .*: Not a directory"):
        Settings(blocker / "portscope" / "config.json").save_theme(THEME)
    assert blocker.read_text() == "a file where the directory would go"
    folder = tmp_path / "portscope"
    (folder / f".config.json.{os.getpid()}.tmp").mkdir(parents=True)
    with pytest.raises(SettingsError, match=r"cannot write .*: Is a directory"):
        Settings(folder / "config.json").save_theme(THEME)
    assert not (folder / "config.json").exists()


async def test_every_main_screen_command_has_a_real_description() -> None:
    """Textual describes its own ("Theme": "Change the current theme"); so do we, and the
    key is named after the description."""
    app = app_with(Settings(None))
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        ours = [c for c in app.get_system_commands(app.main) if c.title not in (
            "Theme", "Quit", "Keys", "Screenshot", "Maximize", "Minimize")]
        assert {c.title for c in ours} >= {"Filter", "Sort", "Reverse sort", "TCP/UDP",
                                            "Sockets", "Copy PID", "Pause", "Refresh",
                                            "Kill", "Force kill", "Bind test", "Help"}
        for command in ours:
            assert len(command.help.split()) >= 5, command  # a sentence, not "key s"
            assert command.help.endswith(")") and "(key " in command.help
        await pilot.press("ctrl+p", *"refresh")
        await until(pilot, lambda: first_hit(app) == "Refresh")
        prompt = str(app.screen.query_one(CommandList).get_option_at_index(0).prompt)
        assert ACTION_HELP["refresh"] in prompt and "(key r)" in prompt
